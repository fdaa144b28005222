//! One host's insights: its VMs' records, each VM compared with its peers, and the host's summary
//! (its anomaly rate, its overcommit, its VMs per condition).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::bottlenecks::CONDITIONS;
use super::forecast::fill::GuestFill;
use super::peers;
use super::settings::InsightsSettings;
use super::signals::{Signal, VmReading};
use super::vm::{Learned, VmInsights};

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
    /// The guest agents' filesystems, when the cycle carried the guest lane's answers.
    pub guests: Vec<GuestFill>,
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
                .or_insert_with(|| Box::new(VmInsights::new(reading, Learned::default())))
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
            if vm.running() {
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
    use super::*;
    use crate::insights::bottlenecks::Condition;
    use crate::insights::testing::{Guest, SEC, check, cycle, host_and_guests, settings, step_all};
    use crate::insights::vm::CycleResult;
    use crate::sample::VmState;

    #[test]
    fn a_cpu_burst_after_a_steady_phase_is_an_anomaly_then_cpu_saturated() {
        let settings = settings();
        let (mut host, mut guests) = host_and_guests(6);
        for _ in 0..60 {
            step_all(&mut host, &mut guests, &settings, |_| 10.0);
            assert!(check(&host, 1).is_empty());
        }
        assert_eq!(host.summary.vms_trained, 6);
        for round in 0..3 {
            step_all(&mut host, &mut guests, &settings, |g| match g.n {
                1 => 97.0,
                _ => 10.0,
            });
            // Anomalous once the departure lasts: its second cycle.
            if round == 1 {
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
        let run = |host: &mut HostInsights, guest: &mut Guest, cycles: usize, cpu: f64| {
            for _ in 0..cycles {
                let reading = guest.step(5, cpu);
                host.observe(cycle(guest.t, vec![reading]), &settings);
                assert!(check(host, 1).is_empty(), "at {} s", guest.t / SEC);
            }
        };
        run(&mut host, &mut guest, 40, 30.0);
        // Paused for an hour (listed, not running), then busier: its levels are stale.
        for _ in 0..720 {
            let mut paused = guest.step(5, 0.0);
            paused.vm.state = VmState::Paused;
            host.observe(cycle(guest.t, vec![paused]), &settings);
            assert!(check(&host, 1).is_empty());
        }
        run(&mut host, &mut guest, 20, 70.0);
        // Unheard of for an hour while running (its host unreachable), back at its old level.
        guest.t += 3600 * SEC;
        run(&mut host, &mut guest, 20, 30.0);
        // The service stopped for a day, or the clock stepped a day on: back much lighter.
        guest.t += 86_400 * SEC;
        run(&mut host, &mut guest, 20, 5.0);
        // The clock stepped back a minute.
        guest.t -= 60 * SEC;
        run(&mut host, &mut guest, 5, 5.0);
        // A reboot: every counter starts again from zero.
        guest.cputime_ns = 0;
        (guest.disk_bytes, guest.disk_ops, guest.disk_ns, guest.rx) = (0, 0, 0, 0);
        run(&mut host, &mut guest, 5, 5.0);
        // The same timestamp twice (a zero Δt).
        let again = guest.reading();
        host.observe(cycle(guest.t, vec![again]), &settings);
        assert!(check(&host, 1).is_empty());
        run(&mut host, &mut guest, 5, 5.0);
        // Still trained and scored throughout: a gap is not a reason to learn again.
        let vm = &host.vms[&Uuid::from_u128(1)];
        assert!(vm.trained(&settings));
        assert!(vm.last.scores.get(Signal::CpuPercent).is_some());
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
        let (mut host, mut guests) = host_and_guests(10_000);
        for _ in 0..3 {
            step_all(&mut host, &mut guests, &settings, |_| 10.0);
        }
        assert_eq!(host.summary.vms, 10_000);
        assert_eq!(host.summary.vms_trained, 0);
        assert!(host.vms.values().all(|vm| vm.last.learning != 0));
        assert!(host.vms.values().all(|vm| vm.last.anomalous == 0));
    }
}
