//! What the analysis is tuned with (configuration keys `insights_*`), as plain data.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::baseline::{Gap, MaxGaps};
use super::bottlenecks::Thresholds;
use super::detector::DetectorSettings;
use super::signals::SOURCES_OF_ROWS;

#[derive(Debug, Clone, PartialEq)]
pub struct InsightsSettings {
    pub detector: DetectorSettings,
    /// The span of each VM's anomaly rate; a VM away longer finds its levels stale.
    pub window: Duration,
    /// The longest interval a rate or a difference may span: beyond it a signal resumes unscored.
    pub max_gap: Duration,
    /// The same for each source's rows (`Source::ALL` order), where its group's cadence is
    /// slower: at least `max_gap`.
    pub source_gaps: [Duration; SOURCES_OF_ROWS],
    /// Peers are compared on a signal only when at least this many VMs of the host have it.
    pub peer_min_vms: usize,
    pub thresholds: Thresholds,
    /// None without a spool directory: models then live in memory only.
    pub snapshots: Option<SnapshotSettings>,
}

/// Where and how often every VM's models are saved (`insights_snapshot_interval`).
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotSettings {
    /// `insights.redb`, beside the spool's file.
    pub path: PathBuf,
    pub interval: Duration,
    /// The URIs of the hosts this instance collects: a snapshot of another host's VM is dropped.
    pub hosts: Vec<Arc<str>>,
}

impl InsightsSettings {
    pub fn max_gaps(&self) -> MaxGaps {
        MaxGaps {
            seed: Gap(nanos(self.max_gap)),
            sources: self.source_gaps.map(|gap| Gap(nanos(gap))),
        }
    }

    pub fn window_ns(&self) -> i64 {
        nanos(self.window)
    }
}

fn nanos(duration: Duration) -> i64 {
    i64::try_from(duration.as_nanos()).unwrap_or(i64::MAX)
}
