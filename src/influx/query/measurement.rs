//! What a history request may read: each measurement's fields, the tag telling its devices
//! apart, and whether it belongs to a VM or to a host.

use std::sync::LazyLock;

use serde::Serialize;

use crate::extended::{VM_CPU, VM_DISK, VM_NET};
use crate::influx::schema::{host_metrics, vm_anomalies, vm_features, vm_metrics};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Measurement {
    VmMetrics,
    VmFeatures,
    VmCpu,
    VmDisk,
    VmNet,
    VmAnomalies,
    HostMetrics,
}

/// The rates derived from the extended counters, and the one counter a chart needs (steal).
const VM_CPU_FIELDS: [&str; 2] = ["cpu_usage_percent", VCPU_DELAY_NS];
/// And the two a disk's fill (its forecast's chart) needs.
const VM_DISK_FIELDS: [&str; 6] = [
    "read_bytes_per_sec",
    "write_bytes_per_sec",
    "read_iops",
    "write_iops",
    "allocation_bytes",
    "capacity_bytes",
];
const VM_NET_FIELDS: [&str; 4] = [
    "rx_bytes_per_sec",
    "tx_bytes_per_sec",
    "rx_packets_per_sec",
    "tx_packets_per_sec",
];
const VCPU_DELAY_NS: &str = "vcpu_delay_ns";
const HOST_METRICS_FIELDS: [&str; 9] = [
    host_metrics::CPUS,
    host_metrics::MEMORY_TOTAL_KB,
    host_metrics::MEMORY_FREE_KB,
    host_metrics::DOMAINS,
    host_metrics::DOMAINS_RUNNING,
    host_metrics::DOMAINS_PAUSED,
    host_metrics::DOMAINS_STOPPED,
    host_metrics::DOMAINS_OTHER,
    host_metrics::COLLECTION_DURATION_SEC,
];
static VM_ANOMALIES_FIELDS: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
    let totals = [
        vm_anomalies::ANOMALOUS_SIGNALS,
        vm_anomalies::PEER_OUTLIER_SIGNALS,
        vm_anomalies::ANOMALY_RATE,
    ];
    vm_anomalies::SCORES.into_iter().chain(totals).collect()
});

impl Measurement {
    pub const ALL: [Measurement; 7] = [
        Measurement::VmMetrics,
        Measurement::VmFeatures,
        Measurement::VmCpu,
        Measurement::VmDisk,
        Measurement::VmNet,
        Measurement::VmAnomalies,
        Measurement::HostMetrics,
    ];

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            Measurement::VmMetrics => vm_metrics::MEASUREMENT,
            Measurement::VmFeatures => vm_features::MEASUREMENT,
            Measurement::VmCpu => VM_CPU,
            Measurement::VmDisk => VM_DISK,
            Measurement::VmNet => VM_NET,
            Measurement::VmAnomalies => vm_anomalies::MEASUREMENT,
            Measurement::HostMetrics => host_metrics::MEASUREMENT,
        }
    }

    /// The fields that may be asked for; nothing else reaches a query.
    pub fn fields(self) -> &'static [&'static str] {
        match self {
            Measurement::VmMetrics => &vm_metrics::FIELDS,
            Measurement::VmFeatures => &vm_features::FIELDS,
            Measurement::VmCpu => &VM_CPU_FIELDS,
            Measurement::VmDisk => &VM_DISK_FIELDS,
            Measurement::VmNet => &VM_NET_FIELDS,
            Measurement::VmAnomalies => &VM_ANOMALIES_FIELDS,
            Measurement::HostMetrics => &HOST_METRICS_FIELDS,
        }
    }

    /// The tag telling a VM's lines of one time apart (`vcpu`, `device`, `interface`): each
    /// point carries it, and buckets are per value of it.
    pub fn key_tag(self) -> Option<&'static str> {
        match self {
            Measurement::VmCpu => Some("vcpu"),
            Measurement::VmDisk => Some("device"),
            Measurement::VmNet => Some("interface"),
            _ => None,
        }
    }

    /// Tagged by `host` only: asked for by host, not by VM.
    pub fn is_per_host(self) -> bool {
        self == Measurement::HostMetrics
    }

    /// Fields that cannot be averaged into buckets.
    pub fn is_text(field: &str) -> bool {
        field == vm_metrics::STATE
    }

    /// Cumulative counters: a bucket shows its last value, which keeps differences exact (a mean
    /// of a counter means little, and overflows InfluxDB 1.x's integer sums).
    pub fn is_counter(field: &str) -> bool {
        field == vm_metrics::CPUTIME_NS || field == VCPU_DELAY_NS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_measurement_is_parsed_back_from_its_name_and_has_fields() {
        for m in Measurement::ALL {
            assert_eq!(Measurement::parse(m.name()), Some(m));
            assert_eq!(serde_json::to_value(m).unwrap(), m.name());
            assert!(!m.fields().is_empty(), "{m:?}");
        }
        assert_eq!(Measurement::VmAnomalies.fields().len(), 19);
        assert_eq!(Measurement::parse("vm_bottlenecks"), None);
    }

    /// The extended fields offered are ones the encoder writes; those the history takes as
    /// counters (their last value per bucket) are written as integers, and the rates as floats.
    #[test]
    fn extended_fields_are_written_ones() {
        let written = crate::extended::field_types();
        for m in [Measurement::VmCpu, Measurement::VmDisk, Measurement::VmNet] {
            for field in m.fields() {
                let integer = written
                    .iter()
                    .find(|(wm, wf, _)| *wm == m.name() && wf == field)
                    .map(|(_, _, integer)| *integer);
                let expected = Measurement::is_counter(field) || field.ends_with("_bytes");
                assert_eq!(integer, Some(expected), "{} {field}", m.name());
            }
        }
    }
}
