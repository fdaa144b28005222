use actix::Addr;
use actix_web::{HttpResponse, web};

use super::ApiError;
use crate::actors::TelemetrySupervisor;
use crate::actors::messages::GetTelemetryStatus;

/// The seed's collection statistics, the writer's queue and each host's connection.
pub async fn telemetry_status(
    supervisor: web::Data<Addr<TelemetrySupervisor>>,
) -> Result<HttpResponse, ApiError> {
    let status = supervisor.send(GetTelemetryStatus).await??;
    Ok(HttpResponse::Ok().json(status))
}
