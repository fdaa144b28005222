//! The writer's bounded queue of lines: batches by size or age, one batch in flight at a time and
//! held here until its fate is known (so a writer restart loses nothing), a failed batch back at
//! the front in order, and the oldest lines dropped (and counted) when full.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::buffer::{Batch, BatchAge, LineBuffer};
use super::line_protocol::Lines;

/// One line, ending with `\n`.
type Line = Vec<u8>;

pub struct WriteQueue {
    waiting: VecDeque<Line>,
    /// The batch being written; it counts against `max_lines`.
    in_flight: Vec<Line>,
    /// Since when the oldest waiting line has waited.
    age: BatchAge,
    max_lines: usize,
    dropped: u64,
}

impl WriteQueue {
    pub fn new(max_lines: usize, batch_max_age: Duration) -> Self {
        WriteQueue {
            waiting: VecDeque::new(),
            in_flight: Vec::new(),
            age: BatchAge::new(batch_max_age),
            max_lines,
            dropped: 0,
        }
    }

    /// Every waiting line, oldest first; the batch in flight stays.
    pub fn take_waiting(&mut self) -> Lines {
        let lines = self.waiting.iter().map(Vec::as_slice).collect();
        self.waiting.clear();
        self.age.clear();
        lines
    }

    fn drop_overflow(&mut self) {
        while self.depth() > self.max_lines {
            self.waiting.pop_front();
            self.dropped += 1;
        }
        if self.waiting.is_empty() {
            self.age.clear();
        }
    }
}

impl LineBuffer for WriteQueue {
    fn push(&mut self, lines: Lines, now: Instant) {
        // Line by line, so the oldest can be dropped one at a time when full.
        for line in lines.iter() {
            self.waiting.push_back(line.to_vec());
            self.age.waiting_since(now);
        }
        self.drop_overflow();
    }

    fn batch_due(&self, now: Instant, batch_lines: usize) -> bool {
        self.in_flight.is_empty() && self.age.batch_due(now, self.waiting.len(), batch_lines)
    }

    /// What remains keeps its age, so a backlog goes out batch after batch.
    fn take_batch(&mut self, limit: usize) -> Batch {
        let n = self.waiting.len().min(limit);
        self.in_flight = self.waiting.drain(..n).collect();
        if self.waiting.is_empty() {
            self.age.clear();
        }
        Batch {
            body: self.in_flight.concat(),
            lines: n,
        }
    }

    fn batch_done(&mut self) -> usize {
        std::mem::take(&mut self.in_flight).len()
    }

    fn batch_failed(&mut self, now: Instant) {
        let batch = std::mem::take(&mut self.in_flight);
        for line in batch.into_iter().rev() {
            self.waiting.push_front(line);
        }
        if !self.waiting.is_empty() {
            self.age.waiting_since(now);
        }
        self.drop_overflow();
    }

    fn depth(&self) -> usize {
        self.waiting.len() + self.in_flight.len()
    }

