//! One VM's right-sizing state, fed as VPA's aggregate container state is: a CPU sample (cores
//! over a minute) a minute, and one memory peak per day (a higher peak replaces the day's).

use serde::{Deserialize, Serialize};

use super::estimator::{self, Estimate, History, MINUTES_PER_DAY};
use super::histogram::{CPU_BUCKETS, DecayingHistogram, MEMORY_BUCKETS, MIN_SAMPLE_WEIGHT};

const MINUTE_NS: i64 = 60_000_000_000;
/// VPA's half-life of both histograms, and its memory aggregation interval.
pub const DAY_NS: i64 = 86_400_000_000_000;
/// A minute's CPU spanning more than this many minutes is a gap, not a sample.
const LONGEST_MINUTES: i64 = 3;

/// VPA's clock: a CPU sample a minute, and a day of 1,440 of them (both histograms' half-life,
/// the memory peaks' interval, the confidence's unit). Only a test shortens its minute
/// (`insights_recommend_sample_interval`), to see in seconds what VPA sees in days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VpaClock {
    pub minute_ns: i64,
}

impl Default for VpaClock {
    fn default() -> Self {
        VpaClock {
            minute_ns: MINUTE_NS,
        }
    }
}

impl VpaClock {
    pub fn day_ns(self) -> i64 {
        self.minute_ns.saturating_mul(MINUTES_PER_DAY as i64)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VmRightsizing {
    cpu: DecayingHistogram,
    memory: DecayingHistogram,
    first_sample_ns: i64,
    last_sample_ns: i64,
    samples: u64,
    /// Where the minute being summed began: (time, CPU time in ns).
    minute: Option<(i64, u64)>,
    /// The current day's end and its peak in bytes (VPA's `WindowEnd` and `memoryPeak`).
    window_end_ns: Option<i64>,
    peak_bytes: f64,
    last_memory_ns: i64,
}

impl VmRightsizing {
    /// The VM's CPU time at `t_ns`: a sample once a minute has passed. A counter that went back
    /// (a reboot), a clock step back or a gap starts a new minute instead.
    pub fn observe_cpu(&mut self, t_ns: i64, cputime_ns: u64, clock: VpaClock) {
        let Some((start, start_cpu)) = self.minute else {
            self.minute = Some((t_ns, cputime_ns));
            return;
        };
        let dt = t_ns.saturating_sub(start);
        if dt <= 0 || cputime_ns < start_cpu || dt > LONGEST_MINUTES * clock.minute_ns {
            self.minute = Some((t_ns, cputime_ns));
            return;
        }
        if dt < clock.minute_ns {
            return;
        }
        let cores = (cputime_ns - start_cpu) as f64 / dt as f64;
        self.cpu.add(
            &CPU_BUCKETS,
            cores,
            MIN_SAMPLE_WEIGHT,
            start,
            clock.day_ns(),
        );
        if self.samples == 0 || start < self.first_sample_ns {
            self.first_sample_ns = start;
        }
        self.last_sample_ns = self.last_sample_ns.max(start);
        self.samples += 1;
        self.minute = Some((t_ns, cputime_ns));
    }

    /// The guest's memory in use at `t_ns`, in bytes: the day's peak, VPA's way (an older
    /// sample than the last is ignored).
    pub fn observe_memory(&mut self, t_ns: i64, used_bytes: f64, clock: VpaClock) {
        if !used_bytes.is_finite() || used_bytes < 0.0 || t_ns < self.last_memory_ns {
            return;
        }
        self.last_memory_ns = t_ns;
        let day = clock.day_ns();
        let end = *self.window_end_ns.get_or_insert(t_ns);
        let new_peak = if t_ns < end {
            let replaces = self.peak_bytes != 0.0 && used_bytes > self.peak_bytes;
            if replaces {
                let old = self.peak_bytes;
                self.memory.subtract(&MEMORY_BUCKETS, old, 1.0, end, day);
            }
            replaces
        } else {
            let shift = (t_ns - end) / day * day + day;
            self.window_end_ns = Some(end + shift);
            true
        };
        if new_peak {
            let end = self.window_end_ns.unwrap_or(t_ns);
            self.memory.add(&MEMORY_BUCKETS, used_bytes, 1.0, end, day);
            self.peak_bytes = used_bytes;
        }
    }

    pub fn history(&self, clock: VpaClock) -> History {
        History {
            day_ns: clock.day_ns(),
            first_sample_ns: self.first_sample_ns,
            last_sample_ns: self.last_sample_ns,
            samples: self.samples,
        }
    }

    /// When the VM was last sampled: a VM silent for longer than the histograms reach is gone.
    pub fn last_seen_ns(&self) -> i64 {
        self.last_sample_ns.max(self.last_memory_ns)
    }

    pub fn cpu_estimate(&self, clock: VpaClock) -> Option<Estimate> {
        estimator::cpu(&self.cpu, &self.history(clock))
    }

    pub fn memory_estimate(&self, clock: VpaClock) -> Option<Estimate> {
        estimator::memory(&self.memory, &self.history(clock))
    }

    /// Buckets held by both histograms (about 16 bytes each).
    pub fn buckets_held(&self) -> usize {
        self.cpu.buckets_held() + self.memory.buckets_held()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::insights::rightsizing::estimator::{MIN_MEMORY_BYTES, MIN_MILLICORES};

    const T0: i64 = 20_000 * DAY_NS;
    const VPA: VpaClock = VpaClock {
        minute_ns: MINUTE_NS,
    };

    /// One CPU sample a minute from `from` for `minutes`, at `cores(i)` cores.
    fn cpu(state: &mut VmRightsizing, from: i64, minutes: i64, cores: impl Fn(i64) -> f64) {
        let mut cputime = 0u64;
        state.observe_cpu(from, cputime, VPA);
        for i in 0..minutes {
            cputime += (cores(i) * 60e9) as u64;
            state.observe_cpu(from + (i + 1) * MINUTE_NS, cputime, VPA);
        }
    }

    #[test]
    fn cpu_estimates_equal_vpas_over_a_day() {
        let mut state = VmRightsizing::default();
        // 1,440 minutes: nine in ten at 0.1 core, one in ten (the first) at 1 core.
        cpu(
            &mut state,
            T0,
            1440,
            |i| if i % 10 == 0 { 1.0 } else { 0.1 },
        );
        let history = state.history(VPA);
        assert_eq!(history.samples, 1440);
        // Confidence: min(1439 / 1440 days, 1440 / 1440) days.
        assert!((history.confidence() - 1439.0 / 1440.0).abs() < 1e-12);
        // Decay lifts each later sample a little, the 0.1-core ones (later in each ten) keep at
        // least 90 %: p50 and p90 are the 0.1-core bucket's end, 0.110265 cores = 110 m; + 15 %
        // (16 m) = 126 m. Lower: 126 × (1 + 0.001 / 0.99931)^-2 = 125.75 → 125 m. p95: the
        // 1-core bucket's end 1.016281 = 1016 m, + 152 = 1168 m; upper: × (1 + 1 / 0.99931) =
        // 2336.8 → 2336 m.
        let estimate = state.cpu_estimate(VPA).unwrap();
        assert_eq!(
            (estimate.lower, estimate.target, estimate.upper),
            (125, 126, 2336)
        );
    }

    #[test]
    fn an_hour_of_history_widens_the_bounds_by_vpas_confidence() {
        let mut state = VmRightsizing::default();
        cpu(&mut state, T0, 61, |_| 0.5);
        // 61 samples over 60 minutes: confidence min(60/1440, 61/1440) = 1/24 day.
        // 0.5 core: bucket 25, whose end is 0.01 × (1.05²⁶ − 1) / 0.05 = 0.5111 → 511 m,
        // + 76 = 587 m for all three percentiles. Upper × 25 = 14675; lower × 1.024^-2 = 559.8.
        let estimate = state.cpu_estimate(VPA).unwrap();
        assert_eq!(
            (estimate.lower, estimate.target, estimate.upper),
            (559, 587, 14675)
        );
    }

    #[test]
    fn minimums_are_25_millicores_and_250_mib() {
        let mut state = VmRightsizing::default();
        cpu(&mut state, T0, 1440, |_| 0.0);
        state.observe_memory(T0, 1e6, VPA);
        // Idle: bucket 0's end, 10 m, + 1 = 11 m, raised to 25 m; a 1 MB peak to 250 MiB.
        let cpu = state.cpu_estimate(VPA).unwrap();
        assert_eq!((cpu.lower, cpu.target), (MIN_MILLICORES, MIN_MILLICORES));
        let memory = state.memory_estimate(VPA).unwrap();
        assert_eq!(
            (memory.lower, memory.target),
            (MIN_MEMORY_BYTES, MIN_MEMORY_BYTES)
        );
    }

    #[test]
    fn memory_keeps_one_peak_per_day_and_decays_them() {
        let mut state = VmRightsizing::default();
        cpu(&mut state, T0, 1440, |_| 0.1);
        // Day 1: 300 MB, then 500 MB replaces it as the day's peak, 400 MB does not.
        for (minute, mb) in [(0, 300.0), (60, 500.0), (120, 400.0)] {
            state.observe_memory(T0 + minute * MINUTE_NS, mb * 1e6, VPA);
        }
        assert_eq!(state.memory.buckets_held(), 1);
        // Day 2: 200 MB, its peak counted at the day's end, a half-life later: weight 2.
        state.observe_memory(T0 + DAY_NS + MINUTE_NS, 200e6, VPA);
        // An older sample than the last is ignored.
        state.observe_memory(T0, 900e6, VPA);
        assert_eq!(state.memory.buckets_held(), 2);
        // p90 of {200 MB: 2, 500 MB: 1} = 500 MB's bucket (25), whose end is 511,134,537 B,
        // + 76,670,180 = 587,804,717 B; p50 = 200 MB's bucket end 215,785,635 + 32,367,845 =
        // 248,153,480 B, then × (1 + 0.001/0.99931)^-2, below the 250 MiB minimum.
        let memory = state.memory_estimate(VPA).unwrap();
        assert_eq!(memory.target, 587_804_717);
        assert_eq!(memory.lower, MIN_MEMORY_BYTES);
    }

    #[test]
    fn resets_clock_steps_and_gaps_give_no_sample_spanning_them() {
        let mut state = VmRightsizing::default();
        state.observe_cpu(T0, 1_000_000_000_000, VPA);
        // A reboot: the counter went back. No sample, a new minute.
        state.observe_cpu(T0 + MINUTE_NS, 5, VPA);
        // The clock stepped back.
        state.observe_cpu(T0, 10, VPA);
        // A gap of a day.
        state.observe_cpu(T0 + DAY_NS, 20, VPA);
        assert_eq!(state.history(VPA).samples, 0);
        assert_eq!(state.cpu_estimate(VPA), None);
        state.observe_cpu(T0 + DAY_NS + MINUTE_NS, 20 + 30_000_000_000, VPA);
        assert_eq!(state.history(VPA).samples, 1);
        // One sample: no span, no confidence, no estimate (VPA's upper bound is infinite).
        assert_eq!(state.cpu_estimate(VPA), None);
        state.observe_memory(T0, f64::NAN, VPA);
        state.observe_memory(T0, -1.0, VPA);
        assert_eq!(state.memory_estimate(VPA), None);
    }
}
