use actix_web::{HttpResponse, web};
use serde_json::json;

use super::ApiError;
use crate::actors::Pipeline;
use crate::actors::messages::GetTelemetryStatus;
use crate::actors::status::ConnectionState;

/// The process is up and serving.
#[utoipa::path(get, path = "/health", responses((status = 200, description = "`{\"status\":\"ok\"}`")))]
pub async fn health() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// At least one libvirt host is connected, the writer is not failing, nor is its spool; with
/// etcd, this replica holds its lease.
#[utoipa::path(
    get,
    path = "/ready",
    responses(
        (status = 200, description = "`{\"status\":\"ready\"}`"),
        (status = 503, body = super::error::ErrorBody, description = "why not"),
    )
)]
pub async fn ready(pipeline: web::Data<Pipeline>) -> Result<HttpResponse, ApiError> {
    let status = pipeline.supervisor.send(GetTelemetryStatus).await??;
    if status.is_ready() {
        return Ok(HttpResponse::Ok().json(json!({ "status": "ready" })));
    }
    let connected = status
        .hosts
        .iter()
        .filter(|h| h.connection == ConnectionState::Connected)
        .count();
    let writer = status.writer.trouble().unwrap_or_else(|| "ok".to_owned());
    let coordination = (status.coordination.as_ref())
        .and_then(|c| c.trouble())
        .map(|trouble| format!("; coordination: {trouble}"))
        .unwrap_or_default();
    Err(ApiError::NotReady(format!(
        "{connected} of {} hosts connected; writer {writer}{coordination}",
        status.hosts.len()
    )))
}
