use actix::Addr;
use actix_web::{HttpResponse, web};
use serde_json::json;

use super::ApiError;
use crate::actors::TelemetrySupervisor;
use crate::actors::messages::GetTelemetryStatus;

/// The process is up and serving.
pub async fn health() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// At least one libvirt host is connected and the writer is not failing.
pub async fn ready(
    supervisor: web::Data<Addr<TelemetrySupervisor>>,
) -> Result<HttpResponse, ApiError> {
    let status = supervisor.send(GetTelemetryStatus).await??;
    if status.is_ready() {
        return Ok(HttpResponse::Ok().json(json!({ "status": "ready" })));
    }
    let connected = status
        .hosts
        .iter()
        .filter(|h| h.connection == crate::actors::host::ConnectionState::Connected)
        .count();
    let writer = match &status.writer.last_error {
        Some(error) if status.writer.consecutive_failures > 0 => format!("failing ({error})"),
        _ => "ok".to_owned(),
    };
    Err(ApiError::NotReady(format!(
        "{connected} of {} hosts connected; writer {writer}",
        status.hosts.len()
    )))
}
