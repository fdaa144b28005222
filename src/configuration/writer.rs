//! Where and how the writer sends its lines, and what it holds while it cannot.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use url::Url;

use super::Settings;
use super::error::{ConfigError, invalid};
use super::values::{PositiveSecs, floor, positive_count, whole_number_in};

#[derive(Debug, Clone)]
pub struct WriterConfig {
    /// None (`influx_url = ""`): no InfluxDB, Prometheus only.
    pub influx_url: Option<Url>,
    pub influx_db: String,
    pub influx_api: InfluxApi,
    pub influx_token: Option<SecretString>,
    pub request_timeout: Duration,
    pub batch_max_lines: usize,
    pub batch_max_age: Duration,
    /// Lines held in memory, when there is no spool.
    pub max_queue: usize,
    /// The ceiling of the exponential backoff between retries.
    pub retry_max_delay: Duration,
    pub gzip: bool,
    /// A PEM file of CA certificates trusted for `https://` besides the system's.
    pub ca_file: Option<PathBuf>,
    /// Create the database (v3) when a write finds it missing.
    pub create_database: bool,
    /// None: lines are held in memory only.
    pub spool: Option<SpoolConfig>,
}

#[derive(Debug, Clone)]
pub struct SpoolConfig {
    pub dir: PathBuf,
    /// Bytes of lines.
    pub max_bytes: u64,
    /// What the spool leaves free on its filesystem.
    pub min_free_bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InfluxApi {
    V1,
    V2,
    V3,
}

impl WriterConfig {
    pub fn from_settings(settings: &Settings) -> Result<Self, ConfigError> {
        let batch_max_age = PositiveSecs::parse(
            "batch_max_sec",
            settings.batch_max_sec,
            floor::BATCH_MAX_SEC,
        )?;
        let request_timeout = PositiveSecs::parse(
            "influx_timeout",
            settings.influx_timeout,
            floor::INFLUX_TIMEOUT,
        )?;
        let retry_max_delay = PositiveSecs::parse(
            "retry_max_delay",
            settings.retry_max_delay,
            floor::RETRY_MAX_DELAY,
        )?;
        let spool = SpoolConfig::from_settings(settings)?;
        let batch_max_lines = positive_count("batch_max_lines", settings.batch_max_lines)?;
        let max_queue = positive_count("max_queue", settings.max_queue)?;
        if batch_max_lines > max_queue {
            return Err(invalid(
                "batch_max_lines",
                format!("{batch_max_lines} is larger than max_queue ({max_queue})"),
            ));
        }
        Ok(WriterConfig {
            influx_url: influx_url(&settings.influx_url)?,
            influx_api: InfluxApi::parse(&settings.influx_api)?,
            influx_db: influx_db(&settings.influx_db)?,
            influx_token: settings.influx_token.clone(),
            request_timeout: request_timeout.into(),
            batch_max_lines,
            batch_max_age: batch_max_age.into(),
            max_queue,
            retry_max_delay: retry_max_delay.into(),
            gzip: settings.influx_gzip,
            ca_file: path_if_set(&settings.influx_ca_file),
            create_database: settings.create_database,
            spool,
        })
    }
}

impl SpoolConfig {
    /// None when `spool_dir` is empty.
    pub fn from_settings(settings: &Settings) -> Result<Option<Self>, ConfigError> {
        let Some(dir) = path_if_set(&settings.spool_dir) else {
            return Ok(None);
        };
        let max_bytes = positive_count("spool_max_bytes", settings.spool_max_bytes)?;
        let min_free_bytes = whole_number_in(
            "spool_min_free_bytes",
            settings.spool_min_free_bytes,
            0..=u64::MAX,
        )?;
        Ok(Some(SpoolConfig {
            dir,
            max_bytes: u64::try_from(max_bytes).unwrap_or(u64::MAX),
            min_free_bytes,
        }))
    }
}

impl InfluxApi {
    fn parse(name: &str) -> Result<Self, ConfigError> {
        match name {
            "v1" => Ok(InfluxApi::V1),
            "v2" => Ok(InfluxApi::V2),
            "v3" => Ok(InfluxApi::V3),
            other => Err(invalid(
                "influx_api",
                format!("unknown value `{other}` (expected v1, v2 or v3)"),
            )),
        }
    }
}

fn influx_url(text: &str) -> Result<Option<Url>, ConfigError> {
    if text.is_empty() {
        return Ok(None);
    }
    let shown = redacted_text(text);
    let url = Url::parse(text).map_err(|e| invalid("influx_url", format!("`{shown}`: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(invalid(
            "influx_url",
            format!("`{shown}` is not an http(s) URL"),
        ));
    }
    Ok(Some(url))
}

/// `url` as it may be shown (status, logs, errors): its userinfo, if any, replaced by `***`, so
/// neither user nor password shows, only that there were credentials.
pub fn redacted_url(url: &Url) -> Url {
    let mut shown = url.clone();
    if !url.username().is_empty() || url.password().is_some() {
        // Only a URL that cannot have userinfo refuses it: this one had some.
        let _ = shown.set_password(None);
        let _ = shown.set_username(REDACTED);
    }
    shown
}

const REDACTED: &str = "***";

/// As `redacted_url`, for text that may not even parse: the whole userinfo goes, since where the
/// user ends is not sure.
fn redacted_text(text: &str) -> String {
    let start = text.find("://").map_or(0, |i| i + 3);
    let end = text[start..]
        .find(['/', '?', '#'])
        .map_or(text.len(), |i| start + i);
    match text[start..end].rfind('@') {
        Some(at) => format!("{}{REDACTED}{}", &text[..start], &text[start + at..]),
        None => text.to_owned(),
    }
}

fn influx_db(name: &str) -> Result<String, ConfigError> {
    if name.is_empty() {
        return Err(invalid("influx_db", "must not be empty"));
    }
    Ok(name.to_owned())
}

/// An empty (or blank) path setting means "none".
fn path_if_set(path: &str) -> Option<PathBuf> {
    match path.trim() {
        "" => None,
        path => Some(PathBuf::from(path)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_userinfo_of_influx_url_is_never_shown() {
        let url = influx_url("http://admin:pw-s3cret@db.example:8086/influx")
            .unwrap()
            .unwrap();
        assert_eq!(url.password(), Some("pw-s3cret"));
        assert_eq!(
            redacted_url(&url).as_str(),
            "http://***@db.example:8086/influx"
        );
        let user_only = Url::parse("http://admin@db.example:8086").unwrap();
        assert_eq!(
            redacted_url(&user_only).as_str(),
            "http://***@db.example:8086/"
        );
        let plain = Url::parse("http://db.example:8086").unwrap();
        assert_eq!(redacted_url(&plain), plain);
        for text in [
            "http://admin:pw-s3cret@db.example:99999",
            "ftp://admin:pw-s3cret@db.example",
            "admin:pw-s3cret@db.example:8086",
            "http://admin:pw-s3cret@@/x",
        ] {
            let message = influx_url(text).unwrap_err().to_string();
            assert!(message.contains("influx_url"), "{message}");
            assert!(message.contains("***@"), "{message}");
            assert!(!message.contains("s3cret"), "{message}");
        }
    }
}
