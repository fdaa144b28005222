use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::ApiError;
use super::error::{InsightsOff, VmAmbiguous};
use super::stats::find_vm;
use super::vms::limit;
use crate::actors::Pipeline;
use crate::actors::insights::{GetFleetInsights, GetVmInsights, GetVmOutlook, InsightsActor};
use crate::insights::rightsizing::recommend::Recommendation;
use crate::insights::rightsizing::summary::Forecast;
use crate::insights::views::{FleetInsights, VmInsightsDetail};

/// One VM's insights, with its right-sizing and forecasts (as `/api/telemetry/recommendations`
/// gives them).
#[derive(Serialize, ToSchema)]
pub struct VmInsightsAnswer {
    #[serde(flatten)]
    pub insights: VmInsightsDetail,
    /// None while it is learning (VPA needs CPU samples a minute apart).
    pub recommendation: Option<Recommendation>,
    /// Each bounded resource's time to full (`memory`, `disk:<device>`), with its 80 % interval.
    pub forecasts: Vec<Forecast>,
}

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
/// evidence, and whether its model is trained or still learning; its right-sizing
/// recommendation and its forecasts.
#[utoipa::path(
    get,
    path = "/api/telemetry/insights/{vm_id}",
    params(
        ("vm_id" = String, Path, description = "UUID, name or numeric VMID"),
        InsightsParams,
    ),
    responses(
        (status = 200, body = VmInsightsAnswer),
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
    let outlook = GetVmOutlook {
        uri: vm.uri.clone(),
        uuid,
    };
    let query = GetVmInsights { uri: vm.uri, uuid };
    // Listed by the feature actor, not yet by the insights actor: its first cycle is on its way.
    let detail: VmInsightsDetail = insights
        .send(query)
        .await?
        .ok_or(ApiError::VmNotFound(selector))?;
    let outlook = insights.send(outlook).await?;
    let (recommendation, forecasts) =
        outlook.map_or((None, Vec::new()), |vm| (vm.recommendation, vm.forecasts));
    Ok(HttpResponse::Ok().json(VmInsightsAnswer {
        insights: detail,
        recommendation,
        forecasts,
    }))
}
