//! One scrape: the actors' latest values, encoded in the format the scraper asked for.

use std::collections::HashSet;
use std::fmt;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, prometheus_text, text};
use prometheus_client::registry::Registry;

use super::family::Vm;
use super::http::HttpMetrics;
use super::{exporter, process, service, vms};
use crate::actors::status::{ConnectionState, TelemetryStatus};
use crate::vms::VmSnapshot;

/// What a scrape shows, copied from the actors when it came.
#[derive(Debug)]
pub struct Scrape {
    pub vms: Vec<VmSnapshot>,
    pub status: TelemetryStatus,
    /// When the copies were made, in nanoseconds since the Unix epoch: the samples' ages.
    pub now_ns: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Prometheus's text format 0.0.4, which every scraper reads.
    Prometheus,
    OpenMetrics,
}

impl Format {
    /// OpenMetrics when the `Accept` header names it (as Prometheus's own scraper does).
    pub fn from_accept(accept: &str) -> Self {
        if accept.contains("application/openmetrics-text") {
            Format::OpenMetrics
        } else {
            Format::Prometheus
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Prometheus => prometheus_text::CONTENT_TYPE,
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

impl Scrape {
    pub fn encode(self, format: Format, http: &HttpMetrics) -> Result<String, fmt::Error> {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(self));
        http.register(&mut registry);
        registry.register_collector(Box::new(process::Process));
        let mut body = String::new();
        match format {
            Format::Prometheus => prometheus_text::encode(&mut body, &registry)?,
            Format::OpenMetrics => text::encode(&mut body, &registry)?,
        }
        Ok(body)
    }
}

impl Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let all: Vec<Vm> = self
            .vms
            .iter()
            .map(|vm| Vm {
                vm,
                uuid: vm.latest.uuid.to_string(),
            })
            .collect();
        let connected: HashSet<&str> = self
            .status
            .hosts
            .iter()
            .filter(|h| h.connection == ConnectionState::Connected)
            .map(|h| h.uri.as_str())
            .collect();
        exporter::write(&mut encoder, &all, &self.status.hosts, &connected)?;
        vms::write(&mut encoder, &all, self.now_ns)?;
        service::write(&mut encoder, &self.status)
    }
}
