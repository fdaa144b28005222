//! Every host's insights, keyed by the host's URI, and the settings they are analysed with.

use std::collections::HashMap;
use std::sync::Arc;

use super::host::{HostCycle, HostInsights};
use super::settings::InsightsSettings;

pub struct Insights {
    pub hosts: HashMap<Arc<str>, HostInsights>,
    pub settings: InsightsSettings,
}

impl Insights {
    pub fn new(settings: InsightsSettings) -> Self {
        Insights {
            hosts: HashMap::new(),
            settings,
        }
    }

    /// Analyses one host's cycle; returns that host's insights, and the settings.
    pub fn observe(&mut self, cycle: HostCycle) -> (&HostInsights, &InsightsSettings) {
        let host = self
            .hosts
            .entry(Arc::clone(&cycle.uri))
            .or_insert_with(|| HostInsights::new(Arc::clone(&cycle.host)));
        host.observe(cycle, &self.settings);
        (host, &self.settings)
    }

    /// (VMs, VMs with a trained model) of every host.
    pub fn counts(&self) -> (usize, usize) {
        self.hosts.values().fold((0, 0), |(vms, trained), host| {
            (vms + host.summary.vms, trained + host.summary.vms_trained)
        })
    }
}
