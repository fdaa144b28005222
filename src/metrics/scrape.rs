//! One scrape: the actors' latest values, encoded in the format the scraper asked for.

use std::collections::HashSet;
use std::fmt;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, prometheus_text, text};
use prometheus_client::registry::Registry;

use super::family::Vm;
use super::http::HttpMetrics;
use super::{exporter, guest, host, insights, outlook, process, service, vms, writer};
use crate::actors::status::{ConnectionState, TelemetryStatus};
use crate::insights::scrape::InsightsScrape;
use crate::vms::{NodeSnapshot, VmSnapshot};

/// What a scrape shows, copied from the actors when it came.
#[derive(Debug)]
pub struct Scrape {
    pub vms: Vec<VmSnapshot>,
    /// Each host as its last cycle read it (`host_metrics`).
    pub nodes: Vec<NodeSnapshot>,
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
        guest::write(&mut encoder, &all)?;
        host::write(&mut encoder, &self.nodes, self.now_ns)?;
        if let Some(scrape) = &self.insights {
            insights::write(&mut encoder, scrape)?;
            outlook::write(&mut encoder, &scrape.outlook)?;
        }
        service::write(&mut encoder, &self.status)?;
        writer::write(&mut encoder, &self.status.writer)
    }
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use futures_util::StreamExt;

    use super::*;
    use crate::extended;
    use crate::metrics::scrape_body;
    use crate::metrics::testing::scrape;

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
            "mountpoint=\"a \\\"b\\\" \\\\ ☃\\nnext\",device=\"vda1\",fstype=\"ext4\"} 25.0",
            "os_id=\"debian\",os_version=\"12\",kernel_release=\"6.1.0\",hostname=",
            "vmtelemetry_host_metrics_memory_total_bytes{host=\"h\"} 1073741824.0",
            "vmtelemetry_vm_forecasts_seconds_to_full_upper{host=\"h\",resource=\"committed_memory\"} 700.0",
            "vmtelemetry_vm_forecasts_growth_per_second{host=\"h\",resource=\"memory\",uuid=",
            "vmtelemetry_vm_recommendations_class{host=\"h\",uuid=",
            "vmtelemetry_vm_recommendations_memory_current_bytes{host=\"h\",uuid=",
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

    /// The words of `text`: runs of lower-case letters, digits and `_`.
    fn words(text: &str) -> impl Iterator<Item = &str> {
        let separator = |c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        text.split(separator).filter(|w| !w.is_empty())
    }

    /// The names between backticks in `cell`.
    fn backticked(cell: &str) -> impl Iterator<Item = &str> {
        cell.split('`').skip(1).step_by(2)
    }

    /// Every measurement of the README's table ("What it writes") has `vmtelemetry_` families
    /// with samples: the help of one names it, and each of its fields is named by the help of one of those or
    /// is a label value of one. A measurement or field added to the table fails here until
    /// `/metrics` gives it.
    #[test]
    fn every_measurement_and_field_of_the_readme_table_is_in_a_scrape() {
        let readme = include_str!("../../README.md");
        let table = readme.split("\n## What it writes\n").nth(1).unwrap();
        let table = table.split("\n## ").next().unwrap();
        let mut text = String::new();
        scrape(1)
            .write(&mut text, Format::Prometheus, &HttpMetrics::default())
            .unwrap();
        // Each family's help, type and samples.
        let families: Vec<&str> = text.split("# HELP ").collect();
        let rows: Vec<&str> = table.lines().filter(|l| l.starts_with("| `")).collect();
        assert!(rows.len() >= 18, "{} rows", rows.len());
        for row in rows {
            let cells: Vec<&str> = row.split(" | ").collect();
            let measurement = backticked(cells[0]).next().unwrap();
            let own: Vec<&str> = (families.iter().copied())
                .filter(|f| f.starts_with("vmtelemetry_") && f.lines().any(|l| !l.starts_with('#')))
                .filter(|f| words(f.lines().next().unwrap()).any(|w| w == measurement))
                .collect();
            assert!(!own.is_empty(), "no family names {measurement}");
            // Its fields are the host kernel's: the fixture's few are checked above.
            if measurement == extended::VM_KVM {
                continue;
            }
            let fields = backticked(cells[2]).filter(|f| words(f).eq([*f]));
            for field in fields {
                assert!(
                    own.iter().any(|f| words(f).any(|w| w == field)),
                    "{measurement} {field} is in no family naming {measurement}"
                );
            }
        }
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
