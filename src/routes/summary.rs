use std::hash::{DefaultHasher, Hash, Hasher};

use actix_web::http::header::{ContentType, EntityTag};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use super::ApiError;
use super::validators::{fresh, matches, not_modified};
use super::vms::catalog;
use crate::actors::Pipeline;
use crate::actors::insights::GetRightsizingTotals;
use crate::actors::messages::GetTelemetryStatus;
use crate::actors::status::{ConnectionState, HostStatus, WriterStatus};
use crate::insights::rightsizing::summary::Totals;
use crate::vms::{Capacity, Fleet};

/// The fleet view's tiles in one small answer.
#[derive(Serialize, ToSchema)]
pub struct Summary {
    pub hosts: HostsSummary,
    /// The VMs, by state; their vCPUs and memory, allocated whatever their state.
    pub vms: Fleet,
    /// The hosts' own CPUs and memory, to set the allocation against.
    pub capacity: Capacity,
    pub writer: WriterSummary,
    /// What right-sizing would reclaim over the fleet (the vCPUs and GiB of the
    /// over-provisioned VMs) and what the under-provisioned ones need, as
    /// `/api/telemetry/recommendations`' `fleet`; none with `insights = false`.
    pub rightsizing: Option<Totals>,
}

#[derive(Serialize, ToSchema)]
pub struct HostsSummary {
    pub total: usize,
    pub connected: usize,
    /// Not connected, their last attempt failed (see each host's `last_error` in the status).
    pub failing: usize,
}

#[derive(Serialize, ToSchema)]
pub struct WriterSummary {
    /// Neither InfluxDB nor the spool failing.
    pub healthy: bool,
    /// Why not, when not.
    pub trouble: Option<String>,
    /// Lines lost so far (the queue's depth and the last write, which change with every batch,
    /// are in the status).
    pub dropped_lines: u64,
}

impl HostsSummary {
    fn of(hosts: &[HostStatus]) -> Self {
        let connected = |h: &&HostStatus| h.connection == ConnectionState::Connected;
        HostsSummary {
            total: hosts.len(),
            connected: hosts.iter().filter(connected).count(),
            failing: hosts
                .iter()
                .filter(|h| !connected(h) && h.last_error.is_some())
                .count(),
        }
    }
}

impl WriterSummary {
    fn of(writer: &WriterStatus) -> Self {
        let trouble = writer.trouble();
        WriterSummary {
            healthy: trouble.is_none(),
            trouble,
            dropped_lines: writer.dropped_lines,
        }
    }
}

/// Hosts connected and failing, VMs by state, the fleet's vCPUs and memory against the hosts'
/// (`capacity`, from `host_metrics`: zero hosts reporting without it), the writer's health, and
/// what right-sizing would reclaim (`rightsizing`).
/// A weak `ETag` follows its content: with it in `If-None-Match`, an unchanged summary is a
/// `304`.
#[utoipa::path(
    get,
    path = "/api/telemetry/summary",
    params(("If-None-Match" = Option<String>, Header, description = "the `ETag` of an earlier answer")),
    responses(
        (status = 200, body = Summary, headers(("ETag" = String, description = "this answer's version"))),
        (status = 304, description = "unchanged since the `ETag` in `If-None-Match`"),
    )
)]
pub async fn summary(
    request: HttpRequest,
    pipeline: web::Data<Pipeline>,
) -> Result<HttpResponse, ApiError> {
    let status = pipeline.supervisor.send(GetTelemetryStatus).await??;
    let catalog = catalog(&pipeline).await?;
    let rightsizing = match &pipeline.insights {
        Some(insights) => insights.send(GetRightsizingTotals).await?,
        None => None,
    };
    let summary = Summary {
        hosts: HostsSummary::of(&status.hosts),
        vms: catalog.fleet.clone(),
        capacity: catalog.capacity.clone(),
        writer: WriterSummary::of(&status.writer),
        rightsizing,
    };
    // Serialised once: its bytes are what the ETag follows.
    let body = serde_json::to_vec(&summary).expect("plain data");
    let mut hasher = DefaultHasher::new();
    body.hash(&mut hasher);
    let etag = EntityTag::new_weak(format!("summary-{:016x}", hasher.finish()));
    if matches(&request, &etag) {
        return Ok(not_modified(etag));
    }
    Ok(fresh(etag).content_type(ContentType::json()).body(body))
}
