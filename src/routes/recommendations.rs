use actix_web::{HttpResponse, web};

use super::ApiError;
use super::error::InsightsOff;
use super::insights::actor;
use crate::actors::Pipeline;
use crate::actors::insights::GetRecommendations;
use crate::insights::rightsizing::summary::{Recommendations, RecommendationsQuery};

/// Right-sizing, the Kubernetes VPA recommender's way: every VM's vCPUs and memory to give
/// (lower bound, target, upper bound) against what it has, classed over-provisioned,
/// right-sized or under-provisioned with the history behind it, and its forecasts (time until
/// its memory and disks are full); per host and fleet, what could be reclaimed and what the
/// under-provisioned VMs need. VMs sorted by what can be reclaimed (or by name).
#[utoipa::path(
    get,
    path = "/api/telemetry/recommendations",
    params(RecommendationsQuery),
    responses(
        (status = 200, body = Recommendations),
        (status = 400, body = super::error::ErrorBody, description = "an unknown or invalid parameter"),
        InsightsOff,
    )
)]
pub async fn recommendations(
    pipeline: web::Data<Pipeline>,
    query: web::Query<RecommendationsQuery>,
) -> Result<HttpResponse, ApiError> {
    let recommendations = actor(&pipeline)?
        .send(GetRecommendations(query.into_inner()))
        .await?
        .ok_or(ApiError::InsightsDisabled)?;
    Ok(HttpResponse::Ok().json(recommendations))
}
