use std::time::Duration;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use super::ApiError;
use crate::actors::Pipeline;
use crate::actors::insights::GetInsightsScrape;
use crate::actors::messages::{GetTelemetryStatus, SnapshotVms};
use crate::metrics::{Format, HttpMetrics, Scrape, scrape_body};

/// How long the actors may take to hand over their values: a scrape never waits on libvirt.
const ACTORS_TIMEOUT: Duration = Duration::from_secs(5);

/// Prometheus text (OpenMetrics when `Accept` asks for it): every VM under
/// prometheus-libvirt-exporter's names and the service's own `vmtelemetry_*` families, from
/// the actors' latest values. Sent as it is encoded, gzipped (by `Compress`) when the client
/// accepts it, as Prometheus does.
#[utoipa::path(
    get,
    path = "/metrics",
    responses(
        (status = 200, content_type = "text/plain; version=0.0.4", description = "Prometheus text exposition (or OpenMetrics when asked by `Accept: application/openmetrics-text`)"),
        (status = 503, body = super::error::ErrorBody, description = "an actor did not answer"),
    )
)]
pub async fn metrics(
    request: HttpRequest,
    pipeline: web::Data<Pipeline>,
    http: web::Data<HttpMetrics>,
) -> Result<HttpResponse, ApiError> {
    let status = pipeline
        .supervisor
        .send(GetTelemetryStatus)
        .timeout(ACTORS_TIMEOUT)
        .await??;
    let table = pipeline
        .features
        .send(SnapshotVms)
        .timeout(ACTORS_TIMEOUT)
        .await?;
    let insights = match &pipeline.insights {
        Some(actor) => Some(
            actor
                .send(GetInsightsScrape)
                .timeout(ACTORS_TIMEOUT)
                .await?,
        ),
        None => None,
    };
    let now_ns = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX);
    let accept = request
        .headers()
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    let format = Format::from_accept(accept);
    let scrape = Scrape {
        vms: table.vms,
        nodes: table.nodes,
        status,
        insights,
        now_ns,
    };
    let body = scrape_body(scrape, format, http.get_ref().clone());
    Ok(HttpResponse::Ok()
        .content_type(format.content_type())
        .streaming(body))
}
