//! What the next rates derive from: each VM's previous reading, and the longest interval a rate
//! may span. A rate across a reset counter, a clock that went back or a gap longer than its
//! source's is absent; each source (a stats group's rows) derives from its own last read, since
//! groups may have cadences of their own.

use super::signals::{
    Counter, ExtendedReading, SOURCES_OF_ROWS, Signal, Source, Values, VmReading,
};
use crate::extended::rate;
use Signal::*;

/// What the next rates derive from: the VM's previous reading.
#[derive(Debug, Clone, Default)]
pub struct Baseline {
    seed: Option<(i64, u64)>,
    /// Boxed: most of a large fleet's VMs may have no extended samples.
    extended: Option<Box<ExtendedReading>>,
}

/// A cycle's values, and whether a gap (longer than its source's longest, or a clock stepping
/// back) broke the seed's or an extended source's run: a model then starts its differences
/// afresh.
pub struct Extracted {
    pub values: Values,
    pub seed_gap: bool,
    /// By `Source`: bit `1 << source`.
    extended_gaps: u8,
}

impl Extracted {
    /// Whether `signal`'s run was broken this cycle.
    pub fn gap(&self, signal: Signal) -> bool {
        match signal.source() {
            None => self.seed_gap,
            Some(source) => self.extended_gaps & 1 << source as u8 != 0,
        }
    }
}

impl Baseline {
    /// Forgets the previous reading: no rate spans what comes next (a stopped or paused VM).
    pub fn forget(&mut self) {
        *self = Baseline::default();
    }

    /// The values of `reading`, then makes it the baseline. `gaps`: the longest interval a rate
    /// may span, of the seed and of each source.
    pub fn extract(&mut self, reading: &VmReading, gaps: &MaxGaps) -> Extracted {
        let mut values = Values::default();
        let seed_dt = self
            .seed
            .map(|(previous, _)| reading.vm.timestamp_ns.saturating_sub(previous));
        let continuous = seed_dt.is_some_and(|dt| gaps.seed.spans(dt));
        if let (Some((_, cputime)), Some(dt)) = (self.seed, seed_dt)
            && continuous
            && reading.vm.cpu_count > 0
        {
            let percent = rate(cputime, reading.vm.cputime_ns, dt)
                .map(|ns| ns / 1e9 / f64::from(reading.vm.cpu_count) * 100.0);
            values.set(CpuPercent, percent);
        }
        // The guest's own view where it has one, only when read this time: between two reads
        // of a slower balloon cadence the signal is absent, not the seed's other measure.
        let guest = reading
            .extended
            .as_ref()
            .and_then(|e| e.guest_used_percent());
        let from_seed = (reading.vm.memory_max_kb > 0)
            .then(|| reading.vm.memory_used_kb as f64 / reading.vm.memory_max_kb as f64 * 100.0);
        let guest_now = guest.and_then(|(percent, fresh)| fresh.then_some(percent));
        values.set(
            MemoryUsedPercent,
            if guest.is_some() {
                guest_now
            } else {
                from_seed
            },
        );
        values.guest_memory_used_percent = guest_now.filter(|p| p.is_finite());
        if continuous {
            values.set(MemoryRateKbPerSec, reading.memory_rate_kb_per_sec);
        }
        self.seed = Some((reading.vm.timestamp_ns, reading.vm.cputime_ns));
        let mut extracted = Extracted {
            values,
            seed_gap: seed_dt.is_some() && !continuous,
            extended_gaps: 0,
        };
        let Some(current) = &reading.extended else {
            return extracted;
        };
        let Some(previous) = self.extended.as_deref_mut() else {
            self.extended = Some(Box::new(current.clone()));
            return extracted;
        };
        // The same extended sample as last cycle's: nothing new to derive.
        if previous.timestamp_ns == current.timestamp_ns {
            return extracted;
        }
        // Each source from its last read: groups have cadences of their own.
        let mut spans = [None; SOURCES_OF_ROWS];
        for source in Source::ALL {
            let (a, b) = (
                previous.read_at[source as usize],
                current.read_at[source as usize],
            );
            if a == 0 || b == 0 || a == b {
                continue;
            }
            match gaps.of(source).spans(b.saturating_sub(a)) {
                true => spans[source as usize] = Some(b - a),
                false => extracted.extended_gaps |= 1 << source as u8,
            }
        }
        extended_rates(&mut extracted.values, previous, current, spans);
        previous.clone_from(current);
        extracted
    }
}

/// The longest interval a rate may span, of the seed's samples and of each source's rows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MaxGaps {
    pub seed: Gap,
    pub sources: [Gap; SOURCES_OF_ROWS],
}

/// A longest interval, in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Gap(pub i64);

impl Gap {
    /// Whether `dt_ns` is an interval a rate may span: forward, and not longer than the gap.
    fn spans(self, dt_ns: i64) -> bool {
        dt_ns > 0 && dt_ns <= self.0
    }
}

