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
use base64::prelude::{BASE64_STANDARD, Engine as _};
use percent_encoding::percent_decode_str;
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
    #[error("influx_url carries a user and password and influx_token is set: give one of them")]
    TwoCredentials,
}

impl TargetError {
    /// The configuration key to fix.
    pub fn key(&self) -> &'static str {
        match self {
            TargetError::Url { .. } | TargetError::TwoCredentials => "influx_url",
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

/// `url` as it is requested: the credentials travel in the Authorization header instead
/// (`authorization`), since the HTTP client does not send a URL's userinfo.
fn without_userinfo(mut url: Url) -> Url {
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url
}

/// What InfluxDB is sent as credentials: `influx_token` as `Bearer`, or the user and password
/// of `influx_url` as `Basic` (InfluxDB 1.x's users; InfluxDB 3 reads a token as the password).
/// Marked sensitive, so it never shows in debug output.
fn authorization(
    url: &Url,
    token: Option<&SecretString>,
) -> Result<Option<HeaderValue>, TargetError> {
    let userinfo = !url.username().is_empty() || url.password().is_some();
    let value = match (token, userinfo) {
        (Some(_), true) => return Err(TargetError::TwoCredentials),
        (Some(token), false) => format!("Bearer {}", token.expose_secret()),
        (None, true) => {
            let user = percent_decode_str(url.username()).decode_utf8_lossy();
            let password = percent_decode_str(url.password().unwrap_or("")).decode_utf8_lossy();
            format!(
                "Basic {}",
                BASE64_STANDARD.encode(format!("{user}:{password}"))
            )
        }
        (None, false) => return Ok(None),
    };
    let mut value = HeaderValue::from_str(&value).map_err(|_| TargetError::Token)?;
    value.set_sensitive(true);
    Ok(Some(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(url: &str, token: Option<&str>) -> Result<Option<String>, TargetError> {
        let token = token.map(|t| SecretString::from(t.to_owned()));
        let value = authorization(&Url::parse(url).unwrap(), token.as_ref())?;
        Ok(value.map(|v| v.to_str().unwrap().to_owned()))
    }

    #[test]
    fn credentials_go_in_the_authorization_header() {
        // "vmt:p@ss:wörd", its password percent-encoded in the URL.
        let basic = sent("http://vmt:p%40ss:w%C3%B6rd@db:8086", None).unwrap();
        assert_eq!(basic.as_deref(), Some("Basic dm10OnBAc3M6d8O2cmQ="));
        let user_only = sent("http://vmt@db:8086", None).unwrap();
        assert_eq!(user_only.as_deref(), Some("Basic dm10Og=="));
        let bearer = sent("http://db:8086", Some("t0ken")).unwrap();
        assert_eq!(bearer.as_deref(), Some("Bearer t0ken"));
        assert_eq!(sent("http://db:8086", None).unwrap(), None);
        let both = sent("http://vmt:pw@db:8086", Some("t0ken")).unwrap_err();
        assert!(matches!(both, TargetError::TwoCredentials), "{both}");
        assert_eq!(both.key(), "influx_url");
    }

    #[test]
    fn a_requested_url_has_no_userinfo() {
        let url = endpoint(&Url::parse("http://vmt:pw@db:8086/proxy").unwrap(), "write").unwrap();
        assert_eq!(without_userinfo(url).as_str(), "http://db:8086/proxy/write");
    }
}
