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
    /// By UUID (as a number: `uuid` is built without serde); boxed, so the table's spare
    /// capacity costs a pointer a slot, not a whole VM's state.
    pub vms: HashMap<u128, Box<VmOutlook>>,
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
    /// As the snapshot store keeps it.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("plain data")
    }

    /// One that cannot be read starts afresh (a file of another version's layout).
    pub fn from_json(json: &[u8]) -> Outlook {
        serde_json::from_slice(json).unwrap_or_else(|error| {
            tracing::warn!(%error, "the forecasts' and right-sizing's saved state is unreadable");
            Outlook::default()
        })
    }

    pub fn observe(&mut self, cycle: &HostCycle, settings: &OutlookSettings) {
        let host = self.hosts.entry(Arc::clone(&cycle.uri)).or_default();
        host.host = Arc::clone(&cycle.host);
        host.timestamp_ns = cycle.timestamp_ns;
        host.vms.values_mut().for_each(|vm| vm.present = false);
        let mut committed_kb = 0u64;
        for reading in &cycle.vms {
            let vm = host.vms.entry(reading.vm.uuid.as_u128()).or_default();
            vm.observe(reading, &settings.forecast);
            if reading.running() {
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
}

impl Outlook {
    /// One VM's reading on its own, as the replay reads history: VM by VM, not cycle by cycle
    /// (a host's committed memory is not followed).
    pub fn observe_vm(
        &mut self,
        host: &Arc<str>,
        reading: &VmReading,
        settings: &ForecastSettings,
    ) {
        let outlook = self.hosts.entry(Arc::clone(host)).or_default();
        outlook.host = Arc::clone(host);
        outlook.timestamp_ns = outlook.timestamp_ns.max(reading.vm.timestamp_ns);
        let vm = outlook.vms.entry(reading.vm.uuid.as_u128()).or_default();
        vm.observe(reading, settings);
    }
}

impl VmOutlook {
    fn observe(&mut self, reading: &VmReading, settings: &ForecastSettings) {
        let vm = &reading.vm;
        self.name.clone_from(&vm.name);
        (self.id, self.cpu_count, self.memory_max_kb) = (vm.id, vm.cpu_count, vm.memory_max_kb);
        self.present = true;
        if !reading.running() {
            return;
        }
        self.rightsizing.observe_cpu(vm.timestamp_ns, vm.cputime_ns);
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

#[cfg(test)]
mod tests {
    use std::mem::size_of;

    use uuid::Uuid;

    use super::*;
    use crate::extended::{DomainStatsSample, StatsRow, VM_DISK, VM_MEMORY};
    use crate::insights::forecast::Resource;
    use crate::insights::rightsizing::recommend::{Class, recommend};
    use crate::insights::signals::ExtendedReading;
    use crate::sample::{DomainSample, VmState};

    const MINUTE: i64 = 60_000_000_000;
    const T0: i64 = 20_000 * DAY_NS;
    const MIB: u64 = 1 << 20;

    fn settings() -> OutlookSettings {
        OutlookSettings {
            forecast: ForecastSettings {
                half_life: 21_600.0,
                horizon: 365.0 * 86_400.0,
            },
            forecast_every: Duration::from_secs(300),
            recommend_every: Duration::from_secs(3600),
        }
    }

    /// Minute `i` of a 4-vCPU VM at half a core, 300 MiB in use of 1 GiB, its disk filling
    /// 1 MiB a minute from 1 GiB of 10.
    fn reading(i: i64) -> VmReading {
        let t = T0 + i * MINUTE;
        let stats = DomainStatsSample {
            uuid: Uuid::from_u128(1),
            name: "vm".into(),
            timestamp_ns: t,
            vcpus: Some(4),
            rows: vec![
                StatsRow {
                    measurement: VM_MEMORY,
                    key: None,
                    source: None,
                    counters: vec![
                        ("available_kb", 1 << 20),
                        ("usable_kb", (1 << 20) - 300 * 1024),
                    ],
                },
                StatsRow {
                    measurement: VM_DISK,
                    key: Some(("device", "vda".into())),
                    source: None,
                    counters: vec![
                        ("capacity_bytes", 10 << 30),
                        ("allocation_bytes", (1 << 30) + i as u64 * MIB),
                    ],
                },
            ],
            derived: Vec::new(),
            carried: Vec::new(),
        };
        VmReading {
            vm: DomainSample {
                uuid: Uuid::from_u128(1),
                name: "vm".into(),
                id: Some(1),
                state: VmState::Running,
                cpu_count: 4,
                memory_max_kb: 1 << 20,
                memory_used_kb: 1 << 20,
                cputime_ns: (i * MINUTE / 2) as u64,
                timestamp_ns: t,
            },
            memory_rate_kb_per_sec: None,
            extended: Some(ExtendedReading::from_stats(&stats)),
        }
    }

    fn cycle(t: i64, vms: Vec<VmReading>) -> HostCycle {
        HostCycle {
            uri: "test:///default".into(),
            host: "h".into(),
            cpus: Some(8),
            memory_total_kb: Some(4 << 20),
            timestamp_ns: t,
            vms,
        }
    }

    #[test]
    fn two_days_of_cycles_give_a_recommendation_a_disk_forecast_and_a_bounded_state() {
        let (mut outlook, settings) = (Outlook::default(), settings());
        for i in 0..2880 {
            outlook.observe(&cycle(T0 + i * MINUTE, vec![reading(i)]), &settings);
        }
        let host = &outlook.hosts["test:///default"];
        let vm = &host.vms[&1];
        let r = recommend(&vm.rightsizing, vm.cpu_count, vm.memory_max_kb).unwrap();
        assert_eq!((r.cpu.target, r.class), (1, Class::OverProvisioned));
        let resources: Vec<&str> = vm.forecasts.resources.iter().map(|r| &*r.name).collect();
        assert_eq!(resources, ["memory", "disk:vda"]);
        let [memory, disk] = [0, 1].map(|i| vm.forecasts.resources[i].last.unwrap());
        assert_eq!(memory.to_full, None, "300 MiB steady");
        // 10 GiB − (1 GiB + 2879 MiB) at 1 MiB a minute.
        let truth = (10.0 * 1024.0 - 1024.0 - 2879.0) * 60.0;
        let seconds = disk.to_full.unwrap().seconds;
        assert!((seconds / truth - 1.0).abs() < 0.01, "{seconds} vs {truth}");
        let committed = host.committed.resources[0].last.unwrap();
        assert_eq!(
            (committed.used, committed.capacity),
            ((1u64 << 30) as f64, (4u64 << 30) as f64)
        );
        // What a VM costs: the record, its histograms' buckets and its resources.
        let bytes = size_of::<VmOutlook>()
            + vm.rightsizing.buckets_held() * size_of::<(u16, f64)>()
            + vm.forecasts.resources.len() * (size_of::<Resource>() + 8);
        assert!(bytes <= 1024, "{bytes} bytes per VM");
        eprintln!(
            "outlook state per VM: {bytes} bytes, {} buckets",
            vm.rightsizing.buckets_held()
        );
    }

    #[test]
    fn the_state_survives_its_json_and_a_damaged_one_starts_afresh() {
        let (mut outlook, settings) = (Outlook::default(), settings());
        for i in 0..180 {
            outlook.observe(&cycle(T0 + i * MINUTE, vec![reading(i)]), &settings);
        }
        let json = outlook.to_json();
        let back = Outlook::from_json(&json);
        let (a, b) = (
            &outlook.hosts["test:///default"],
            &back.hosts["test:///default"],
        );
        let (a, b) = (&a.vms[&1], &b.vms[&1]);
        assert_eq!(a.rightsizing, b.rightsizing);
        assert_eq!(
            a.forecasts.resources[1].trend,
            b.forecasts.resources[1].trend
        );
        assert!(recommend(&b.rightsizing, 4, 1 << 20).is_some());
        eprintln!("outlook JSON: {} bytes for one VM", json.len());
        assert!(Outlook::from_json(b"{\"hosts\": 7}").hosts.is_empty());
    }

    #[test]
    fn a_vm_gone_is_kept_eight_days_then_forgotten() {
        let (mut outlook, settings) = (Outlook::default(), settings());
        for i in 0..3 {
            outlook.observe(&cycle(T0 + i * MINUTE, vec![reading(i)]), &settings);
        }
        let gone = |outlook: &Outlook| {
            outlook.hosts["test:///default"]
                .vms
                .get(&1)
                .map(|vm| vm.present)
        };
        outlook.observe(&cycle(T0 + DAY_NS, Vec::new()), &settings);
        assert_eq!(gone(&outlook), Some(false));
        outlook.observe(
            &cycle(T0 + FORGET_AFTER_NS + 2 * MINUTE, Vec::new()),
            &settings,
        );
        assert_eq!(gone(&outlook), None);
    }
}
