//! Settings: the embedded `config/default.toml`, then an optional file, then the environment.
//! `Settings` is what the files say; `validate` turns it into typed values or one error naming the key.

use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

use crate::domain_filter::DomainFilter;
use crate::extended::GROUP_NAMES;
use crate::libvirt::bulk_stats::StatsGroups;

const DEFAULTS: &str = include_str!("../config/default.toml");
const ENV_PREFIX: &str = "VMTELEMETRY";
/// Each VM reserves room for its recent samples at its first (9 bytes a sample): an absurd
/// count would fail that allocation rather than be refused here.
const MAX_RECENT_SAMPLES: usize = 100_000;
/// "A few": each is one more client of libvirtd, and over ssh one more session.
const MAX_SEED_CONNECTIONS: usize = 8;
/// An hour between keepalive pings, or a hundred unanswered ones, would leave a dead peer unnoticed.
const MAX_KEEPALIVE_INTERVAL_SEC: i32 = 3600;
const MAX_KEEPALIVE_COUNT: u32 = 100;

/// The settings as written in the files and the environment.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub poll_interval: f64,
    pub batch_max_lines: i64,
    pub batch_max_sec: f64,
    pub libvirt_uri: String,
    pub libvirt_timeout: f64,
    pub libvirt_keepalive_interval: i64,
    pub libvirt_keepalive_count: i64,
    pub influx_url: String,
    pub influx_db: String,
    pub max_queue: i64,
    pub influx_api: String,
    pub influx_timeout: f64,
    pub influx_token: Option<SecretString>,
    pub influx_gzip: bool,
    pub influx_ca_file: String,
    pub create_database: bool,
    pub retry_max_delay: f64,
    pub spool_dir: String,
    pub spool_max_bytes: i64,
    pub shutdown_timeout: f64,
    pub hosts: Option<Vec<HostEntry>>,
    pub host_name: Option<String>,
    pub shard_index: i64,
    pub shard_count: i64,
    pub listen: String,
    pub log_format: String,
    pub admin_token: Option<SecretString>,
    pub recent_samples: i64,
    pub query_limit_max: i64,
    pub stats_groups: Vec<String>,
    pub stats_interval: f64,
    pub host_metrics: bool,
    pub seed_connections: i64,
    pub domain_include: Vec<String>,
    pub domain_exclude: Vec<String>,
}

/// A host as written: a bare URI, or a URI with a name for the `host` tag.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum HostEntry {
    Uri(String),
    Named { uri: String, name: Option<String> },
}

/// Validated settings, in the units the service uses.
#[derive(Debug, Clone)]
pub struct AppConfig {
    pub poll_interval: Duration,
    pub libvirt_timeout: Duration,
    /// The hosts this instance collects: its shard of the configured list.
    pub hosts: Vec<HostConfig>,
    pub shard: Shard,
    pub writer: WriterConfig,
    pub listen: SocketAddr,
    pub log_format: LogFormat,
    /// How long a stop may take to flush what the writer holds.
    pub shutdown_timeout: Duration,
    /// None: the admin endpoints are disabled.
    pub admin_token: Option<SecretString>,
    /// Samples per VM held in memory for the API.
    pub recent_samples: usize,
    /// The most points one history request returns.
    pub query_limit_max: usize,
    /// What is collected besides the seed's fields, and from which domains.
    pub collection: CollectionConfig,
}

/// The extended stats groups, their cadence, and the domain filter (applied to every measurement).
#[derive(Debug, Clone)]
pub struct CollectionConfig {
    /// Empty: no bulk stats call at all.
    pub stats_groups: StatsGroups,
    pub stats_interval: Duration,
    pub filter: DomainFilter,
    /// Write `host_metrics` every poll cycle.
    pub host_metrics: bool,
    /// The most connections a small host's seed cycle is spread over.
    pub seed_connections: usize,
    /// Of remote connections: a dead peer is noticed after `count` unanswered pings `interval`
    /// apart.
    pub keepalive: Keepalive,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keepalive {
    pub interval_sec: i32,
    pub count: u32,
}

impl Default for CollectionConfig {
    fn default() -> Self {
        CollectionConfig {
            stats_groups: StatsGroups::empty(),
            stats_interval: Duration::from_secs(5),
            filter: DomainFilter::default(),
            host_metrics: true,
            seed_connections: 2,
            keepalive: Keepalive {
                interval_sec: 5,
                count: 5,
            },
        }
    }
}

/// Replica `index` of `count` collects the hosts whose position in the list is `index` modulo
/// `count`, so every host is collected by exactly one replica sharing the same list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostConfig {
    pub uri: String,
    /// Overrides the hostname libvirt reports, for the `host` tag.
    pub name: Option<String>,
}

