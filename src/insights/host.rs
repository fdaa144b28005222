//! One host's insights: its VMs' records, each VM compared with its peers, and the host's summary
//! (its anomaly rate, its overcommit, its VMs per condition).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::bottlenecks::CONDITIONS;
use super::peers;
use super::settings::InsightsSettings;
use super::signals::{Signal, VmReading};
use super::vm::VmInsights;

/// One host's cycle, as the feature actor hands it over.
#[derive(Debug, Clone)]
pub struct HostCycle {
    /// The configured URI: it keys the host, so two hosts never mix.
    pub uri: Arc<str>,
    /// The `host` tag.
    pub host: Arc<str>,
    /// The host's CPUs and memory, when the cycle read them (`host_metrics`).
    pub cpus: Option<u32>,
    pub memory_total_kb: Option<u64>,
    /// When the cycle was read: its `host_insights` line's time.
    pub timestamp_ns: i64,
    /// Every VM of the cycle: a VM not in it is forgotten, with its models.
    pub vms: Vec<VmReading>,
}

pub struct HostInsights {
    pub host: Arc<str>,
    pub cpus: Option<u32>,
    pub memory_total_kb: Option<u64>,
    pub timestamp_ns: i64,
    pub vms: HashMap<Uuid, Box<VmInsights>>,
    pub summary: HostSummary,
}

/// What the host's last cycle came to.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct HostSummary {
    pub vms: usize,
    pub vms_trained: usize,
    /// VMs with at least one anomalous signal this cycle.
    pub vms_anomalous: usize,
    /// The share of anomalous signal-samples of all its VMs over the window.
    pub anomaly_rate: Option<f64>,
    /// vCPUs of its running VMs per host CPU.
    pub vcpu_overcommit: Option<f64>,
    /// Maximum memory of its running VMs per byte of host memory.
    pub memory_overcommit: Option<f64>,
    /// VMs in each condition, in `Condition::ALL` order (the API names them).
    #[serde(skip)]
    pub vms_in: [usize; CONDITIONS],
}

impl HostInsights {
    pub fn new(host: Arc<str>) -> Self {
        HostInsights {
            host,
            cpus: None,
            memory_total_kb: None,
            timestamp_ns: 0,
            vms: HashMap::new(),
            summary: HostSummary::default(),
        }
    }

    pub fn observe(&mut self, cycle: HostCycle, settings: &InsightsSettings) {
        self.host = cycle.host;
        self.cpus = cycle.cpus.or(self.cpus);
        self.memory_total_kb = cycle.memory_total_kb.or(self.memory_total_kb);
        self.timestamp_ns = cycle.timestamp_ns;
        let present: HashSet<Uuid> = cycle.vms.iter().map(|r| r.vm.uuid).collect();
        self.vms.retain(|uuid, _| present.contains(uuid));
        for reading in &cycle.vms {
            self.vms
                .entry(reading.vm.uuid)
                .or_insert_with(|| Box::new(VmInsights::new(reading)))
                .observe(reading, settings);
        }
        self.compare_peers(settings.peer_min_vms);
        self.summary = self.summarize(settings);
    }

    /// Marks, per signal, the VMs whose level departs from the majority of their peers.
    fn compare_peers(&mut self, min_vms: usize) {
        let mut vms: Vec<&mut Box<VmInsights>> = self.vms.values_mut().collect();
        if vms.len() < min_vms {
            return;
        }
        let mut levels = Vec::with_capacity(vms.len());
        for signal in Signal::ALL {
            levels.clear();
            levels.extend(vms.iter().map(|vm| vm.level(signal)));
            if levels.iter().flatten().count() < min_vms {
                continue;
            }
            let outlying = peers::outliers(&levels, signal.floor(), min_vms);
            for (vm, outlying) in vms.iter_mut().zip(outlying) {
                if outlying {
                    vm.last.peer_outliers |= 1 << signal as usize;
                }
            }
        }
    }

