//! Named conditions of a VM, each from a threshold on its signals: the rule of each, its
//! evidence (the value and the threshold it crossed) and how long it has held.

use serde::Serialize;
use utoipa::ToSchema;

use super::signals::{Signal, Values};

pub const CONDITIONS: usize = 6;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// Its vCPUs busy (running, or waiting for a host CPU) near all of their time.
    CpuSaturated,
    /// Its vCPUs wait for a host CPU (steal) beyond a share of their time.
    CpuContention,
    /// Swapping, major page faults, or guest memory nearly full.
    MemoryPressure,
    /// Disk operations slower than a threshold on average.
    DiskLatency,
    /// Any disk error.
    DiskErrors,
    /// Packets dropped.
    NetworkDrops,
}

impl Condition {
    pub const ALL: [Condition; CONDITIONS] = [
        Condition::CpuSaturated,
        Condition::CpuContention,
        Condition::MemoryPressure,
        Condition::DiskLatency,
        Condition::DiskErrors,
        Condition::NetworkDrops,
    ];

    /// Its `kind` tag in `vm_bottlenecks`, and its name in the API.
    pub fn name(self) -> &'static str {
        match self {
            Condition::CpuSaturated => "cpu_saturated",
            Condition::CpuContention => "cpu_contention",
            Condition::MemoryPressure => "memory_pressure",
            Condition::DiskLatency => "disk_latency",
            Condition::DiskErrors => "disk_errors",
            Condition::NetworkDrops => "network_drops",
        }
    }
}

/// The thresholds of the rules (configuration keys `insights_*`).
#[derive(Debug, Clone, PartialEq)]
pub struct Thresholds {
    pub cpu_saturated_percent: f64,
    pub cpu_steal_percent: f64,
    pub memory_used_percent: f64,
    pub swap_kb_per_sec: f64,
    pub major_faults_per_sec: f64,
    pub disk_latency_ms: f64,
    pub net_drops_per_sec: f64,
    /// Cycles in a row a rule must hold before its condition is named (disk errors: one).
    pub condition_cycles: u32,
}

#[cfg(test)]
impl Thresholds {
    /// `config/default.toml`'s.
    pub fn defaults() -> Self {
        Thresholds {
            cpu_saturated_percent: 90.0,
            cpu_steal_percent: 10.0,
            memory_used_percent: 90.0,
            swap_kb_per_sec: 256.0,
            major_faults_per_sec: 50.0,
            disk_latency_ms: 50.0,
            net_drops_per_sec: 1.0,
            condition_cycles: 3,
        }
    }
}

/// Why a condition holds: the signal, its value and the threshold it reached.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evidence {
    /// A signal's name, or `disk_errors_per_sec`.
    pub signal: &'static str,
    pub value: f64,
    pub threshold: f64,
}

/// A rule's answer for one cycle.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Rule {
    Holds(Evidence),
    Clear,
    /// Its signals are absent this cycle: the condition stays as it was.
    Unknown,
}

/// The rule of `condition` on one cycle's values.
fn rule(condition: Condition, values: &Values, t: &Thresholds) -> Rule {
    let reaches =
        |signal: Signal, threshold: f64| at_least(signal.name(), values.get(signal), threshold);
    match condition {
        Condition::CpuSaturated => cpu_busy(values, t.cpu_saturated_percent),
        Condition::CpuContention => reaches(Signal::CpuStealPercent, t.cpu_steal_percent),
        Condition::MemoryPressure => strongest([
            reaches(Signal::SwapInKbPerSec, t.swap_kb_per_sec),
            reaches(Signal::SwapOutKbPerSec, t.swap_kb_per_sec),
            reaches(Signal::MajorFaultsPerSec, t.major_faults_per_sec),
            at_least(
                Signal::MemoryUsedPercent.name(),
                values.guest_memory_used_percent,
                t.memory_used_percent,
            ),
        ]),
        Condition::DiskLatency => strongest([
            reaches(Signal::DiskReadLatencyMs, t.disk_latency_ms),
            reaches(Signal::DiskWriteLatencyMs, t.disk_latency_ms),
        ]),
        Condition::DiskErrors => match values.disk_errors_per_sec {
            Some(rate) if rate > 0.0 => Rule::Holds(Evidence {
                signal: "disk_errors_per_sec",
                value: rate,
                threshold: 0.0,
            }),
            Some(_) => Rule::Clear,
            None => Rule::Unknown,
        },
        Condition::NetworkDrops => reaches(Signal::NetDropsPerSec, t.net_drops_per_sec),
    }
}