impl MaxGaps {
    fn of(&self, source: Source) -> Gap {
        self.sources[source as usize]
    }
}

/// The rates of the sources read anew, each over its own span (`spans`, by `Source`).
fn extended_rates(
    values: &mut Values,
    a: &ExtendedReading,
    b: &ExtendedReading,
    spans: [Option<i64>; SOURCES_OF_ROWS],
) {
    let span = |counter: Counter| spans[counter.source() as usize];
    let per_sec = |counter| rate(a.counter(counter)?, b.counter(counter)?, span(counter)?);
    let delta = |counter| {
        span(counter)?;
        b.counter(counter)?.checked_sub(a.counter(counter)?)
    };
    for (signal, counter) in [
        (DiskReadBytesPerSec, Counter::ReadBytes),
        (DiskWriteBytesPerSec, Counter::WriteBytes),
        (DiskReadIops, Counter::ReadRequests),
        (DiskWriteIops, Counter::WriteRequests),
        (NetRxBytesPerSec, Counter::RxBytes),
        (NetTxBytesPerSec, Counter::TxBytes),
        (NetDropsPerSec, Counter::Drops),
        (SwapInKbPerSec, Counter::SwapInKb),
        (SwapOutKbPerSec, Counter::SwapOutKb),
        (MajorFaultsPerSec, Counter::MajorFaults),
    ] {
        values.set(signal, per_sec(counter));
    }
    // Milliseconds per operation; no operation, no latency to speak of.
    for (signal, time, requests) in [
        (
            DiskReadLatencyMs,
            Counter::ReadTimeNs,
            Counter::ReadRequests,
        ),
        (
            DiskWriteLatencyMs,
            Counter::WriteTimeNs,
            Counter::WriteRequests,
        ),
    ] {
        let latency = match (delta(time), delta(requests)) {
            (Some(ns), Some(ops)) if ops > 0 => Some(ns as f64 / ops as f64 / 1e6),
            (Some(_), Some(0)) => Some(0.0),
            _ => None,
        };
        values.set(signal, latency);
    }
    // The share of each vCPU's time spent waiting for a host CPU, and running or waiting.
    let vcpus = b.vcpus.filter(|n| *n > 0);
    let share = |ns_per_sec: f64, vcpus: u64| ns_per_sec / 1e9 / vcpus as f64 * 100.0;
    if let (Some(delay), Some(vcpus)) = (per_sec(Counter::VcpuDelayNs), vcpus) {
        values.set(CpuStealPercent, Some(share(delay, vcpus)));
    }
    let (time, delay) = (per_sec(Counter::VcpuTimeNs), per_sec(Counter::VcpuDelayNs));
    if let (Some(time), Some(delay), Some(vcpus)) = (time, delay, vcpus) {
        values.vcpu_busy_percent = Some(share(time + delay, vcpus));
    }
    values.disk_errors_per_sec = per_sec(Counter::DiskErrors);
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;
    use crate::extended::{DomainStatsSample, StatsRow, VM_CPU};

    const SEC: i64 = 1_000_000_000;

    /// Two vCPUs' rows at `t` seconds, each with `time` and `delay` nanoseconds.
    fn vcpus_at(t: i64, time: u64, delay: u64) -> ExtendedReading {
        let row = |vcpu: &str| StatsRow {
            measurement: VM_CPU,
            key: Some(("vcpu", vcpu.into())),
            source: None,
            counters: vec![("vcpu_time_ns", time), ("vcpu_delay_ns", delay)],
        };
        ExtendedReading::from_stats(&DomainStatsSample {
            uuid: Uuid::from_u128(1),
            name: "vm-1".into(),
            timestamp_ns: t * SEC,
            vcpus: Some(2),
            rows: vec![row("0"), row("1")],
            derived: Vec::new(),
            carried: Vec::new(),
        })
    }

    #[test]
    fn the_vcpus_are_busy_for_their_running_and_waiting_time_over_their_rows_span() {
        let (a, b) = (vcpus_at(10, 0, 0), vcpus_at(12, 1_500_000_000, 400_000_000));
        let mut spans = [None; SOURCES_OF_ROWS];
        spans[Source::Vcpus as usize] = Some(2 * SEC);
        let mut values = Values::default();
        extended_rates(&mut values, &a, &b, spans);
        // Per vCPU over 2 s: 1.5 s running, 0.4 s waiting.
        assert_eq!(values.get(CpuStealPercent), Some(20.0));
        assert_eq!(values.vcpu_busy_percent, Some(95.0));
        // Rows without a span (a gap): neither.
        let mut values = Values::default();
        extended_rates(&mut values, &a, &b, [None; SOURCES_OF_ROWS]);
        assert_eq!(values.vcpu_busy_percent, None);
        assert_eq!(values.get(CpuStealPercent), None);
    }
}
