//! A resource's trend: a least-squares line through its recent values, each weighted down by
//! half every half-life (Prometheus' `predict_linear` over a window that fades instead of
//! ending), kept as running weighted moments: a few numbers per resource whatever the cadence.
//! The slope's standard error tells a real trend from noise; a hysteresis keeps the verdict
//! from flapping between "full in 3 days" and "not growing" from one cycle to the next.

use serde::{Deserialize, Serialize};

/// The 80 % interval: the 10th and 90th percentiles of a normal slope estimate.
const Z80: f64 = 1.281_551_565_545;
/// A trend starts to count once the slope is this many standard errors above zero (on flat
/// noise the running statistic strays to 3.6 over 50 hours; a real leak passes 5 within
/// minutes) ...
const ENTER_T: f64 = 5.0;
/// ... for this many evaluations in a row, and stops once it falls below `LEAVE_T` as long.
const CONFIRM: u8 = 3;
const LEAVE_T: f64 = 1.0;
/// The fewest (effective) points a line is fitted through.
const MIN_POINTS: f64 = 10.0;
/// A fall of more than this share of the capacity in one step is a reset (a reboot freeing
/// memory, an image recreated): the line starts again.
const RESET_SHARE: f64 = 0.1;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Trend {
    /// Sum of weights and of squared weights.
    w: f64,
    w2: f64,
    /// Weighted means of time (seconds since the epoch) and value, and co-moments.
    mean_t: f64,
    mean_y: f64,
    c_tt: f64,
    c_ty: f64,
    c_yy: f64,
    last_t: f64,
    last_y: f64,
    growing: bool,
    /// Evaluations in a row that argue for leaving the current verdict.
    streak: u8,
}

/// When a resource will be full, in seconds from the last value, with its 80 % interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outlook {
    pub used: f64,
    pub capacity: f64,
    /// Per hour, in the resource's unit.
    pub growth_per_hour: f64,
    /// None: not growing.
    pub to_full: Option<ToFull>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ToFull {
    pub seconds: f64,
    pub lower: f64,
    /// None when the slower growth of the interval would never fill it within `horizon`.
    pub upper: Option<f64>,
}

impl Trend {
    /// Adds `used` at `t_ns`; `half_life` in seconds. Not finite values are ignored; a clock
    /// that went back or a reset starts the line again.
    pub fn observe(&mut self, t_ns: i64, used: f64, capacity: f64, half_life: f64) {
        if !used.is_finite() || !capacity.is_finite() {
            return;
        }
        let t = t_ns as f64 / 1e9;
        let reset = self.w > 0.0
            && (t < self.last_t || self.last_y - used > RESET_SHARE * capacity.max(0.0));
        if reset {
            *self = Trend::default();
        }
        // The same extended sample as last cycle's: no new point.
        if self.w > 0.0 && t == self.last_t {
            return;
        }
        if self.w > 0.0 {
            let decay = (-(t - self.last_t) / half_life).exp2();
            (self.w, self.w2) = (self.w * decay, self.w2 * decay * decay);
            (self.c_tt, self.c_ty, self.c_yy) =
                (self.c_tt * decay, self.c_ty * decay, self.c_yy * decay);
        }
        // Welford's weighted update, stable with times of 1.8e9 s.
        self.w += 1.0;
        self.w2 += 1.0;
        let (dt, dy) = (t - self.mean_t, used - self.mean_y);
        self.mean_t += dt / self.w;
        self.mean_y += dy / self.w;
        self.c_tt += dt * (t - self.mean_t);
        self.c_ty += dt * (used - self.mean_y);
        self.c_yy += dy * (used - self.mean_y);
        (self.last_t, self.last_y) = (t, used);
    }

    /// The slope (per second) and its standard error, once enough points span some time.
    fn slope(&self) -> Option<(f64, f64)> {
        let n = self.w * self.w / self.w2;
        let enough = n >= MIN_POINTS && self.c_tt > 0.0;
        if !enough {
            return None;
        }
        let slope = self.c_ty / self.c_tt;
        let residual = (self.c_yy - slope * self.c_ty).max(0.0);
        let se = (residual / ((n - 2.0) * self.c_tt)).sqrt();
        (slope.is_finite() && se.is_finite()).then_some((slope, se))
    }

