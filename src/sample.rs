//! The plain data that travels from a host actor through the feature actor to the writer.

use std::sync::Arc;

use serde::Serialize;
use uuid::Uuid;

/// `VMID` of a domain that is not running: libvirt gives inactive domains no id, and
/// `virsh list --all` shows them as `-`.
pub const INACTIVE_VMID: &str = "-";

/// One domain as read in one collection cycle: the seed's `vm_metrics` fields.
#[derive(Debug, Clone, PartialEq)]
pub struct DomainSample {
    /// libvirt's numeric id; inactive domains have none.
    pub id: Option<u32>,
    /// The latest sample of every VM is kept, so the name is boxed and the UUID held as its 16
    /// bytes rather than two `String`s (benches/README.md).
    pub name: Box<str>,
    pub uuid: Uuid,
    pub state: VmState,
    pub cpu_count: u32,
    pub memory_max_kb: u64,
    pub memory_used_kb: u64,
    pub cputime_ns: u64,
    /// When the domain was read, in nanoseconds since the Unix epoch.
    pub timestamp_ns: i64,
}

/// Every domain of one host, from one cycle.
#[derive(Debug, Clone)]
pub struct HostSample {
    /// The configured URI: unique per host actor, so it keys per-VM state.
    pub uri: Arc<str>,
    /// The `host` tag: the configured name, else the hostname libvirt reports.
    pub host: Arc<str>,
    pub domains: Vec<DomainSample>,
    /// The host itself (`host_metrics`), when the cycle read it.
    pub node: Option<NodeSample>,
}

/// One host as seen by one collection cycle: `host_metrics`.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeSample {
    /// From virNodeGetInfo / virNodeGetFreeMemory; none when the driver does not say.
    pub cpus: Option<u32>,
    pub memory_total_kb: Option<u64>,
    pub memory_free_kb: Option<u64>,
    /// The domains reported this cycle (after `domain_include` / `domain_exclude`), by state.
    pub domains: u64,
    pub domains_running: u64,
    pub domains_paused: u64,
    pub domains_stopped: u64,
    pub domains_other: u64,
    /// How long the cycle's libvirt calls took, in seconds.
    pub collection_duration_sec: f64,
    pub timestamp_ns: i64,
}

impl NodeSample {
    /// Counts `domains` by state.
    pub fn count(&mut self, domains: &[DomainSample]) {
        for domain in domains {
            self.domains += 1;
            match domain.state {
                VmState::Running => self.domains_running += 1,
                VmState::Paused => self.domains_paused += 1,
                VmState::Stopped => self.domains_stopped += 1,
                _ => self.domains_other += 1,
            }
        }
    }
}

/// Domain states, named as the seed writes them (`stopped` for shut off) and otherwise as libvirt does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum VmState {
    NoState,
    Running,
    Blocked,
    Paused,
    Shutdown,
    Stopped,
    Crashed,
    PmSuspended,
    Unknown,
}

impl VmState {
    pub fn as_str(self) -> &'static str {
        match self {
            VmState::NoState => "nostate",
            VmState::Running => "running",
            VmState::Blocked => "blocked",
            VmState::Paused => "paused",
            VmState::Shutdown => "shutdown",
            VmState::Stopped => "stopped",
            VmState::Crashed => "crashed",
            VmState::PmSuspended => "pmsuspended",
            VmState::Unknown => "unknown",
        }
    }
}

/// The seed's `vm_features`, derived from two consecutive samples of one VM.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MemoryFeatures {
    pub memory_rate_kb_per_sec: f64,
    pub memory_angle_deg: f64,
}

impl MemoryFeatures {
    /// The seed's formulas: rate = Δmemory_used_kb / Δt (seconds between the samples' timestamps),
    /// angle = degrees(atan(rate + 1e-12)). None when time did not move forward.
    pub fn between(previous: &DomainSample, current: &DomainSample) -> Option<Self> {
        Self::from_memory(
            (previous.timestamp_ns, previous.memory_used_kb),
            (current.timestamp_ns, current.memory_used_kb),
        )
    }

    /// [`MemoryFeatures::between`] from each sample's `(timestamp_ns, memory_used_kb)`.
    pub fn from_memory(previous: (i64, u64), current: (i64, u64)) -> Option<Self> {
        let dt_ns = current.0.checked_sub(previous.0)?;
        if dt_ns <= 0 {
            return None;
        }
        let dt_sec = dt_ns as f64 / 1e9;
        let memory_delta = current.1 as f64 - previous.1 as f64;
        let memory_rate_kb_per_sec = memory_delta / dt_sec;
        Some(MemoryFeatures {
            memory_rate_kb_per_sec,
            memory_angle_deg: (memory_rate_kb_per_sec + 1e-12).atan().to_degrees(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(timestamp_ns: i64, memory_used_kb: u64) -> DomainSample {
        DomainSample {
            id: Some(3),
            name: "vm".into(),
            uuid: Uuid::from_u128(1),
            state: VmState::Running,
            cpu_count: 1,
            memory_max_kb: 4_194_304,
            memory_used_kb,
            cputime_ns: 0,
            timestamp_ns,
        }
    }

    #[test]
    fn constant_memory_gives_zero_rate_and_the_tiny_angle() {
        let f = MemoryFeatures::between(&at(0, 1024), &at(5_000_000_000, 1024)).unwrap();
        assert_eq!(f.memory_rate_kb_per_sec, 0.0);
        assert_eq!(f.memory_angle_deg, 1e-12_f64.atan().to_degrees());
    }

    #[test]
    fn rate_is_delta_over_seconds_for_uneven_intervals() {
        // +2048 KiB over 2.5 s, then -1000 KiB over 0.4 s.
        let a = at(1_000_000_000, 1_000_000);
        let b = at(3_500_000_000, 1_002_048);
        let c = at(3_900_000_000, 1_001_048);
        let rise = MemoryFeatures::between(&a, &b).unwrap();
        assert!((rise.memory_rate_kb_per_sec - 819.2).abs() < 1e-9);
        assert!((rise.memory_angle_deg - (819.2_f64 + 1e-12).atan().to_degrees()).abs() < 1e-12);
        let fall = MemoryFeatures::between(&b, &c).unwrap();
        assert!((fall.memory_rate_kb_per_sec + 2500.0).abs() < 1e-9);
        assert!(fall.memory_angle_deg < -89.9 && fall.memory_angle_deg > -90.0);
    }

    #[test]
    fn a_rate_of_one_kib_per_second_is_45_degrees() {
        let f = MemoryFeatures::between(&at(0, 100), &at(1_000_000_000, 101)).unwrap();
        assert!((f.memory_angle_deg - 45.0).abs() < 1e-9);
    }

    #[test]
    fn no_features_when_time_stands_still_or_runs_back() {
        assert_eq!(MemoryFeatures::between(&at(5, 1), &at(5, 2)), None);
        assert_eq!(MemoryFeatures::between(&at(6, 1), &at(5, 2)), None);
        assert_eq!(
            MemoryFeatures::between(&at(i64::MIN, 1), &at(i64::MAX, 2)),
            None
        );
    }
}
