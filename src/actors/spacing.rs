//! When a host's next cycle may start: never less than half a poll interval after the last one
//! ended. A cycle that overran (a loaded host, a slow monitor) stamps its records late; a tick
//! that came right after it would read them again at once, and every rate of that cycle would
//! span a fraction of the interval: noise an operator's thresholds and the insights take for
//! the truth. Such a tick waits out the rest of the gap instead.

use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct Spacing {
    gap: Duration,
    last_end: Option<Instant>,
}

impl Spacing {
    pub fn new(poll_interval: Duration) -> Self {
        Spacing {
            gap: poll_interval / 2,
            last_end: None,
        }
    }

    /// A cycle ended (done or failed) at `at`.
    pub fn ended(&mut self, at: Instant) {
        self.last_end = Some(at);
    }

    /// How long a cycle due at `now` waits before it starts (zero: at once).
    pub fn wait(&self, now: Instant) -> Duration {
        self.last_end.map_or(Duration::ZERO, |end| {
            (end + self.gap).saturating_duration_since(now)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cycle_starts_at_once_unless_the_last_ended_less_than_half_an_interval_ago() {
        let start = Instant::now();
        let mut spacing = Spacing::new(Duration::from_secs(1));
        assert_eq!(spacing.wait(start), Duration::ZERO);
        // Ended 0.1 s before the next tick: that tick waits 0.4 s more.
        spacing.ended(start);
        let tick = start + Duration::from_millis(100);
        assert_eq!(spacing.wait(tick), Duration::from_millis(400));
        // Half an interval or more after it: at once.
        assert_eq!(
            spacing.wait(start + Duration::from_millis(500)),
            Duration::ZERO
        );
        assert_eq!(spacing.wait(start + Duration::from_secs(3)), Duration::ZERO);
    }
}