/// The evidence of a saturation its use alone does not show: its vCPUs' running and waiting time.
pub const CPU_BUSY: &str = "cpu_busy_percent";

/// Use, or its vCPUs' running and waiting time: a vCPU waiting for a host CPU is busy as its
/// guest sees it, so a guest busy on a contended core is saturated though it gets less than it
/// asks for. The vCPUs' times come from one call; without them, use plus steal, which are read
/// apart: on a loaded host their spans can differ by half a second (`benches/README.md`).
fn cpu_busy(values: &Values, threshold: f64) -> Rule {
    let used = values.get(Signal::CpuPercent);
    let busy = values.vcpu_busy_percent.or_else(|| {
        let steal = values.get(Signal::CpuStealPercent).filter(|s| *s > 0.0)?;
        Some(used? + steal)
    });
    match busy {
        Some(busy) if used.is_none_or(|used| used < threshold) => {
            at_least(CPU_BUSY, Some(busy), threshold)
        }
        _ => at_least(Signal::CpuPercent.name(), used, threshold),
    }
}

fn at_least(signal: &'static str, value: Option<f64>, threshold: f64) -> Rule {
    match value {
        Some(value) if value >= threshold => Rule::Holds(Evidence {
            signal,
            value,
            threshold,
        }),
        Some(_) => Rule::Clear,
        None => Rule::Unknown,
    }
}

/// The rule that holds furthest beyond its threshold; clear if one is known and none holds.
fn strongest<const N: usize>(rules: [Rule; N]) -> Rule {
    let ratio = |e: &Evidence| e.value / e.threshold.max(f64::MIN_POSITIVE);
    let mut best = Rule::Unknown;
    for rule in rules {
        best = match (best, rule) {
            (Rule::Holds(a), Rule::Holds(b)) if ratio(&b) > ratio(&a) => rule,
            (Rule::Holds(_), _) => best,
            (_, Rule::Holds(_)) | (Rule::Unknown, Rule::Clear) => rule,
            _ => best,
        };
    }
    best
}

/// Cycles in a row `condition`'s rule must hold before it is named.
fn needed(condition: Condition, thresholds: &Thresholds) -> u32 {
    match condition {
        Condition::DiskErrors => 1,
        _ => thresholds.condition_cycles.max(1),
    }
}

/// One condition of one VM: how many cycles in a row its rule has held, and since when.
#[derive(Debug, Clone, Copy, Default)]
struct Streak {
    cycles: u32,
    since_ns: i64,
    evidence: Option<Evidence>,
    /// Named, the last cycle was clear: one is forgiven, the next ends the streak.
    missed: bool,
}

/// A condition that holds, for the API and `vm_bottlenecks`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Active {
    pub condition: Condition,
    pub evidence: Evidence,
    pub since_ns: i64,
    pub held_sec: f64,
}

/// Every condition of one VM; boxed only while one of its rules holds, as most VMs have none.
#[derive(Debug, Clone, Default)]
pub struct Bottlenecks {
    streaks: Option<Box<[Streak; CONDITIONS]>>,
    now_ns: i64,
}

impl Bottlenecks {
    /// Applies every rule to the cycle's values at `now_ns`.
    pub fn update(&mut self, values: &Values, now_ns: i64, thresholds: &Thresholds) {
        self.now_ns = now_ns;
        for condition in Condition::ALL {
            match rule(condition, values, thresholds) {
                Rule::Holds(evidence) => {
                    let streaks = self.streaks.get_or_insert_with(Default::default);
                    let streak = &mut streaks[condition as usize];
                    // A clock stepped back before its start: it holds since now.
                    if streak.cycles == 0 || streak.since_ns > now_ns {
                        streak.since_ns = now_ns;
                    }
                    streak.cycles = streak.cycles.saturating_add(1);
                    streak.evidence = Some(evidence);
                    streak.missed = false;
                }
                // A named condition outlasts one clear cycle: a value close to its threshold
                // crosses it back and forth, and a condition flapping tells an operator nothing.
                Rule::Clear => {
                    if let Some(streaks) = &mut self.streaks {
                        let streak = &mut streaks[condition as usize];
                        if streak.cycles >= needed(condition, thresholds) && !streak.missed {
                            streak.missed = true;
                        } else {
                            *streak = Streak::default();
                        }
                    }
                }
                Rule::Unknown => {}
            }
        }
        if let Some(streaks) = &self.streaks
            && streaks.iter().all(|streak| streak.cycles == 0)
        {
            self.streaks = None;
        }
    }

