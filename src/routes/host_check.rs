//! The Host header check: a DNS-rebinding page reaches this service under its own domain name,
//! so only names the service is known by are answered (421 otherwise).

use std::net::{Ipv4Addr, Ipv6Addr};

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::HOST;
use actix_web::middleware::Next;
use actix_web::{ResponseError, web};

use super::ApiError;
use crate::configuration::AllowedHosts;

/// The configured names, `localhost` and the machine's hostname.
pub fn served_names(configured: &AllowedHosts) -> AllowedHosts {
    let served = configured.clone().with("localhost");
    match std::fs::read_to_string("/proc/sys/kernel/hostname") {
        Ok(hostname) if !hostname.trim().is_empty() => served.with(hostname.trim()),
        _ => served,
    }
}

/// Middleware: requests whose Host is neither an IP literal nor an allowed name get 421.
pub async fn host_check(
    allowed: web::Data<AllowedHosts>,
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    // A browser always sends Host; a request without one comes from no rebinding page.
    let refused = request.headers().get(HOST).and_then(|value| {
        let host = String::from_utf8_lossy(value.as_bytes());
        match name_of(&host) {
            Some(name) if !allowed.allows(&name) => Some(host.into_owned()),
            _ => None,
        }
    });
    match refused {
        Some(host) => {
            let response = ApiError::HostNotAllowed(host).error_response();
            Ok(request.into_response(response).map_into_right_body())
        }
        None => Ok(next.call(request).await?.map_into_left_body()),
    }
}

/// The name in a Host header (`name[:port]`), lowercase and without its final dot; None for an
/// IP literal (`192.0.2.1[:port]`, `[2001:db8::1][:port]`).
fn name_of(host: &str) -> Option<String> {
    if let Some(bracketed) = host.strip_prefix('[')
        && let Some((address, _port)) = bracketed.split_once(']')
        && address.parse::<Ipv6Addr>().is_ok()
    {
        return None;
    }
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    };
    if name.parse::<Ipv4Addr>().is_ok() {
        return None;
    }
    Some(name.trim_end_matches('.').to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_literals_have_no_name() {
        for host in ["127.0.0.1", "10.1.2.3:8080", "[::1]", "[2001:db8::1]:8080"] {
            assert_eq!(name_of(host), None, "{host}");
        }
        assert_eq!(name_of("LocalHost.:8080").as_deref(), Some("localhost"));
        assert_eq!(name_of("evil.example").as_deref(), Some("evil.example"));
        // Not a literal, so checked as a name (and refused).
        assert!(name_of("[::1").is_some());
        assert_eq!(name_of("1.2.3.4.evil").as_deref(), Some("1.2.3.4.evil"));
    }
}