#[derive(Debug, Clone)]
pub struct WriterConfig {
    pub influx_url: Url,
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
    pub max_bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InfluxApi {
    V1,
    V2,
    V3,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(#[from] config::ConfigError),
    #[error("configuration key `{key}`: {message}")]
    Invalid { key: &'static str, message: String },
}

fn invalid(key: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        message: message.into(),
    }
}

/// Reads the embedded defaults, `file` if given, and the environment, then validates.
pub fn load(file: Option<&Path>) -> Result<AppConfig, ConfigError> {
    load_with_env(file, std::env::vars())
}

/// As `load`, with the environment passed in, so tests need not touch the process's.
pub fn load_with_env(
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<AppConfig, ConfigError> {
    let mut env: config::Map<String, String> = env.into_iter().collect();
    // The token also comes from the variable InfluxDB's own tools use.
    if let Some(token) = env.remove("INFLUX_TOKEN") {
        env.entry(format!("{ENV_PREFIX}_INFLUX_TOKEN"))
            .or_insert(token);
    }
    let mut builder = config::Config::builder()
        .add_source(config::File::from_str(DEFAULTS, config::FileFormat::Toml));
    if let Some(path) = file {
        builder = builder.add_source(config::File::from(path).required(true));
    }
    let settings: Settings = builder
        .add_source(
            config::Environment::with_prefix(ENV_PREFIX)
                .prefix_separator("_")
                .separator("__")
                .try_parsing(true)
                .list_separator(",")
                .with_list_parse_key("hosts")
                .with_list_parse_key("stats_groups")
                .with_list_parse_key("domain_include")
                .with_list_parse_key("domain_exclude")
                .source(Some(env)),
        )
        .build()?
        .try_deserialize()?;
    settings.validate()
}

impl Settings {
    pub fn validate(self) -> Result<AppConfig, ConfigError> {
        let poll_interval = positive_seconds("poll_interval", self.poll_interval)?;
        let batch_max_age = positive_seconds("batch_max_sec", self.batch_max_sec)?;
        let libvirt_timeout = positive_seconds("libvirt_timeout", self.libvirt_timeout)?;
        let request_timeout = positive_seconds("influx_timeout", self.influx_timeout)?;
        let retry_max_delay = positive_seconds("retry_max_delay", self.retry_max_delay)?;
        let shutdown_timeout = positive_seconds("shutdown_timeout", self.shutdown_timeout)?;
        let collection = CollectionConfig {
            stats_groups: stats_groups(&self.stats_groups)?,
            stats_interval: positive_seconds("stats_interval", self.stats_interval)?,
            filter: DomainFilter::new(
                &non_empty(self.domain_include),
                &non_empty(self.domain_exclude),
            )
            .map_err(|(which, message)| match which {
                "include" => invalid("domain_include", message),
                _ => invalid("domain_exclude", message),
            })?,
            host_metrics: self.host_metrics,
            seed_connections: whole_number_in(
                "seed_connections",
                self.seed_connections,
                1..=MAX_SEED_CONNECTIONS,
            )?,
            keepalive: Keepalive {
                interval_sec: whole_number_in(
                    "libvirt_keepalive_interval",
                    self.libvirt_keepalive_interval,
                    1..=MAX_KEEPALIVE_INTERVAL_SEC,
                )?,
                count: whole_number_in(
                    "libvirt_keepalive_count",
                    self.libvirt_keepalive_count,
                    1..=MAX_KEEPALIVE_COUNT,
                )?,
            },
        };
        let spool = match self.spool_dir.trim() {
            "" => None,
            dir => Some(SpoolConfig {
                dir: PathBuf::from(dir),
                max_bytes: u64::try_from(positive_count("spool_max_bytes", self.spool_max_bytes)?)
                    .unwrap_or(u64::MAX),
            }),
        };
        let batch_max_lines = positive_count("batch_max_lines", self.batch_max_lines)?;
        let max_queue = positive_count("max_queue", self.max_queue)?;
        if batch_max_lines > max_queue {
            return Err(invalid(
                "batch_max_lines",
                format!("{batch_max_lines} is larger than max_queue ({max_queue})"),
            ));
        }
        let influx_url = Url::parse(&self.influx_url)
            .map_err(|e| invalid("influx_url", format!("`{}`: {e}", self.influx_url)))?;
        if !matches!(influx_url.scheme(), "http" | "https") || influx_url.host().is_none() {
            return Err(invalid(
                "influx_url",
                format!("`{}` is not an http(s) URL", self.influx_url),
            ));
        }
        let influx_api = match self.influx_api.as_str() {
            "v1" => InfluxApi::V1,
            "v2" => InfluxApi::V2,
            "v3" => InfluxApi::V3,
            other => {
                return Err(invalid(
                    "influx_api",
                    format!("unknown value `{other}` (expected v1, v2 or v3)"),
                ));
            }
        };
        if self.influx_db.is_empty() {
            return Err(invalid("influx_db", "must not be empty"));
        }
        let log_format = match self.log_format.as_str() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                return Err(invalid(
                    "log_format",
                    format!("unknown value `{other}` (expected text or json)"),
                ));
            }
        };
        let listen = self
            .listen
            .parse()
            .map_err(|e| invalid("listen", format!("`{}`: {e}", self.listen)))?;
        let shard_count = positive_count("shard_count", self.shard_count)?;
        let shard_index = usize::try_from(self.shard_index)
            .ok()
            .filter(|index| *index < shard_count)
            .ok_or_else(|| {
                invalid(
                    "shard_index",
                    format!(
                        "must be from 0 to shard_count - 1 ({}), got {}",
                        shard_count - 1,
                        self.shard_index
                    ),
                )
            })?;
        let shard = Shard {
            index: shard_index,
            count: shard_count,
        };
        if self
            .admin_token
            .as_ref()
            .is_some_and(|t| t.expose_secret().is_empty())
        {
            return Err(invalid(
                "admin_token",
                "is empty: unset it to disable the admin endpoints",
            ));
        }
        let hosts = host_list(self.hosts, self.libvirt_uri, self.host_name)?
            .into_iter()
            .enumerate()
            .filter(|(position, _)| position % shard.count == shard.index)
            .map(|(_, host)| host)
            .collect();
        Ok(AppConfig {
            poll_interval,
            libvirt_timeout,
            hosts,
            shard,
            writer: WriterConfig {
                influx_url,
                influx_db: self.influx_db,
                influx_api,
                influx_token: self.influx_token,
                request_timeout,
                batch_max_lines,
                batch_max_age,
                max_queue,
                retry_max_delay,
                gzip: self.influx_gzip,
                ca_file: match self.influx_ca_file.trim() {
                    "" => None,
                    path => Some(PathBuf::from(path)),
                },
                create_database: self.create_database,
                spool,
            },
            listen,
            log_format,
            shutdown_timeout,
            admin_token: self.admin_token,
            recent_samples: whole_number_in(
                "recent_samples",
                self.recent_samples,
                0..=MAX_RECENT_SAMPLES,
            )?,
            query_limit_max: positive_count("query_limit_max", self.query_limit_max)?,
            collection,
        })
    }
}

/// The named groups (empty entries, as an empty environment variable gives, are ignored).
fn stats_groups(names: &[String]) -> Result<StatsGroups, ConfigError> {
    let mut groups = StatsGroups::empty();
    for name in names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
        let Some((_, group)) = GROUP_NAMES.iter().find(|(known, _)| *known == name) else {
            let known: Vec<&str> = GROUP_NAMES.iter().map(|(n, _)| *n).collect();
            return Err(invalid(
                "stats_groups",
                format!(
                    "unknown group `{name}` (expected some of {})",
                    known.join(", ")
                ),
            ));
        };
        groups |= *group;
    }
    Ok(groups)
}

