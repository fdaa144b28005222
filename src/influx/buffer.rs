//! Where the writer keeps lines until InfluxDB has them: in memory (`queue`), or in the durable
//! spool on disk (`spool`).

use std::time::Instant;

use super::line_protocol::Lines;

/// One request's worth of lines, oldest first.
pub struct Batch {
    pub body: Vec<u8>,
    pub lines: usize,
}

pub trait LineBuffer {
    /// Accepts lines; an error means they (or some) could not be kept, and were counted dropped.
    fn push(&mut self, lines: Lines, now: Instant) -> Result<(), String>;
    /// No batch is in flight, and `batch_lines` lines wait or the oldest has waited long enough.
    fn batch_due(&self, now: Instant, batch_lines: usize) -> bool;
    /// Takes up to `limit` of the oldest lines as the batch in flight.
    fn take_batch(&mut self, limit: usize) -> Result<Batch, String>;
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
    fn persist(&mut self) -> Result<(), String> {
        Ok(())
    }
}