    /// The verdict now, against `capacity`: growing only after the trend held for `CONFIRM`
    /// evaluations, and not growing only after it faded as long. `horizon`: in seconds, the
    /// longest time to full worth reporting.
    pub fn evaluate(&mut self, capacity: f64, horizon: f64) -> Outlook {
        let fitted = self.slope();
        let t_stat = fitted.map_or(0.0, |(slope, se)| match se > 0.0 {
            true => slope / se,
            false if slope > 0.0 => f64::INFINITY,
            false => 0.0,
        });
        let argues_to_leave = match self.growing {
            false => t_stat >= ENTER_T,
            true => t_stat < LEAVE_T,
        };
        self.streak = if argues_to_leave { self.streak + 1 } else { 0 };
        if self.streak >= CONFIRM {
            (self.growing, self.streak) = (!self.growing, 0);
        }
        let (slope, se) = fitted.unwrap_or((0.0, 0.0));
        let mut outlook = Outlook {
            used: self.last_y,
            capacity,
            growth_per_hour: slope * 3600.0,
            to_full: None,
        };
        if self.growing && slope > 0.0 && capacity > 0.0 {
            let level = self.mean_y + slope * (self.last_t - self.mean_t);
            let room = (capacity - level).max(0.0);
            let seconds = room / slope;
            let slow = slope - Z80 * se;
            let upper = (slow > 0.0).then(|| room / slow).filter(|s| *s <= horizon);
            if seconds <= horizon {
                outlook.to_full = Some(ToFull {
                    seconds,
                    lower: room / (slope + Z80 * se),
                    upper,
                });
            }
        }
        outlook
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: i64 = 1_000_000_000;
    const T0: i64 = 1_800_000_000 * SEC;
    const GIB: f64 = 1024.0 * 1024.0 * 1024.0;
    const HALF_LIFE: f64 = 6.0 * 3600.0;
    const HORIZON: f64 = 365.0 * 86_400.0;

    /// Noise in [-1, 1), the same every run.
    struct Noise(u64);

    impl Noise {
        fn next(&mut self) -> f64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            (self.0 >> 11) as f64 / (1u64 << 52) as f64 - 1.0
        }
    }

    /// `cycles` of 60 s from `from`: used = `level(i)` + noise of `noise` bytes; every verdict.
    fn run(
        trend: &mut Trend,
        from: i64,
        cycles: i64,
        capacity: f64,
        noise: f64,
        level: impl Fn(i64) -> f64,
    ) -> Vec<Outlook> {
        let mut random = Noise(7);
        (0..cycles)
            .map(|i| {
                let used = level(i) + noise * random.next();
                trend.observe(from + i * 60 * SEC, used, capacity, HALF_LIFE);
                trend.evaluate(capacity, HORIZON)
            })
            .collect()
    }

    fn flips(verdicts: &[Outlook]) -> usize {
        let growing: Vec<bool> = verdicts.iter().map(|v| v.to_full.is_some()).collect();
        growing.windows(2).filter(|w| w[0] != w[1]).count()
    }

    #[test]
    fn a_steady_leak_is_forecast_within_its_interval() {
        let mut trend = Trend::default();
        // 1 GiB used of 8, growing 1 MiB a minute with ±20 MiB of noise: full in 7,168 min.
        let mib = GIB / 1024.0;
        let verdicts = run(&mut trend, T0, 1000, 8.0 * GIB, 20.0 * mib, |i| {
            GIB + i as f64 * mib
        });
        let last = verdicts.last().unwrap();
        let full = last.to_full.expect("growing");
        let truth = (8.0 * GIB - (GIB + 999.0 * mib)) / mib * 60.0;
        assert!(
            (full.seconds / truth - 1.0).abs() < 0.05,
            "{} vs {truth}",
            full.seconds
        );
        let upper = full.upper.expect("a finite upper bound");
        assert!(full.lower <= truth && truth <= upper, "{full:?} vs {truth}");
        assert!((last.growth_per_hour / (60.0 * mib) - 1.0).abs() < 0.05);
        assert_eq!(flips(&verdicts), 1, "learning, then growing for good");
    }

    #[test]
    fn noise_around_a_flat_level_is_not_growing_and_never_flaps() {
        let mut trend = Trend::default();
        let verdicts = run(&mut trend, T0, 3000, 8.0 * GIB, 0.2 * GIB, |_| 4.0 * GIB);
        assert_eq!(flips(&verdicts), 0);
        assert!(verdicts.iter().all(|v| v.to_full.is_none()));
    }

