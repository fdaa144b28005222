//! The test guest's workloads with a known onset (tests/guest/init) produce their truth in what
//! libvirt reports: the ground truth the insights are tested against. Four guests boot together
//! and idle for `AFTER` seconds; then a CPU burst, a memory leak and a disk storm start, and a
//! lightly loaded guest pinned to the burst's host core starts waiting for it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::support::guest::Guest;

/// Onset, from each guest's boot; long enough for a window of steady samples before it.
const AFTER: u64 = 20;
/// Boot's own CPU and I/O fade this soon after init's marker line.
const SETTLE: Duration = Duration::from_secs(4);
/// How long each truth is watched after its onset.
const WATCH: Duration = Duration::from_secs(15);

struct Sample {
    at: Instant,
    stats: BTreeMap<String, String>,
    /// The onset had shown on the console before these stats were read.
    after: bool,
    /// The onset had not shown on the console yet after these stats were read.
    before: bool,
}

/// One guest's samples, with the guest whose console line `VMT-GUEST-ONSET {workload}` marks
/// its onset (its own, or the busy neighbour's for the contention victim).
struct Watched<'a> {
    guest: &'a Guest,
    onset_of: &'a Guest,
    workload: &'static str,
    groups: &'static [&'static str],
    samples: Vec<Sample>,
}

impl Watched<'_> {
    fn onset_shown(&self) -> bool {
        let marker = format!("VMT-GUEST-ONSET {}", self.workload);
        self.onset_of.console_text().lines().any(|l| l == marker)
    }

    fn sample(&mut self) {
        let after = self.onset_shown();
        let at = Instant::now();
        let stats = self.guest.domstats_of(self.groups);
        let before = !self.onset_shown();
        self.samples.push(Sample {
            at,
            stats,
            after,
            before,
        });
    }

    fn watched_enough(&self) -> bool {
        let after: Vec<&Sample> = self.samples.iter().filter(|s| s.after).collect();
        after.len() >= 2 && after[after.len() - 1].at - after[0].at >= WATCH
    }

    /// The settled samples before the onset, and those after it.
    fn windows(&self) -> (Vec<&Sample>, Vec<&Sample>) {
        let start = self.samples[0].at + SETTLE;
        let before = self
            .samples
            .iter()
            .filter(|s| s.before && s.at >= start)
            .collect::<Vec<_>>();
        let after = self.samples.iter().filter(|s| s.after).collect::<Vec<_>>();
        assert!(
            before.len() >= 3 && after.len() >= 3,
            "{}: {} samples before its onset, {} after",
            self.guest.name,
            before.len(),
            after.len()
        );
        (before, after)
    }

    /// `key`'s growth per second before the onset and after it, in `unit`s.
    fn rates(&self, key: &str, unit: f64) -> (f64, f64) {
        let (before, after) = self.windows();
        (rate(&before, key) / unit, rate(&after, key) / unit)
    }
}

fn value(sample: &Sample, key: &str) -> f64 {
    sample
        .stats
        .get(key)
        .unwrap_or_else(|| panic!("no {key} in {:?}", sample.stats))
        .parse()
        .unwrap_or_else(|e| panic!("{key}: {e}"))
}

/// `key`'s growth per second over the window.
fn rate(window: &[&Sample], key: &str) -> f64 {
    let (first, last) = (window[0], window[window.len() - 1]);
    (value(last, key) - value(first, key)) / (last.at - first.at).as_secs_f64()
}

/// Guest memory in use (KiB): what the balloon's guest-side stats say is not available.
fn used_kib(sample: &Sample) -> f64 {
    value(sample, "balloon.available") - value(sample, "balloon.usable")
}

fn boot_all() -> [Guest; 4] {
    assert!(
        std::thread::available_parallelism().map_or(0, usize::from) >= 2,
        "the contention pair needs a host core of its own (CPU 1), the others CPU 0"
    );
    let burst = Guest::options("burst")
        .arg("vmt.after", AFTER)
        .arg("vmt.duty", 95)
        .pin_vcpu(1);
    // Lightly loaded: a short spin every second, so it asks for the core now and then; long
    // enough that waiting for it shows well above the wake-ups' own delay.
    let victim = Guest::options("cpu").arg("vmt.spin", 12000).pin_vcpu(1);
    let leak = Guest::options("leak").arg("vmt.after", AFTER).pin_vcpu(0);
    let storm = Guest::options("storm").arg("vmt.after", AFTER).pin_vcpu(0);
    std::thread::scope(|scope| {
        [burst, victim, leak, storm]
            .map(|options| scope.spawn(move || options.start()))
            .map(|handle| handle.join().expect("a guest booted"))
    })
}

