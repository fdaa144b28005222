//! One write request to InfluxDB, on the configured API, and what its reply means for the batch
//! (following InfluxDB 3's documented statuses and bodies).

use std::cell::RefCell;
use std::io::Write as _;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use actix_web::http::header::{
    AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, HeaderMap, HeaderValue, HttpDate, RETRY_AFTER,
};
use flate2::write::DeflateEncoder;
use serde::Deserialize;
use serde_json::json;
use url::Url;

use super::TargetError;
use crate::configuration::{InfluxApi, WriterConfig, redacted_url};

/// Where and how to write: built once from the settings.
#[derive(Clone)]
pub struct WriteTarget {
    api: InfluxApi,
    url: Url,
    /// `url` as it may be shown: `***@` where `influx_url` has credentials.
    shown: Url,
    /// `POST /api/v3/configure/database`, when the writer may create the database.
    create_database: Option<Url>,
    database: String,
    /// Marked sensitive, so it never shows in debug output.
    authorization: Option<HeaderValue>,
    timeout: Duration,
    gzip: bool,
}

/// What became of a batch.
#[derive(Debug, PartialEq)]
pub enum WriteOutcome {
    Written,
    /// InfluxDB stored the batch except these lines (a v3 partial write, 400 or 422).
    Partial(Vec<RejectedLine>),
    /// The data was refused as a whole (v1/v2 are all-or-nothing): a bad line is among them.
    Refused {
        status: u16,
        message: String,
    },
    /// 413: over InfluxDB's request size.
    TooLarge,
    /// 404 on v3: the database is gone (e.g. soft-deleted).
    DatabaseMissing(String),
    /// Worth another try later: server errors, throttling, timeouts, unreachable, and refused
    /// credentials (the operator has to fix those; the lines wait).
    Retry {
        reason: String,
        retry_after: Option<Duration>,
        auth_failed: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RejectedLine {
    /// 1-based, within the batch.
    pub line_number: usize,
    pub error_message: String,
    #[serde(default)]
    pub original_line: String,
}

#[derive(Debug, thiserror::Error)]
pub enum CreateDatabaseError {
    #[error("create_database is off")]
    Off,
    #[error("InfluxDB unreachable: {0}")]
    Unreachable(#[source] awc::error::SendRequestError),
    #[error("creating database `{database}` failed ({status}): {reply}")]
    Failed {
        database: String,
        status: u16,
        reply: String,
    },
}

/// Longest reply body kept for logs and the status endpoint.
const REPLY_BODY_LIMIT: usize = 1024 * 1024;

impl WriteTarget {
    /// None without an `influx_url`.
    pub fn new(config: &WriterConfig) -> Result<Option<Self>, TargetError> {
        let Some(influx_url) = &config.influx_url else {
            return Ok(None);
        };
        let (path, database_param, precision) = match config.influx_api {
            InfluxApi::V3 => ("api/v3/write_lp", "db", "nanosecond"),
            InfluxApi::V2 => ("api/v2/write", "bucket", "ns"),
            InfluxApi::V1 => ("write", "db", "ns"),
        };
        let mut url = super::endpoint(influx_url, path)?;
        url.query_pairs_mut()
            .append_pair(database_param, &config.influx_db)
            .append_pair("precision", precision);
        let shown = redacted_url(&url);
        let create_database = match (config.influx_api, config.create_database) {
            (InfluxApi::V3, true) => Some(super::without_userinfo(super::endpoint(
                influx_url,
                "api/v3/configure/database",
            )?)),
            _ => None,
        };
        Ok(Some(WriteTarget {
            api: config.influx_api,
            url: super::without_userinfo(url),
            shown,
            create_database,
            database: config.influx_db.clone(),
            authorization: super::authorization(influx_url, config.influx_token.as_ref())?,
            timeout: config.request_timeout,
            gzip: config.gzip,
        }))
    }

    /// The write URL as it may be shown: without the password of `influx_url`.
    pub fn url(&self) -> Url {
        self.shown.clone()
    }

    pub fn creates_database(&self) -> bool {
        self.create_database.is_some()
    }

    /// Sends one batch. `awc::Client` is not `Send`: each writer keeps its own.
    pub async fn write(&self, client: &awc::Client, body: Vec<u8>) -> WriteOutcome {
        let mut request = client
            .post(self.url.as_str())
            .timeout(self.timeout)
            .insert_header((CONTENT_TYPE, "text/plain; charset=utf-8"));
        if let Some(authorization) = &self.authorization {
            request = request.insert_header((AUTHORIZATION, authorization.clone()));
        }
        let body = if self.gzip {
            request = request.insert_header((CONTENT_ENCODING, "gzip"));
            gzip(&body)
        } else {
            body
        };
        let mut response = match request.send_body(body).await {
            Ok(response) => response,
            Err(error) => {
                return WriteOutcome::Retry {
                    reason: format!("InfluxDB unreachable: {error}"),
                    retry_after: None,
                    auth_failed: false,
                };
            }
        };
        let status = response.status().as_u16();
        let reply = match response.body().limit(REPLY_BODY_LIMIT).await {
            Ok(bytes) => bytes.to_vec(),
            Err(error) => format!("(unreadable reply: {error})").into_bytes(),
        };
        classify(self.api, status, response.headers(), &reply)
    }

    /// Creates the database (v3, `create_database = true`). Creating one that exists is fine.
    pub async fn create_database(&self, client: &awc::Client) -> Result<(), CreateDatabaseError> {
        let Some(url) = &self.create_database else {
            return Err(CreateDatabaseError::Off);
        };
        let mut request = client.post(url.as_str()).timeout(self.timeout);
        if let Some(authorization) = &self.authorization {
            request = request.insert_header((AUTHORIZATION, authorization.clone()));
        }
        let mut response = request
            .send_json(&json!({ "db": self.database }))
            .await
            .map_err(CreateDatabaseError::Unreachable)?;
        match response.status().as_u16() {
            200..=299 | 409 => Ok(()),
            status => {
                let body = response
                    .body()
                    .limit(REPLY_BODY_LIMIT)
                    .await
                    .unwrap_or_default();
                Err(CreateDatabaseError::Failed {
                    database: self.database.clone(),
                    status,
                    reply: String::from_utf8_lossy(&body).into_owned(),
                })
            }
        }
    }
}

thread_local! {
    /// A new compressor allocates and zeroes ≈ 300 KB of tables: one per writer thread is reset
    /// for each body instead.
    static DEFLATE: RefCell<DeflateEncoder<Vec<u8>>> =
        RefCell::new(DeflateEncoder::new(Vec::new(), flate2::Compression::fast()));
}

/// RFC 1952: deflate, no name, no time, unknown OS.
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

/// `body` as one gzip member (`flate2`'s `GzEncoder` cannot be reset, so the framing is here).
fn gzip(body: &[u8]) -> Vec<u8> {
    // Writing to a Vec cannot fail. The encoder was left reset onto an empty Vec: the header
    // goes first into it, then one reset finishes the member and starts the next.
    let mut out = DEFLATE.with_borrow_mut(|encoder| {
        encoder.get_mut().extend_from_slice(&GZIP_HEADER);
        let _ = encoder.write_all(body);
        encoder.reset(Vec::new()).unwrap_or_default()
    });
    let mut crc = flate2::Crc::new();
    crc.update(body);
    out.extend_from_slice(&crc.sum().to_le_bytes());
    // ISIZE is the length modulo 2^32.
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out
}

/// What a reply means, per InfluxDB 3's HTTP API.
pub fn classify(api: InfluxApi, status: u16, headers: &HeaderMap, body: &[u8]) -> WriteOutcome {
    let text = || {
        String::from_utf8_lossy(body)
            .trim()
            .chars()
            .take(2000)
            .collect::<String>()
    };
    let retry = |auth_failed| WriteOutcome::Retry {
        reason: format!("InfluxDB answered {status}: {}", text()),
        retry_after: retry_after(headers),
        auth_failed,
    };
    match status {
        200..=299 => WriteOutcome::Written,
        400 | 422 if api == InfluxApi::V3 => match partial_write(body) {
            Some(rejected) => WriteOutcome::Partial(rejected),
            // A 400 about the request rather than its lines (e.g. the database name): nothing
            // a line can be blamed for, so the lines wait.
            None if status == 400 => retry(false),
            None => WriteOutcome::Refused {
                status,
                message: text(),
            },
        },
        400 | 422 => WriteOutcome::Refused {
            status,
            message: text(),
        },
        401 | 403 => retry(true),
        404 if api == InfluxApi::V3 => WriteOutcome::DatabaseMissing(text()),
        413 => WriteOutcome::TooLarge,
        _ => retry(false),
    }
}

/// `{"error":"partial write of line protocol occurred","data":[{…,"line_number":N,…}]}`
fn partial_write(body: &[u8]) -> Option<Vec<RejectedLine>> {
    #[derive(Deserialize)]
    struct Reply {
        data: Vec<RejectedLine>,
    }
    serde_json::from_slice::<Reply>(body)
        .ok()
        .map(|reply| reply.data)
        .filter(|rejected| !rejected.is_empty())
}

/// `Retry-After`: seconds, or an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at: SystemTime = HttpDate::from_str(value).ok()?.into();
    Some(at.duration_since(SystemTime::now()).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    fn config(api: InfluxApi, url: &str, token: Option<&str>) -> WriterConfig {
        WriterConfig {
            influx_url: Some(Url::parse(url).unwrap()),
            influx_db: "vm stats".into(),
            influx_api: api,
            influx_token: token.map(|t| SecretString::from(t.to_owned())),
            request_timeout: Duration::from_secs(1),
            batch_max_lines: 1,
            batch_max_age: Duration::from_secs(1),
            max_queue: 1,
            retry_max_delay: Duration::from_secs(60),
            gzip: true,
            ca_file: None,
            create_database: false,
            spool: None,
        }
    }

    #[test]
    fn each_api_has_its_path_and_parameters() {
        let target = |api, url| {
            let target = WriteTarget::new(&config(api, url, None)).unwrap();
            target.unwrap().url
        };
        assert_eq!(
            target(InfluxApi::V3, "http://localhost:8181").as_str(),
            "http://localhost:8181/api/v3/write_lp?db=vm+stats&precision=nanosecond"
        );
        assert_eq!(
            target(InfluxApi::V2, "https://influx.example:8181/").as_str(),
            "https://influx.example:8181/api/v2/write?bucket=vm+stats&precision=ns"
        );
        assert_eq!(
            target(InfluxApi::V1, "http://proxy/influx").as_str(),
            "http://proxy/influx/write?db=vm+stats&precision=ns"
        );
    }

    #[test]
    fn the_token_is_a_sensitive_bearer_header() {
        let config = config(InfluxApi::V3, "http://h", Some("s3cret"));
        let target = WriteTarget::new(&config).unwrap().unwrap();
        let header = target.authorization.unwrap();
        assert_eq!(header.to_str().unwrap(), "Bearer s3cret");
        assert!(header.is_sensitive());
        assert!(!format!("{header:?}").contains("s3cret"));
    }

    fn outcome(api: InfluxApi, status: u16, body: &str) -> WriteOutcome {
        classify(api, status, &HeaderMap::new(), body.as_bytes())
    }

    #[test]
    fn replies_are_classified_as_influxdb_3_documents_them() {
        use InfluxApi::*;
        assert_eq!(outcome(V3, 204, ""), WriteOutcome::Written);
        let partial = r#"{"error":"partial write of line protocol occurred","data":[
            {"original_line":"bad","line_number":2,"error_message":"invalid column type"}]}"#;
        let rejected = vec![RejectedLine {
            line_number: 2,
            error_message: "invalid column type".into(),
            original_line: "bad".into(),
        }];
        assert_eq!(
            outcome(V3, 400, partial),
            WriteOutcome::Partial(rejected.clone())
        );
        assert_eq!(outcome(V3, 422, partial), WriteOutcome::Partial(rejected));
        assert!(matches!(
            outcome(V3, 400, "invalid db name"),
            WriteOutcome::Retry {
                auth_failed: false,
                ..
            }
        ));
        assert!(matches!(
            outcome(V3, 422, "limit"),
            WriteOutcome::Refused { status: 422, .. }
        ));
        assert!(matches!(
            outcome(V2, 400, r#"{"code":"invalid"}"#),
            WriteOutcome::Refused { status: 400, .. }
        ));
        assert!(matches!(
            outcome(V1, 400, "unable to parse"),
            WriteOutcome::Refused { .. }
        ));
        for auth in [401, 403] {
            assert!(matches!(
                outcome(V3, auth, ""),
                WriteOutcome::Retry {
                    auth_failed: true,
                    ..
                }
            ));
        }
        assert!(matches!(
            outcome(V3, 404, "database not found"),
            WriteOutcome::DatabaseMissing(_)
        ));
        assert!(matches!(
            outcome(V1, 404, "database not found"),
            WriteOutcome::Retry { .. }
        ));
        assert_eq!(outcome(V3, 413, ""), WriteOutcome::TooLarge);
        for transient in [408, 429, 500, 502, 503, 504] {
            assert!(matches!(
                outcome(V3, transient, ""),
                WriteOutcome::Retry {
                    auth_failed: false,
                    ..
                }
            ));
        }
        // Garbage where JSON was expected is not a partial write.
        assert!(matches!(
            outcome(V3, 400, r#"{"data":"#),
            WriteOutcome::Retry { .. }
        ));
        assert!(matches!(
            outcome(V3, 400, r#"{"data":[]}"#),
            WriteOutcome::Retry { .. }
        ));
    }

    #[test]
    fn retry_after_is_seconds_or_a_date() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        let later = SystemTime::now() + Duration::from_secs(120);
        let date = HttpDate::from(later).to_string();
        headers.insert(RETRY_AFTER, HeaderValue::from_str(&date).unwrap());
        let wait = retry_after(&headers).unwrap();
        assert!(
            wait > Duration::from_secs(100) && wait <= Duration::from_secs(120),
            "{wait:?}"
        );
        headers.insert(RETRY_AFTER, HeaderValue::from_static("whenever"));
        assert_eq!(retry_after(&headers), None);
        let outcome = classify(
            InfluxApi::V3,
            503,
            &{
                let mut h = HeaderMap::new();
                h.insert(RETRY_AFTER, HeaderValue::from_static("3"));
                h
            },
            b"",
        );
        assert!(
            matches!(outcome, WriteOutcome::Retry { retry_after: Some(d), .. } if d == Duration::from_secs(3))
        );
    }

    #[test]
    fn gzip_round_trips_body_after_body() {
        let first = b"vm_metrics,host=a x=1i 1\n".repeat(100);
        let second = "vm_disk,host=b,device=vda rd_bytes=7i 2\n"
            .repeat(3)
            .into_bytes();
        for body in [&first[..], &second[..], b"", &first[..]] {
            let compressed = gzip(body);
            if body == first {
                assert!(compressed.len() < body.len() / 10);
            }
            let mut decoded = Vec::new();
            // The decoder checks the member's CRC and length too.
            std::io::Read::read_to_end(
                &mut flate2::read::GzDecoder::new(&compressed[..]),
                &mut decoded,
            )
            .unwrap();
            assert_eq!(decoded, body);
        }
    }
}
