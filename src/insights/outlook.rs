//! The outlook of every VM and host: right-sizing state and forecasts, fed from the same
//! per-cycle values as the rest of the insights, but kept apart from the VM records those hold:
//! a VM's right-sizing history outlives its absence for as long as VPA's memory window (8
//! days), and everything here is `serde`, so the snapshot store can carry it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::forecast::{ForecastSettings, Forecasts};
use super::host::HostCycle;
use super::rightsizing::vm::{DAY_NS, VmRightsizing};
use super::signals::VmReading;
use serde::{Deserialize, Serialize};

/// A VM not seen for longer than this is forgotten (VPA: 8 memory aggregation intervals).
pub const FORGET_AFTER_NS: i64 = 8 * DAY_NS;
/// A host's committed memory: what its running VMs are given.
pub const COMMITTED_MEMORY: &str = "committed_memory";

#[derive(Debug, Clone, PartialEq)]
pub struct OutlookSettings {
    pub forecast: ForecastSettings,
    /// How often `vm_forecasts` and `vm_recommendations` are written.
    pub forecast_every: Duration,
    pub recommend_every: Duration,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Outlook {
    /// By the host's URI.
    pub hosts: HashMap<Arc<str>, HostOutlook>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct HostOutlook {
    pub host: Arc<str>,
    /// By UUID (as a number: `uuid` is built without serde).
    pub vms: HashMap<u128, VmOutlook>,
    /// Its committed memory's forecast.
    pub committed: Forecasts,
    pub timestamp_ns: i64,
    /// When each measurement was last written.
    #[serde(skip)]
    pub written: Written,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Written {
    pub forecasts_ns: Option<i64>,
    pub recommendations_ns: Option<i64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct VmOutlook {
    pub name: Box<str>,
    pub id: Option<u32>,
    pub cpu_count: u32,
    pub memory_max_kb: u64,
    pub rightsizing: VmRightsizing,
    pub forecasts: Forecasts,
    /// In the host's last cycle.
    #[serde(skip)]
    pub present: bool,
}

impl Outlook {
    pub fn observe(&mut self, cycle: &HostCycle, settings: &OutlookSettings) {
        let host = self.hosts.entry(Arc::clone(&cycle.uri)).or_default();
        host.host = Arc::clone(&cycle.host);
        host.timestamp_ns = cycle.timestamp_ns;
        host.vms.values_mut().for_each(|vm| vm.present = false);
        let mut committed_kb = 0u64;
        for reading in &cycle.vms {
            let vm = host.vms.entry(reading.vm.uuid.as_u128()).or_default();
            vm.observe(reading, &settings.forecast);
            if reading.vm.running {
                committed_kb = committed_kb.saturating_add(reading.vm.memory_max_kb);
            }
        }
        let now = cycle.timestamp_ns;
        host.vms.retain(|_, vm| {
            vm.present || now.saturating_sub(vm.rightsizing.last_seen_ns()) < FORGET_AFTER_NS
        });
        if let Some(total_kb) = cycle.memory_total_kb.filter(|kb| *kb > 0) {
            let level = (committed_kb as f64 * 1024.0, total_kb as f64 * 1024.0);
            let levels = std::iter::once((COMMITTED_MEMORY, level));
            host.committed.observe(now, levels, &settings.forecast);
        }
    }

    /// Buckets held by every VM's histograms, and the VMs: what the README's bytes per VM
    /// are measured from.
    pub fn footprint(&self) -> (usize, usize) {
        let vms = self.hosts.values().flat_map(|h| h.vms.values());
        vms.fold((0, 0), |(buckets, n), vm| {
            (buckets + vm.rightsizing.buckets_held(), n + 1)
        })
    }
}

impl VmOutlook {
    fn observe(&mut self, reading: &VmReading, settings: &ForecastSettings) {
        let vm = &reading.vm;
        self.name.clone_from(&vm.name);
        (self.id, self.cpu_count, self.memory_max_kb) = (vm.id, vm.cpu_count, vm.memory_max_kb);
        self.present = true;
        if !vm.running {
            return;
        }
        self.rightsizing
            .observe_cpu(vm.timestamp_ns, reading.cputime_ns);
        let Some(extended) = &reading.extended else {
            return;
        };
        let fill = &extended.fill;
        if let Some((used, _)) = fill.memory {
            self.rightsizing.observe_memory(extended.timestamp_ns, used);
        }
        let disks: Vec<(String, (f64, f64))> = fill
            .disks
            .iter()
            .map(|(device, level)| (format!("disk:{device}"), *level))
            .collect();
        let memory = fill.memory.map(|level| ("memory", level));
        let disks = disks.iter().map(|(name, level)| (name.as_str(), *level));
        self.forecasts.observe(
            extended.timestamp_ns,
            memory.into_iter().chain(disks),
            settings,
        );
    }
}
