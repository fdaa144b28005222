//! One scrape: the actors' latest values, encoded in the format the scraper asked for.

use std::collections::HashSet;
use std::fmt;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, prometheus_text, text};
use prometheus_client::registry::Registry;

use super::family::Vm;
use super::http::HttpMetrics;
use super::{exporter, insights, process, service, vms, writer};
use crate::actors::status::{ConnectionState, TelemetryStatus};
use crate::insights::scrape::InsightsScrape;
use crate::vms::VmSnapshot;

/// What a scrape shows, copied from the actors when it came.
#[derive(Debug)]
pub struct Scrape {
    pub vms: Vec<VmSnapshot>,
    pub status: TelemetryStatus,
    /// None when `insights = false`.
    pub insights: Option<InsightsScrape>,
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
    /// Writes the whole exposition to `out`, which may send it on as it comes.
    pub(super) fn write(
        self,
        out: &mut impl fmt::Write,
        format: Format,
        http: &HttpMetrics,
    ) -> fmt::Result {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(self));
        http.register(&mut registry);
        registry.register_collector(Box::new(process::Process));
        match format {
            Format::Prometheus => prometheus_text::encode(out, &registry),
            Format::OpenMetrics => text::encode(out, &registry),
        }
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
        if let Some(scrape) = &self.insights {
            insights::write(&mut encoder, scrape)?;
        }
        service::write(&mut encoder, &self.status)?;
        writer::write(&mut encoder, &self.status.writer)
    }
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use futures_util::StreamExt;
    use uuid::Uuid;

    use super::*;
    use crate::actors::status::{FeatureStatus, SpoolStatus, WriterStatus};
    use crate::extended::{self, DomainStatsSample, StatsRow};
    use crate::insights::bottlenecks::Condition;
    use crate::insights::host::HostSummary;
    use crate::insights::scrape::{HostScrape, VmScrape};
    use crate::insights::signals::{Scores, Signal};
    use crate::metrics::scrape_body;
    use crate::sample::{DomainSample, VmState};

    /// Every character a label value must carry escaped: quotes, backslashes, a newline (which
    /// libvirt refuses in a domain's name, so only here), unicode.
    const AWKWARD: &str = "a \"b\" \\ ☃\nnext";

    /// A VM whose extended sample has every field, each row keyed as libvirt's are.
    fn vm(n: u128) -> VmSnapshot {
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
                        source: None,
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
        for (measurement, key, counters) in [
            (extended::VM_KVM, None, vec![("remote_tlb_flush", 7)]),
            (
                extended::VM_KVM,
                Some(("vcpu", "0".to_owned())),
                vec![("exits", 7), ("halt_wait_ns", 7)],
            ),
            (
                extended::VM_DIRTYRATE,
                None,
                vec![("dirty_rate_mib_per_sec", 7), ("calc_period_sec", 1)],
            ),
        ] {
            rows.push(StatsRow {
                measurement,
                key,
                source: None,
                counters,
            });
            derived.push(Vec::new());
        }
        let latest = DomainSample {
            id: Some(1),
            name: AWKWARD.into(),
            uuid: Uuid::from_u128(n),
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

    /// `vms` such VMs, and a writer with a spool and one write timed.
    fn scrape(vms: u128) -> Scrape {
        let writer = WriterStatus {
            spool: Some(SpoolStatus::default()),
            ..WriterStatus::default()
        };
        writer
            .write_durations
            .observe(std::time::Duration::from_millis(3));
        let status = TelemetryStatus::new(
            chrono::DateTime::UNIX_EPOCH,
            Vec::new(),
            FeatureStatus::default(),
            writer,
        );
        Scrape {
            vms: (1..=vms).map(vm).collect(),
            status,
            insights: Some(insights(vms)),
            now_ns: 2,
        }
    }

    /// One host of `vms` such VMs, each trained, with one signal scored and one condition held.
    fn insights(vms: u128) -> InsightsScrape {
        let mut scores = Scores::default();
        scores.set(Signal::CpuPercent, 0.5);
        let vm = |n| VmScrape {
            uuid: Uuid::from_u128(n).to_string(),
            name: AWKWARD.into(),
            trained: true,
            anomalous_signals: 1,
            anomaly_rate: Some(0.25),
            scores,
            held: vec![(Condition::CpuSaturated, 30.0)],
        };
        let summary = HostSummary {
            vms: vms as usize,
            anomaly_rate: Some(0.25),
            ..HostSummary::default()
        };
        let host = HostScrape {
            host: "h".into(),
            summary,
            vms: (1..=vms).map(vm).collect(),
        };
        InsightsScrape { hosts: vec![host] }
    }

    /// Every family name and unit passes Prometheus's own linter (Debian's `prometheus`), and its
    /// parser reads every awkward label value.
    #[test]
    fn every_family_passes_promtool() {
        let mut text = String::new();
        scrape(1)
            .write(&mut text, Format::Prometheus, &HttpMetrics::default())
            .unwrap();
        for family in [
            "vmtelemetry_vm_disk_read_bytes_per_second{",
            "vmtelemetry_vm_memory_balloon_current_bytes{",
            "vmtelemetry_write_duration_seconds_bucket{le=\"0.004\"} 1",
            "vmtelemetry_influx_failures_total{class=\"too_large\"} 0",
            "vmtelemetry_spool_state{state=\"ok\"} 1",
            "vmtelemetry_spool_free_bytes 0",
            "name=\"a \\\"b\\\" \\\\ ☃\\nnext\"",
            "vmtelemetry_vm_disk_write_time_seconds_total{",
            "vmtelemetry_vm_kvm_remote_tlb_flush{",
            "vmtelemetry_vm_kvm_halt_wait_seconds{",
            "vmtelemetry_vm_kvm_exits{",
            "vmtelemetry_vm_dirtyrate_dirty_rate_bytes_per_second{",
            "vmtelemetry_vm_dirtyrate_calc_period_seconds{",
            "vmtelemetry_vm_model_trained{",
            "signal=\"cpu_percent\"} 0.5",
            "vmtelemetry_vm_bottleneck_held_seconds{",
            "kind=\"cpu_saturated\"} 30.0",
            "vmtelemetry_host_insights_anomaly_rate{host=\"h\"} 0.25",
            "vmtelemetry_host_insights_vms_in_condition{host=\"h\",kind=\"network_drops\"} 0",
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

    /// The body sent is the exposition, in chunks of about 64 KiB.
    #[actix_rt::test]
    async fn the_streamed_body_is_the_whole_exposition_in_chunks() {
        let mut whole = String::new();
        scrape(100)
            .write(&mut whole, Format::OpenMetrics, &HttpMetrics::default())
            .unwrap();
        let body = scrape_body(scrape(100), Format::OpenMetrics, HttpMetrics::default());
        let chunks: Vec<_> = body.map(Result::unwrap).collect().await;
        assert!(chunks.len() >= 4, "{} chunks", chunks.len());
        assert!(chunks.iter().all(|c| c.len() < 80 * 1024));
        // The process's own figures move between two encodings.
        let steady = |text: &str| -> Vec<String> {
            let lines = text.lines().filter(|l| !l.contains("process_"));
            lines.map(str::to_owned).collect()
        };
        let streamed = String::from_utf8(chunks.concat()).unwrap();
        assert_eq!(steady(&streamed), steady(&whole));
        assert!(streamed.ends_with("# EOF\n"));
    }
}
