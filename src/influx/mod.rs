//! InfluxDB: line protocol, the writer's buffers (memory queue, durable spool), the HTTP write
//! client and history queries.

pub mod buffer;
pub mod encode;
pub mod line_protocol;
pub mod query;
pub mod queue;
pub mod spool;
pub mod tls;
pub mod write;

use actix_web::http::header::HeaderValue;
use secrecy::{ExposeSecret, SecretString};
use url::Url;

/// `path` under the configured InfluxDB URL, which may itself have a path (behind a proxy).
fn endpoint(base: &Url, path: &str) -> Result<Url, String> {
    let mut base = base.clone();
    if !base.path().ends_with('/') {
        base.set_path(&format!("{}/", base.path()));
    }
    base.join(path).map_err(|e| e.to_string())
}

/// `Authorization: Bearer <token>`, marked sensitive so it never shows in debug output.
fn bearer(token: Option<&SecretString>) -> Result<Option<HeaderValue>, String> {
    token
        .map(|token| {
            let mut value = HeaderValue::from_str(&format!("Bearer {}", token.expose_secret()))
                .map_err(|_| "influx_token holds characters not allowed in a header")?;
            value.set_sensitive(true);
            Ok(value)
        })
        .transpose()
}