    fn dropped(&self) -> u64 {
        self.dropped
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub fn lines(range: std::ops::Range<u32>) -> Lines {
        let text: String = range.map(|i| format!("m v={i}i\n")).collect();
        text.as_bytes().split_inclusive(|&b| b == b'\n').collect()
    }

    pub fn numbers(batch: &Batch) -> Vec<u32> {
        let numbers: Vec<u32> = String::from_utf8_lossy(&batch.body)
            .lines()
            .map(|line| {
                line.trim_start_matches("m v=")
                    .trim_end_matches('i')
                    .parse()
                    .unwrap()
            })
            .collect();
        assert_eq!(numbers.len(), batch.lines);
        numbers
    }

    /// What every buffer does, whatever keeps the lines.
    pub fn behaves_like_a_buffer(mut make: impl FnMut() -> Box<dyn LineBuffer>) {
        let start = Instant::now();
        let age = Duration::from_secs(1);

        let mut buffer = make();
        assert!(!buffer.batch_due(start + age * 10, 3), "empty is never due");
        buffer.push(lines(0..2), start);
        assert!(!buffer.batch_due(start, 3));
        assert!(buffer.batch_due(start + age, 3), "due by age");
        buffer.push(lines(2..5), start);
        assert!(buffer.batch_due(start, 3), "due by size");
        assert_eq!(numbers(&buffer.take_batch(3)), [0, 1, 2]);
        assert!(
            !buffer.batch_due(start + age * 10, 1),
            "one batch in flight at a time"
        );
        assert_eq!(buffer.depth(), 5);
        assert_eq!(buffer.batch_done(), 3);
        assert_eq!(buffer.depth(), 2);

        // A failed batch goes back in front of newer lines, in order.
        let batch = buffer.take_batch(10);
        assert_eq!(numbers(&batch), [3, 4]);
        buffer.push(lines(5..7), start);
        buffer.batch_failed(start);
        assert_eq!(buffer.depth(), 4);
        assert_eq!(numbers(&buffer.take_batch(3)), [3, 4, 5]);
        assert_eq!(buffer.batch_done(), 3);
        assert_eq!(numbers(&buffer.take_batch(3)), [6]);
        assert_eq!(buffer.batch_done(), 1);
        assert_eq!(buffer.depth(), 0);
        assert!(!buffer.batch_due(start + age * 10, 1));

        // Batches smaller than what arrived together, e.g. after a 413.
        let mut buffer = make();
        buffer.push(lines(0..10), start);
        assert_eq!(numbers(&buffer.take_batch(4)), [0, 1, 2, 3]);
        buffer.batch_done();
        assert_eq!(numbers(&buffer.take_batch(1)), [4]);
        buffer.batch_failed(start);
        assert_eq!(numbers(&buffer.take_batch(2)), [4, 5]);
        buffer.batch_done();
        assert_eq!(numbers(&buffer.take_batch(100)), [6, 7, 8, 9]);
        buffer.batch_done();
        assert_eq!(buffer.dropped(), 0);
    }

    /// What every buffer does when full, for one that holds 8 lines of one digit (the spool drops
    /// whole chunks: of two lines here): the oldest lines go and are counted, never the batch in
    /// flight, which counts against the bound.
    pub fn drops_its_oldest_lines_when_full(mut buffer: Box<dyn LineBuffer>) {
        let now = Instant::now();
        buffer.push(lines(0..8), now);
        assert_eq!(buffer.dropped(), 0);
        buffer.push(lines(8..10), now);
        assert_eq!(buffer.dropped(), 2);
        assert_eq!(buffer.depth(), 8);
        assert_eq!(numbers(&buffer.take_batch(2)), [2, 3]);
        buffer.push(lines(0..2), now);
        assert_eq!(buffer.dropped(), 4);
        assert_eq!(buffer.batch_done(), 2);
        assert_eq!(numbers(&buffer.take_batch(100)), [6, 7, 8, 9, 0, 1]);
    }

    #[test]
    fn the_memory_queue_is_a_buffer() {
        behaves_like_a_buffer(|| Box::new(WriteQueue::new(100, Duration::from_secs(1))));
    }

    #[test]
    fn when_full_the_oldest_lines_are_dropped_and_counted() {
        drops_its_oldest_lines_when_full(Box::new(WriteQueue::new(8, Duration::from_secs(1))));
        // More than it holds in one push: only the newest stay.
        let mut queue = WriteQueue::new(5, Duration::from_secs(1));
        queue.push(lines(0..8), Instant::now());
        assert_eq!(queue.dropped(), 3);
        assert_eq!(queue.depth(), 5);
        assert_eq!(numbers(&queue.take_batch(5)), [3, 4, 5, 6, 7]);
    }

    #[test]
    fn a_failed_batch_that_no_longer_fits_loses_its_oldest_lines() {
        let now = Instant::now();
        let mut queue = WriteQueue::new(4, Duration::from_secs(1));
        queue.push(lines(0..2), now);
        queue.take_batch(2);
        queue.push(lines(2..4), now);
        queue.batch_failed(now);
        queue.push(lines(4..5), now);
        assert_eq!(queue.dropped(), 1);
        assert_eq!(numbers(&queue.take_batch(2)), [1, 2]);
    }
}
