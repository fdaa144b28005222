use actix_web::{HttpResponse, web};
use serde::Deserialize;
use utoipa::IntoParams;

use super::ApiError;
use super::error::VmAmbiguous;
use crate::actors::Pipeline;
use crate::actors::messages::LookupVm;
use crate::vms::{VmDetail, VmLookup};

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StatsParams {
    /// Settles a name or VMID found on several hosts.
    host: Option<String>,
}

/// One VM's latest sample, features and the recent samples held in memory (oldest first).
#[utoipa::path(
    get,
    path = "/api/telemetry/stats/{vm_id}",
    params(
        ("vm_id" = String, Path, description = "UUID, name or numeric VMID"),
        StatsParams,
    ),
    responses(
        (status = 200, body = VmDetail),
        (status = 400, body = super::error::ErrorBody),
        (status = 404, body = super::error::ErrorBody, description = "no such VM"),
        VmAmbiguous,
    )
)]
pub async fn vm_stats(
    pipeline: web::Data<Pipeline>,
    vm_id: web::Path<String>,
    params: web::Query<StatsParams>,
) -> Result<HttpResponse, ApiError> {
    let detail = find_vm(&pipeline, vm_id.into_inner(), params.into_inner().host).await?;
    Ok(HttpResponse::Ok().json(detail))
}

/// The VM `selector` names (UUID, name or VMID, settled by `host`): 404 if none, 409 listing
/// the candidates if several.
pub(super) async fn find_vm(
    pipeline: &Pipeline,
    selector: String,
    host: Option<String>,
) -> Result<Box<VmDetail>, ApiError> {
    let lookup = LookupVm {
        selector: selector.clone(),
        host,
    };
    match pipeline.features.send(lookup).await? {
        VmLookup::Found(detail) => Ok(detail),
        VmLookup::NotFound => Err(ApiError::VmNotFound(selector)),
        VmLookup::Ambiguous(candidates) => Err(ApiError::AmbiguousVm {
            selector,
            candidates,
        }),
    }
}
