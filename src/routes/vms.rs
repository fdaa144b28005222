use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::ApiError;
use crate::actors::Pipeline;
use crate::actors::messages::ListVms;
use crate::vms::{VmFilter, VmView};

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct VmsParams {
    /// Only VMs of this host (the `host` tag).
    host: Option<String>,
    /// Only VMs in this state, e.g. `running`, `paused`, `stopped`.
    state: Option<String>,
    /// Only VMs whose name contains this.
    name: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct VmList {
    pub vms: Vec<VmView>,
    pub count: usize,
}

/// Every monitored VM across hosts, live from the actors, ordered by host, name and UUID.
#[utoipa::path(
    get,
    path = "/api/telemetry/vms",
    params(VmsParams),
    responses(
        (status = 200, body = VmList),
        (status = 400, body = super::error::ErrorBody, description = "an unknown parameter"),
    )
)]
pub async fn list_vms(
    pipeline: web::Data<Pipeline>,
    params: web::Query<VmsParams>,
) -> Result<HttpResponse, ApiError> {
    let VmsParams { host, state, name } = params.into_inner();
    let vms = pipeline
        .features
        .send(ListVms(VmFilter { host, state, name }))
        .await?;
    Ok(HttpResponse::Ok().json(VmList {
        count: vms.len(),
        vms,
    }))
}
