//! One signal of one VM against its own past, in 24 bytes and a few dozen floating-point
//! operations a cycle: the value is smoothed (an EMA), and two robust z-scores are taken against
//! exponentially weighted means and variances: of the smoothed level (a shift or a burst) and of
//! its difference from the cycle before (a sudden change, as Netdata's differenced values). A
//! cycle's departure is the larger z, on the side of the normal it lies; the score holds the
//! smaller of this cycle's and the last one's when both lie on the same side, else none (as
//! Netdata asks all its models to agree), mapped into [0, 1]; anomalous from 0.5, at `threshold`.
//! So one odd cycle and its rebound (a periodic job's write landing a second late: a cycle
//! without, the next with two) are no anomaly, and a departure that lasts is, one cycle later.
//!
//! Robust: the spread never falls below the signal's floor (nor 5 % of its level), and what
//! updates the means is clipped to `threshold` spreads (the variances: `SPREAD_CLIP`), so an
//! anomaly teaches the model little while a lasting new level is learned over about
//! `baseline_samples` cycles.

/// Values beyond this (never a real rate) count as this: the state stays finite in f32.
const LIMIT: f64 = 1e30;
/// Weight of the newest value in the smoothed level: a one-cycle blip is halved.
const SMOOTHING: f64 = 0.5;
/// The spread never falls below this share of the level: 5 % of a busy signal is noise.
const RELATIVE_FLOOR: f64 = 0.05;
/// Once trained, what a sample adds to a variance is clipped to this many spreads (its mean's
/// share to `threshold` spreads): a lasting departure moves the mean, to become the new normal,
/// rather than widening the spread at once (each cycle of it would, and hide it within cycles).
const SPREAD_CLIP: f64 = 2.0;
/// The last departure is kept in sixteenths of the threshold (up to ≈ 8 thresholds).
const STEPS: f64 = 16.0;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DetectorSettings {
    /// Samples before a score is given: until then the signal is learning.
    pub learning_samples: u16,
    /// The memory of the means and variances, in samples.
    pub baseline_samples: u32,
    /// The z-score from which a sample is anomalous.
    pub threshold: f64,
}

/// What one sample of a signal gives.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict {
    /// Too few samples yet: no score.
    Learning,
    /// Not scored: the first sample after a gap, whose difference would span it.
    Resumed,
    Scored {
        score: f64,
        anomalous: bool,
    },
}

/// The state of one VM-signal. f32: the state is small, the arithmetic is in f64.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SignalModel {
    smoothed: f32,
    level_mean: f32,
    level_var: f32,
    change_mean: f32,
    change_var: f32,
    samples: u16,
    run: Run,
    /// The last scored sample's departure, in `STEPS` of the threshold, rounded down: > 0 above
    /// the normal, < 0 below it, 0 none (or a new run).
    last: i8,
}

/// Where the model's run of samples stands.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
enum Run {
    /// The next value starts a new run (its difference would span a gap).
    #[default]
    Interrupted,
    /// As interrupted, and the level learned is stale (a gap longer than the window): the next run
    /// starts from the value it meets, keeping what was learned of the spread.
    Stale,
    /// `smoothed` holds the previous sample of an unbroken run.
    Continuous,
}

/// What a snapshot keeps of a model: its level's and its change's means and variances, and its
/// samples. The rest belongs to the run a restart ends.
pub type ModelParts = (f32, f32, f32, f32, u16);

impl SignalModel {
    pub fn trained(&self, settings: &DetectorSettings) -> bool {
        self.samples >= settings.learning_samples
    }

    /// The smoothed level, once it has one: what peers are compared on.
    pub fn level(&self) -> Option<f64> {
        (self.run == Run::Continuous).then_some(f64::from(self.smoothed))
    }

    /// A gap: the next value starts a new run, unscored, its difference spanning nothing.
    pub fn interrupt(&mut self) {
        if self.run == Run::Continuous {
            self.run = Run::Interrupted;
        }
        self.last = 0;
    }

    /// A gap long enough to make the level stale: as `interrupt`, and the level is not held
    /// against the next value (a VM back after a day at another level is not an anomaly).
    pub fn interrupt_stale(&mut self) {
        self.interrupt();
        self.run = Run::Stale;
    }

    pub fn parts(&self) -> ModelParts {
        (
            self.level_mean,
            self.level_var,
            self.change_mean,
            self.change_var,
            self.samples,
        )
    }

    /// A model from a snapshot's parts, its run interrupted; None if a mean is not finite or a
    /// variance not a finite number ≥ 0.
    pub fn from_parts(parts: ModelParts) -> Option<Self> {
        let (level_mean, level_var, change_mean, change_var, samples) = parts;
        let variance = |v: f32| v.is_finite() && v >= 0.0;
        let sound = level_mean.is_finite() && change_mean.is_finite();
        (sound && variance(level_var) && variance(change_var)).then_some(SignalModel {
            level_mean,
            level_var,
            change_mean,
            change_var,
            samples,
            ..SignalModel::default()
        })
    }

