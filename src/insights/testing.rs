//! What the insights' unit tests feed them: guests whose counters move as a real guest's bulk
//! stats would say, in a host's cycles.

use std::time::Duration;

use uuid::Uuid;

use super::InsightsSettings;
use super::bottlenecks::Thresholds;
use super::detector::DetectorSettings;
use super::host::{HostCycle, HostInsights};
use super::signals::{SOURCES_OF_ROWS, Signal, VmReading};
use crate::extended::{DomainStatsSample, StatsRow, VM_CPU, VM_DISK, VM_MEMORY, VM_NET};
use crate::sample::{DomainSample, MemoryFeatures, VmState};

pub const SEC: i64 = 1_000_000_000;

/// Short learning and baseline, the rest as `config/default.toml`.
pub fn settings() -> InsightsSettings {
    InsightsSettings {
        detector: DetectorSettings {
            learning_samples: 20,
            baseline_samples: 100,
            threshold: 5.0,
        },
        window: Duration::from_secs(900),
        max_gap: Duration::from_secs(60),
        source_gaps: [Duration::from_secs(60); SOURCES_OF_ROWS],
        peer_min_vms: 5,
        thresholds: Thresholds::defaults(),
        snapshots: None,
    }
}

/// A VM's counters at time `t`: what a real guest's bulk stats would say.
pub struct Guest {
    pub n: u128,
    pub t: i64,
    pub cputime_ns: u64,
    pub disk_bytes: u64,
    pub disk_ops: u64,
    pub disk_ns: u64,
    pub rx: u64,
    pub with_disk: bool,
}

impl Guest {
    pub fn new(n: u128) -> Self {
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
    pub fn step(&mut self, dt: i64, cpu: f64) -> VmReading {
        let wobble = (self.t / SEC % 7) as f64 * 0.3;
        self.t += dt * SEC;
        self.cputime_ns += ((cpu + wobble) / 100.0 * (dt * SEC) as f64) as u64;
        self.disk_bytes += 40_000 * dt as u64;
        self.disk_ops += 10 * dt as u64;
        self.disk_ns += 10 * dt as u64 * 2_000_000;
        self.rx += 9_000 * dt as u64;
        self.reading()
    }

    pub fn reading(&self) -> VmReading {
        let mut rows = vec![
            StatsRow {
                measurement: VM_CPU,
                key: Some(("vcpu", "0".into())),
                source: None,
                counters: vec![("vcpu_delay_ns", self.cputime_ns / 100)],
            },
            StatsRow {
                measurement: VM_NET,
                key: Some(("interface", "tap0".into())),
                source: None,
                counters: vec![("rx_bytes", self.rx), ("rx_drops", 0)],
            },
            StatsRow {
                measurement: VM_MEMORY,
                key: None,
                source: None,
                counters: vec![("swap_in_kb", 0), ("major_faults", 7)],
            },
        ];
        if self.with_disk {
            rows.push(StatsRow {
                measurement: VM_DISK,
                key: Some(("device", "vda".into())),
                source: None,
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
        let sample = DomainSample {
            id: Some(self.n as u32),
            name: format!("vm-{}", self.n).into(),
            uuid: Uuid::from_u128(self.n),
            state: VmState::Running,
            cpu_count: 1,
            memory_max_kb: 1 << 20,
            memory_used_kb: 1 << 19,
            cputime_ns: self.cputime_ns,
            timestamp_ns: self.t,
        };
        let features = MemoryFeatures {
            memory_rate_kb_per_sec: 0.0,
            memory_angle_deg: 0.0,
        };
        VmReading::new(&sample, Some(features), Some(&stats))
    }
}

pub fn cycle(t: i64, vms: Vec<VmReading>) -> HostCycle {
    HostCycle {
        uri: "test:///default".into(),
        host: "h".into(),
        cpus: Some(4),
        memory_total_kb: Some(4 << 20),
        timestamp_ns: t,
        vms,
        guests: Vec::new(),
    }
}

/// Every score of every VM is in [0, 1]; returns the anomalous signals of VM `n`.
pub fn check(host: &HostInsights, n: u128) -> Vec<Signal> {
    for vm in host.vms.values() {
        for score in vm.last.scores.given() {
            assert!((0.0..=1.0).contains(&score), "{score}");
        }
    }
    let vm = &host.vms[&Uuid::from_u128(n)];
    Signal::ALL
        .into_iter()
        .filter(|s| vm.last.anomalous & (1 << *s as usize) != 0)
        .collect()
}

/// An empty host, and guests 1 to `n`.
pub fn host_and_guests(n: u128) -> (HostInsights, Vec<Guest>) {
    (
        HostInsights::new("h".into()),
        (1..=n).map(Guest::new).collect(),
    )
}

/// One cycle of every guest, each at the CPU `cpu` gives it, observed by `host`.
pub fn step_all(
    host: &mut HostInsights,
    guests: &mut [Guest],
    settings: &InsightsSettings,
    cpu: impl Fn(&Guest) -> f64,
) {
    let readings = guests.iter_mut().map(|g| g.step(5, cpu(g))).collect();
    host.observe(cycle(guests[0].t, readings), settings);
}
