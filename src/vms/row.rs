//! One VM as the API lists it: its latest seed sample, its features and the rates of its latest
//! extended sample, copied out of the table once per cycle (see `catalog`), and shown as a
//! `VmView`.

use std::sync::Arc;

use chrono::DateTime;

use super::VmView;
use crate::extended::{DomainStatsSample, VM_CPU, VM_DISK, VM_NET};
use crate::sample::{DomainSample, INACTIVE_VMID, MemoryFeatures};

#[derive(Debug, Clone)]
pub struct VmRow {
    pub host: Arc<str>,
    pub uri: Arc<str>,
    pub latest: DomainSample,
    pub features: Option<MemoryFeatures>,
    pub rates: ExtendedRates,
    /// The CPU use between its latest seed samples, oldest first (see `VmView::cpu_trend`).
    pub cpu_trend: Box<[Option<u8>]>,
}

/// Pairs of seed samples the trend covers: a minute at the default 5 s poll.
pub const TREND_PAIRS: usize = 12;

/// Whole percent, at most 100 (a sparkline's scale; the exact figure is in the history).
pub fn trend_percents(trend: Vec<Option<f64>>) -> Box<[Option<u8>]> {
    trend
        .into_iter()
        .map(|p| p.map(|p| p.round().clamp(0.0, 100.0) as u8))
        .collect()
}

/// The latest extended sample's derived values, each summed over the VM's disks or interfaces;
/// none without the stats groups, or before a VM's second extended sample.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ExtendedRates {
    pub cpu_usage_percent: Option<f64>,
    pub disk_read_bytes_per_sec: Option<f64>,
    pub disk_write_bytes_per_sec: Option<f64>,
    pub net_rx_bytes_per_sec: Option<f64>,
    pub net_tx_bytes_per_sec: Option<f64>,
}

impl ExtendedRates {
    pub fn of(stats: Option<&DomainStatsSample>) -> Self {
        let Some(stats) = stats else {
            return ExtendedRates::default();
        };
        ExtendedRates {
            cpu_usage_percent: total(stats, VM_CPU, "cpu_usage_percent"),
            disk_read_bytes_per_sec: total(stats, VM_DISK, "read_bytes_per_sec"),
            disk_write_bytes_per_sec: total(stats, VM_DISK, "write_bytes_per_sec"),
            net_rx_bytes_per_sec: total(stats, VM_NET, "rx_bytes_per_sec"),
            net_tx_bytes_per_sec: total(stats, VM_NET, "tx_bytes_per_sec"),
        }
    }
}

/// The sum of `field` over the rows of `measurement` that derived it; none if none did.
fn total(stats: &DomainStatsSample, measurement: &str, field: &str) -> Option<f64> {
    stats
        .rows
        .iter()
        .zip(&stats.derived)
        .filter(|(row, _)| row.measurement == measurement)
        .filter_map(|(_, derived)| derived.iter().find(|(f, _)| *f == field))
        .fold(None, |sum, (_, value)| Some(sum.unwrap_or(0.0) + value))
}

impl VmRow {
    pub fn view(&self) -> VmView {
        let latest = &self.latest;
        let features = self.features;
        VmView {
            host: self.host.to_string(),
            uri: self.uri.to_string(),
            vmid: latest
                .id
                .map_or_else(|| INACTIVE_VMID.to_owned(), |id| id.to_string()),
            name: latest.name.to_string(),
            uuid: latest.uuid.to_string(),
            state: latest.state,
            cpu_count: latest.cpu_count,
            memory_max_kb: latest.memory_max_kb,
            memory_used_kb: latest.memory_used_kb,
            cputime_ns: latest.cputime_ns,
            timestamp: DateTime::from_timestamp_nanos(latest.timestamp_ns),
            memory_rate_kb_per_sec: features.map(|f| f.memory_rate_kb_per_sec),
            memory_angle_deg: features.map(|f| f.memory_angle_deg),
            cpu_usage_percent: self.rates.cpu_usage_percent,
            disk_read_bytes_per_sec: self.rates.disk_read_bytes_per_sec,
            disk_write_bytes_per_sec: self.rates.disk_write_bytes_per_sec,
            net_rx_bytes_per_sec: self.rates.net_rx_bytes_per_sec,
            net_tx_bytes_per_sec: self.rates.net_tx_bytes_per_sec,
            cpu_trend: self.cpu_trend.to_vec(),
        }
    }
}
