//! HTTP requests by route, method and status, counted by a middleware around every handler; and
//! whether the answers served once per cycle were serialised or reused.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use crate::vms::Body;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Request {
    /// The route's pattern (`/api/telemetry/stats/{vm_id}`), never the path: a bounded set.
    route: String,
    method: String,
    status: u16,
}

type Durations = Family<Request, Histogram, fn() -> Histogram>;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Answer {
    route: &'static str,
    /// `serialised` for this request, or `reused` from an earlier one of the same cycle.
    body: &'static str,
}

/// Shared by every HTTP worker: the families are counters behind an `Arc`.
#[derive(Clone, Debug)]
pub struct HttpMetrics {
    requests: Family<Request, Counter>,
    durations: Durations,
    answers: Family<Answer, Counter>,
}

impl Default for HttpMetrics {
    fn default() -> Self {
        // 1 ms to 16 s.
        let histogram: fn() -> Histogram = || Histogram::new(exponential_buckets(0.001, 4.0, 8));
        HttpMetrics {
            requests: Family::default(),
            durations: Family::new_with_constructor(histogram),
            answers: Family::default(),
        }
    }
}

impl HttpMetrics {
    pub(super) fn register(&self, registry: &mut Registry) {
        registry.register(
            "vmtelemetry_http_requests",
            "HTTP requests answered, by route, method and status",
            self.requests.clone(),
        );
        registry.register_with_unit(
            "vmtelemetry_http_request_duration",
            "Time to answer an HTTP request",
            Unit::Seconds,
            self.durations.clone(),
        );
        registry.register(
            "vmtelemetry_http_answer_bodies",
            "Answers of the routes serialised once per cycle, by whether their body was serialised \
             for the request or reused from an earlier one of the same cycle",
            self.answers.clone(),
        );
    }

    /// Counts an answer of `route` by where its body came from.
    pub fn answered(&self, route: &'static str, source: Body) {
        let body = match source {
            Body::Serialised => "serialised",
            Body::Reused => "reused",
        };
        self.answers.get_or_create(&Answer { route, body }).inc();
    }
}

/// Counts every request once answered, under its route's pattern (`unmatched` for a path no
/// route has).
pub async fn count_requests(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let metrics = request.app_data::<web::Data<HttpMetrics>>().cloned();
    let started = std::time::Instant::now();
    let response = next.call(request).await?;
    if let Some(metrics) = metrics {
        let labels = Request {
            route: response
                .request()
                .match_pattern()
                .unwrap_or_else(|| "unmatched".to_owned()),
            method: response.request().method().to_string(),
            status: response.status().as_u16(),
        };
        metrics
            .durations
            .get_or_create(&labels)
            .observe(started.elapsed().as_secs_f64());
        metrics.requests.get_or_create(&labels).inc();
    }
    Ok(response)
}