    fn summarize(&self, settings: &InsightsSettings) -> HostSummary {
        let mut summary = HostSummary {
            vms: self.vms.len(),
            ..HostSummary::default()
        };
        let (mut anomalous, mut scored) = (0, 0);
        let (mut vcpus, mut memory_kb) = (0u64, 0u64);
        for vm in self.vms.values() {
            summary.vms_trained += usize::from(vm.trained(settings));
            summary.vms_anomalous += usize::from(vm.last.anomalous != 0);
            let (a, s) = vm.window_counts();
            (anomalous, scored) = (anomalous + a, scored + s);
            if vm.vm.running {
                vcpus += u64::from(vm.vm.cpu_count);
                memory_kb = memory_kb.saturating_add(vm.vm.memory_max_kb);
            }
            for active in vm.bottlenecks.active(&settings.thresholds) {
                summary.vms_in[active.condition as usize] += 1;
            }
        }
        summary.anomaly_rate = (scored > 0).then(|| anomalous as f64 / scored as f64);
        summary.vcpu_overcommit = ratio(vcpus, self.cpus.map(u64::from));
        summary.memory_overcommit = ratio(memory_kb, self.memory_total_kb);
        summary
    }
}

fn ratio(allocated: u64, capacity: Option<u64>) -> Option<f64> {
    let capacity = capacity.filter(|c| *c > 0)?;
    Some(allocated as f64 / capacity as f64)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::extended::{DomainStatsSample, StatsRow, VM_CPU, VM_DISK, VM_MEMORY, VM_NET};
    use crate::insights::bottlenecks::{Condition, Thresholds};
    use crate::insights::detector::DetectorSettings;
    use crate::insights::signals::{ExtendedReading, VmIdentity};
    use crate::insights::vm::CycleResult;

    const SEC: i64 = 1_000_000_000;

    fn settings() -> InsightsSettings {
        InsightsSettings {
            detector: DetectorSettings {
                learning_samples: 20,
                baseline_samples: 100,
                threshold: 5.0,
            },
            window: Duration::from_secs(900),
            max_gap: Duration::from_secs(60),
            peer_min_vms: 5,
            thresholds: Thresholds::defaults(),
        }
    }

    /// A VM's counters at time `t`: what a real guest's bulk stats would say.
    struct Guest {
        n: u128,
        t: i64,
        cputime_ns: u64,
        disk_bytes: u64,
        disk_ops: u64,
        disk_ns: u64,
        rx: u64,
        with_disk: bool,
    }

    impl Guest {
        fn new(n: u128) -> Self {
            Guest {
                n,
                t: 1_000 * SEC,
                cputime_ns: 0,
                disk_bytes: 0,
                disk_ops: 0,
                disk_ns: 0,
                rx: 0,
                with_disk: true,
            }
        }

        /// Advances `dt` seconds at `cpu` percent of one vCPU, with a little noise.
        fn step(&mut self, dt: i64, cpu: f64) -> VmReading {
            let wobble = (self.t / SEC % 7) as f64 * 0.3;
            self.t += dt * SEC;
            self.cputime_ns += ((cpu + wobble) / 100.0 * (dt * SEC) as f64) as u64;
            self.disk_bytes += 40_000 * dt as u64;
            self.disk_ops += 10 * dt as u64;
            self.disk_ns += 10 * dt as u64 * 2_000_000;
            self.rx += 9_000 * dt as u64;
            self.reading()
        }

        fn reading(&self) -> VmReading {
            let mut rows = vec![
                StatsRow {
                    measurement: VM_CPU,
                    key: Some(("vcpu", "0".into())),
                    counters: vec![("vcpu_delay_ns", self.cputime_ns / 100)],
                },
                StatsRow {
                    measurement: VM_NET,
                    key: Some(("interface", "tap0".into())),
                    counters: vec![("rx_bytes", self.rx), ("rx_drops", 0)],
                },
                StatsRow {
                    measurement: VM_MEMORY,
                    key: None,
                    counters: vec![("swap_in_kb", 0), ("major_faults", 7)],
                },
            ];
            if self.with_disk {
                rows.push(StatsRow {
                    measurement: VM_DISK,
                    key: Some(("device", "vda".into())),
                    counters: vec![
                        ("read_bytes", self.disk_bytes),
                        ("read_requests", self.disk_ops),
                        ("read_time_ns", self.disk_ns),
                        ("errors", 0),
                    ],
                });
            }
            let stats = DomainStatsSample {
                uuid: Uuid::from_u128(self.n),
                name: format!("vm-{}", self.n),
                timestamp_ns: self.t,
                vcpus: Some(1),
                rows,
                derived: Vec::new(),
                carried: Vec::new(),
            };
            VmReading {
                vm: VmIdentity {
                    uuid: Uuid::from_u128(self.n),
                    name: format!("vm-{}", self.n).into(),
                    id: Some(self.n as u32),
                    running: true,
                    cpu_count: 1,
                    memory_max_kb: 1 << 20,
                    timestamp_ns: self.t,
                },
                memory_used_kb: 1 << 19,
                cputime_ns: self.cputime_ns,
                memory_rate_kb_per_sec: Some(0.0),
                extended: Some(ExtendedReading::from_stats(&stats)),
            }
        }
    }

    fn cycle(t: i64, vms: Vec<VmReading>) -> HostCycle {
        HostCycle {
            uri: "test:///default".into(),
            host: "h".into(),
            cpus: Some(4),
            memory_total_kb: Some(4 << 20),
            timestamp_ns: t,
            vms,
        }
    }

    /// Every score of every VM is in [0, 1]; returns the anomalous signals of VM `n`.
    fn check(host: &HostInsights, n: u128) -> Vec<Signal> {
        for vm in host.vms.values() {
            for score in vm.last.scores.iter().flatten() {
                assert!((0.0..=1.0).contains(score), "{score}");
            }
        }
        let vm = &host.vms[&Uuid::from_u128(n)];
        Signal::ALL
            .into_iter()
            .filter(|s| vm.last.anomalous & (1 << *s as usize) != 0)
            .collect()
    }

    #[test]
    fn a_cpu_burst_after_a_steady_phase_is_an_anomaly_then_cpu_saturated() {
        let settings = settings();
        let mut host = HostInsights::new("h".into());
        let mut guests: Vec<Guest> = (1..=6).map(Guest::new).collect();
        for _ in 0..60 {
            let readings = guests.iter_mut().map(|g| g.step(5, 10.0)).collect();
            host.observe(cycle(guests[0].t, readings), &settings);
            assert!(check(&host, 1).is_empty());
        }
        assert_eq!(host.summary.vms_trained, 6);
        for round in 0..3 {
            let readings = guests
                .iter_mut()
                .map(|g| g.step(5, if g.n == 1 { 97.0 } else { 10.0 }))
                .collect();
            host.observe(cycle(guests[0].t, readings), &settings);
            if round == 0 {
                assert_eq!(check(&host, 1), [Signal::CpuPercent]);
                assert!(check(&host, 2).is_empty());
            }
        }
        let vm = &host.vms[&Uuid::from_u128(1)];
        assert!(CycleResult::has(vm.last.peer_outliers, Signal::CpuPercent));
        let active: Vec<_> = vm.bottlenecks.active(&settings.thresholds).collect();
        assert_eq!(active.len(), 1, "{active:?}");
        assert_eq!(active[0].condition, Condition::CpuSaturated);
        assert_eq!(active[0].held_sec, 10.0);
        assert_eq!(host.summary.vms_in[Condition::CpuSaturated as usize], 1);
        assert_eq!(host.summary.vcpu_overcommit, Some(1.5));
        assert_eq!(host.summary.memory_overcommit, Some(1.5));
        assert!(host.summary.anomaly_rate.unwrap() > 0.0);
    }

    #[test]
    fn gaps_clock_steps_and_reset_counters_raise_no_anomaly() {
        let settings = settings();
        let mut host = HostInsights::new("h".into());
        let mut guest = Guest::new(1);
        let run = |host: &mut HostInsights, guest: &mut Guest, cycles: usize| {
            for _ in 0..cycles {
                let reading = guest.step(5, 30.0);
                host.observe(cycle(guest.t, vec![reading]), &settings);
                assert!(check(host, 1).is_empty(), "at {}", guest.t);
            }
        };
        run(&mut host, &mut guest, 40);
        // Paused for an hour, then busier counters: the first samples span nothing.
        guest.t += 3600 * SEC;
        run(&mut host, &mut guest, 5);
        // The service stopped for a day.
        guest.t += 86_400 * SEC;
        run(&mut host, &mut guest, 5);
        // The clock stepped back a minute.
        guest.t -= 60 * SEC;
        run(&mut host, &mut guest, 5);
        // A reboot: every counter starts again from zero.
        guest.cputime_ns = 0;
        (guest.disk_bytes, guest.disk_ops, guest.disk_ns, guest.rx) = (0, 0, 0, 0);
        run(&mut host, &mut guest, 5);
        // The same timestamp twice (a zero Δt).
        let again = guest.reading();
        host.observe(cycle(guest.t, vec![again]), &settings);
        assert!(check(&host, 1).is_empty());
        run(&mut host, &mut guest, 5);
    }

    #[test]
    fn missing_devices_not_finite_values_and_vanished_vms() {
        let settings = settings();
        let mut host = HostInsights::new("h".into());
        let mut bare = Guest::new(1);
        bare.with_disk = false;
        let mut odd = Guest::new(2);
        for i in 0..30 {
            let mut a = bare.step(5, 20.0);
            if i % 2 == 0 {
                a.extended = None; // no stats this cycle, or no balloon
            }
            let mut b = odd.step(5, 20.0);
            b.memory_rate_kb_per_sec = Some([f64::NAN, f64::INFINITY, 1e300][i % 3]);
            b.vm.memory_max_kb = 0;
            b.vm.cpu_count = 0;
            host.observe(cycle(bare.t, vec![a, b]), &settings);
            check(&host, 1);
            check(&host, 2);
        }
        let vm = &host.vms[&Uuid::from_u128(1)];
        assert_eq!(vm.last.values.get(Signal::DiskReadBytesPerSec), None);
        assert!(vm.last.values.get(Signal::NetRxBytesPerSec).is_some());
        let odd_vm = &host.vms[&Uuid::from_u128(2)];
        assert_eq!(odd_vm.last.values.get(Signal::CpuPercent), None);
        assert_eq!(odd_vm.last.values.get(Signal::MemoryUsedPercent), None);
        // VM 2 leaves the host: its models go with it.
        host.observe(cycle(bare.t, vec![bare.step(5, 20.0)]), &settings);
        assert_eq!(host.vms.len(), 1);
        assert_eq!(host.summary.vms, 1);
    }

    #[test]
    fn ten_thousand_vms_appearing_at_once_all_start_learning() {
        let settings = settings();
        let mut host = HostInsights::new("h".into());
        let mut guests: Vec<Guest> = (1..=10_000).map(Guest::new).collect();
        for _ in 0..3 {
            let readings = guests.iter_mut().map(|g| g.step(5, 10.0)).collect();
            host.observe(cycle(guests[0].t, readings), &settings);
        }
        assert_eq!(host.summary.vms, 10_000);
        assert_eq!(host.summary.vms_trained, 0);
        assert!(host.vms.values().all(|vm| vm.last.learning != 0));
        assert!(host.vms.values().all(|vm| vm.last.anomalous == 0));
    }
}
