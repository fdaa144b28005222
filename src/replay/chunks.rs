//! The spans the replay reads, one query each. A span's answer is held whole as JSON values
//! (≈ 12 times its bytes), so unless the operator fixes the span, each next one is sized from
//! the last answer's bytes: a fleet of any size stays near the same memory.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// The answer aimed at: ≈ 100 VM-hours of 5-second history (≈ 170 MiB resident at the peak),
/// the span measured fastest (benches/README.md).
const ANSWER_BYTES: f64 = 10.0 * 1024.0 * 1024.0;
/// The first span, small enough for a large fleet.
const FIRST: Duration = Duration::from_secs(600);
const SHORTEST: Duration = Duration::from_secs(60);
const LONGEST: Duration = Duration::from_secs(86_400);
/// A span grows or shrinks at most this much from one answer to the next.
const STEP: f64 = 4.0;

pub struct Chunks {
    from: DateTime<Utc>,
    end: DateTime<Utc>,
    span: Duration,
    fixed: bool,
}

impl Chunks {
    /// `start` to `end` in spans of `fixed`, or sized by the answers if none.
    pub fn new(start: DateTime<Utc>, end: DateTime<Utc>, fixed: Option<Duration>) -> Self {
        Self {
            from: start,
            end,
            span: fixed.unwrap_or(FIRST).max(Duration::from_secs(1)),
            fixed: fixed.is_some(),
        }
    }

    /// The next span to read, if any is left.
    pub fn next_span(&mut self) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        if self.from >= self.end {
            return None;
        }
        let span = chrono::Duration::from_std(self.span).unwrap_or(chrono::Duration::days(1));
        let to = self
            .from
            .checked_add_signed(span)
            .map_or(self.end, |to| to.min(self.end));
        let from = std::mem::replace(&mut self.from, to);
        Some((from, to))
    }

    /// The last span's answer took `bytes`: the next span aims at `ANSWER_BYTES`.
    pub fn answered(&mut self, bytes: usize) {
        if self.fixed {
            return;
        }
        let scale = (ANSWER_BYTES / bytes.max(1) as f64).clamp(1.0 / STEP, STEP);
        self.span = self.span.mul_f64(scale).clamp(SHORTEST, LONGEST);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(seconds, 0).unwrap()
    }

    #[test]
    fn a_fixed_span_is_kept_and_the_last_one_ends_at_the_end() {
        let mut chunks = Chunks::new(at(0), at(2500), Some(Duration::from_secs(1000)));
        chunks.answered(1 << 30);
        let spans: Vec<_> = std::iter::from_fn(|| chunks.next_span()).collect();
        assert_eq!(
            spans,
            [
                (at(0), at(1000)),
                (at(1000), at(2000)),
                (at(2000), at(2500))
            ]
        );
    }

    #[test]
    fn spans_follow_the_answers_bytes_a_step_at_a_time_within_bounds() {
        let mut chunks = Chunks::new(at(0), at(10_000_000), None);
        let span = |chunks: &mut Chunks| {
            let (from, to) = chunks.next_span().unwrap();
            (to - from).num_seconds()
        };
        assert_eq!(span(&mut chunks), 600);
        // A fifth of the aim: four times as long (no more); far below it, four times again.
        chunks.answered(2 << 20);
        assert_eq!(span(&mut chunks), 2400);
        chunks.answered(1);
        assert_eq!(span(&mut chunks), 9600);
        // Twice the aim: half as long.
        chunks.answered(20 << 20);
        assert_eq!(span(&mut chunks), 4800);
        for _ in 0..5 {
            chunks.answered(1 << 30);
        }
        assert_eq!(span(&mut chunks), 60);
        for _ in 0..10 {
            chunks.answered(0);
        }
        assert_eq!(span(&mut chunks), 86_400);
    }
}