    /// Forgets every streak: a stopped VM has no condition.
    pub fn clear(&mut self) {
        self.streaks = None;
    }

    /// The conditions that hold now, in `Condition::ALL` order.
    pub fn active(&self, thresholds: &Thresholds) -> impl Iterator<Item = Active> + '_ {
        let needed = Condition::ALL.map(|condition| needed(condition, thresholds));
        let streaks = self.streaks.as_deref().into_iter().flatten();
        Condition::ALL
            .into_iter()
            .zip(streaks)
            .filter_map(move |(condition, streak)| {
                let named = streak.cycles >= needed[condition as usize];
                let evidence = streak.evidence.filter(|_| named)?;
                let held_ns = self.now_ns.saturating_sub(streak.since_ns).max(0);
                Some(Active {
                    condition,
                    evidence,
                    since_ns: streak.since_ns,
                    held_sec: held_ns as f64 / 1e9,
                })
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn thresholds() -> Thresholds {
        Thresholds::defaults()
    }

    fn values(pairs: &[(Signal, f64)]) -> Values {
        let mut values = Values::default();
        for (signal, value) in pairs {
            values.set(*signal, Some(*value));
        }
        values
    }

    fn names(b: &Bottlenecks) -> Vec<&'static str> {
        b.active(&thresholds())
            .map(|a| a.condition.name())
            .collect()
    }

    #[test]
    fn cpu_saturated_after_three_cycles_with_its_evidence_and_duration() {
        let mut b = Bottlenecks::default();
        let busy = values(&[(Signal::CpuPercent, 97.0)]);
        for t in 0..2 {
            b.update(&busy, t * 5_000_000_000, &thresholds());
        }
        assert!(names(&b).is_empty());
        // A cycle without the signal keeps the streak.
        b.update(&Values::default(), 10_000_000_000, &thresholds());
        b.update(&busy, 15_000_000_000, &thresholds());
        let active: Vec<Active> = b.active(&thresholds()).collect();
        assert_eq!(active.len(), 1);
        assert_eq!(active[0].condition, Condition::CpuSaturated);
        assert_eq!(
            active[0].evidence,
            Evidence {
                signal: "cpu_percent",
                value: 97.0,
                threshold: 90.0
            }
        );
        assert_eq!(active[0].held_sec, 15.0);
        // The clock stepped back a day: it holds since then, not since a time to come.
        b.update(&busy, -86_400_000_000_000, &thresholds());
        b.update(&busy, -86_395_000_000_000, &thresholds());
        assert_eq!(b.active(&thresholds()).next().unwrap().held_sec, 5.0);
        // Two clear cycles in a row clear it (a named condition outlasts one, below).
        let idle = values(&[(Signal::CpuPercent, 20.0)]);
        b.update(&idle, 20, &thresholds());
        b.update(&idle, 21, &thresholds());
        assert!(names(&b).is_empty());
    }

    #[test]
    fn a_named_condition_outlasts_one_clear_cycle_not_two() {
        let mut b = Bottlenecks::default();
        let (busy, idle) = (
            values(&[(Signal::CpuPercent, 97.0)]),
            values(&[(Signal::CpuPercent, 60.0)]),
        );
        let at = |t: i64| t * 1_000_000_000;
        // Before it is named a dip restarts the count: held, a dip, held twice is not enough.
        for (t, v) in [&busy, &idle, &busy, &busy].into_iter().enumerate() {
            b.update(v, at(t as i64), &thresholds());
        }
        assert!(names(&b).is_empty());
        b.update(&busy, at(4), &thresholds());
        assert_eq!(b.active(&thresholds()).next().unwrap().held_sec, 2.0);
        // Named, one dip keeps it, with its evidence and its start; held again, on it goes.
        b.update(&idle, at(5), &thresholds());
        let kept = b.active(&thresholds()).next().unwrap();
        assert_eq!((kept.evidence.value, kept.held_sec), (97.0, 3.0));
        b.update(&busy, at(6), &thresholds());
        b.update(&idle, at(7), &thresholds());
        assert_eq!(names(&b), ["cpu_saturated"]);
        // The second clear cycle in a row clears it, and the count starts again.
        b.update(&idle, at(8), &thresholds());
        assert!(names(&b).is_empty());
        b.update(&busy, at(9), &thresholds());
        b.update(&busy, at(10), &thresholds());
        assert!(names(&b).is_empty());
    }

    #[test]
    fn a_vcpu_busy_on_a_contended_core_is_saturated_by_use_and_steal() {
        let mut b = Bottlenecks::default();
        let contended = values(&[(Signal::CpuPercent, 72.0), (Signal::CpuStealPercent, 25.0)]);
        for t in 0..3 {
            b.update(&contended, t, &thresholds());
        }
        let active: Vec<Active> = b.active(&thresholds()).collect();
        assert_eq!(
            active
                .iter()
                .map(|a| a.condition.name())
                .collect::<Vec<_>>(),
            ["cpu_saturated", "cpu_contention"]
        );
        assert_eq!(
            active[0].evidence,
            Evidence {
                signal: CPU_BUSY,
                value: 97.0,
                threshold: 90.0
            }
        );
        // Use is the evidence when it reaches the threshold alone; a light VM waiting is no
        // saturation, only contention.
        b.update(
            &values(&[(Signal::CpuPercent, 95.0), (Signal::CpuStealPercent, 3.0)]),
            3,
            &thresholds(),
        );
        assert_eq!(
            b.active(&thresholds()).next().unwrap().evidence.signal,
            "cpu_percent"
        );
        let light = values(&[(Signal::CpuPercent, 20.0), (Signal::CpuStealPercent, 30.0)]);
        for t in 4..7 {
            b.update(&light, t, &thresholds());
        }
        assert_eq!(names(&b), ["cpu_contention"]);
    }

    #[test]
    fn a_vcpus_running_and_waiting_time_read_together_outweighs_use_and_steal_read_apart() {
        let mut b = Bottlenecks::default();
        // The seed's use read late (its span longer than its counter's): 40 % + 25 % steal,
        // while the vCPUs' own rows say busy 98 % of their time.
        let skewed = Values {
            vcpu_busy_percent: Some(98.0),
            ..values(&[(Signal::CpuPercent, 40.0), (Signal::CpuStealPercent, 25.0)])
        };
        for t in 0..3 {
            b.update(&skewed, t, &thresholds());
        }
        let active = b.active(&thresholds()).next().unwrap();
        assert_eq!(active.condition, Condition::CpuSaturated);
        assert_eq!(active.evidence.signal, CPU_BUSY);
        assert_eq!(active.evidence.value, 98.0);
        // A light VM waiting: its vCPUs' rows say half busy, whatever use and steal add to.
        let light = Values {
            vcpu_busy_percent: Some(50.0),
            ..values(&[(Signal::CpuPercent, 75.0), (Signal::CpuStealPercent, 30.0)])
        };
        for t in 3..6 {
            b.update(&light, t, &thresholds());
        }
        assert_eq!(names(&b), ["cpu_contention"]);
    }

    #[test]
    fn guest_memory_nearly_full_is_pressure_but_a_full_balloon_is_not() {
        let mut b = Bottlenecks::default();
        // The seed's figure (the balloon's size) at 100 %: no pressure.
        let balloon = values(&[(Signal::MemoryUsedPercent, 100.0)]);
        let guest = Values {
            guest_memory_used_percent: Some(97.0),
            ..values(&[(Signal::MemoryUsedPercent, 97.0)])
        };
        for t in 0..3 {
            b.update(&balloon, t, &thresholds());
        }
        assert!(names(&b).is_empty());
        for t in 3..6 {
            b.update(&guest, t, &thresholds());
        }
        assert_eq!(names(&b), ["memory_pressure"]);
    }

    #[test]
    fn memory_pressure_names_its_strongest_evidence_and_disk_errors_hold_at_once() {
        let mut b = Bottlenecks::default();
        let v = Values {
            disk_errors_per_sec: Some(0.2),
            guest_memory_used_percent: Some(50.0),
            ..values(&[
                (Signal::SwapOutKbPerSec, 300.0),
                (Signal::MajorFaultsPerSec, 500.0),
                (Signal::MemoryUsedPercent, 50.0),
            ])
        };
        b.update(&v, 0, &thresholds());
        assert_eq!(names(&b), ["disk_errors"]);
        b.update(&v, 1, &thresholds());
        b.update(&v, 2, &thresholds());
        assert_eq!(names(&b), ["memory_pressure", "disk_errors"]);
        let memory = b.active(&thresholds()).next().unwrap();
        assert_eq!(memory.evidence.signal, "major_faults_per_sec");
    }
}