    #[test]
    fn a_trend_that_fades_stops_once_without_flapping() {
        let mut trend = Trend::default();
        let mib = GIB / 1024.0;
        // Growing for a day, then flat with noise for two: one change each way at most.
        let growing = run(&mut trend, T0, 1440, 64.0 * GIB, 30.0 * mib, |i| {
            GIB + i as f64 * mib
        });
        let flat = run(
            &mut trend,
            T0 + 1440 * 60 * SEC,
            2880,
            64.0 * GIB,
            30.0 * mib,
            |_| GIB + 1440.0 * mib,
        );
        assert!(growing.last().unwrap().to_full.is_some());
        assert!(flat.last().unwrap().to_full.is_none());
        assert_eq!(flips(&growing) + flips(&flat), 2);
    }

    fn sane(verdicts: &[Outlook]) {
        for v in verdicts {
            assert!(v.growth_per_hour.is_finite(), "{v:?}");
            if let Some(f) = v.to_full {
                assert!(f.seconds.is_finite() && f.seconds >= 0.0, "{v:?}");
                assert!(
                    f.lower.is_finite() && f.lower >= 0.0 && f.lower <= f.seconds,
                    "{v:?}"
                );
                assert!(
                    f.upper.is_none_or(|u| u.is_finite() && u >= f.seconds),
                    "{v:?}"
                );
            }
        }
    }

    #[test]
    fn shrunk_or_grown_capacity_never_gives_a_negative_or_infinite_forecast() {
        let mut trend = Trend::default();
        let mib = GIB / 1024.0;
        let leak = |i: i64| GIB + i as f64 * mib;
        let verdicts = run(&mut trend, T0, 600, 4.0 * GIB, 0.0, leak);
        sane(&verdicts);
        // setmem: the guest now has less than it uses: full now, not negative.
        let shrunk = run(&mut trend, T0 + 600 * 60 * SEC, 5, GIB / 2.0, 0.0, |i| {
            leak(600 + i)
        });
        sane(&shrunk);
        assert_eq!(shrunk.last().unwrap().to_full.unwrap().seconds, 0.0);
        // The disk resized to 100 GiB: later, and still finite.
        let grown = run(&mut trend, T0 + 605 * 60 * SEC, 5, 100.0 * GIB, 0.0, |i| {
            leak(605 + i)
        });
        sane(&grown);
        let later = grown.last().unwrap().to_full.unwrap().seconds;
        assert!(later > 90.0 * GIB / mib * 60.0, "{later}");
        // Capacity zero or not finite: no forecast, no panic.
        assert!(trend.evaluate(0.0, HORIZON).to_full.is_none());
        trend.observe(T0 + 611 * 60 * SEC, f64::NAN, f64::INFINITY, HALF_LIFE);
        trend.observe(T0 + 612 * 60 * SEC, f64::INFINITY, GIB, HALF_LIFE);
        sane(&[trend.evaluate(f64::NAN, HORIZON)]);
    }

    #[test]
    fn gaps_resets_and_clock_steps_start_afresh_without_nonsense() {
        let mut trend = Trend::default();
        let mib = GIB / 1024.0;
        let leak = |i: i64| GIB + i as f64 * mib;
        sane(&run(&mut trend, T0, 600, 8.0 * GIB, 5.0 * mib, leak));
        // Three days without a value, then the same leak 3 GiB higher.
        let after_gap = T0 + 3 * 86_400 * SEC;
        let resumed = run(&mut trend, after_gap, 60, 8.0 * GIB, 5.0 * mib, |i| {
            4.0 * GIB + i as f64 * mib
        });
        sane(&resumed);
        // A reboot frees memory (a fall of more than a tenth of the capacity): a fresh line,
        // not a steep decline, and not growing until it has shown it again.
        let rebooted = run(
            &mut trend,
            after_gap + 3600 * SEC,
            5,
            8.0 * GIB,
            0.0,
            |_| GIB,
        );
        sane(&rebooted);
        assert!(rebooted.iter().all(|v| v.growth_per_hour >= 0.0));
        // The clock steps back an hour: a fresh line again.
        let stepped = run(&mut trend, after_gap, 30, 8.0 * GIB, 5.0 * mib, leak);
        sane(&stepped);
        // 30 points since the step, a little decayed: the line before it is gone.
        assert!(29.0 < trend.w && trend.w < 30.0, "{}", trend.w);
    }
}