#[test]
fn each_workload_shows_its_truth_after_its_onset_only() {
    let [burst, victim, leak, storm] = boot_all();
    let mut watched = [
        (&burst, &burst, "burst", &["--cpu-total"][..]),
        (&victim, &burst, "burst", &["--vcpu"][..]),
        (&leak, &leak, "leak", &["--balloon"][..]),
        (&storm, &storm, "storm", &["--block", "--cpu-total"][..]),
    ]
    .map(|(guest, onset_of, workload, groups)| Watched {
        guest,
        onset_of,
        workload,
        groups,
        samples: Vec::new(),
    });
    let deadline = Instant::now() + Duration::from_secs(AFTER) + WATCH + Duration::from_secs(60);
    while !watched.iter().all(Watched::watched_enough) {
        assert!(
            Instant::now() < deadline,
            "onsets not all seen and watched in time; consoles:\n{}",
            watched
                .iter()
                .map(|w| format!("{}:\n{}", w.guest.name, w.guest.console_text()))
                .collect::<Vec<_>>()
                .join("\n")
        );
        watched.iter_mut().for_each(Watched::sample);
        std::thread::sleep(Duration::from_secs(1));
    }
    let [burst, victim, leak, storm] = watched;
    cpu_burst(&burst);
    contention(&victim);
    memory_leak(&leak);
    disk_storm(&storm);
}

/// CPU time per second of wall time: a fraction of the host core its vCPU costs.
fn cpu_burst(burst: &Watched) {
    let (idle, busy) = burst.rates("cpu.time", 1e9);
    eprintln!("burst: CPU {idle:.3} of a core before its onset, {busy:.3} after");
    assert!(idle < 0.25, "busy before its onset: {idle:.3} of a core");
    assert!(
        busy > 0.45 && busy > 3.0 * idle,
        "no burst after its onset: {idle:.3} -> {busy:.3} of a core"
    );
}

/// The lightly loaded guest's vCPU waits for the core (runnable, not running) while its pinned
/// neighbour bursts: libvirt's `vcpu.0.delay`, steal as the host sees it.
fn contention(victim: &Watched) {
    let (calm, contended) = victim.rates("vcpu.0.delay", 1e6);
    eprintln!("contention: vCPU delay {calm:.1} ms/s before the burst, {contended:.1} after");
    // A neighbour busy 1 % of each second (its wake-ups) nearly doubles the delay already.
    assert!(
        contended > 50.0 && contended > 3.0 * calm,
        "no contention: vCPU delay {calm:.1} -> {contended:.1} ms/s"
    );
}

fn memory_leak(leak: &Watched) {
    let (before, after) = leak.windows();
    let steady: Vec<f64> = before.iter().map(|s| used_kib(s)).collect();
    let growing: Vec<f64> = after.iter().map(|s| used_kib(s)).collect();
    let (low, high) = steady
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
    let (first, last) = (growing[0], growing[growing.len() - 1]);
    let growth = (last - first) / (after[after.len() - 1].at - after[0].at).as_secs_f64();
    eprintln!(
        "leak: memory in use {low:.0}..{high:.0} KiB before its onset, \
         {first:.0} -> {last:.0} KiB after ({growth:.0} KiB/s)"
    );
    assert!(
        high - low <= 2048.0,
        "memory moved before the leak: {steady:?}"
    );
    // Only the leak grows; the rest of the guest's memory wobbles by a few pages.
    assert!(
        growing.windows(2).all(|w| w[1] >= w[0] - 256.0),
        "memory in use fell during the leak: {growing:?}"
    );
    assert!(growth > 512.0, "no leak of 1 MiB/s: {growing:?}");
}

fn disk_storm(storm: &Watched) {
    let (before, after) = storm.windows();
    let quiet = rate(&before, "block.0.wr.reqs");
    let (writes, flushes) = (
        rate(&after, "block.0.wr.reqs"),
        rate(&after, "block.0.fl.reqs"),
    );
    // Time spent in writes and flushes per second: latency times IOPS.
    let busy = |w: &[&Sample]| (rate(w, "block.0.wr.times") + rate(w, "block.0.fl.times")) / 1e6;
    let (idle_ms, busy_ms) = (busy(&before), busy(&after));
    let cpu = rate(&after, "cpu.time") / 1e9;
    eprintln!(
        "storm: {quiet:.1} writes/s and {idle_ms:.1} ms/s in I/O before its onset; after: \
         {writes:.0} writes/s, {flushes:.0} flushes/s, {busy_ms:.0} ms/s in I/O, CPU {cpu:.2}"
    );
    assert_eq!(quiet, 0.0, "writes before the storm");
    assert!(
        writes > 50.0 && flushes > 10.0 && busy_ms > idle_ms,
        "no storm: {writes:.0} writes/s, {flushes:.0} flushes/s, {idle_ms:.1} -> {busy_ms:.1} ms/s"
    );
}
