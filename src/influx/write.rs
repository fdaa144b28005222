//! One write request to InfluxDB, on the configured API, and what its reply means for the batch.

use std::time::Duration;

use actix_web::http::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use url::Url;

use crate::configuration::{InfluxApi, WriterConfig};

/// Where and how to write: built once from the settings.
#[derive(Clone)]
pub struct WriteTarget {
    url: Url,
    /// Marked sensitive, so it never shows in debug output.
    authorization: Option<HeaderValue>,
    timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// InfluxDB refused the data itself; sending it again cannot succeed.
    #[error("InfluxDB rejected the batch ({status}): {body}")]
    Rejected { status: u16, body: String },
    /// Worth another try later: server errors, auth to be fixed, unreachable, timed out.
    #[error("InfluxDB write failed ({status}): {body}")]
    Failed { status: u16, body: String },
    #[error("InfluxDB unreachable: {0}")]
    Transport(String),
}

/// Longest error body kept for logs and the status endpoint.
const ERROR_BODY_LIMIT: usize = 64 * 1024;

impl WriteTarget {
    pub fn new(config: &WriterConfig) -> Result<Self, String> {
        let (path, database_param, precision) = match config.influx_api {
            InfluxApi::V3 => ("api/v3/write_lp", "db", "nanosecond"),
            InfluxApi::V2 => ("api/v2/write", "bucket", "ns"),
            InfluxApi::V1 => ("write", "db", "ns"),
        };
        let mut url = super::endpoint(&config.influx_url, path)?;
        url.query_pairs_mut()
            .append_pair(database_param, &config.influx_db)
            .append_pair("precision", precision);
        Ok(WriteTarget {
            url,
            authorization: super::bearer(config.influx_token.as_ref())?,
            timeout: config.request_timeout,
        })
    }

    pub fn url(&self) -> &Url {
        &self.url
    }

    /// Sends one batch. `awc::Client` is not `Send`: each writer keeps its own.
    pub async fn write(&self, client: &awc::Client, body: Vec<u8>) -> Result<(), WriteError> {
        let mut request = client
            .post(self.url.as_str())
            .timeout(self.timeout)
            .insert_header((CONTENT_TYPE, "text/plain; charset=utf-8"));
        if let Some(authorization) = &self.authorization {
            request = request.insert_header((AUTHORIZATION, authorization.clone()));
        }
        let mut response = request
            .send_body(body)
            .await
            .map_err(|e| WriteError::Transport(e.to_string()))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let body = match response.body().limit(ERROR_BODY_LIMIT).await {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) => format!("(unreadable body: {e})"),
        };
        let status = status.as_u16();
        // 4xx other than auth, not-found, timeout and throttling: the data itself was refused.
        if (400..500).contains(&status) && !matches!(status, 401 | 403 | 404 | 408 | 429) {
            Err(WriteError::Rejected { status, body })
        } else {
            Err(WriteError::Failed { status, body })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    fn config(api: InfluxApi, url: &str, token: Option<&str>) -> WriterConfig {
        WriterConfig {
            influx_url: Url::parse(url).unwrap(),
            influx_db: "vm stats".into(),
            influx_api: api,
            influx_token: token.map(|t| SecretString::from(t.to_owned())),
            request_timeout: Duration::from_secs(1),
            batch_max_lines: 1,
            batch_max_age: Duration::from_secs(1),
            max_queue: 1,
        }
    }

    #[test]
    fn each_api_has_its_path_and_parameters() {
        let target = |api, url| WriteTarget::new(&config(api, url, None)).unwrap().url;
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
        let target = WriteTarget::new(&config(InfluxApi::V3, "http://h", Some("s3cret"))).unwrap();
        let header = target.authorization.unwrap();
        assert_eq!(header.to_str().unwrap(), "Bearer s3cret");
        assert!(header.is_sensitive());
        assert!(!format!("{header:?}").contains("s3cret"));
    }
}
