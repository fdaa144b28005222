//! The outlook of every VM and host: right-sizing state and forecasts, fed from the same
//! per-cycle values as the rest of the insights, but kept apart from the VM records those hold:
//! a VM's right-sizing history outlives its absence for as long as VPA's memory window (8
//! days), and everything here is `serde`, so the snapshot store can carry it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::forecast::fill::GuestFill;
use super::forecast::{DISK, ForecastSettings, Forecasts};
use super::host::HostCycle;
use super::rightsizing::vm::{VmRightsizing, VpaClock};
use super::signals::VmReading;
use serde::{Deserialize, Serialize};

/// A VM not seen for longer than this many days is forgotten (VPA: 8 memory aggregation
/// intervals).
pub const FORGET_AFTER_DAYS: i64 = 8;
/// A host's committed memory: what its running VMs are given.
pub const COMMITTED_MEMORY: &str = "committed_memory";

#[derive(Debug, Clone, PartialEq)]
pub struct OutlookSettings {
    pub forecast: ForecastSettings,
    pub clock: VpaClock,
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
    /// The least memory its guest's kernel has counted available beyond its free memory
    /// (`Fill::memory_reclaimable`): caches it keeps even when full (on the test guest, the slab
    /// of its tmpfs files), so its memory runs out that much short of all it has.
    #[serde(default)]
    pub memory_held: Option<f64>,
    pub rightsizing: VmRightsizing,
    /// Its memory and disks, from its extended samples, and its guest's filesystems, from its
    /// agent's answers.
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
            vm.observe(reading, settings);
            if reading.running() {
                committed_kb = committed_kb.saturating_add(reading.vm.memory_max_kb);
            }
        }
        for guest in &cycle.guests {
            host.observe_guest(guest, settings);
        }
        let now = cycle.timestamp_ns;
        let forget_after = FORGET_AFTER_DAYS.saturating_mul(settings.clock.day_ns());
        host.vms.retain(|_, vm| {
            vm.present || now.saturating_sub(vm.rightsizing.last_seen_ns()) < forget_after
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
    pub fn observe_vm(&mut self, host: &Arc<str>, reading: &VmReading, settings: &OutlookSettings) {
        let outlook = self.hosts.entry(Arc::clone(host)).or_default();
        outlook.host = Arc::clone(host);
        outlook.timestamp_ns = outlook.timestamp_ns.max(reading.vm.timestamp_ns);
        let vm = outlook.vms.entry(reading.vm.uuid.as_u128()).or_default();
        vm.observe(reading, settings);
    }
}

impl HostOutlook {
    /// A guest agent's answer: its VM's filesystems (none for a VM not yet seen).
    pub fn observe_guest(&mut self, guest: &GuestFill, settings: &OutlookSettings) {
        if let Some(vm) = self.vms.get_mut(&guest.uuid.as_u128()) {
            let levels = guest.filesystems.iter().map(|(n, l)| (&**n, *l));
            vm.forecasts
                .observe_filesystems(guest.timestamp_ns, levels, &settings.forecast);
        }
    }
}

impl VmOutlook {
    fn observe(&mut self, reading: &VmReading, settings: &OutlookSettings) {
        let vm = &reading.vm;
        self.name.clone_from(&vm.name);
        (self.id, self.cpu_count, self.memory_max_kb) = (vm.id, vm.cpu_count, vm.memory_max_kb);
        self.present = true;
        if !reading.running() {
            return;
        }
        let clock = settings.clock;
        self.rightsizing
            .observe_cpu(vm.timestamp_ns, vm.cputime_ns, clock);
        let Some(extended) = &reading.extended else {
            return;
        };
        let fill = &extended.fill;
        if let Some((used, _)) = fill.memory {
            self.rightsizing
                .observe_memory(extended.timestamp_ns, used, clock);
        }
        let disks: Vec<(String, (f64, f64))> = fill
            .disks
            .iter()
            .map(|(device, level)| (format!("{DISK}{device}"), *level))
            .collect();
        if let Some(reclaimable) = fill.memory_reclaimable {
            let least = self
                .memory_held
                .map_or(reclaimable, |held| held.min(reclaimable));
            self.memory_held = Some(least);
        }
        let held = self.memory_held.unwrap_or(0.0);
        let memory = fill
            .memory
            .map(|(used, capacity)| ("memory", (used, (capacity - held).max(0.0))));
        let levels = memory
            .into_iter()
            .chain(disks.iter().map(|(name, level)| (name.as_str(), *level)));
        let (t_ns, forecast) = (extended.timestamp_ns, &settings.forecast);
        match fill.disks_read {
            true => self.forecasts.observe(t_ns, levels, forecast),
            false => self.forecasts.observe_keeping_disks(t_ns, levels, forecast),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::mem::size_of;

    use uuid::Uuid;

    use super::*;
    use crate::extended::{DomainStatsSample, StatsRow, VM_DISK, VM_MEMORY};
    use crate::guest::{GuestFs, GuestInfo, GuestSample};
    use crate::influx::line_protocol::VmTags;
    use crate::insights::forecast::Resource;
    use crate::insights::outlook_lines::due_lines;
    use crate::insights::rightsizing::recommend::{Class, recommend};
    use crate::insights::rightsizing::summary::recommendations;
    use crate::insights::rightsizing::vm::DAY_NS;
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
            clock: VpaClock::default(),
            forecast_every: Duration::from_secs(300),
            recommend_every: Duration::from_secs(3600),
        }
    }

    /// Minute `i` of a 4-vCPU VM at half a core, 300 MiB in use of 1 GiB, its disk filling
    /// 1 MiB a minute from 1 GiB of 10.
    fn reading(i: i64) -> VmReading {
        reading_sized(i, true)
    }

    /// The disk's sizes read or not (they have a cadence of their own: its counters then).
    fn reading_sized(i: i64, sized: bool) -> VmReading {
        let memory = vec![
            ("available_kb", 1 << 20),
            ("usable_kb", (1 << 20) - 300 * 1024),
        ];
        reading_with(i, memory, sized)
    }

    /// The same with these balloon counters.
    fn reading_with(i: i64, memory: Vec<(&'static str, u64)>, sized: bool) -> VmReading {
        let t = T0 + i * MINUTE;
        let disk = match sized {
            true => vec![
                ("capacity_bytes", 10 << 30),
                ("allocation_bytes", (1 << 30) + i as u64 * MIB),
            ],
            false => vec![("read_bytes", i as u64)],
        };
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
                    counters: memory,
                },
                StatsRow {
                    measurement: VM_DISK,
                    key: Some(("device", "vda".into())),
                    source: None,
                    counters: disk,
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
            guests: Vec::new(),
        }
    }

    #[test]
    fn a_disks_forecast_follows_its_sizes_cadence_and_outlives_the_cycles_between() {
        let (mut outlook, settings) = (Outlook::default(), settings());
        // Sizes every fifth cycle: the samples between keep the disk's trend as it was.
        for i in 0..600 {
            outlook.observe(
                &cycle(T0 + i * MINUTE, vec![reading_sized(i, i % 5 == 0)]),
                &settings,
            );
        }
        let vm = &outlook.hosts["test:///default"].vms[&1];
        let resources: Vec<&str> = vm.forecasts.resources.iter().map(|r| &*r.name).collect();
        assert_eq!(resources, ["memory", "disk:vda"]);
        let disk = vm.forecasts.resources[1].last.unwrap();
        // 10 GiB − (1 GiB + 595 MiB) at 1 MiB a minute.
        let truth = (10.0 * 1024.0 - 1024.0 - 595.0) * 60.0;
        let seconds = disk.to_full.unwrap().seconds;
        assert!((seconds / truth - 1.0).abs() < 0.02, "{seconds} vs {truth}");
    }

    #[test]
    fn two_days_of_cycles_give_a_recommendation_a_disk_forecast_and_a_bounded_state() {
        let (mut outlook, settings) = (Outlook::default(), settings());
        for i in 0..2880 {
            outlook.observe(&cycle(T0 + i * MINUTE, vec![reading(i)]), &settings);
        }
        let host = &outlook.hosts["test:///default"];
        let vm = &host.vms[&1];
        let r = recommend(
            &vm.rightsizing,
            vm.cpu_count,
            vm.memory_max_kb,
            settings.clock,
        )
        .unwrap();
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
    fn memory_is_forecast_to_run_out_short_of_the_caches_its_guest_never_freed() {
        let (mut outlook, settings) = (Outlook::default(), settings());
        // 1 GiB, a leak of 1 MiB a minute from 300 MiB; the kernel counts 20 MiB available
        // beyond its free memory, then (a page cache grown) 220 MiB: its least, 20 MiB, stays.
        for i in 0..120 {
            let beyond = if i < 60 { 20 } else { 220 };
            let usable = 1024 - 300 - i as u64;
            let memory = vec![
                ("available_kb", 1 << 20),
                ("usable_kb", usable << 10),
                ("unused_kb", (usable - beyond) << 10),
            ];
            let r = reading_with(i, memory, true);
            outlook.observe(&cycle(r.vm.timestamp_ns, vec![r]), &settings);
        }
        let vm = &outlook.hosts["test:///default"].vms[&1];
        let memory = vm.forecasts.resources[0].last.unwrap();
        assert_eq!(vm.memory_held, Some(20.0 * MIB as f64));
        // Less its kernel's low watermark: 4,096 KiB (√(16 × 2^20)) + 1,048 (0.1 %).
        let capacity = 1004.0 * MIB as f64 - 5144.0 * 1024.0;
        assert_eq!(memory.capacity, capacity);
        assert_eq!(memory.used, 419.0 * MIB as f64);
        // What is left of it at 1 MiB a minute.
        let truth = (capacity - memory.used) / MIB as f64 * 60.0;
        let seconds = memory.to_full.unwrap().seconds;
        assert!((seconds / truth - 1.0).abs() < 0.01, "{seconds} vs {truth}");
    }

    /// The agent's answer at minute `i`: `/var` filling 1 MiB a minute from 100 MiB of 1 GiB,
    /// `/` steady, and an empty filesystem of no size.
    fn guest_fs(i: i64) -> GuestFill {
        let fs = |mountpoint: &str, used_bytes: u64, total_bytes: u64| GuestFs {
            mountpoint: mountpoint.into(),
            fstype: "ext4".into(),
            device: "vda1".into(),
            total_bytes,
            used_bytes,
        };
        GuestFill::from_sample(&GuestSample {
            uuid: Uuid::from_u128(1),
            name: "vm".into(),
            id: Some(1),
            timestamp_ns: T0 + i * MINUTE,
            filesystems: vec![
                fs("/", 500 * MIB, 2 << 30),
                fs("/var", (100 + i as u64) * MIB, 1 << 30),
                fs("/proc", 0, 0),
            ],
            info: GuestInfo::default(),
            rejected: 0,
        })
    }

    #[test]
    fn guest_filesystems_are_forecast_at_the_agents_cadence_and_written_and_served() {
        let (mut outlook, settings) = (Outlook::default(), settings());
        // Cycles every 10 s, the agent's answers every minute; one for an unknown VM, ignored.
        for i in 0..6 * 600 {
            let mut cycle = cycle(T0 + i * MINUTE / 6, vec![reading(i / 6)]);
            if i % 6 == 0 {
                cycle.guests.push(guest_fs(i / 6));
                let mut stranger = guest_fs(i / 6);
                stranger.uuid = Uuid::from_u128(2);
                cycle.guests.push(stranger);
            }
            outlook.observe(&cycle, &settings);
        }
        let host = outlook.hosts.get_mut("test:///default").unwrap();
        let vm = &host.vms[&1];
        let names: Vec<&str> = vm.forecasts.resources.iter().map(|r| &*r.name).collect();
        assert_eq!(names, ["memory", "disk:vda", "fs:/", "fs:/var"]);
        let [root, var] = [2, 3].map(|i| vm.forecasts.resources[i].last.unwrap());
        assert_eq!(root.to_full, None, "steady");
        // 1 GiB − (100 + 599) MiB at 1 MiB a minute.
        let truth = (1024.0 - 699.0) * 60.0;
        let full = var.to_full.unwrap();
        assert!(
            (full.seconds / truth - 1.0).abs() < 0.01,
            "{full:?} vs {truth}"
        );
        assert!((var.growth_per_hour / (60.0 * MIB as f64) - 1.0).abs() < 0.01);
        let served = recommendations(&outlook, &Default::default(), settings.clock);
        let var = served.vms[0]
            .forecasts
            .iter()
            .find(|f| f.resource == "fs:/var");
        assert_eq!(var.unwrap().seconds_to_full, Some(full.seconds));
        let host = outlook.hosts.get_mut("test:///default").unwrap();
        let lines = due_lines(host, &settings, &mut VmTags::default()).lines;
        let text = String::from_utf8(lines.as_bytes().to_vec()).unwrap();
        let var_line = text.lines().find(|l| l.contains("resource=fs:/var"));
        assert!(var_line.is_some_and(|l| l.contains("growing=1i")), "{text}");
        // `/var` unmounted: its forecast goes; the rest stay.
        let mut last = guest_fs(600);
        last.filesystems.retain(|(name, _)| &**name != "fs:/var");
        let mut cycle = cycle(T0 + 600 * MINUTE, vec![reading(600)]);
        cycle.guests.push(last);
        outlook.observe(&cycle, &settings);
        let vm = &outlook.hosts["test:///default"].vms[&1];
        let names: Vec<&str> = vm.forecasts.resources.iter().map(|r| &*r.name).collect();
        assert_eq!(names, ["memory", "disk:vda", "fs:/"]);
    }

    /// No forecast negative or infinite, no interval upside down.
    fn sane(vm: &VmOutlook) {
        for outlook in vm.forecasts.resources.iter().filter_map(|r| r.last) {
            assert!(outlook.growth_per_hour.is_finite(), "{outlook:?}");
            if let Some(f) = outlook.to_full {
                assert!(f.seconds.is_finite() && f.seconds >= 0.0, "{outlook:?}");
                assert!(0.0 <= f.lower && f.lower <= f.seconds, "{outlook:?}");
                assert!(f.upper.is_none_or(|u| u.is_finite() && u >= f.seconds));
            }
        }
    }

    #[test]
    fn hot_plug_setmem_a_reboot_and_a_clock_step_give_sane_outlooks() {
        let (mut outlook, settings) = (Outlook::default(), settings());
        let vm = |outlook: &Outlook| outlook.hosts["test:///default"].vms[&1].clone();
        let step = |outlook: &mut Outlook, i: i64, change: &dyn Fn(&mut VmReading)| {
            let mut r = reading(i);
            change(&mut r);
            outlook.observe(&cycle(r.vm.timestamp_ns, vec![r]), &settings);
            sane(&vm(outlook));
        };
        for i in 0..1440 {
            step(&mut outlook, i, &|_| ());
        }
        // vCPUs hot-plugged 4 → 8 and memory set 1 GiB → 512 MiB (balloon and maximum).
        let resized = |r: &mut VmReading| {
            r.vm.cpu_count = 8;
            r.vm.memory_max_kb = 512 << 10;
            let memory = &mut r.extended.as_mut().unwrap().fill.memory;
            *memory = Some((300.0 * MIB as f64, 512.0 * MIB as f64));
        };
        for i in 1440..1500 {
            step(&mut outlook, i, &resized);
        }
        let r = recommend(&vm(&outlook).rightsizing, 8, 512 << 10, settings.clock).unwrap();
        assert_eq!((r.cpu.current, r.cpu.target, r.cpu.reclaimable), (8, 1, 7));
        assert_eq!(r.memory.unwrap().current, 512);
        // Memory set below what the guest uses: nothing negative.
        let squeezed = |r: &mut VmReading| {
            resized(r);
            r.extended.as_mut().unwrap().fill.memory = Some((300.0 * MIB as f64, 200e6));
        };
        (1500..1510).for_each(|i| step(&mut outlook, i, &squeezed));
        // A reboot (CPU time back to zero) and the clock stepping back an hour.
        let reboot = |r: &mut VmReading| {
            resized(r);
            r.vm.cputime_ns = 0;
        };
        step(&mut outlook, 1510, &reboot);
        (1450..1460).for_each(|i| step(&mut outlook, i, &resized));
        let after = recommend(&vm(&outlook).rightsizing, 8, 512 << 10, settings.clock);
        assert_eq!(after.map(|r| r.cpu.target), Some(1));
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
        assert!(recommend(&b.rightsizing, 4, 1 << 20, settings.clock).is_some());
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
            &cycle(T0 + FORGET_AFTER_DAYS * DAY_NS + 2 * MINUTE, Vec::new()),
            &settings,
        );
        assert_eq!(gone(&outlook), None);
    }
}
