use actix_web::{HttpResponse, web};
use serde::Deserialize;
use utoipa::IntoParams;

use super::ApiError;
use super::error::{InsightsOff, VmAmbiguous};
use super::stats::find_vm;
use super::vms::limit;
use crate::actors::Pipeline;
use crate::actors::insights::{GetFleetInsights, GetVmInsights, InsightsActor};
use crate::insights::views::{FleetInsights, VmInsightsDetail};

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct InsightsParams {
    /// Only this host (the `host` tag); for one VM, settles a name or VMID found on several.
    host: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FleetParams {
    /// Only this host (the `host` tag).
    host: Option<String>,
    /// The most VMs in `attention`, 1 to 1000 (the first ones); default all of them. The
    /// counts are over every VM either way.
    limit: Option<String>,
}

/// The insights actor, when insights are on.
pub(super) fn actor(pipeline: &Pipeline) -> Result<&actix::Addr<InsightsActor>, ApiError> {
    pipeline.insights.as_ref().ok_or(ApiError::InsightsDisabled)
}

/// The fleet's insights: every VM, what needs attention first (the most conditions, then the
/// most anomalous signals, then the highest anomaly rate), and the VMs per condition and host.
#[utoipa::path(
    get,
    path = "/api/telemetry/insights",
    params(FleetParams),
    responses(
        (status = 200, body = FleetInsights),
        (status = 400, body = super::error::ErrorBody, description = "an unknown or bad parameter, named"),
        InsightsOff,
    )
)]
pub async fn fleet_insights(
    pipeline: web::Data<Pipeline>,
    params: web::Query<FleetParams>,
) -> Result<HttpResponse, ApiError> {
    let FleetParams { host, limit: asked } = params.into_inner();
    let limit = asked.as_deref().map(limit).transpose()?;
    let fleet = actor(&pipeline)?
        .send(GetFleetInsights { host, limit })
        .await?;
    Ok(HttpResponse::Ok().json(fleet))
}

/// One VM's insights: every signal's value, score (against the VM's own past) and whether it
/// departs from its peers, its anomaly rate over the window, its conditions with their
/// evidence, and whether its model is trained or still learning.
#[utoipa::path(
    get,
    path = "/api/telemetry/insights/{vm_id}",
    params(
        ("vm_id" = String, Path, description = "UUID, name or numeric VMID"),
        InsightsParams,
    ),
    responses(
        (status = 200, body = VmInsightsDetail),
        (status = 400, body = super::error::ErrorBody),
        (status = 404, body = super::error::ErrorBody, description = "no such VM, or insights are off"),
        VmAmbiguous,
    )
)]
pub async fn vm_insights(
    pipeline: web::Data<Pipeline>,
    vm_id: web::Path<String>,
    params: web::Query<InsightsParams>,
) -> Result<HttpResponse, ApiError> {
    let insights = actor(&pipeline)?;
    let selector = vm_id.into_inner();
    let vm = find_vm(&pipeline, selector.clone(), params.into_inner().host)
        .await?
        .vm;
    let uuid = vm
        .uuid
        .parse()
        .map_err(|_| ApiError::VmNotFound(selector.clone()))?;
    let query = GetVmInsights { uri: vm.uri, uuid };
    // Listed by the feature actor, not yet by the insights actor: its first cycle is on its way.
    let detail: VmInsightsDetail = insights
        .send(query)
        .await?
        .ok_or(ApiError::VmNotFound(selector))?;
    Ok(HttpResponse::Ok().json(detail))
}
