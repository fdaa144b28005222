//! The span of each request, and the one line a failed request logs. The path is recorded
//! without its query string, where a client may have put a token; a refused admin request is
//! logged once a minute at most, with the count, so guessing tokens cannot flood the log.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::{Error, HttpMessage, ResponseError};
use tracing::Span;
use tracing::field::Empty;
use tracing_actix_web::{RequestId, RootSpanBuilder};

use crate::telemetry::LogThrottle;

/// Refused admin requests: one line a minute at most.
static REFUSED: Mutex<LogThrottle> = Mutex::new(LogThrottle::new(Duration::from_secs(60)));

pub struct PathOnlySpan;

impl RootSpanBuilder for PathOnlySpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let request_id = request.extensions().get::<RequestId>().copied();
        tracing::info_span!(
            "HTTP request",
            http.method = %request.method(),
            http.route = request.match_pattern().as_deref().unwrap_or("default"),
            http.target = request.path(),
            http.client_ip = request.peer_addr().map(|a| a.ip().to_string()),
            request_id = request_id.map(|id| id.to_string()),
            http.status_code = Empty,
        )
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        let (status, error) = match outcome {
            Ok(response) => (response.status(), response.response().error()),
            Err(error) => (error.as_response_error().status_code(), Some(error)),
        };
        span.record("http.status_code", status.as_u16());
        if let Some(error) = error {
            log_failure(status, error.as_response_error());
        }
    }
}

/// One line, with the error's message (its `Display`, not the much longer `Debug`).
fn log_failure(status: StatusCode, error: &dyn ResponseError) {
    if status == StatusCode::UNAUTHORIZED {
        let due = REFUSED
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .count(1, Instant::now());
        if let Some(refused) = due {
            tracing::warn!(
                refused,
                "admin requests refused (missing or wrong token) since the last such line; \
                 at most one such line a minute"
            );
        }
    } else if status.is_client_error() {
        tracing::warn!(status = status.as_u16(), %error, "request refused");
    } else {
        tracing::error!(status = status.as_u16(), %error, "request failed");
    }
}
