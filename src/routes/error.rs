//! Every API error, its HTTP status and its JSON body `{"error":{"code":…,"message":…}}`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("an internal actor did not answer: {0}")]
    ActorUnavailable(#[from] actix::MailboxError),
    #[error("not ready: {0}")]
    NotReady(String),
    #[error("no such resource: {0}")]
    NotFound(String),
}

impl ApiError {
    /// Stable, for scripts to match on.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::ActorUnavailable(_) => "actor_unavailable",
            ApiError::NotReady(_) => "not_ready",
            ApiError::NotFound(_) => "not_found",
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::ActorUnavailable(_) | ApiError::NotReady(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
        }
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status_code()).json(json!({
            "error": { "code": self.code(), "message": self.to_string() }
        }))
    }
}
