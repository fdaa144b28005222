//! One VM as the API lists it: its latest seed sample, borrowed from the table, with its
//! features and the rates of its latest extended sample, derived when a page or a sort order
//! needs them (see `catalog`), and shown as a `VmView`.

use chrono::DateTime;

use super::VmView;
use crate::extended::{DomainStatsSample, VM_CPU, VM_DISK, VM_NET};
use crate::sample::{DomainSample, INACTIVE_VMID, MemoryFeatures};

#[derive(Debug, Clone)]
pub struct VmRow<'a> {
    pub host: &'a str,
    pub uri: &'a str,
    pub latest: &'a DomainSample,
    pub features: Option<MemoryFeatures>,
    pub rates: ExtendedRates,
    /// The CPU use between its latest seed samples (see `VmView::cpu_trend`).
    pub cpu_trend: CpuTrend,
}

/// Pairs of seed samples the trend covers: a minute at the default 5 s poll.
pub const TREND_PAIRS: usize = 12;
/// A pair without a rate.
const NO_RATE: u8 = u8::MAX;

/// Whole percents, at most 100 (a sparkline's scale; the exact figure is in the history), oldest
/// first: held in the row itself, 13 bytes, where a boxed slice took 40 and an allocation.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuTrend {
    percents: [u8; TREND_PAIRS],
    len: u8,
}

impl CpuTrend {
    /// The last `TREND_PAIRS` of `trend`.
    pub fn of(trend: &[Option<f64>]) -> Self {
        let mut kept = CpuTrend::default();
        for percent in &trend[trend.len().saturating_sub(TREND_PAIRS)..] {
            kept.percents[usize::from(kept.len)] =
                percent.map_or(NO_RATE, |p| p.round().clamp(0.0, 100.0) as u8);
            kept.len += 1;
        }
        kept
    }

    pub fn view(&self) -> Vec<Option<u8>> {
        let percents = &self.percents[..usize::from(self.len)];
        percents
            .iter()
            .map(|&p| (p != NO_RATE).then_some(p))
            .collect()
    }
}

/// The latest derived values of each kind (a group read at its own cadence keeps those of its
/// last read), each summed over the VM's disks or interfaces; none without the stats groups,
/// or before a VM's second extended sample.
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

/// The sum of `field` over the rows of `measurement` that derived it, read this time or
/// carried (a kind is either); none if none did.
fn total(stats: &DomainStatsSample, measurement: &str, field: &str) -> Option<f64> {
    let carried = stats.carried.iter().map(|c| (&c.row, &c.derived));
    stats
        .rows
        .iter()
        .zip(&stats.derived)
        .chain(carried)
        .filter(|(row, _)| row.measurement == measurement)
        .filter_map(|(_, derived)| derived.iter().find(|(f, _)| *f == field))
        .fold(None, |sum, (_, value)| Some(sum.unwrap_or(0.0) + value))
}

impl VmRow<'_> {
    pub fn view(&self) -> VmView {
        let latest = self.latest;
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
            cpu_trend: self.cpu_trend.view(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trend_keeps_its_last_pairs_as_whole_percents_and_its_gaps() {
        let mut trend = vec![Some(1.0); 20];
        trend.extend([Some(49.5), None, Some(100.4), Some(-0.2), Some(250.0)]);
        let kept = CpuTrend::of(&trend).view();
        assert_eq!(kept.len(), TREND_PAIRS);
        assert_eq!(
            kept[TREND_PAIRS - 5..],
            [Some(50), None, Some(100), Some(0), Some(100)]
        );
        assert_eq!(kept[0], Some(1));
        assert!(CpuTrend::of(&[]).view().is_empty());
    }
}
