//! Each VM's signals for one cycle. The feature actor hands over what it already holds (the seed
//! sample, the memory rate, the latest extended sample's counters summed over devices); the
//! rates come from the VM's previous reading, which its insights record keeps. A signal the VM
//! does not have (no balloon, no disk) is absent, and so is a rate across a reset counter, a clock
//! that went back or a gap longer than `max_gap`.

use super::forecast::fill::Fill;
use crate::extended::{DomainStatsSample, VM_CPU, VM_DISK, VM_MEMORY, VM_NET, rate};
use crate::influx::schema::vm_anomalies::SCORES;
use crate::sample::{DomainSample, MemoryFeatures, VmState};
use serde::Serialize;
use utoipa::ToSchema;

pub const SIGNALS: usize = 16;

/// The signals, and `Signal::ALL` in the same order (that of `vm_anomalies::SCORES`).
macro_rules! signals {
    ($($signal:ident),* $(,)?) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum Signal {
            $($signal),*
        }

        impl Signal {
            pub const ALL: [Signal; SIGNALS] = [$(Signal::$signal),*];
        }
    };
}

signals!(
    CpuPercent,
    MemoryUsedPercent,
    MemoryRateKbPerSec,
    DiskReadBytesPerSec,
    DiskWriteBytesPerSec,
    DiskReadIops,
    DiskWriteIops,
    DiskReadLatencyMs,
    DiskWriteLatencyMs,
    NetRxBytesPerSec,
    NetTxBytesPerSec,
    NetDropsPerSec,
    CpuStealPercent,
    SwapInKbPerSec,
    SwapOutKbPerSec,
    MajorFaultsPerSec,
);

use Signal::*;

impl Signal {
    /// Its field in `vm_anomalies`.
    pub fn score_field(self) -> &'static str {
        SCORES[self as usize]
    }

    /// Its name in the API: the score field without `_score`.
    pub fn name(self) -> &'static str {
        let field = self.score_field();
        &field[..field.len() - "_score".len()]
    }

    /// Read from every seed sample (the others from the extended samples, at their own pace).
    pub fn from_seed(self) -> bool {
        matches!(self, CpuPercent | MemoryUsedPercent | MemoryRateKbPerSec)
    }

    /// The smallest spread that counts, in the signal's unit: below it a change is noise, however
    /// steady the signal was (an idle disk's 0 bytes/s would otherwise make any byte an anomaly).
    pub fn floor(self) -> f64 {
        match self {
            CpuPercent | CpuStealPercent => 2.0,
            MemoryUsedPercent => 1.0,
            MemoryRateKbPerSec => 64.0,
            DiskReadBytesPerSec | DiskWriteBytesPerSec | NetRxBytesPerSec | NetTxBytesPerSec => {
                16_384.0
            }
            DiskReadIops | DiskWriteIops => 4.0,
            DiskReadLatencyMs | DiskWriteLatencyMs => 1.0,
            NetDropsPerSec | MajorFaultsPerSec => 1.0,
            SwapInKbPerSec | SwapOutKbPerSec => 16.0,
        }
    }
}

/// One cycle's values: `signals[s as usize]` for signal `s`, NaN when absent (a value kept is
/// always finite; half the size of `Option<f64>`, for every VM of a large fleet).
#[derive(Debug, Clone)]
pub struct Values {
    pub(super) signals: [f64; SIGNALS],
    /// Not scored (any error is a condition), only for the `disk_errors` rule.
    pub disk_errors_per_sec: Option<f64>,
    /// The guest's own `used_percent`, only: the seed's `memory_used_kb` is the balloon's size,
    /// often all of `memory_max_kb`, so it cannot tell guest memory nearly full.
    pub guest_memory_used_percent: Option<f64>,
}

impl Default for Values {
    fn default() -> Self {
        Values {
            signals: [f64::NAN; SIGNALS],
            disk_errors_per_sec: None,
            guest_memory_used_percent: None,
        }
    }
}

impl Values {
    pub fn get(&self, signal: Signal) -> Option<f64> {
        Some(self.signals[signal as usize]).filter(|v| v.is_finite())
    }

    pub fn set(&mut self, signal: Signal, value: Option<f64>) {
        self.signals[signal as usize] = value.filter(|v| v.is_finite()).unwrap_or(f64::NAN);
    }
}