    /// The next value. Not finite: the sample is ignored (`None`), the model unchanged.
    pub fn observe(
        &mut self,
        value: f64,
        floor: f64,
        settings: &DetectorSettings,
    ) -> Option<Verdict> {
        if !value.is_finite() {
            return None;
        }
        let value = value.clamp(-LIMIT, LIMIT);
        let trained = self.trained(settings);
        if self.run != Run::Continuous {
            self.restart(value);
            return Some(if trained {
                Verdict::Resumed
            } else {
                Verdict::Learning
            });
        }
        let previous = f64::from(self.smoothed);
        let smoothed = previous + SMOOTHING * (value - previous);
        let change = smoothed - previous;
        let level = Moments::of(self.level_mean, self.level_var);
        let delta = Moments::of(self.change_mean, self.change_var);
        let spread_floor = floor.max(RELATIVE_FLOOR * level.mean.abs());
        let z_level = level.z(smoothed, spread_floor);
        let z_change = delta.z(change, spread_floor);
        // Warm-up: a cumulative mean first, then the exponential memory.
        let weight = (1.0 / (f64::from(self.samples) + 1.0))
            .max(2.0 / (f64::from(settings.baseline_samples) + 1.0));
        let clip = trained.then_some(settings.threshold);
        (self.level_mean, self.level_var) = level.update(smoothed, weight, clip, spread_floor);
        (self.change_mean, self.change_var) = delta.update(change, weight, clip, spread_floor);
        self.smoothed = smoothed as f32;
        self.samples = self.samples.saturating_add(1);
        if !trained {
            return Some(Verdict::Learning);
        }
        // The side: the level's when it departs most or beyond the threshold (a level far off
        // while it falls back is still off), else the change's.
        let side = match z_level >= z_change.min(settings.threshold) {
            true => smoothed - level.mean,
            false => change - delta.mean,
        };
        let z = z_level.max(z_change);
        let last = f64::from(self.last) / STEPS * settings.threshold;
        let held = match side * last > 0.0 {
            true => z.min(last.abs()),
            false => 0.0,
        };
        self.last = (z / settings.threshold * STEPS)
            .floor()
            .min(127.0)
            .copysign(side) as i8;
        Some(Verdict::Scored {
            score: score(held, settings.threshold),
            anomalous: held >= settings.threshold,
        })
    }

    /// A run starts at `value`: the level keeps what it learned (unless stale), the differences
    /// start afresh.
    fn restart(&mut self, value: f64) {
        if self.samples == 0 || self.run == Run::Stale {
            self.level_mean = value as f32;
        }
        self.smoothed = value as f32;
        self.run = Run::Continuous;
        self.samples = self.samples.saturating_add(1);
    }
}

/// z mapped into [0, 1]: 0 at the mean, 0.5 at the threshold, 0.9 at three times it.
pub fn score(z: f64, threshold: f64) -> f64 {
    let z2 = z * z;
    let s = z2 / (z2 + threshold * threshold);
    if s.is_finite() {
        s.clamp(0.0, 1.0)
    } else {
        1.0
    }
}

/// An exponentially weighted mean and variance.
#[derive(Clone, Copy)]
struct Moments {
    mean: f64,
    var: f64,
}

impl Moments {
    fn of(mean: f32, var: f32) -> Self {
        Moments {
            mean: f64::from(mean),
            var: f64::from(var),
        }
    }

    fn spread(self, floor: f64) -> f64 {
        self.var.max(0.0).sqrt().max(floor)
    }

    fn z(self, x: f64, floor: f64) -> f64 {
        let z = (x - self.mean).abs() / self.spread(floor);
        if z.is_nan() { 0.0 } else { z }
    }

    /// The moments with `x` added at `weight`, `x` first clipped to `clip` spreads of the mean
    /// for the mean, to `SPREAD_CLIP` for the variance.
    fn update(self, x: f64, weight: f64, clip: Option<f64>, floor: f64) -> (f32, f32) {
        let within = |k: f64| {
            let reach = k * self.spread(floor);
            x.clamp(self.mean - reach, self.mean + reach) - self.mean
        };
        let (delta, spread_delta) = match clip {
            Some(k) => (within(k), within(SPREAD_CLIP.min(k))),
            None => (x - self.mean, x - self.mean),
        };
        let mean = self.mean + weight * delta;
        let var = (1.0 - weight) * (self.var + weight * spread_delta * spread_delta);
        (finite_f32(mean), finite_f32(var))
    }
}