fn non_empty(patterns: Vec<String>) -> Vec<String> {
    patterns
        .into_iter()
        .filter(|p| !p.trim().is_empty())
        .collect()
}

fn host_list(
    hosts: Option<Vec<HostEntry>>,
    libvirt_uri: String,
    host_name: Option<String>,
) -> Result<Vec<HostConfig>, ConfigError> {
    let entries = match (hosts, host_name) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                "host_name",
                "names the `libvirt_uri` host; with `hosts`, name each entry instead",
            ));
        }
        (Some(hosts), None) => hosts,
        (None, name) => vec![HostEntry::Named {
            uri: libvirt_uri,
            name,
        }],
    };
    if entries.is_empty() {
        return Err(invalid(
            "hosts",
            "the list is empty: name at least one libvirt URI",
        ));
    }
    let mut hosts: Vec<HostConfig> = Vec::with_capacity(entries.len());
    for entry in entries {
        let host = match entry {
            HostEntry::Uri(uri) => HostConfig { uri, name: None },
            HostEntry::Named { uri, name } => HostConfig { uri, name },
        };
        let uri = host.uri.trim();
        if uri.is_empty() || !uri.contains(':') {
            return Err(invalid(
                "hosts",
                format!("`{}` is not a libvirt URI", host.uri),
            ));
        }
        if host.name.as_deref().is_some_and(str::is_empty) {
            return Err(invalid("hosts", format!("the name of `{uri}` is empty")));
        }
        if hosts.iter().any(|known| known.uri == host.uri) {
            return Err(invalid("hosts", format!("`{uri}` is listed twice")));
        }
        hosts.push(host);
    }
    Ok(hosts)
}

