//! A VM's anomaly rate: the share of its scored signal-samples that were anomalous over the last
//! `window`, kept in 15 time buckets (120 bytes a VM), so a gap or a slow cycle weighs only the
//! time it covers and a VM back after an hour starts from an empty window.

use std::time::Duration;

pub const BUCKETS: usize = 15;

/// What a snapshot keeps of a window: (anomalous, scored) per bucket, and the newest bucket's
/// number (meaningless while every bucket is empty).
pub type WindowParts = ([(u32, u32); BUCKETS], i64);

#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    anomalous: u32,
    scored: u32,
}

#[derive(Debug, Clone)]
pub struct AnomalyWindow {
    buckets: [Bucket; BUCKETS],
    /// The number of the newest bucket since the epoch, in bucket widths.
    newest: Option<i64>,
}

impl Default for AnomalyWindow {
    fn default() -> Self {
        AnomalyWindow {
            buckets: [Bucket::default(); BUCKETS],
            newest: None,
        }
    }
}

impl AnomalyWindow {
    /// Adds one cycle's counts at `timestamp_ns`. A timestamp before the newest bucket (a clock
    /// stepped back) counts in the newest; one a window or more before it starts the window
    /// afresh, as what it held is from a time that has not come yet.
    pub fn record(&mut self, window: Duration, timestamp_ns: i64, anomalous: u32, scored: u32) {
        if scored == 0 {
            return;
        }
        let width = bucket_width_ns(window);
        let number = timestamp_ns.div_euclid(width);
        let newest = match self.newest {
            Some(newest) if newest.saturating_sub(number) >= BUCKETS as i64 => {
                self.buckets = [Bucket::default(); BUCKETS];
                number
            }
            Some(newest) if number <= newest => newest,
            Some(newest) => {
                let passed = number.saturating_sub(newest).min(BUCKETS as i64);
                for step in 1..=passed {
                    self.buckets[slot(newest.saturating_add(step))] = Bucket::default();
                }
                number
            }
            None => number,
        };
        self.newest = Some(newest);
        let bucket = &mut self.buckets[slot(newest)];
        bucket.anomalous = bucket.anomalous.saturating_add(anomalous);
        bucket.scored = bucket.scored.saturating_add(scored);
    }

    /// (anomalous, scored) signal-samples in the window ending at the newest bucket.
    pub fn counts(&self) -> (u64, u64) {
        self.buckets.iter().fold((0, 0), |(a, s), b| {
            (a + u64::from(b.anomalous), s + u64::from(b.scored))
        })
    }

    /// The share of anomalous signal-samples; none before any was scored.
    pub fn rate(&self) -> Option<f64> {
        let (anomalous, scored) = self.counts();
        (scored > 0).then(|| anomalous as f64 / scored as f64)
    }

    pub fn parts(&self) -> WindowParts {
        let counts = self.buckets.map(|b| (b.anomalous, b.scored));
        (counts, self.newest.unwrap_or(0))
    }

    /// A window from a snapshot's parts; None if a bucket has more anomalous samples than
    /// scored ones (a rate above 1).
    pub fn from_parts((counts, newest): WindowParts) -> Option<Self> {
        if counts.iter().any(|(anomalous, scored)| anomalous > scored) {
            return None;
        }
        let window = AnomalyWindow {
            buckets: counts.map(|(anomalous, scored)| Bucket { anomalous, scored }),
            newest: Some(newest),
        };
        Some(match window.counts() {
            (_, 0) => AnomalyWindow::default(),
            _ => window,
        })
    }
}

fn bucket_width_ns(window: Duration) -> i64 {
    let width = window.as_nanos() / BUCKETS as u128;
    i64::try_from(width).unwrap_or(i64::MAX).max(1)
}

fn slot(number: i64) -> usize {
    number.rem_euclid(BUCKETS as i64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_secs(900);
    const SEC: i64 = 1_000_000_000;

    #[test]
    fn the_rate_covers_the_window_and_forgets_what_is_older() {
        let mut window = AnomalyWindow::default();
        assert_eq!(window.rate(), None);
        // Ten minutes of one anomalous signal in ten, every 5 s.
        for t in (0..600).step_by(5) {
            window.record(WINDOW, t * SEC, u32::from(t % 50 == 0), 10);
        }
        let rate = window.rate().unwrap();
        assert!((rate - 0.01).abs() < 0.002, "{rate}");
        // An hour later (a paused VM): the old samples are gone.
        window.record(WINDOW, 4200 * SEC, 0, 10);
        assert_eq!(window.rate(), Some(0.0));
        assert_eq!(window.counts(), (0, 10));
    }

    #[test]
    fn a_window_from_its_parts_keeps_its_rate_and_unsound_parts_are_refused() {
        let mut window = AnomalyWindow::default();
        assert_eq!(
            AnomalyWindow::from_parts(window.parts()).unwrap().rate(),
            None
        );
        for t in (0..300).step_by(5) {
            window.record(WINDOW, t * SEC, u32::from(t % 25 == 0), 4);
        }
        let restored = AnomalyWindow::from_parts(window.parts()).unwrap();
        assert_eq!(restored.counts(), window.counts());
        assert_eq!(restored.parts(), window.parts());
        let (mut counts, newest) = window.parts();
        counts[3] = (5, 4);
        assert!(AnomalyWindow::from_parts((counts, newest)).is_none());
    }

    #[test]
    fn a_clock_stepping_back_counts_in_the_newest_bucket_or_beyond_the_window_starts_afresh() {
        let mut window = AnomalyWindow::default();
        window.record(WINDOW, 1000 * SEC, 1, 2);
        // Back a minute: counted in the newest bucket.
        window.record(WINDOW, 940 * SEC, 1, 2);
        assert_eq!(window.counts(), (2, 4));
        // Back a day (a clock that ran ahead, corrected): the window starts afresh.
        window.record(WINDOW, -86_400 * SEC, 0, 4);
        assert_eq!(window.counts(), (0, 4));
        window.record(WINDOW, i64::MIN, 1, 4);
        window.record(WINDOW, i64::MAX, 0, 0);
        assert_eq!(window.counts(), (1, 4));
        window.record(WINDOW, i64::MAX, 0, 8);
        assert_eq!(window.counts(), (0, 8));
        assert_eq!(window.rate(), Some(0.0));
    }
}
