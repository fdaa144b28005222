//! One scrape: the actors' latest values, encoded in the format the scraper asked for.

use std::collections::HashSet;
use std::fmt;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, prometheus_text, text};
use prometheus_client::registry::Registry;

use super::family::Vm;
use super::http::HttpMetrics;
use super::{exporter, process, service, vms, writer};
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
        service::write(&mut encoder, &self.status)?;
        writer::write(&mut encoder, &self.status.writer)
    }
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use uuid::Uuid;

    use super::*;
    use crate::actors::status::{FeatureStatus, SpoolStatus, WriterStatus};
    use crate::extended::{self, DomainStatsSample, StatsRow};
    use crate::sample::{DomainSample, VmState};

    /// A VM whose extended sample has every field, each row keyed as libvirt's are.
    fn vm() -> VmSnapshot {
        let mut rows: Vec<StatsRow> = Vec::new();
        let mut derived = Vec::new();
        for (measurement, field, integer) in extended::field_types() {
            let key = match measurement {
                extended::VM_DISK => Some(("device", "vda".to_owned())),
                extended::VM_NET => Some(("interface", "vnet0".to_owned())),
                _ if field.starts_with("vcpu_") => Some(("vcpu", "0".to_owned())),
                _ => None,
            };
            let at = match rows
                .iter()
                .position(|r| r.measurement == measurement && r.key == key)
            {
                Some(at) => at,
                None => {
                    rows.push(StatsRow {
                        measurement,
                        key,
                        counters: Vec::new(),
                    });
                    derived.push(Vec::new());
                    rows.len() - 1
                }
            };
            if integer {
                rows[at].counters.push((field, 7));
            } else {
                derived[at].push((field, 0.5));
            }
        }
        let latest = DomainSample {
            id: Some(1),
            name: "a \"b\" \\ ☃".into(),
            uuid: Uuid::from_u128(1),
            state: VmState::Running,
            cpu_count: 2,
            memory_max_kb: 4096,
            memory_used_kb: 2048,
            cputime_ns: 5_000_000_000,
            timestamp_ns: 1,
        };
        let stats = DomainStatsSample {
            uuid: latest.uuid,
            name: latest.name.to_string(),
            timestamp_ns: 1,
            vcpus: Some(2),
            rows,
            derived,
            carried: Vec::new(),
        };
        VmSnapshot {
            uri: "test:///default".into(),
            host: "h".into(),
            latest,
            features: None,
            stats: Some(stats),
        }
    }

    /// Every family name and unit passes Prometheus's own linter (Debian's `prometheus`).
    #[test]
    fn every_family_passes_promtool() {
        let writer = WriterStatus {
            spool: Some(SpoolStatus::default()),
            ..WriterStatus::default()
        };
        writer
            .write_durations
            .observe(std::time::Duration::from_millis(3));
        let status = TelemetryStatus::new(
            chrono::Utc::now(),
            Vec::new(),
            FeatureStatus::default(),
            writer,
        );
        let scrape = Scrape {
            vms: vec![vm()],
            status,
            now_ns: 2,
        };
        let text = scrape
            .encode(Format::Prometheus, &HttpMetrics::default())
            .unwrap();
        assert!(
            text.contains("vmtelemetry_vm_disk_read_bytes_per_second{"),
            "{text}"
        );
        assert!(
            text.contains("vmtelemetry_vm_memory_balloon_current_bytes{"),
            "{text}"
        );
        for family in [
            "vmtelemetry_write_duration_seconds_bucket{le=\"0.004\"} 1",
            "vmtelemetry_influx_failures_total{class=\"too_large\"} 0",
            "vmtelemetry_spool_state{state=\"ok\"} 1",
            "vmtelemetry_spool_free_bytes 0",
        ] {
            assert!(text.contains(family), "{family} in {text}");
        }
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), &text).unwrap();
        let out = Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(std::fs::File::open(file.path()).unwrap())
            .output()
            .expect("promtool runs (scripts/install-deps.sh installs it)");
        let lint = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && lint.trim().is_empty(),
            "promtool: {lint}"
        );
    }
}
