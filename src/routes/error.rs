//! Every API error, its HTTP status and its JSON body `{"error":{"code":…,"message":…}}`, in one
//! place.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::http::header::{ALLOW, WWW_AUTHENTICATE};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use serde_json::json;
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{IntoResponses, ToSchema};

use crate::influx::query::QueryError;
use crate::vms::VmView;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("parameter `{parameter}`: {message}")]
    BadParameter { parameter: String, message: String },
    #[error("no such resource: {0}")]
    NotFound(String),
    #[error("{path} does not answer {method}: use {allowed}")]
    MethodNotAllowed {
        method: String,
        path: String,
        allowed: &'static str,
    },
    #[error("no VM matches `{0}`")]
    VmNotFound(String),
    #[error("`{selector}` matches {} VMs: add ?host= to choose", candidates.len())]
    AmbiguousVm {
        selector: String,
        candidates: Vec<VmView>,
    },
    #[error("no actor is named `{0}`")]
    UnknownActor(String),
    #[error("insights are off: set `insights = true` to have them")]
    InsightsDisabled,
    #[error("hosts are shared by static shards: draining needs coordination = \"etcd\"")]
    CoordinationStatic,
    #[error("host `{0}` is not collected by this replica: hand it over from the one collecting it")]
    HostNotHere(String),
    #[error("the admin endpoints are disabled: no admin_token is configured")]
    AdminDisabled,
    #[error("a valid `Authorization: Bearer <admin token>` header is required")]
    Unauthorized,
    #[error("an internal actor did not answer: {0}")]
    ActorUnavailable(#[from] actix::MailboxError),
    #[error("not ready: {0}")]
    NotReady(String),
    #[error("{0}")]
    Influx(#[from] QueryError),
    #[error("history is read from InfluxDB, and none is configured (influx_url is empty)")]
    NoInflux,
    /// A Host name not configured: what a DNS-rebinding page would send.
    #[error("this service does not answer for Host `{0}`: add the name to allowed_hosts")]
    HostNotAllowed(String),
}

/// The shape of every error body, for the OpenAPI document.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, for scripts to match on.
    pub code: String,
    pub message: String,
    /// With `ambiguous_vm`: the VMs the name or VMID matched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub candidates: Option<Vec<VmView>>,
}

/// Error responses that several endpoints document alike, each written once: an endpoint
/// lists the type among its `responses(...)`.
macro_rules! error_responses {
    ($($(#[$doc:meta])* $name:ident { $($status:literal => $description:literal),+ $(,)? })*) => {$(
        $(#[$doc])*
        pub struct $name;

        impl IntoResponses for $name {
            fn responses() -> BTreeMap<String, RefOr<Response>> {
                error_bodies(&[$(($status, $description)),+])
            }
        }
    )*};
}

error_responses! {
    /// Every admin endpoint's refusals.
    AdminRefused {
        "401" => "missing or wrong token",
        "403" => "no admin_token configured",
    }
    /// The endpoints that only the insights actor answers.
    InsightsOff { "404" => "insights are off (`insights = false`)" }
    /// The endpoints that look a VM up by UUID, name or VMID.
    VmAmbiguous {
        "409" => "the name or VMID is on several hosts: the body lists the candidates",
    }
}

fn error_bodies(responses: &[(&str, &str)]) -> BTreeMap<String, RefOr<Response>> {
    let body = || {
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("ErrorBody")))
            .build()
    };
    let response = |description: &str| {
        ResponseBuilder::new()
            .description(description)
            .content("application/json", body())
            .build()
    };
    (responses.iter())
        .map(|(status, description)| (status.to_string(), response(description).into()))
        .collect()
}

impl ApiError {
    pub fn bad_parameter(parameter: &str, message: impl Into<String>) -> Self {
        ApiError::BadParameter {
            parameter: parameter.to_owned(),
            message: message.into(),
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadParameter { .. } => "invalid_parameter",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::VmNotFound(_) => "vm_not_found",
            ApiError::AmbiguousVm { .. } => "ambiguous_vm",
            ApiError::UnknownActor(_) => "unknown_actor",
            ApiError::InsightsDisabled => "insights_disabled",
            ApiError::CoordinationStatic => "coordination_static",
            ApiError::HostNotHere(_) => "host_not_here",
            ApiError::AdminDisabled => "admin_disabled",
            ApiError::Unauthorized => "unauthorized",
            ApiError::ActorUnavailable(_) => "actor_unavailable",
            ApiError::NotReady(_) => "not_ready",
            ApiError::Influx(QueryError::Unreachable(_)) => "influx_unavailable",
            ApiError::Influx(QueryError::Timeout(_)) => "influx_timeout",
            ApiError::Influx(QueryError::Failed { .. }) => "influx_error",
            ApiError::Influx(QueryError::BadReply(_)) => "influx_bad_reply",
            ApiError::NoInflux => "influx_not_configured",
            ApiError::HostNotAllowed(_) => "host_not_allowed",
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadParameter { .. } => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_)
            | ApiError::VmNotFound(_)
            | ApiError::UnknownActor(_)
            | ApiError::InsightsDisabled
            | ApiError::CoordinationStatic
            | ApiError::HostNotHere(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::AmbiguousVm { .. } => StatusCode::CONFLICT,
            ApiError::AdminDisabled => StatusCode::FORBIDDEN,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::ActorUnavailable(_)
            | ApiError::NotReady(_)
            | ApiError::NoInflux
            | ApiError::Influx(QueryError::Unreachable(_)) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Influx(QueryError::Timeout(_)) => StatusCode::GATEWAY_TIMEOUT,
            ApiError::Influx(QueryError::Failed { .. } | QueryError::BadReply(_)) => {
                StatusCode::BAD_GATEWAY
            }
            ApiError::HostNotAllowed(_) => StatusCode::MISDIRECTED_REQUEST,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let candidates = match self {
            ApiError::AmbiguousVm { candidates, .. } => Some(candidates.clone()),
            _ => None,
        };
        let mut response = HttpResponse::build(self.status_code());
        match self {
            ApiError::Unauthorized => {
                response.insert_header((WWW_AUTHENTICATE, "Bearer"));
            }
            ApiError::MethodNotAllowed { allowed, .. } => {
                response.insert_header((ALLOW, *allowed));
            }
            _ => {}
        }
        response.json(json!(ErrorBody {
            error: ErrorDetail {
                code: self.code().to_owned(),
                message: self.to_string(),
                candidates,
            },
        }))
    }
}

/// Query strings and paths that do not parse answer like every other bad parameter.
pub fn query_error(error: actix_web::error::QueryPayloadError) -> actix_web::Error {
    let message = error.to_string();
    let parameter = message
        .split('`')
        .nth(1)
        .unwrap_or("query string")
        .to_owned();
    ApiError::BadParameter { parameter, message }.into()
}
