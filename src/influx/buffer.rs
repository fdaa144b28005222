//! Where the writer keeps lines until InfluxDB has them: in memory (`queue`), or in the durable
//! spool on disk (`spool`, with memory while its file fails).

use std::time::{Duration, Instant};

use super::line_protocol::Lines;
use crate::actors::status::SpoolStatus;

/// One request's worth of lines, oldest first.
pub struct Batch {
    pub body: Vec<u8>,
    pub lines: usize,
}

pub trait LineBuffer {
    /// Accepts lines; when full, the oldest are dropped and counted.
    fn push(&mut self, lines: Lines, now: Instant);
    /// No batch is in flight, and `batch_lines` lines wait or the oldest has waited long enough.
    fn batch_due(&self, now: Instant, batch_lines: usize) -> bool;
    /// Takes up to `limit` of the oldest lines as the batch in flight.
    fn take_batch(&mut self, limit: usize) -> Batch;
    /// The batch in flight was stored, or refused for good: it leaves, and is never sent again.
    /// Returns its size.
    fn batch_done(&mut self) -> usize;
    /// The batch in flight was not written: it stays, in front of newer lines.
    fn batch_failed(&mut self, now: Instant);
    /// Lines held, in flight included.
    fn depth(&self) -> usize;
    /// Lines dropped because the buffer was full.
    fn dropped(&self) -> u64;
    /// Makes every change so far durable, removals included (the spool leaves those to the next
    /// push): called while stopping, when no push may follow.
    fn persist(&mut self) {}
    /// Called every tick: the spool opens its file again when a failure closed it, and takes in
    /// the lines memory held meanwhile.
    fn maintain(&mut self, _now: Instant) {}
    /// The spool's state, for the writer's status.
    fn spool_status(&self) -> Option<SpoolStatus> {
        None
    }
}

/// How long the oldest waiting line has waited, against how long a line may wait for a batch.
#[derive(Debug)]
pub struct BatchAge {
    oldest_since: Option<Instant>,
    max_age: Duration,
}

impl BatchAge {
    pub fn new(max_age: Duration) -> Self {
        BatchAge {
            oldest_since: None,
            max_age,
        }
    }

    /// Lines wait from `now`, unless older ones already did.
    pub fn waiting_since(&mut self, now: Instant) {
        self.oldest_since.get_or_insert(now);
    }

    /// Lines left by an earlier run: due at once.
    pub fn overdue(&mut self) {
        self.oldest_since = Instant::now().checked_sub(self.max_age);
    }

    /// No line waits any more.
    pub fn clear(&mut self) {
        self.oldest_since = None;
    }

    /// `LineBuffer::batch_due` of a buffer with `waiting` lines and none in flight.
    pub fn batch_due(&self, now: Instant, waiting: usize, batch_lines: usize) -> bool {
        waiting > 0
            && (waiting >= batch_lines
                || self
                    .oldest_since
                    .is_some_and(|since| now.duration_since(since) >= self.max_age))
    }
}
