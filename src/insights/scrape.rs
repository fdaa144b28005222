//! What `/metrics` shows of the insights: per VM and per host, copied compactly (no evidence, no
//! values) so that a scrape of 10,000 VMs holds the actor for a copy, not an encoding.

use std::sync::Arc;

use super::bottlenecks::Condition;
use super::fleet::Insights;
use super::host::HostSummary;
use super::signals::Scores;

#[derive(Debug)]
pub struct InsightsScrape {
    pub hosts: Vec<HostScrape>,
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
    pub anomaly_rate: Option<f64>,
    /// The last cycle's score of each signal scored, in `Signal::ALL` order.
    pub scores: Scores,
    /// The conditions that hold, with their held time in seconds.
    pub held: Vec<(Condition, f64)>,
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
                    anomaly_rate: vm.anomaly_rate(),
                    scores: vm.last.scores,
                    held: (vm.bottlenecks.active(thresholds))
                        .map(|active| (active.condition, active.held_sec))
                        .collect(),
                })
                .collect(),
        });
        InsightsScrape {
            hosts: hosts.collect(),
        }
    }
}
