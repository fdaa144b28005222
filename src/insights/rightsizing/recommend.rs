//! A VM's recommendation: VPA's estimates rounded to what a VM can be given (whole vCPUs,
//! MiB), set against what it has, and classed.

use serde::Serialize;
use utoipa::ToSchema;

use super::estimator::Estimate;
use super::vm::{VmRightsizing, VpaClock};

const MIB: i64 = 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    OverProvisioned,
    RightSized,
    UnderProvisioned,
}

impl Class {
    pub fn name(self) -> &'static str {
        match self {
            Class::OverProvisioned => "over_provisioned",
            Class::RightSized => "right_sized",
            Class::UnderProvisioned => "under_provisioned",
        }
    }

    /// Over when the allocation is above the upper bound, under when below the lower bound.
    fn of(current: u64, lower: u64, upper: u64) -> Class {
        if current < lower {
            Class::UnderProvisioned
        } else if current > upper {
            Class::OverProvisioned
        } else {
            Class::RightSized
        }
    }
}

/// One resource in what a VM is given: whole vCPUs or MiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct Sizing {
    pub current: u64,
    pub lower: u64,
    pub target: u64,
    pub upper: u64,
    pub class: Class,
    /// What giving it the target would free (a positive number) or add (a negative one).
    pub reclaimable: i64,
}

impl Sizing {
    /// `estimate` in millicores or bytes, rounded up to whole units of `unit`; at least one.
    fn new(estimate: Estimate, unit: i64, current: u64) -> Sizing {
        let round = |amount: i64| ((amount + unit - 1) / unit).max(1) as u64;
        let (lower, target, upper) = (
            round(estimate.lower),
            round(estimate.target),
            round(estimate.upper),
        );
        let class = Class::of(current, lower, upper);
        let reclaimable = match class {
            Class::RightSized => 0,
            _ => i64::try_from(current).unwrap_or(i64::MAX) - target as i64,
        };
        Sizing {
            current,
            lower,
            target,
            upper,
            class,
            reclaimable,
        }
    }
}

/// A VM's recommendation, with the raw VPA estimates it was rounded from.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Recommendation {
    pub class: Class,
    /// vCPUs.
    pub cpu: Sizing,
    /// MiB; none for a VM whose guest does not report its memory in use (no balloon stats).
    pub memory: Option<Sizing>,
    /// VPA's estimates: millicores and bytes.
    pub cpu_millicores: Estimate,
    pub memory_bytes: Option<Estimate>,
    /// The history behind it.
    pub history_hours: f64,
    /// VPA's confidence, in days.
    pub confidence_days: f64,
}

