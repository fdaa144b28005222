//! What `/metrics` shows of the insights: per VM and per host, copied compactly (no signal
//! values) so that a scrape of 10,000 VMs holds the actor for a copy, not an encoding. And the
//! outlook's latest forecasts and recommendations (`vm_forecasts`, `vm_recommendations`).

use std::sync::Arc;

use uuid::Uuid;

use super::bottlenecks::{Condition, Evidence};
use super::fleet::Insights;
use super::forecast::Forecasts;
use super::forecast::trend::Outlook as ResourceOutlook;
use super::host::HostSummary;
use super::outlook::Outlook;
use super::rightsizing::recommend::{Recommendation, recommend};
use super::rightsizing::vm::VpaClock;
use super::signals::Scores;

#[derive(Debug)]
pub struct InsightsScrape {
    pub hosts: Vec<HostScrape>,
    /// Empty when the outlook is not configured.
    pub outlook: Vec<HostOutlookScrape>,
}

/// One host's outlook: its committed memory's forecast and its VMs'.
#[derive(Debug)]
pub struct HostOutlookScrape {
    pub host: Arc<str>,
    pub committed: Vec<ResourceScrape>,
    pub vms: Vec<VmOutlookScrape>,
}

/// One resource's latest verdict (`memory`, `disk:<device>`, `committed_memory`).
pub type ResourceScrape = (Box<str>, ResourceOutlook);

#[derive(Debug)]
pub struct VmOutlookScrape {
    pub uuid: String,
    pub name: String,
    pub forecasts: Vec<ResourceScrape>,
    /// None until the VM has two CPU samples a minute apart.
    pub recommendation: Option<Recommendation>,
}

#[derive(Debug)]
pub struct HostScrape {
    /// The `host` tag.
    pub host: Arc<str>,
    pub summary: HostSummary,
    pub vms: Vec<VmScrape>,
}

#[derive(Debug)]
pub struct VmScrape {
    pub uuid: String,
    pub name: String,
    pub trained: bool,
    pub anomalous_signals: u32,
    pub peer_outlier_signals: u32,
    pub anomaly_rate: Option<f64>,
    /// The last cycle's score of each signal scored, in `Signal::ALL` order.
    pub scores: Scores,
    /// The conditions that hold, with their evidence and held time in seconds.
    pub held: Vec<(Condition, Evidence, f64)>,
}

impl Insights {
    pub fn scrape(&self) -> InsightsScrape {
        let thresholds = &self.settings.thresholds;
        let hosts = self.hosts.values().map(|host| HostScrape {
            host: Arc::clone(&host.host),
            summary: host.summary.clone(),
            vms: (host.vms.values())
                .map(|vm| VmScrape {
                    uuid: vm.vm.uuid.to_string(),
                    name: vm.vm.name.to_string(),
                    trained: vm.trained(&self.settings),
                    anomalous_signals: vm.last.anomalous_signals(),
                    peer_outlier_signals: vm.last.peer_outliers.count_ones(),
                    anomaly_rate: vm.anomaly_rate(),
                    scores: vm.last.scores,
                    held: (vm.bottlenecks.active(thresholds))
                        .map(|active| (active.condition, active.evidence, active.held_sec))
                        .collect(),
                })
                .collect(),
        });
        InsightsScrape {
            hosts: hosts.collect(),
            outlook: Vec::new(),
        }
    }
}

impl Outlook {
    /// Every host's committed memory and every present VM's forecasts and recommendation, as
    /// `vm_forecasts` and `vm_recommendations` would give them now.
    pub fn scrape(&self, clock: VpaClock) -> Vec<HostOutlookScrape> {
        let resources = |forecasts: &Forecasts| -> Vec<ResourceScrape> {
            (forecasts.resources.iter())
                .filter_map(|r| Some((r.name.clone(), r.last?)))
                .collect()
        };
        let hosts = self.hosts.values().map(|host| HostOutlookScrape {
            host: Arc::clone(&host.host),
            committed: resources(&host.committed),
            vms: (host.vms.iter().filter(|(_, vm)| vm.present))
                .map(|(uuid, vm)| VmOutlookScrape {
                    uuid: Uuid::from_u128(*uuid).to_string(),
                    name: vm.name.to_string(),
                    forecasts: resources(&vm.forecasts),
                    recommendation: recommend(
                        &vm.rightsizing,
                        vm.cpu_count,
                        vm.memory_max_kb,
                        clock,
                    ),
                })
                .collect(),
        });
        hosts.collect()
    }
}