/// One cycle's score of each signal, NaN when not scored (a score is always in [0, 1]): half
/// the size of `Option<f32>`s, for every VM of a large fleet.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scores([f32; SIGNALS]);

impl Default for Scores {
    fn default() -> Self {
        Scores([f32::NAN; SIGNALS])
    }
}

impl Scores {
    pub fn get(&self, signal: Signal) -> Option<f32> {
        Some(self.0[signal as usize]).filter(|s| !s.is_nan())
    }

    pub fn set(&mut self, signal: Signal, score: f32) {
        self.0[signal as usize] = score;
    }

    /// The scores given, in `Signal::ALL` order.
    pub fn given(&self) -> impl Iterator<Item = f32> + '_ {
        self.0.iter().copied().filter(|s| !s.is_nan())
    }
}

/// The counters of an extended sample, each summed over the VM's devices or vCPUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    ReadBytes,
    WriteBytes,
    ReadRequests,
    WriteRequests,
    ReadTimeNs,
    WriteTimeNs,
    DiskErrors,
    RxBytes,
    TxBytes,
    Drops,
    VcpuDelayNs,
    SwapInKb,
    SwapOutKb,
    MajorFaults,
}
const COUNTERS: usize = 14;

/// Where each counter comes from: (measurement, field).
const SOURCES: [(Counter, &str, &str); 15] = [
    (Counter::ReadBytes, VM_DISK, "read_bytes"),
    (Counter::WriteBytes, VM_DISK, "write_bytes"),
    (Counter::ReadRequests, VM_DISK, "read_requests"),
    (Counter::WriteRequests, VM_DISK, "write_requests"),
    (Counter::ReadTimeNs, VM_DISK, "read_time_ns"),
    (Counter::WriteTimeNs, VM_DISK, "write_time_ns"),
    (Counter::DiskErrors, VM_DISK, "errors"),
    (Counter::RxBytes, VM_NET, "rx_bytes"),
    (Counter::TxBytes, VM_NET, "tx_bytes"),
    (Counter::Drops, VM_NET, "rx_drops"),
    (Counter::Drops, VM_NET, "tx_drops"),
    (Counter::VcpuDelayNs, VM_CPU, "vcpu_delay_ns"),
    (Counter::SwapInKb, VM_MEMORY, "swap_in_kb"),
    (Counter::SwapOutKb, VM_MEMORY, "swap_out_kb"),
    (Counter::MajorFaults, VM_MEMORY, "major_faults"),
];

/// What an extended sample tells the signals.
#[derive(Debug, Clone, PartialEq)]
pub struct ExtendedReading {
    pub timestamp_ns: i64,
    /// The guest's own view (`vm_memory.used_percent`), where the balloon gives it.
    pub guest_used_percent: Option<f64>,
    pub vcpus: Option<u64>,
    counters: [Option<u64>; COUNTERS],
    /// How full its memory and disks are: what the forecasts follow.
    pub fill: Fill,
}

impl ExtendedReading {
    pub fn from_stats(stats: &DomainStatsSample) -> Self {
        let mut counters = [None; COUNTERS];
        for row in &stats.rows {
            for (counter, measurement, field) in SOURCES {
                if row.measurement != measurement {
                    continue;
                }
                if let Some(value) = row.counter(field) {
                    let sum = counters[counter as usize].get_or_insert(0u64);
                    *sum = sum.saturating_add(value);
                }
            }
        }
        let guest_used_percent = stats
            .derived
            .iter()
            .flatten()
            .find(|(field, _)| *field == "used_percent")
            .map(|(_, value)| *value);
        ExtendedReading {
            timestamp_ns: stats.timestamp_ns,
            guest_used_percent,
            vcpus: stats.vcpus,
            counters,
            fill: Fill::from_stats(stats),
        }
    }

    fn counter(&self, counter: Counter) -> Option<u64> {
        self.counters[counter as usize]
    }
}

/// One VM of one cycle, as the feature actor hands it over.
#[derive(Debug, Clone)]
pub struct VmReading {
    /// Its seed sample: who it is, what it is given, its CPU time and memory in use.
    pub vm: DomainSample,
    pub memory_rate_kb_per_sec: Option<f64>,
    /// Its latest extended sample (possibly the same as last cycle's: then it gives no rate).
    pub extended: Option<ExtendedReading>,
}