/// Beyond f32's range, the model saturates rather than turning infinite.
fn finite_f32(x: f64) -> f32 {
    x.clamp(f64::from(f32::MIN), f64::from(f32::MAX)) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    const SETTINGS: DetectorSettings = DetectorSettings {
        learning_samples: 30,
        baseline_samples: 120,
        threshold: 5.0,
    };

    /// A noisy steady signal around `level`: a fixed pseudo-random sequence.
    fn noise(i: usize, level: f64, amplitude: f64) -> f64 {
        let x = ((i as u64).wrapping_mul(2_654_435_761) % 1000) as f64 / 1000.0;
        level + (x - 0.5) * 2.0 * amplitude
    }

    fn run(model: &mut SignalModel, values: impl IntoIterator<Item = f64>) -> Vec<Verdict> {
        values
            .into_iter()
            .map(|v| model.observe(v, 2.0, &SETTINGS).unwrap())
            .collect()
    }

    /// Whether a scored verdict is anomalous; None when not scored.
    fn anomalous(verdict: &Verdict) -> Option<bool> {
        match verdict {
            Verdict::Scored { anomalous, .. } => Some(*anomalous),
            _ => None,
        }
    }

    fn max_score(verdicts: &[Verdict]) -> f64 {
        verdicts
            .iter()
            .map(|v| match v {
                Verdict::Scored { score, .. } => *score,
                _ => 0.0,
            })
            .fold(0.0, f64::max)
    }

    #[test]
    fn a_cold_start_is_learning_then_scored() {
        let mut model = SignalModel::default();
        let verdicts = run(&mut model, (0..40).map(|i| noise(i, 30.0, 3.0)));
        assert!(verdicts[..30].iter().all(|v| *v == Verdict::Learning));
        assert!(
            verdicts[30..]
                .iter()
                .all(|v| matches!(v, Verdict::Scored { .. }))
        );
        assert!(model.trained(&SETTINGS));
    }

    #[test]
    fn a_steady_stream_stays_low() {
        let mut model = SignalModel::default();
        let verdicts = run(&mut model, (0..5000).map(|i| noise(i, 30.0, 3.0)));
        let flagged = verdicts.iter().filter(|v| anomalous(v) == Some(true));
        assert_eq!(flagged.count(), 0);
        assert!(max_score(&verdicts[30..]) < 0.3, "{}", max_score(&verdicts));
    }

    #[test]
    fn a_step_after_a_steady_phase_scores_high_then_becomes_the_new_normal() {
        let mut model = SignalModel::default();
        run(&mut model, (0..200).map(|i| noise(i, 10.0, 2.0)));
        let step = run(&mut model, (200..1400).map(|i| noise(i, 80.0, 2.0)));
        // Anomalous once it lasts: from its second cycle.
        assert_eq!(anomalous(&step[0]), Some(false), "{:?}", step[0]);
        assert!(
            matches!(step[1], Verdict::Scored { anomalous: true, score } if score > 0.9),
            "{:?}",
            step[1]
        );
        // Learned after a while: the last few hundred samples are normal again.
        assert!(max_score(&step[900..]) < 0.5, "{}", max_score(&step[900..]));
    }

    #[test]
    fn just_trained_a_lasting_departure_stays_anomalous_rather_than_widening_the_spread() {
        let mut model = SignalModel::default();
        run(&mut model, (0..31).map(|i| noise(i, 5.0, 3.0)));
        let step = run(&mut model, (31..41).map(|i| noise(i, 30.0, 3.0)));
        assert!(
            step[1..].iter().all(|v| anomalous(v) == Some(true)),
            "{step:?}"
        );
    }

    #[test]
    fn a_short_burst_is_flagged_and_the_signal_calms_down_after_it() {
        let mut model = SignalModel::default();
        run(&mut model, (0..300).map(|i| noise(i, 5.0, 1.0)));
        let burst = run(&mut model, [95.0, 97.0, 96.0]);
        assert_eq!(anomalous(&burst[0]), Some(false));
        assert!(burst[1..].iter().all(|v| anomalous(v) == Some(true)));
        let after = run(&mut model, (303..600).map(|i| noise(i, 5.0, 1.0)));
        let late = &after[20..];
        assert!(max_score(late) < 0.5, "{}", max_score(late));
    }

    #[test]
    fn one_odd_cycle_and_its_rebound_are_no_anomaly_a_lasting_departure_is() {
        // A job writing 256 KiB every second, its spread the disk rate's floor (16 KiB/s).
        let trained = || {
            let mut model = SignalModel::default();
            for i in 0..100 {
                model.observe(noise(i, 256.0, 2.0), 16.0, &SETTINGS);
            }
            model
        };
        // (score ≥ 0.5, anomalous) per cycle.
        let verdicts = |model: &mut SignalModel, values: &[f64]| -> Vec<(bool, bool)> {
            let verdict = |value| match model.observe(value, 16.0, &SETTINGS) {
                Some(Verdict::Scored { score, anomalous }) => (score >= 0.5, anomalous),
                other => panic!("{other:?}"),
            };
            values.iter().copied().map(verdict).collect()
        };
        // Its write a second late: a cycle without, the next with two, each alone beyond the
        // threshold (below, then above).
        let late = verdicts(&mut trained(), &[0.0, 512.0, 256.0, 256.0]);
        assert_eq!(late, [(false, false); 4]);
        // Stopped: anomalous from the second cycle on.
        let stopped = verdicts(&mut trained(), &[0.0, 0.0, 0.0]);
        assert_eq!(stopped, [(false, false), (true, true), (true, true)]);
        // A gap between two departing cycles breaks the run.
        let mut model = trained();
        verdicts(&mut model, &[0.0]);
        model.interrupt();
        assert_eq!(model.observe(0.0, 16.0, &SETTINGS), Some(Verdict::Resumed));
        assert_eq!(verdicts(&mut model, &[0.0]), [(false, false)]);
    }

    #[test]
    fn a_gap_gives_no_score_and_no_anomaly() {
        let mut model = SignalModel::default();
        run(&mut model, (0..100).map(|i| noise(i, 50.0, 2.0)));
        // After the gap the value is elsewhere (a VM paused for an hour): not an anomaly.
        model.interrupt();
        let resumed = model.observe(20.0, 2.0, &SETTINGS).unwrap();
        assert_eq!(resumed, Verdict::Resumed);
        let next = model.observe(20.5, 2.0, &SETTINGS).unwrap();
        assert!(matches!(next, Verdict::Scored { .. }));
    }

    #[test]
    fn after_a_stale_gap_a_new_level_is_not_an_anomaly_after_a_short_one_it_is() {
        let trained = || {
            let mut model = SignalModel::default();
            run(&mut model, (0..200).map(|i| noise(i, 10.0, 2.0)));
            model
        };
        let mut stale = trained();
        stale.interrupt_stale();
        let verdicts = run(&mut stale, (0..100).map(|i| noise(i, 80.0, 2.0)));
        assert_eq!(verdicts[0], Verdict::Resumed);
        assert!(max_score(&verdicts) < 0.5, "{verdicts:?}");
        // A short gap keeps the level: a VM back at another level after a minute is anomalous.
        let mut short = trained();
        short.interrupt();
        let verdicts = run(&mut short, (0..3).map(|i| noise(i, 80.0, 2.0)));
        assert_eq!(anomalous(&verdicts[2]), Some(true), "{verdicts:?}");
    }

    #[test]
    fn a_model_from_its_parts_is_interrupted_and_unsound_parts_are_refused() {
        let mut model = SignalModel::default();
        run(&mut model, (0..100).map(|i| noise(i, 40.0, 2.0)));
        let mut restored = SignalModel::from_parts(model.parts()).unwrap();
        assert_eq!(restored.parts(), model.parts());
        assert!(restored.trained(&SETTINGS));
        assert_eq!(restored.level(), None);
        assert_eq!(
            restored.observe(41.0, 2.0, &SETTINGS),
            Some(Verdict::Resumed)
        );
        for bad in [
            (f32::NAN, 1.0, 0.0, 1.0, 50),
            (1.0, -1.0, 0.0, 1.0, 50),
            (1.0, 1.0, f32::INFINITY, 1.0, 50),
            (1.0, 1.0, 0.0, f32::NAN, 50),
        ] {
            assert_eq!(SignalModel::from_parts(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn not_finite_values_are_ignored_and_scores_stay_in_range() {
        let mut model = SignalModel::default();
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert_eq!(model.observe(bad, 1.0, &SETTINGS), None);
        }
        assert_eq!(model, SignalModel::default());
        let extremes = [0.0, 1e300, -1e300, f64::MAX, 1e-300, f64::MIN_POSITIVE, 0.0];
        for (i, value) in extremes.iter().cycle().take(200).enumerate() {
            if i % 7 == 0 {
                model.interrupt();
            }
            if let Some(Verdict::Scored { score, .. }) = model.observe(*value, 1.0, &SETTINGS) {
                assert!((0.0..=1.0).contains(&score), "{score} after {value}");
            }
        }
        for z in [0.0, 1.0, 1e308, f64::INFINITY, f64::NAN] {
            assert!((0.0..=1.0).contains(&score(z, 5.0)), "{z}");
        }
    }

    #[test]
    fn the_state_is_small() {
        assert!(
            size_of::<SignalModel>() <= 24,
            "{}",
            size_of::<SignalModel>()
        );
    }
}
