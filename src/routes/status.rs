use actix_web::{HttpResponse, web};

use super::ApiError;
use crate::actors::Pipeline;
use crate::actors::messages::GetTelemetryStatus;
use crate::actors::status::TelemetryStatus;

/// The seed's collection statistics, the writer's queue and each host's connection.
#[utoipa::path(
    get,
    path = "/api/telemetry/status",
    responses((status = 200, body = TelemetryStatus))
)]
pub async fn telemetry_status(pipeline: web::Data<Pipeline>) -> Result<HttpResponse, ApiError> {
    let status = pipeline.supervisor.send(GetTelemetryStatus).await??;
    Ok(HttpResponse::Ok().json(status))
}