fn positive_seconds(key: &'static str, seconds: f64) -> Result<Duration, ConfigError> {
    if !(seconds.is_finite() && seconds > 0.0) {
        return Err(invalid(
            key,
            format!("must be a positive number of seconds, got {seconds}"),
        ));
    }
    Duration::try_from_secs_f64(seconds).map_err(|e| invalid(key, e.to_string()))
}

fn whole_number_in<T>(
    key: &'static str,
    value: i64,
    range: RangeInclusive<T>,
) -> Result<T, ConfigError>
where
    T: TryFrom<i64> + PartialOrd + std::fmt::Display,
{
    T::try_from(value)
        .ok()
        .filter(|n| range.contains(n))
        .ok_or_else(|| {
            let (low, high) = (range.start(), range.end());
            invalid(key, format!("must be {low} to {high}, got {value}"))
        })
}

fn positive_count(key: &'static str, count: i64) -> Result<usize, ConfigError> {
    usize::try_from(count)
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| invalid(key, format!("must be a positive whole number, got {count}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn error_of(pairs: &[(&str, &str)]) -> String {
        load_with_env(None, env(pairs)).unwrap_err().to_string()
    }

    #[test]
    fn defaults_are_the_seeds() {
        let config = load_with_env(None, env(&[])).unwrap();
        assert_eq!(config.poll_interval, Duration::from_secs(5));
        assert_eq!(config.libvirt_timeout, Duration::from_secs(10));
        assert_eq!(
            config.collection.keepalive,
            Keepalive {
                interval_sec: 5,
                count: 5
            }
        );
        assert_eq!(config.writer.batch_max_lines, 2000);
        assert_eq!(config.writer.batch_max_age, Duration::from_secs(1));
        assert_eq!(config.writer.max_queue, 20000);
        assert_eq!(config.writer.influx_db, "vmstats");
        assert_eq!(config.writer.influx_url.as_str(), "http://localhost:8181/");
        assert_eq!(config.writer.influx_api, InfluxApi::V3);
        assert!(config.writer.influx_token.is_none());
        assert_eq!(
            config.hosts,
            vec![HostConfig {
                uri: "qemu:///system".into(),
                name: None
            }]
        );
        assert_eq!(config.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(config.log_format, LogFormat::Text);
    }

    #[test]
    fn environment_overrides_any_key() {
        let config = load_with_env(
            None,
            env(&[
                ("VMTELEMETRY_POLL_INTERVAL", "0.5"),
                ("VMTELEMETRY_BATCH_MAX_LINES", "10"),
                ("VMTELEMETRY_INFLUX_API", "v1"),
                ("VMTELEMETRY_HOSTS", "test:///default,qemu:///system"),
                ("INFLUX_TOKEN", "s3cret"),
            ]),
        )
        .unwrap();
        assert_eq!(config.poll_interval, Duration::from_millis(500));
        assert_eq!(config.writer.batch_max_lines, 10);
        assert_eq!(config.writer.influx_api, InfluxApi::V1);
        let uris: Vec<_> = config.hosts.iter().map(|h| h.uri.as_str()).collect();
        assert_eq!(uris, ["test:///default", "qemu:///system"]);
        assert_eq!(
            config.writer.influx_token.unwrap().expose_secret(),
            "s3cret"
        );
    }

    #[test]
    fn a_file_overrides_the_defaults_and_names_hosts() {
        let mut file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
        writeln!(
            file,
            r#"hosts = ["test:///default", {{ uri = "test+unix:///tmp/n.xml", name = "b" }}]
               influx_token = "from-file""#
        )
        .unwrap();
        let config = load_with_env(Some(file.path()), env(&[])).unwrap();
        assert_eq!(
            config.hosts[1],
            HostConfig {
                uri: "test+unix:///tmp/n.xml".into(),
                name: Some("b".into())
            }
        );
        assert_eq!(
            config.writer.influx_token.unwrap().expose_secret(),
            "from-file"
        );
    }

    #[test]
    fn invalid_values_name_their_key() {
        for (pairs, key) in [
            (&[("VMTELEMETRY_POLL_INTERVAL", "0")][..], "poll_interval"),
            (&[("VMTELEMETRY_BATCH_MAX_SEC", "-1")][..], "batch_max_sec"),
            (
                &[("VMTELEMETRY_LIBVIRT_TIMEOUT", "0")][..],
                "libvirt_timeout",
            ),
            (
                &[("VMTELEMETRY_BATCH_MAX_LINES", "20001")][..],
                "batch_max_lines",
            ),
            (&[("VMTELEMETRY_MAX_QUEUE", "0")][..], "max_queue"),
            (
                &[("VMTELEMETRY_RECENT_SAMPLES", "-1")][..],
                "recent_samples",
            ),
            (
                &[("VMTELEMETRY_RECENT_SAMPLES", "100001")][..],
                "recent_samples",
            ),
            (
                &[("VMTELEMETRY_SEED_CONNECTIONS", "0")][..],
                "seed_connections",
            ),
            (
                &[("VMTELEMETRY_SEED_CONNECTIONS", "9")][..],
                "seed_connections",
            ),
            (
                &[("VMTELEMETRY_LIBVIRT_KEEPALIVE_INTERVAL", "0")][..],
                "libvirt_keepalive_interval",
            ),
            (
                &[("VMTELEMETRY_LIBVIRT_KEEPALIVE_INTERVAL", "3601")][..],
                "libvirt_keepalive_interval",
            ),
            (
                &[("VMTELEMETRY_LIBVIRT_KEEPALIVE_COUNT", "0")][..],
                "libvirt_keepalive_count",
            ),
            (
                &[("VMTELEMETRY_LIBVIRT_KEEPALIVE_COUNT", "-3")][..],
                "libvirt_keepalive_count",
            ),
            (&[("VMTELEMETRY_INFLUX_URL", "not a url")][..], "influx_url"),
            (&[("VMTELEMETRY_INFLUX_URL", "ftp://x")][..], "influx_url"),
            (&[("VMTELEMETRY_INFLUX_API", "v4")][..], "influx_api"),
            (&[("VMTELEMETRY_LOG_FORMAT", "xml")][..], "log_format"),
            (&[("VMTELEMETRY_LISTEN", "nowhere")][..], "listen"),
            (&[("VMTELEMETRY_HOSTS", "")][..], "hosts"),
            (
                &[("VMTELEMETRY_POLL_INTERVAL", "soon")][..],
                "poll_interval",
            ),
        ] {
            let message = error_of(pairs);
            assert!(
                message.contains(key),
                "{pairs:?}: `{message}` does not name {key}"
            );
            assert!(!message.contains('\n'), "{message} is more than one line");
        }
    }

    #[test]
    fn an_empty_host_list_is_refused() {
        let mut file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
        writeln!(file, "hosts = []").unwrap();
        let message = load_with_env(Some(file.path()), env(&[]))
            .unwrap_err()
            .to_string();
        assert!(message.contains("`hosts`"), "{message}");
    }

    #[test]
    fn shards_split_the_host_list_exactly_once() {
        let hosts: Vec<String> = (0..20).map(|n| format!("test:///h{n}")).collect();
        let list = hosts.join(",");
        let mut seen = Vec::new();
        for index in 0..3 {
            let index = index.to_string();
            let config = load_with_env(
                None,
                env(&[
                    ("VMTELEMETRY_HOSTS", &list),
                    ("VMTELEMETRY_SHARD_COUNT", "3"),
                    ("VMTELEMETRY_SHARD_INDEX", &index),
                ]),
            )
            .unwrap();
            assert!((6..=7).contains(&config.hosts.len()));
            seen.extend(config.hosts.into_iter().map(|h| h.uri));
        }
        seen.sort();
        let mut expected = hosts.clone();
        expected.sort();
        assert_eq!(seen, expected);
        assert!(error_of(&[("VMTELEMETRY_SHARD_INDEX", "1")]).contains("shard_index"));
        assert!(error_of(&[("VMTELEMETRY_SHARD_COUNT", "0")]).contains("shard_count"));
    }

    #[test]
    fn host_name_names_the_single_host() {
        let config = load_with_env(None, env(&[("VMTELEMETRY_HOST_NAME", "node-7")])).unwrap();
        assert_eq!(config.hosts[0].name.as_deref(), Some("node-7"));
        let message = error_of(&[
            ("VMTELEMETRY_HOST_NAME", "node-7"),
            ("VMTELEMETRY_HOSTS", "test:///default"),
        ]);
        assert!(message.contains("host_name"), "{message}");
    }

    #[test]
    fn the_token_never_prints() {
        let config = load_with_env(
            None,
            env(&[
                ("INFLUX_TOKEN", "s3cret"),
                ("VMTELEMETRY_ADMIN_TOKEN", "adm1n"),
            ]),
        )
        .unwrap();
        let printed = format!("{config:?}");
        assert!(
            !printed.contains("s3cret") && !printed.contains("adm1n"),
            "{printed}"
        );
    }

    #[test]
    fn stats_groups_interval_and_filters() {
        let config = load_with_env(None, env(&[])).unwrap();
        let all = StatsGroups::CPU_TOTAL
            | StatsGroups::BALLOON
            | StatsGroups::VCPU
            | StatsGroups::INTERFACE
            | StatsGroups::BLOCK;
        assert_eq!(config.collection.stats_groups, all);
        assert_eq!(config.collection.stats_interval, Duration::from_secs(5));
        assert!(config.collection.filter.is_open());

        let config = load_with_env(
            None,
            env(&[
                ("VMTELEMETRY_STATS_GROUPS", "block,interface"),
                ("VMTELEMETRY_STATS_INTERVAL", "2.5"),
                ("VMTELEMETRY_DOMAIN_INCLUDE", "web-*,db-*"),
                ("VMTELEMETRY_DOMAIN_EXCLUDE", "*-test"),
            ]),
        )
        .unwrap();
        let c = &config.collection;
        assert_eq!(c.stats_groups, StatsGroups::BLOCK | StatsGroups::INTERFACE);
        assert_eq!(c.stats_interval, Duration::from_millis(2500));
        assert!(c.filter.allows("web-1") && c.filter.allows("db-2"));
        assert!(!c.filter.allows("web-test") && !c.filter.allows("mail"));

        let off = load_with_env(None, env(&[("VMTELEMETRY_STATS_GROUPS", "")])).unwrap();
        assert!(off.collection.stats_groups.is_empty());

        let message = error_of(&[("VMTELEMETRY_STATS_GROUPS", "cpu_total,disks")]);
        assert!(
            message.contains("stats_groups") && message.contains("disks"),
            "{message}"
        );
        assert!(!message.contains('\n'), "{message}");
        assert!(error_of(&[("VMTELEMETRY_STATS_INTERVAL", "0")]).contains("stats_interval"));
        assert!(error_of(&[("VMTELEMETRY_DOMAIN_INCLUDE", "[x")]).contains("domain_include"));
        assert!(error_of(&[("VMTELEMETRY_DOMAIN_EXCLUDE", "{a")]).contains("domain_exclude"));
    }
}
