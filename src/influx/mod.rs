//! InfluxDB: line protocol, the writer's buffers (memory queue, durable spool), the HTTP write
//! client and history queries.

pub mod buffer;
pub mod encode;
pub mod line_protocol;
pub mod query;
pub mod queue;
pub mod schema;
pub mod spool;
pub mod tls;
pub mod write;

use actix_web::http::header::HeaderValue;
use secrecy::{ExposeSecret, SecretString};
use url::Url;

/// Why a write or query target cannot be built from the settings.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("`{path}` cannot be added to influx_url: {source}")]
    Url {
        path: &'static str,
        source: url::ParseError,
    },
    #[error("influx_token holds characters not allowed in a header")]
    Token,
}

impl TargetError {
    /// The configuration key to fix.
    pub fn key(&self) -> &'static str {
        match self {
            TargetError::Url { .. } => "influx_url",
            TargetError::Token => "influx_token",
        }
    }
}

/// `path` under the configured InfluxDB URL, which may itself have a path (behind a proxy).
fn endpoint(base: &Url, path: &'static str) -> Result<Url, TargetError> {
    let mut base = base.clone();
    if !base.path().ends_with('/') {
        base.set_path(&format!("{}/", base.path()));
    }
    base.join(path)
        .map_err(|source| TargetError::Url { path, source })
}

/// `Authorization: Bearer <token>`, marked sensitive so it never shows in debug output.
fn bearer(token: Option<&SecretString>) -> Result<Option<HeaderValue>, TargetError> {
    token
        .map(|token| {
            let mut value = HeaderValue::from_str(&format!("Bearer {}", token.expose_secret()))
                .map_err(|_| TargetError::Token)?;
            value.set_sensitive(true);
            Ok(value)
        })
        .transpose()
}
