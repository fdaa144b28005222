//! The forecasts' and right-sizing's state (`insights::outlook`) per VM at 10,000 VMs, measured:
//! glibc's heap in use (`mallinfo2`) before and after 26 hours of one cycle a minute (every VM
//! with guest memory and a disk forecast, its CPU swinging over the day so that its histogram
//! spreads), and the size of its snapshot (the JSON `insights.redb` keeps).
//!
//! `cargo bench --bench outlook_state` prints one line; under `cargo test --all-targets` (no
//! `--bench` argument) it runs 50 VMs for 3 hours and checks the state is bounded.

use std::f64::consts::TAU;

use uuid::Uuid;
use vmtelemetry::configuration::load_with_env;
use vmtelemetry::extended::{DomainStatsSample, StatsRow, VM_DISK, VM_MEMORY};
use vmtelemetry::insights::HostCycle;
use vmtelemetry::insights::outlook::{Outlook, OutlookSettings};
use vmtelemetry::insights::signals::VmReading;
use vmtelemetry::sample::{DomainSample, VmState};

const MINUTE_NS: i64 = 60_000_000_000;
const T0: i64 = 1_717_000_000_000_000_000;
const GIB: u64 = 1 << 30;

/// VM `i` at minute `m`, its CPU time so far given: 4 vCPUs, 0.1 to 2 cores over the day, 2 to
/// 3 GiB of its 8 in use, its disk filling 1 MiB a minute.
fn reading(i: usize, m: i64, cputime_ns: u64) -> VmReading {
    let t = T0 + m * MINUTE_NS;
    let uuid = Uuid::from_u64_pair(0x0071_0000_0000_4000, i as u64);
    let name = format!("web-prod-{i:05}");
    let used_kb = (2 << 20) + ((m as u64 * 37 + i as u64 * 11) % 1024) * 1024;
    let row = |measurement, key: Option<(&'static str, &str)>, counters| StatsRow {
        measurement,
        key: key.map(|(k, v)| (k, v.to_owned())),
        source: None,
        counters,
    };
    let stats = DomainStatsSample {
        uuid,
        name: name.clone(),
        timestamp_ns: t,
        vcpus: Some(4),
        rows: vec![
            row(
                VM_MEMORY,
                None,
                vec![
                    ("available_kb", 8 << 20),
                    ("usable_kb", (8 << 20) - used_kb),
                ],
            ),
            row(
                VM_DISK,
                Some(("device", "vda")),
                vec![
                    ("capacity_bytes", 100 * GIB),
                    ("allocation_bytes", 10 * GIB + m as u64 * (1 << 20)),
                ],
            ),
        ],
        derived: vec![vec![], vec![]],
        carried: Vec::new(),
    };
    let vm = DomainSample {
        id: Some(i as u32 + 1),
        name: name.into(),
        uuid,
        state: VmState::Running,
        cpu_count: 4,
        memory_max_kb: 8 << 20,
        memory_used_kb: 8 << 20,
        cputime_ns,
        timestamp_ns: t,
    };
    VmReading::new(&vm, None, Some(&stats))
}

/// Cores VM `i` uses in minute `m`: a day's swing, different per VM.
fn cores(i: usize, m: i64) -> f64 {
    let phase = (m as f64 / 1440.0 + i as f64 / 97.0) * TAU;
    1.05 + 0.95 * phase.sin()
}

/// glibc's heap in use: its arenas' chunks and its mmapped ones.
fn heap_in_use() -> usize {
    // SAFETY: mallinfo2 only reads glibc's allocator statistics.
    let info = unsafe { libc::mallinfo2() };
    info.uordblks + info.hblkhd
}

/// (heap bytes per VM, snapshot bytes per VM, histogram buckets per VM).
fn measure(vms: usize, minutes: i64, settings: &OutlookSettings) -> (f64, f64, f64) {
    let before = heap_in_use();
    let mut outlook = Outlook::default();
    let mut cputime = vec![0u64; vms];
    for m in 0..minutes {
        let readings = (0..vms)
            .map(|i| {
                cputime[i] += (cores(i, m) * MINUTE_NS as f64) as u64;
                reading(i, m, cputime[i])
            })
            .collect();
        let cycle = HostCycle {
            uri: "qemu+ssh://kvm0/system".into(),
            host: "kvm0".into(),
            cpus: Some(256),
            memory_total_kb: Some(1 << 32),
            timestamp_ns: T0 + m * MINUTE_NS,
            vms: readings,
            guests: Vec::new(),
        };
        outlook.observe(&cycle, settings);
    }
    drop(cputime);
    let heap = heap_in_use().saturating_sub(before) as f64 / vms as f64;
    let snapshot = outlook.to_json().len() as f64 / vms as f64;
    let host = outlook.hosts.values().next().expect("one host");
    let buckets = host.vms.values().map(|vm| vm.rightsizing.buckets_held());
    let buckets = buckets.sum::<usize>() as f64 / vms as f64;
    (heap, snapshot, buckets)
}

fn main() {
    let config = load_with_env(None, Vec::new()).expect("the defaults are valid");
    if !std::env::args().any(|a| a == "--bench") {
        let (heap, snapshot, _) = measure(50, 180, &config.outlook);
        assert!(heap > 100.0 && heap < 4096.0, "{heap} bytes per VM");
        assert!(snapshot > 100.0, "{snapshot} bytes per VM");
        println!("outlook_state: smoke run ok; `cargo bench --bench outlook_state` measures");
        return;
    }
    let (vms, minutes) = (10_000, 26 * 60);
    let (heap, snapshot, buckets) = measure(vms, minutes, &config.outlook);
    println!(
        "outlook state at {vms} VMs after {} h of 1-minute cycles (memory and disk forecasts, CPU 0.1-2 cores over the day): {heap:.0} bytes per VM on the heap (glibc mallinfo2), {snapshot:.0} bytes per VM of snapshot JSON, {buckets:.1} histogram buckets per VM",
        minutes / 60
    );
}