/// None until the VM has given two CPU samples a minute apart.
pub fn recommend(
    state: &VmRightsizing,
    cpu_count: u32,
    memory_max_kb: u64,
    clock: VpaClock,
) -> Option<Recommendation> {
    let cpu_millicores = state.cpu_estimate(clock)?;
    let memory_bytes = state.memory_estimate(clock);
    let cpu = Sizing::new(cpu_millicores, 1000, u64::from(cpu_count));
    let memory = memory_bytes.map(|e| Sizing::new(e, MIB, memory_max_kb / 1024));
    let classes = [Some(cpu.class), memory.map(|m| m.class)];
    let class = if classes.contains(&Some(Class::UnderProvisioned)) {
        Class::UnderProvisioned
    } else if classes.contains(&Some(Class::OverProvisioned)) {
        Class::OverProvisioned
    } else {
        Class::RightSized
    };
    let history = state.history(clock);
    Some(Recommendation {
        class,
        cpu,
        memory,
        cpu_millicores,
        memory_bytes,
        history_hours: (history.last_sample_ns - history.first_sample_ns) as f64 / 3.6e12,
        confidence_days: history.confidence(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::insights::rightsizing::vm::DAY_NS;

    const T0: i64 = 20_000 * DAY_NS;
    const MINUTE: i64 = 60_000_000_000;
    const VPA: VpaClock = VpaClock { minute_ns: MINUTE };

    /// A day of one CPU sample a minute at `cores`, and a memory peak of `memory_mb`.
    fn day_at(cores: f64, memory_mb: f64) -> VmRightsizing {
        day_on(VPA, cores, memory_mb)
    }

    /// The same on `clock`.
    fn day_on(clock: VpaClock, cores: f64, memory_mb: f64) -> VmRightsizing {
        let mut state = VmRightsizing::default();
        let mut cputime = 0u64;
        state.observe_cpu(T0, 0, clock);
        for i in 1..=1440 {
            cputime += (cores * clock.minute_ns as f64) as u64;
            state.observe_cpu(T0 + i * clock.minute_ns, cputime, clock);
        }
        state.observe_memory(T0, memory_mb * 1e6, clock);
        state
    }

    #[test]
    fn a_shortened_clock_sees_in_minutes_what_vpa_sees_in_a_day() {
        let seconds = VpaClock {
            minute_ns: 1_000_000_000,
        };
        let fast = recommend(&day_on(seconds, 0.5, 300.0), 4, 1 << 20, seconds).unwrap();
        let vpa = recommend(&day_at(0.5, 300.0), 4, 1 << 20, VPA).unwrap();
        assert_eq!((fast.cpu, fast.memory), (vpa.cpu, vpa.memory));
        assert_eq!(fast.confidence_days, vpa.confidence_days);
        // Its history is told in real hours: 1,439 s.
        assert!((fast.history_hours - 1439.0 / 3600.0).abs() < 1e-9);
        // The same samples read on VPA's clock: a 24-minute history, far less confident.
        let unsure = recommend(&day_on(seconds, 0.5, 300.0), 4, 1 << 20, VPA).unwrap();
        assert!(unsure.confidence_days < vpa.confidence_days / 50.0);
    }

    #[test]
    fn an_idle_vm_with_4_vcpus_and_1_gib_is_over_provisioned() {
        let r = recommend(&day_at(0.0, 100.0), 4, 1 << 20, VPA).unwrap();
        // 25 m and 250 MiB (the minimums) round to 1 vCPU and 250 MiB, all three bounds.
        assert_eq!((r.cpu.lower, r.cpu.target, r.cpu.upper), (1, 1, 1));
        assert_eq!(r.cpu.class, Class::OverProvisioned);
        assert_eq!(r.cpu.reclaimable, 3);
        let memory = r.memory.unwrap();
        assert_eq!((memory.target, memory.current), (250, 1024));
        assert_eq!(memory.reclaimable, 774);
        assert_eq!(r.class, Class::OverProvisioned);
        assert!((r.history_hours - 1439.0 / 60.0).abs() < 1e-9);
    }

    #[test]
    fn half_a_vcpu_of_four_gets_one_and_a_busy_single_vcpu_needs_two() {
        // 0.5 core: 587 m target (see vm.rs), upper 1174 m → 2 vCPUs: 4 is over, 2 is right.
        let half = day_at(0.5, 300.0);
        let r = recommend(&half, 4, 1 << 20, VPA).unwrap();
        assert_eq!((r.cpu.target, r.cpu.upper, r.cpu.reclaimable), (1, 2, 3));
        assert_eq!(r.cpu.class, Class::OverProvisioned);
        assert_eq!(
            recommend(&half, 2, 1 << 20, VPA).unwrap().cpu.class,
            Class::RightSized
        );
        // A whole core busy: the lower bound, 1165 m, needs 2 vCPUs: under-provisioned.
        let busy = recommend(&day_at(1.0, 300.0), 1, 1 << 20, VPA).unwrap();
        assert_eq!((busy.cpu.lower, busy.cpu.target), (2, 2));
        assert_eq!(busy.cpu.reclaimable, -1);
        assert_eq!(busy.class, Class::UnderProvisioned);
    }

    #[test]
    fn no_recommendation_before_history_and_none_for_memory_without_balloon() {
        assert_eq!(recommend(&VmRightsizing::default(), 2, 1 << 20, VPA), None);
        let mut no_memory = VmRightsizing::default();
        no_memory.observe_cpu(T0, 0, VPA);
        no_memory.observe_cpu(T0 + MINUTE, 60_000_000_000, VPA);
        no_memory.observe_cpu(T0 + 2 * MINUTE, 120_000_000_000, VPA);
        let r = recommend(&no_memory, 0, 0, VPA).unwrap();
        assert_eq!(r.memory, None);
        // No vCPU at all (a VM being defined): under, never a division by zero.
        assert_eq!(r.cpu.class, Class::UnderProvisioned);
    }
}
