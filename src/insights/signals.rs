//! Each VM's signals for one cycle. The feature actor hands over what it already holds (the seed
//! sample, the memory rate, the latest extended sample's counters summed over devices, with the
//! rows of groups not read this time as last read); the rates come from the VM's previous
//! reading, which its insights record keeps (`baseline`). A signal the VM does not have (no
//! balloon, no disk) is absent.

use super::forecast::fill::Fill;
use crate::extended::{
    DomainStatsSample, StatsRow, VM_CPU, VM_DISK, VM_MEMORY, VM_NET, used_percent,
};
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

    /// The rows it is read from; none: from every seed sample.
    pub fn source(self) -> Option<Source> {
        match self {
            CpuPercent | MemoryUsedPercent | MemoryRateKbPerSec => None,
            DiskReadBytesPerSec | DiskWriteBytesPerSec | DiskReadIops | DiskWriteIops
            | DiskReadLatencyMs | DiskWriteLatencyMs => Some(Source::Disks),
            NetRxBytesPerSec | NetTxBytesPerSec | NetDropsPerSec => Some(Source::Interfaces),
            CpuStealPercent => Some(Source::Vcpus),
            SwapInKbPerSec | SwapOutKbPerSec | MajorFaultsPerSec => Some(Source::Memory),
        }
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
    /// Not scored, only for the `cpu_saturated` rule: the share of its vCPUs' time running or
    /// waiting for a host CPU, both read in one call.
    pub vcpu_busy_percent: Option<f64>,
}

impl Default for Values {
    fn default() -> Self {
        Values {
            signals: [f64::NAN; SIGNALS],
            disk_errors_per_sec: None,
            guest_memory_used_percent: None,
            vcpu_busy_percent: None,
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
    VcpuTimeNs,
    VcpuDelayNs,
    SwapInKb,
    SwapOutKb,
    MajorFaults,
}
const COUNTERS: usize = 15;

/// Where each counter comes from: (measurement, field).
const SOURCES: [(Counter, &str, &str); 16] = [
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
    (Counter::VcpuTimeNs, VM_CPU, "vcpu_time_ns"),
    (Counter::VcpuDelayNs, VM_CPU, "vcpu_delay_ns"),
    (Counter::SwapInKb, VM_MEMORY, "swap_in_kb"),
    (Counter::SwapOutKb, VM_MEMORY, "swap_out_kb"),
    (Counter::MajorFaults, VM_MEMORY, "major_faults"),
];

/// The kinds of rows the counters come from, each the rows of one stats group, which may have
/// a cadence of its own (`stats_group_intervals`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Disks,
    Interfaces,
    Vcpus,
    Memory,
}
pub const SOURCES_OF_ROWS: usize = 4;

impl Source {
    pub const ALL: [Source; SOURCES_OF_ROWS] = [
        Source::Disks,
        Source::Interfaces,
        Source::Vcpus,
        Source::Memory,
    ];

    /// The stats group whose rows these are.
    pub fn group(self) -> &'static str {
        match self {
            Source::Disks => "block",
            Source::Interfaces => "interface",
            Source::Vcpus => "vcpu",
            Source::Memory => "balloon",
        }
    }

    /// The source of a row: its measurement, and the tag that tells its rows apart.
    fn of(row: &StatsRow) -> Option<Source> {
        match (row.measurement, row.key.as_ref().map(|(tag, _)| *tag)) {
            (VM_DISK, Some(_)) => Some(Source::Disks),
            (VM_NET, Some(_)) => Some(Source::Interfaces),
            (VM_CPU, Some(_)) => Some(Source::Vcpus),
            (VM_MEMORY, None) => Some(Source::Memory),
            _ => None,
        }
    }
}

impl Counter {
    pub(super) fn source(self) -> Source {
        use Counter::*;
        match self {
            ReadBytes | WriteBytes | ReadRequests | WriteRequests | ReadTimeNs | WriteTimeNs
            | DiskErrors => Source::Disks,
            RxBytes | TxBytes | Drops => Source::Interfaces,
            VcpuTimeNs | VcpuDelayNs => Source::Vcpus,
            SwapInKb | SwapOutKb | MajorFaults => Source::Memory,
        }
    }
}

/// What an extended sample tells the signals: the rows read this time, and those of the groups
/// not read this time as last read (carried by the VM table, with when).
#[derive(Debug, Clone, PartialEq)]
pub struct ExtendedReading {
    pub timestamp_ns: i64,
    /// When each source's rows were read; 0: never.
    pub(super) read_at: [i64; SOURCES_OF_ROWS],
    /// The guest's own view (`vm_memory.used_percent`), where the balloon gives it.
    guest_used_percent: Option<f64>,
    pub vcpus: Option<u64>,
    counters: [Option<u64>; COUNTERS],
    /// How full its memory and disks are: what the forecasts follow.
    pub fill: Fill,
}

impl ExtendedReading {
    pub fn from_stats(stats: &DomainStatsSample) -> Self {
        let mut counters = [None; COUNTERS];
        let mut read_at = [0; SOURCES_OF_ROWS];
        let mut guest_used_percent = None;
        let this_time = stats.rows.iter().map(|row| (stats.timestamp_ns, row));
        let carried = stats.carried.iter().map(|c| (c.read_at, &c.row));
        for (at, row) in this_time.chain(carried) {
            // The latest of its rows: a disk's sizes are carried from their own older read.
            if let Some(source) = Source::of(row) {
                read_at[source as usize] = read_at[source as usize].max(at);
            }
            if row.measurement == VM_MEMORY {
                guest_used_percent = used_percent(row).or(guest_used_percent);
            }
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
        ExtendedReading {
            timestamp_ns: stats.timestamp_ns,
            read_at,
            guest_used_percent,
            vcpus: stats.vcpus,
            counters,
            fill: Fill::from_stats(stats),
        }
    }

    /// The guest's own view of its memory in use, and whether it was read this time.
    pub fn guest_used_percent(&self) -> Option<(f64, bool)> {
        let fresh = self.read_at[Source::Memory as usize] == self.timestamp_ns;
        self.guest_used_percent.map(|percent| (percent, fresh))
    }

    pub(super) fn counter(&self, counter: Counter) -> Option<u64> {
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
