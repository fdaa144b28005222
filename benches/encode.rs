//! Line encoding throughput: `vm_metrics` + `vm_features` on realistic samples, on one core,
//! each pass into one fresh buffer as the feature actor encodes a cycle.
//!
//! `cargo bench --bench encode` prints one line per figure: the median of several runs, in lines
//! per second of wall time and per second of this thread's CPU time (one core). Under
//! `cargo test --all-targets` (no `--bench` argument) it encodes a few samples once and checks
//! them, so the test suite stays fast.

use std::hint::black_box;
use std::time::{Duration, Instant};

use vmtelemetry::influx::line_protocol::{Lines, VmTags, vm_features, vm_metrics};
use vmtelemetry::sample::{DomainSample, MemoryFeatures, VmState};

/// VMs per pass: a large host's worth, so the working set is realistic rather than one hot line.
const VMS: usize = 10_000;
const RUNS: usize = 7;
/// Each run encodes at least this long.
const RUN_TIME: Duration = Duration::from_millis(600);

fn samples(count: usize) -> Vec<(DomainSample, MemoryFeatures)> {
    let roles = [
        "web",
        "db",
        "cache",
        "build",
        "k8s-worker",
        "mail",
        "vpn",
        "ci-runner",
    ];
    (0..count)
        .map(|i| {
            let running = i % 5 != 0; // one in five shut off
            let memory_max_kb = [524_288, 1_048_576, 2_097_152, 4_194_304, 8_388_608][i % 5];
            let used = memory_max_kb / 2 + (i as u64 * 4_099) % (memory_max_kb / 2);
            let rate = ((i % 17) as f64 - 8.0) * 12.375;
            let sample = DomainSample {
                id: running.then_some(i as u32 + 1),
                name: format!("{}-prod-{:04}", roles[i % roles.len()], i).into(),
                uuid: uuid::Uuid::from_u64_pair(
                    0x5e5e_0000_0000_4000 + ((i as u64) << 16) + (i as u64 % 0xfff),
                    0x8000_0000_0000_0000 + i as u64 * 0x9e37_79b9,
                ),
                state: if running {
                    VmState::Running
                } else {
                    VmState::Stopped
                },
                cpu_count: [1, 2, 4, 8][i % 4],
                memory_max_kb,
                memory_used_kb: if running { used } else { 0 },
                cputime_ns: if running {
                    1_000_000_000 * (i as u64 % 90_000) + 123_456_789
                } else {
                    0
                },
                timestamp_ns: 1_717_000_000_000_000_000 + i as i64 * 97_000,
            };
            let features = MemoryFeatures {
                memory_rate_kb_per_sec: rate,
                memory_angle_deg: (rate + 1e-12).atan().to_degrees(),
            };
            (sample, features)
        })
        .collect()
}

const HOST: &str = "kvm-node-07.example.net";

/// Encodes every sample once with `which`, into one buffer sized as the feature actor sizes a
/// cycle's; returns the lines and bytes produced.
fn pass(data: &[(DomainSample, MemoryFeatures)], which: Which) -> (u64, u64) {
    let mut lines = Lines::with_capacity(data.len() * 2 * 200);
    let mut tags = VmTags::default();
    for (sample, features) in data {
        let sample = black_box(sample);
        tags.set(black_box(HOST), sample.id, &sample.name, &sample.uuid)
            .expect("encodable");
        if which != Which::Features {
            vm_metrics(&mut lines, &tags, sample).expect("encodable");
        }
        if which != Which::Metrics {
            vm_features(&mut lines, &tags, sample, black_box(features)).expect("encodable");
        }
    }
    let lines = black_box(lines);
    (lines.len() as u64, lines.as_bytes().len() as u64)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Which {
    Both,
    Metrics,
    Features,
}

/// This thread's CPU time so far (Linux: first field of /proc/thread-self/schedstat, in ns).
fn thread_cpu() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = text.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

struct Run {
    lines_per_wall_sec: f64,
    lines_per_cpu_sec: Option<f64>,
    bytes_per_line: f64,
}

fn run(data: &[(DomainSample, MemoryFeatures)], which: Which) -> Run {
    let (mut lines, mut bytes) = (0u64, 0u64);
    let cpu0 = thread_cpu();
    let start = Instant::now();
    while start.elapsed() < RUN_TIME {
        let (l, b) = pass(data, which);
        lines += l;
        bytes += b;
    }
    let wall = start.elapsed().as_secs_f64();
    let cpu = cpu0.zip(thread_cpu()).map(|(a, b)| (b - a).as_secs_f64());
    Run {
        lines_per_wall_sec: lines as f64 / wall,
        lines_per_cpu_sec: cpu.filter(|&c| c > 0.0).map(|c| lines as f64 / c),
        bytes_per_line: bytes as f64 / lines as f64,
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this binary without it.
    let benchmarking = std::env::args().any(|a| a == "--bench");
    if !benchmarking {
        let data = samples(100);
        let (lines, bytes) = pass(&data, Which::Both);
        assert_eq!(lines, 200);
        assert!(bytes > 200 * 100, "{bytes} bytes for {lines} lines");
        // What is measured is valid line protocol, as InfluxDB 3's parser reads it.
        let mut encoded = Lines::default();
        let mut tags = VmTags::default();
        for (sample, features) in &data {
            tags.set(HOST, sample.id, &sample.name, &sample.uuid)
                .unwrap();
            vm_metrics(&mut encoded, &tags, sample).unwrap();
            vm_features(&mut encoded, &tags, sample, features).unwrap();
        }
        let text = std::str::from_utf8(encoded.as_bytes()).unwrap();
        let parsed = influxdb_line_protocol::parse_lines(text)
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        assert_eq!(parsed.len(), 200);
        println!("encode: smoke run ok ({lines} lines); `cargo bench --bench encode` measures");
        return;
    }
    let data = samples(VMS);
    // Warm up allocator and caches.
    for _ in 0..3 {
        black_box(pass(&data, Which::Both));
    }
    for (which, label) in [
        (Which::Both, "vm_metrics + vm_features"),
        (Which::Metrics, "vm_metrics only"),
        (Which::Features, "vm_features only"),
    ] {
        let runs: Vec<Run> = (0..RUNS).map(|_| run(&data, which)).collect();
        let bytes = runs[0].bytes_per_line;
        let wall = median(runs.iter().map(|r| r.lines_per_wall_sec).collect());
        let cpu: Vec<f64> = runs.iter().filter_map(|r| r.lines_per_cpu_sec).collect();
        let cpu = if cpu.len() == runs.len() {
            format!("{:.2} M lines/s per CPU-second", median(cpu) / 1e6)
        } else {
            "CPU time unavailable".to_owned()
        };
        println!(
            "encode {label}: {:.2} M lines/s wall, {cpu} (median of {RUNS} runs of {VMS} VMs x ≥{} ms, {bytes:.0} bytes/line)",
            wall / 1e6,
            RUN_TIME.as_millis()
        );
    }
}
