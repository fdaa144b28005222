//! What the analysis is tuned with (configuration keys `insights_*`), as plain data.

use std::time::Duration;

use super::bottlenecks::Thresholds;
use super::detector::DetectorSettings;

#[derive(Debug, Clone, PartialEq)]
pub struct InsightsSettings {
    pub detector: DetectorSettings,
    /// The span of each VM's anomaly rate.
    pub window: Duration,
    /// The longest interval a rate or a difference may span: beyond it a signal resumes unscored.
    pub max_gap: Duration,
    /// Peers are compared on a signal only when at least this many VMs of the host have it.
    pub peer_min_vms: usize,
    pub thresholds: Thresholds,
}

impl InsightsSettings {
    pub fn max_gap_ns(&self) -> i64 {
        i64::try_from(self.max_gap.as_nanos()).unwrap_or(i64::MAX)
    }
}