impl VmReading {
    pub fn new(
        sample: &DomainSample,
        features: Option<MemoryFeatures>,
        stats: Option<&DomainStatsSample>,
    ) -> Self {
        VmReading {
            vm: sample.clone(),
            memory_rate_kb_per_sec: features.map(|f| f.memory_rate_kb_per_sec),
            extended: stats.map(ExtendedReading::from_stats),
        }
    }

    /// Only a running VM has signals.
    pub fn running(&self) -> bool {
        self.vm.state == VmState::Running
    }
}

/// What the next rates derive from: the VM's previous reading.
#[derive(Debug, Clone, Default)]
pub struct Baseline {
    seed: Option<(i64, u64)>,
    /// Boxed: most of a large fleet's VMs may have no extended samples.
    extended: Option<Box<ExtendedReading>>,
}

/// A cycle's values, and whether a gap (longer than `max_gap`, or a clock stepping back) broke
/// the seed's or the extended samples' run: a model then starts its differences afresh.
pub struct Extracted {
    pub values: Values,
    pub seed_gap: bool,
    pub extended_gap: bool,
}

impl Baseline {
    /// Forgets the previous reading: no rate spans what comes next (a stopped or paused VM).
    pub fn forget(&mut self) {
        *self = Baseline::default();
    }

    /// The values of `reading`, then makes it the baseline. `max_gap_ns`: the longest interval a
    /// rate may span.
    pub fn extract(&mut self, reading: &VmReading, max_gap_ns: i64) -> Extracted {
        let mut values = Values::default();
        let within = |dt: i64| dt > 0 && dt <= max_gap_ns;
        let seed_dt = self
            .seed
            .map(|(previous, _)| reading.vm.timestamp_ns.saturating_sub(previous));
        let continuous = seed_dt.is_some_and(within);
        if let (Some((_, cputime)), Some(dt)) = (self.seed, seed_dt)
            && continuous
            && reading.vm.cpu_count > 0
        {
            let percent = rate(cputime, reading.vm.cputime_ns, dt)
                .map(|ns| ns / 1e9 / f64::from(reading.vm.cpu_count) * 100.0);
            values.set(CpuPercent, percent);
        }
        let memory_percent = reading.extended.as_ref().and_then(|e| e.guest_used_percent);
        let from_seed = (reading.vm.memory_max_kb > 0)
            .then(|| reading.vm.memory_used_kb as f64 / reading.vm.memory_max_kb as f64 * 100.0);
        values.set(MemoryUsedPercent, memory_percent.or(from_seed));
        values.guest_memory_used_percent = memory_percent.filter(|p| p.is_finite());
        if continuous {
            values.set(MemoryRateKbPerSec, reading.memory_rate_kb_per_sec);
        }
        self.seed = Some((reading.vm.timestamp_ns, reading.vm.cputime_ns));
        let mut extracted = Extracted {
            values,
            seed_gap: seed_dt.is_some() && !continuous,
            extended_gap: false,
        };
        let Some(current) = &reading.extended else {
            return extracted;
        };
        match self.extended.as_deref_mut() {
            // The same extended sample as last cycle's: nothing new to derive.
            Some(previous) if previous.timestamp_ns == current.timestamp_ns => {}
            Some(previous) => {
                let dt = current.timestamp_ns.saturating_sub(previous.timestamp_ns);
                if within(dt) {
                    extended_rates(&mut extracted.values, previous, current, dt);
                } else {
                    extracted.extended_gap = true;
                }
                previous.clone_from(current);
            }
            None => self.extended = Some(Box::new(current.clone())),
        }
        extracted
    }
}

/// The signals that need two extended samples `dt_ns` apart.
fn extended_rates(values: &mut Values, a: &ExtendedReading, b: &ExtendedReading, dt_ns: i64) {
    let per_sec = |counter| rate(a.counter(counter)?, b.counter(counter)?, dt_ns);
    let delta = |counter| b.counter(counter)?.checked_sub(a.counter(counter)?);
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
    // The share of each vCPU's time spent waiting for a host CPU.
    let vcpus = b.vcpus.filter(|n| *n > 0);
    if let (Some(delay), Some(vcpus)) = (per_sec(Counter::VcpuDelayNs), vcpus) {
        values.set(CpuStealPercent, Some(delay / 1e9 / vcpus as f64 * 100.0));
    }
    values.disk_errors_per_sec = per_sec(Counter::DiskErrors);
}
