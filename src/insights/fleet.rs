//! Every host's insights, keyed by the host's URI, the settings they are analysed with, and what
//! a snapshot kept of VMs not seen yet since it was loaded.

use std::collections::HashMap;
use std::sync::Arc;

use uuid::Uuid;

use super::host::{HostCycle, HostInsights};
use super::settings::InsightsSettings;
use super::store::SnapshotEntry;
use super::vm::{Learned, VmInsights};

pub struct Insights {
    pub hosts: HashMap<Arc<str>, HostInsights>,
    pub settings: InsightsSettings,
    /// From the last snapshot loaded, per host URI, until that host's first cycle: its VMs still
    /// there start from what they had learned, the others' is dropped.
    restored: HashMap<Arc<str>, HashMap<Uuid, Learned>>,
    pub restore_counts: RestoreCounts,
}

/// What became of the VMs of the last snapshot loaded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RestoreCounts {
    pub loaded: usize,
    /// Found again on their host: they start trained if they were.
    pub restored: usize,
    /// Gone from their host, on a host no longer collected, or unsound.
    pub dropped: usize,
}

impl Insights {
    pub fn new(settings: InsightsSettings) -> Self {
        Insights {
            hosts: HashMap::new(),
            settings,
            restored: HashMap::new(),
            restore_counts: RestoreCounts::default(),
        }
    }

    /// Analyses one host's cycle; returns that host's insights, and the settings.
    pub fn observe(&mut self, cycle: HostCycle) -> (&HostInsights, &InsightsSettings) {
        let host = self
            .hosts
            .entry(Arc::clone(&cycle.uri))
            .or_insert_with(|| HostInsights::new(Arc::clone(&cycle.host)));
        if let Some(mut restored) = self.restored.remove(&cycle.uri) {
            for reading in &cycle.vms {
                if let Some(learned) = restored.remove(&reading.vm.uuid) {
                    let vm = Box::new(VmInsights::new(reading, learned));
                    host.vms.entry(reading.vm.uuid).or_insert(vm);
                    self.restore_counts.restored += 1;
                }
            }
            self.restore_counts.dropped += restored.len();
        }
        host.observe(cycle, &self.settings);
        (host, &self.settings)
    }

    /// (VMs, VMs with a trained model) of every host.
    pub fn counts(&self) -> (usize, usize) {
        self.hosts.values().fold((0, 0), |(vms, trained), host| {
            (vms + host.summary.vms, trained + host.summary.vms_trained)
        })
    }

    /// What every VM has learned, those of the last snapshot still waiting for their host
    /// included.
    pub fn snapshot(&self) -> Vec<SnapshotEntry> {
        let live = self.hosts.iter().flat_map(|(uri, host)| {
            (host.vms.iter()).map(move |(uuid, vm)| (uri, uuid, &vm.learned))
        });
        let waiting = (self.restored.iter())
            .flat_map(|(uri, vms)| vms.iter().map(move |(uuid, learned)| (uri, uuid, learned)));
        live.chain(waiting)
            .map(|(uri, uuid, learned)| (Arc::clone(uri), uuid.as_u128(), learned.to_snapshot()))
            .collect()
    }

    /// Starts again from `snapshot`, keeping only the VMs of `hosts`: each VM starts from what it
    /// had learned at its host's first cycle, if it is still there.
    pub fn restore(&mut self, snapshot: Vec<SnapshotEntry>, hosts: &[Arc<str>]) {
        self.hosts.clear();
        self.restored.clear();
        let mut counts = RestoreCounts {
            loaded: snapshot.len(),
            ..RestoreCounts::default()
        };
        for (uri, uuid, vm) in snapshot {
            match Learned::from_snapshot(vm).filter(|_| hosts.contains(&uri)) {
                Some(learned) => {
                    let vms = self.restored.entry(uri).or_default();
                    vms.insert(Uuid::from_u128(uuid), learned);
                }
                None => counts.dropped += 1,
            }
        }
        self.restore_counts = counts;
    }
}
