//! The insights' cost per VM-signal: model state in bytes, and CPU per cycle in µs, on trained
//! models with every signal present (the worst case), as the service pays it: the feature
//! actor's readings (`VmReading::new`), the insights actor's analysis (models, windows, peers,
//! conditions, the host's summary) and its lines.
//!
//! `cargo bench --bench insights_cost` prints one line per fleet shape: the median of several
//! cycles, per VM-signal, in wall time and in this thread's CPU time. Under
//! `cargo test --all-targets` (no `--bench` argument) it runs a small fleet once and checks it.

use std::hint::black_box;
use std::time::{Duration, Instant};

use uuid::Uuid;
use vmtelemetry::configuration::load_with_env;
use vmtelemetry::extended::{DomainStatsSample, StatsRow, VM_CPU, VM_DISK, VM_MEMORY, VM_NET};
use vmtelemetry::influx::line_protocol::VmTags;
use vmtelemetry::insights::detector::SignalModel;
use vmtelemetry::insights::encode::encode_host;
use vmtelemetry::insights::signals::{SIGNALS, VmReading};
use vmtelemetry::insights::vm::VmInsights;
use vmtelemetry::insights::{HostCycle, Insights, InsightsSettings};
use vmtelemetry::sample::{DomainSample, MemoryFeatures, VmState};

const MEASURED_CYCLES: usize = 15;

/// `config/default.toml`'s settings.
fn settings() -> InsightsSettings {
    let config = load_with_env(None, Vec::new()).expect("the defaults are valid");
    config.insights.expect("insights are on by default")
}

/// VM `i` of a host at cycle `c` (5 s apart): every counter moving, with some noise.
fn vm(i: usize, c: u64) -> (DomainSample, MemoryFeatures, DomainStatsSample) {
    let t = 1_717_000_000_000_000_000 + c as i64 * 5_000_000_000 + i as i64 * 1_000;
    let wobble = (c * 7 + i as u64 * 13) % 11;
    let n = c * 100 + wobble;
    let uuid = Uuid::from_u64_pair(0x5e5e_0000_0000_4000, i as u64);
    let name = format!("web-prod-{i:05}");
    let sample = DomainSample {
        id: Some(i as u32 + 1),
        name: name.clone().into(),
        uuid,
        state: VmState::Running,
        cpu_count: 2,
        memory_max_kb: 4 << 20,
        memory_used_kb: (2 << 20) + wobble * 1024,
        cputime_ns: n * 40_000_000,
        timestamp_ns: t,
    };
    let row = |measurement, key: Option<(&'static str, &str)>, counters| StatsRow {
        measurement,
        key: key.map(|(k, v)| (k, v.to_owned())),
        source: None,
        counters,
    };
    let rows = vec![
        row(
            VM_CPU,
            Some(("vcpu", "0")),
            vec![("vcpu_delay_ns", n * 1_000_000)],
        ),
        row(
            VM_CPU,
            Some(("vcpu", "1")),
            vec![("vcpu_delay_ns", n * 900_000)],
        ),
        row(
            VM_MEMORY,
            None,
            vec![
                ("swap_in_kb", n),
                ("swap_out_kb", n / 2),
                ("major_faults", n / 3),
            ],
        ),
        row(
            VM_DISK,
            Some(("device", "vda")),
            vec![
                ("read_bytes", n * 40_960),
                ("read_requests", n * 10),
                ("read_time_ns", n * 20_000_000),
                ("write_bytes", n * 81_920),
                ("write_requests", n * 20),
                ("write_time_ns", n * 30_000_000),
                ("errors", 0),
            ],
        ),
        row(
            VM_NET,
            Some(("interface", "tap0")),
            vec![
                ("rx_bytes", n * 9_000),
                ("tx_bytes", n * 7_000),
                ("rx_drops", 0),
                ("tx_drops", n / 50),
            ],
        ),
    ];
    let derived = vec![
        vec![],
        vec![],
        vec![("used_percent", 40.0 + wobble as f64)],
        vec![],
        vec![],
    ];
    let stats = DomainStatsSample {
        uuid,
        name,
        timestamp_ns: t,
        vcpus: Some(2),
        rows,
        derived,
        carried: Vec::new(),
    };
    let features = MemoryFeatures {
        memory_rate_kb_per_sec: wobble as f64 * 10.0,
        memory_angle_deg: 0.0,
    };
    (sample, features, stats)
}

