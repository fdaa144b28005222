//! Where the writer keeps lines until InfluxDB has them: in memory (`queue`), or in the durable
//! spool on disk (`spool`).

use std::time::{Duration, Instant};

use super::line_protocol::Lines;

/// One request's worth of lines, oldest first.
pub struct Batch {
    pub body: Vec<u8>,
    pub lines: usize,
}

/// Why a buffer could not keep lines or give them back: only the spool's database fails.
#[derive(Debug, thiserror::Error)]
pub enum BufferError {
    /// A push's lines could not be kept: they were counted dropped.
    #[error("the spool failed: {source}: {lines} lines lost")]
    Lost { lines: usize, source: redb::Error },
    #[error("the spool failed: {0}")]
    Storage(#[from] redb::Error),
    #[error("spool chunk {0} is missing")]
    MissingChunk(u64),
}

pub trait LineBuffer {
    /// Accepts lines; an error means they (or some) could not be kept, and were counted dropped.
    fn push(&mut self, lines: Lines, now: Instant) -> Result<(), BufferError>;
    /// No batch is in flight, and `batch_lines` lines wait or the oldest has waited long enough.
    fn batch_due(&self, now: Instant, batch_lines: usize) -> bool;
    /// Takes up to `limit` of the oldest lines as the batch in flight.
    fn take_batch(&mut self, limit: usize) -> Result<Batch, BufferError>;
    /// The batch in flight was stored, or refused for good: it leaves. Returns its size.
    fn batch_done(&mut self) -> usize;
    /// The batch in flight was not written: it stays, in front of newer lines.
    fn batch_failed(&mut self, now: Instant);
    /// Lines held, in flight included.
    fn depth(&self) -> usize;
    /// Lines dropped because the buffer was full (or could not keep them).
    fn dropped(&self) -> u64;
    /// Makes every change so far durable, removals included (the spool leaves those to the next
    /// push): called while stopping, when no push may follow.
    fn persist(&mut self) -> Result<(), BufferError> {
        Ok(())
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
