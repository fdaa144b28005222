//! The writer's bounded queue of lines: batches by size or age, one batch in flight at a time and
//! held here until its fate is known (so a writer restart loses nothing), a failed batch back at
//! the front in order, and the oldest lines dropped (and counted) when full.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::line_protocol::Line;

pub struct WriteQueue {
    waiting: VecDeque<Line>,
    /// The batch being written; it counts against `max_lines`.
    in_flight: Vec<Line>,
    /// When the oldest waiting line arrived.
    oldest_since: Option<Instant>,
    max_lines: usize,
    batch_max_lines: usize,
    batch_max_age: Duration,
    dropped: u64,
}

impl WriteQueue {
    pub fn new(max_lines: usize, batch_max_lines: usize, batch_max_age: Duration) -> Self {
        WriteQueue {
            waiting: VecDeque::new(),
            in_flight: Vec::new(),
            oldest_since: None,
            max_lines,
            batch_max_lines,
            batch_max_age,
            dropped: 0,
        }
    }

    pub fn push(&mut self, lines: impl IntoIterator<Item = Line>, now: Instant) {
        for line in lines {
            self.waiting.push_back(line);
            self.oldest_since.get_or_insert(now);
        }
        self.drop_overflow();
    }

    /// A batch is due when enough lines wait, or the oldest has waited `batch_max_age`, and no
    /// other batch is in flight.
    pub fn batch_due(&self, now: Instant) -> bool {
        self.in_flight.is_empty()
            && (self.waiting.len() >= self.batch_max_lines
                || self
                    .oldest_since
                    .is_some_and(|since| now.duration_since(since) >= self.batch_max_age))
    }

    /// Takes up to `batch_max_lines` of the oldest lines as the batch in flight and returns them
    /// as one request body. What remains keeps its `oldest_since`, so a backlog goes out batch
    /// after batch.
    pub fn take_batch(&mut self) -> Vec<u8> {
        let n = self.waiting.len().min(self.batch_max_lines);
        self.in_flight = self.waiting.drain(..n).collect();
        if self.waiting.is_empty() {
            self.oldest_since = None;
        }
        self.in_flight.concat()
    }

    /// The batch in flight was stored, or refused for good: either way it leaves. Returns its size.
    pub fn batch_done(&mut self) -> usize {
        std::mem::take(&mut self.in_flight).len()
    }

    /// The batch in flight was not written: back in front of the newer lines, in order.
    pub fn batch_failed(&mut self, now: Instant) {
        let batch = std::mem::take(&mut self.in_flight);
        for line in batch.into_iter().rev() {
            self.waiting.push_front(line);
        }
        if !self.waiting.is_empty() {
            self.oldest_since.get_or_insert(now);
        }
        self.drop_overflow();
    }

    fn drop_overflow(&mut self) {
        while self.depth() > self.max_lines {
            self.waiting.pop_front();
            self.dropped += 1;
        }
        if self.waiting.is_empty() {
            self.oldest_since = None;
        }
    }

    /// Lines held: waiting and in flight.
    pub fn depth(&self) -> usize {
        self.waiting.len() + self.in_flight.len()
    }

    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(range: std::ops::Range<u32>) -> Vec<Line> {
        range.map(|i| format!("m v={i}i\n").into_bytes()).collect()
    }

    fn numbers(body: &[u8]) -> Vec<u32> {
        String::from_utf8_lossy(body)
            .lines()
            .map(|line| {
                line.trim_start_matches("m v=")
                    .trim_end_matches('i')
                    .parse()
                    .unwrap()
            })
            .collect()
    }

    #[test]
    fn a_batch_is_due_by_size() {
        let now = Instant::now();
        let mut queue = WriteQueue::new(100, 3, Duration::from_secs(60));
        queue.push(lines(0..2), now);
        assert!(!queue.batch_due(now));
        queue.push(lines(2..5), now);
        assert!(queue.batch_due(now));
        assert_eq!(numbers(&queue.take_batch()), [0, 1, 2]);
        // One batch in flight at a time.
        assert!(!queue.batch_due(now));
        queue.batch_done();
        assert_eq!(queue.depth(), 2);
    }

    #[test]
    fn a_batch_is_due_by_age() {
        let start = Instant::now();
        let mut queue = WriteQueue::new(100, 50, Duration::from_secs(1));
        assert!(
            !queue.batch_due(start + Duration::from_secs(5)),
            "empty is never due"
        );
        queue.push(lines(0..1), start);
        assert!(!queue.batch_due(start + Duration::from_millis(999)));
        assert!(queue.batch_due(start + Duration::from_secs(1)));
        assert_eq!(numbers(&queue.take_batch()), [0]);
        queue.batch_done();
        assert!(!queue.batch_due(start + Duration::from_secs(10)));
    }

    #[test]
    fn when_full_the_oldest_lines_are_dropped_and_counted() {
        let now = Instant::now();
        let mut queue = WriteQueue::new(5, 2, Duration::from_secs(1));
        queue.push(lines(0..8), now);
        assert_eq!(queue.dropped(), 3);
        assert_eq!(queue.depth(), 5);
        assert_eq!(numbers(&queue.take_batch()), [3, 4]);
        // The batch in flight counts against the bound but is never dropped from under the request.
        queue.push(lines(8..11), now);
        assert_eq!(queue.dropped(), 6);
        queue.batch_done();
        assert_eq!(numbers(&queue.take_batch()), [8, 9]);
    }

    #[test]
    fn a_failed_batch_goes_back_in_front_in_order() {
        let now = Instant::now();
        let mut queue = WriteQueue::new(10, 3, Duration::from_secs(1));
        queue.push(lines(0..4), now);
        queue.take_batch();
        queue.push(lines(4..6), now);
        queue.batch_failed(now);
        assert_eq!(queue.depth(), 6);
        assert_eq!(numbers(&queue.take_batch()), [0, 1, 2]);
        queue.batch_done();
        assert_eq!(numbers(&queue.take_batch()), [3, 4, 5]);
        assert_eq!(queue.dropped(), 0);
    }

    #[test]
    fn a_failed_batch_that_no_longer_fits_loses_its_oldest_lines() {
        let now = Instant::now();
        let mut queue = WriteQueue::new(4, 2, Duration::from_secs(1));
        queue.push(lines(0..2), now);
        queue.take_batch();
        queue.push(lines(2..4), now);
        queue.batch_failed(now);
        queue.push(lines(4..5), now);
        assert_eq!(queue.dropped(), 1);
        assert_eq!(numbers(&queue.take_batch()), [1, 2]);
    }
}