/// One cycle of every host: the readings, the analysis and the lines. Returns the lines.
fn cycle(
    insights: &mut Insights,
    tags: &mut VmTags,
    hosts: &[Vec<(DomainSample, MemoryFeatures, DomainStatsSample)>],
) -> usize {
    let mut lines = 0;
    for (h, vms) in hosts.iter().enumerate() {
        let readings = vms
            .iter()
            .map(|(sample, features, stats)| VmReading::new(sample, Some(*features), Some(stats)))
            .collect();
        let cycle = HostCycle {
            uri: format!("qemu+ssh://kvm{h}/system").into(),
            host: format!("kvm{h}").into(),
            cpus: Some(64),
            memory_total_kb: Some(512 << 20),
            timestamp_ns: vms[0].0.timestamp_ns,
            vms: readings,
            guests: Vec::new(),
        };
        let (host, settings) = insights.observe(cycle);
        lines += black_box(encode_host(host, settings, tags)).lines.len();
    }
    lines
}

fn thread_cpu() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    Some(Duration::from_nanos(
        text.split_whitespace().next()?.parse().ok()?,
    ))
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// (wall, CPU) µs per VM-signal per cycle, medians over the measured cycles.
fn measure(hosts: usize, per_host: usize, warm_up: u64, measured: usize) -> (f64, Option<f64>) {
    let mut insights = Insights::new(settings());
    let mut tags = VmTags::default();
    let data = |c: u64| -> Vec<Vec<_>> {
        (0..hosts)
            .map(|_| (0..per_host).map(|i| vm(i, c)).collect())
            .collect()
    };
    for c in 0..warm_up {
        cycle(&mut insights, &mut tags, &data(c));
    }
    assert_eq!(
        insights.counts(),
        (hosts * per_host, hosts * per_host),
        "trained"
    );
    let signals = (hosts * per_host * SIGNALS) as f64;
    let (mut wall, mut cpu) = (Vec::new(), Vec::new());
    for c in warm_up..warm_up + measured as u64 {
        let input = data(c);
        let (cpu0, start) = (thread_cpu(), Instant::now());
        let lines = cycle(&mut insights, &mut tags, &input);
        wall.push(start.elapsed().as_secs_f64() * 1e6 / signals);
        if let (Some(a), Some(b)) = (cpu0, thread_cpu()) {
            cpu.push((b - a).as_secs_f64() * 1e6 / signals);
        }
        assert!(lines >= hosts * per_host, "{lines} lines");
    }
    let cpu = (cpu.len() == measured).then(|| median(cpu));
    (median(wall), cpu)
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this binary without it.
    let benchmarking = std::env::args().any(|a| a == "--bench");
    let warm_up = u64::from(settings().detector.learning_samples) + 2;
    if !benchmarking {
        let (wall, _) = measure(2, 20, warm_up, 2);
        assert!(wall > 0.0);
        println!("insights_cost: smoke run ok; `cargo bench --bench insights_cost` measures");
        return;
    }
    println!(
        "state: {} bytes per VM-signal (SignalModel), {} bytes per VM record of {SIGNALS} signals (VmInsights, boxed)",
        size_of::<SignalModel>(),
        size_of::<VmInsights>()
    );
    for (hosts, per_host) in [(10, 1_000), (1, 10_000)] {
        let (wall, cpu) = measure(hosts, per_host, warm_up, MEASURED_CYCLES);
        let cpu = cpu.map_or("CPU time unavailable".to_owned(), |c| {
            format!("{c:.3} µs CPU")
        });
        println!(
            "cycle of {hosts} host(s) x {per_host} VMs x {SIGNALS} signals, trained: {wall:.3} µs wall, {cpu} per VM-signal (median of {MEASURED_CYCLES} cycles)"
        );
    }
}
