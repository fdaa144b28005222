//! The durable spool: every line the writer accepts is committed to an embedded database (redb)
//! before it is acknowledged, and leaves it only once InfluxDB has taken it. So lines survive a
//! crash or `kill -9` and are replayed in order on the next start; a replay overwrites rather
//! than duplicates, since a point is its measurement, tags and timestamp. When the spool is full
//! the oldest lines are dropped and counted.

use std::collections::VecDeque;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};

use super::buffer::{Batch, BatchAge, BufferError, LineBuffer};
use super::line_protocol::Lines;

/// Chunks of lines in arrival order: key = sequence number, value = lines ending in `\n`.
const CHUNKS: TableDefinition<u64, &[u8]> = TableDefinition::new("chunks");

const FILE_NAME: &str = "spool.redb";
const LOCK_NAME: &str = "spool.lock";
/// redb caches pages in memory up to 1 GiB by default, so during an outage the backlog would
/// stay resident: the file and the OS page cache hold it instead. A larger cache only holds more
/// resident, and drains no faster (benches/README.md).
const CACHE_BYTES: usize = 1 << 20;

pub struct Spool {
    db: Database,
    /// Held for the spool's lifetime, so two instances never share one spool.
    _lock: File,
    /// Every chunk in the database, oldest first, with its line and byte counts.
    chunks: VecDeque<Chunk>,
    next_key: u64,
    bytes: u64,
    lines: usize,
    max_bytes: u64,
    chunk_lines: usize,
    /// Since when the oldest spooled line has waited.
    age: BatchAge,
    /// The batch being written: lines taken from the front chunks.
    in_flight: usize,
    dropped: u64,
    /// A removal is committed but not yet durable.
    unsynced: bool,
}

#[derive(Clone, Copy)]
struct Chunk {
    key: u64,
    lines: usize,
    bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("cannot use {path}: {message}")]
    Open { path: PathBuf, message: String },
}

impl Spool {
    /// Opens (or creates) the spool in `dir`; what an earlier run left is waiting at once.
    pub fn open(
        dir: &Path,
        max_bytes: u64,
        chunk_lines: usize,
        batch_max_age: Duration,
    ) -> Result<Self, SpoolError> {
        let open_error = |path: &Path, message: String| SpoolError::Open {
            path: path.to_owned(),
            message,
        };
        std::fs::create_dir_all(dir).map_err(|e| open_error(dir, e.to_string()))?;
        let lock_path = dir.join(LOCK_NAME);
        let lock = File::create(&lock_path).map_err(|e| open_error(&lock_path, e.to_string()))?;
        lock.try_lock()
            .map_err(|_| open_error(dir, "another vmtelemetry is using this spool".into()))?;
        let path = dir.join(FILE_NAME);
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create(&path)
            .map_err(|e| open_error(&path, e.to_string()))?;
        let mut spool = Spool {
            db,
            _lock: lock,
            chunks: VecDeque::new(),
            next_key: 0,
            bytes: 0,
            lines: 0,
            max_bytes,
            chunk_lines: chunk_lines.max(1),
            age: BatchAge::new(batch_max_age),
            in_flight: 0,
            dropped: 0,
            unsynced: false,
        };
        spool.load().map_err(|e| open_error(&path, e.to_string()))?;
        Ok(spool)
    }

    fn load(&mut self) -> Result<(), redb::Error> {
        let read = self.db.begin_read()?;
        let table = match read.open_table(CHUNKS) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        for entry in table.iter()? {
            let (key, value) = entry?;
            let value = value.value();
            let chunk = Chunk {
                key: key.value(),
                lines: count_lines(value),
                bytes: value.len() as u64,
            };
            self.add(chunk);
        }
        self.next_key = self.chunks.back().map_or(0, |c| c.key + 1);
        if !self.chunks.is_empty() {
            self.age.overdue();
            tracing::info!(
                lines = self.lines,
                bytes = self.bytes,
                "spooled lines from an earlier run"
            );
        }
        Ok(())
    }

    fn add(&mut self, chunk: Chunk) {
        self.lines += chunk.lines;
        self.bytes += chunk.bytes;
        self.chunks.push_back(chunk);
    }

    /// The oldest chunks beyond `max_bytes`, never the batch in flight.
    fn overflow(&self) -> Vec<Chunk> {
        let in_flight_chunks = self.chunks_in_flight();
        let mut bytes = self.bytes;
        self.chunks
            .iter()
            .skip(in_flight_chunks)
            .take_while(|chunk| {
                let over = bytes > self.max_bytes;
                bytes = bytes.saturating_sub(chunk.bytes);
                over
            })
            .copied()
            .collect()
    }

    /// How many front chunks the batch in flight touches.
    fn chunks_in_flight(&self) -> usize {
        let mut left = self.in_flight;
        self.chunks
            .iter()
            .take_while(|chunk| {
                let touched = left > 0;
                left = left.saturating_sub(chunk.lines);
                touched
            })
            .count()
    }

    fn commit_with(
        &self,
        durability: Durability,
        work: impl FnOnce(&mut redb::Table<u64, &[u8]>) -> Result<(), redb::StorageError>,
    ) -> Result<(), redb::Error> {
        let mut write = self.db.begin_write()?;
        write.set_durability(durability)?;
        {
            let mut table = write.open_table(CHUNKS)?;
            work(&mut table)?;
        }
        Ok(write.commit()?)
    }
}

impl LineBuffer for Spool {
    fn push(&mut self, lines: Lines, now: Instant) -> Result<(), BufferError> {
        if lines.is_empty() {
            return Ok(());
        }
        let first_new = self.chunks.len();
        let mut values = Vec::new();
        for (value, count) in lines.chunks(self.chunk_lines) {
            self.add(Chunk {
                key: self.next_key,
                lines: count,
                bytes: value.len() as u64,
            });
            values.push((self.next_key, value));
            self.next_key += 1;
        }
        // Room is made in the same durable commit that stores the new lines.
        let evict = self.overflow();
        let committed = self.commit_with(Durability::Immediate, |table| {
            for chunk in &evict {
                table.remove(chunk.key)?;
            }
            for (key, value) in &values {
                if !evict.iter().any(|chunk| chunk.key == *key) {
                    table.insert(*key, *value)?;
                }
            }
            Ok(())
        });
        if committed.is_ok() {
            self.unsynced = false;
        }
        if let Err(source) = committed {
            for chunk in self.chunks.drain(first_new..).collect::<Vec<_>>() {
                self.lines -= chunk.lines;
                self.bytes -= chunk.bytes;
            }
            self.dropped += lines.len() as u64;
            return Err(BufferError::Lost {
                lines: lines.len(),
                source,
            });
        }
        if !evict.is_empty() {
            let lost: usize = evict.iter().map(|chunk| chunk.lines).sum();
            tracing::error!(
                lines = lost,
                max_bytes = self.max_bytes,
                "spool full: oldest lines dropped"
            );
            self.dropped += lost as u64;
            self.chunks
                .retain(|chunk| !evict.iter().any(|e| e.key == chunk.key));
            self.lines -= lost;
            self.bytes -= evict.iter().map(|chunk| chunk.bytes).sum::<u64>();
        }
        if self.lines > 0 {
            self.age.waiting_since(now);
        }
        Ok(())
    }

    fn batch_due(&self, now: Instant, batch_lines: usize) -> bool {
        self.in_flight == 0 && self.age.batch_due(now, self.lines, batch_lines)
    }

    fn take_batch(&mut self, limit: usize) -> Result<Batch, BufferError> {
        let read = self.db.begin_read().map_err(redb::Error::from)?;
        let table = read.open_table(CHUNKS).map_err(redb::Error::from)?;
        let mut body = Vec::new();
        let mut taken = 0;
        for chunk in &self.chunks {
            if taken == limit {
                break;
            }
            let value = table
                .get(chunk.key)
                .map_err(redb::Error::from)?
                .ok_or(BufferError::MissingChunk(chunk.key))?;
            let value = value.value();
            let want = (limit - taken).min(chunk.lines);
            body.extend_from_slice(&value[..prefix_len(value, want)]);
            taken += want;
        }
        self.in_flight = taken;
        Ok(Batch { body, lines: taken })
    }

    fn batch_done(&mut self) -> usize {
        let done = std::mem::take(&mut self.in_flight);
        let whole = self
            .chunks
            .iter()
            .scan(0, |taken, chunk| {
                *taken += chunk.lines;
                Some((*taken <= done).then_some(*chunk))
            })
            .map_while(|chunk| chunk)
            .collect::<Vec<_>>();
        let written_of_front: usize = done - whole.iter().map(|chunk| chunk.lines).sum::<usize>();
        let partly = (written_of_front > 0)
            .then(|| self.chunks.get(whole.len()).copied())
            .flatten();
        let mut rest_bytes = 0;
        // Not durable: the next push's commit, or closing the spool, makes it so. A crash before
        // then sends these lines again, which InfluxDB overwrites: cheaper than an fsync per batch
        // (benches/README.md).
        let result = self.commit_with(Durability::None, |table| {
            for chunk in &whole {
                table.remove(chunk.key)?;
            }
            if let Some(chunk) = partly {
                let rest = match table.get(chunk.key)? {
                    Some(value) => {
                        let value = value.value();
                        value[prefix_len(value, written_of_front)..].to_vec()
                    }
                    None => Vec::new(),
                };
                rest_bytes = rest.len() as u64;
                table.insert(chunk.key, rest.as_slice())?;
            }
            Ok(())
        });
        if let Err(error) = result {
            // The lines stay spooled and go out again, which InfluxDB overwrites: at least once.
            tracing::error!(%error, "could not remove written lines from the spool");
            return done;
        }
        self.unsynced = true;
        for chunk in &whole {
            self.chunks.pop_front();
            self.lines -= chunk.lines;
            self.bytes -= chunk.bytes;
        }
        if partly.is_some()
            && let Some(front) = self.chunks.front_mut()
        {
            front.lines -= written_of_front;
            self.lines -= written_of_front;
            self.bytes -= front.bytes - rest_bytes;
            front.bytes = rest_bytes;
        }
        if self.chunks.is_empty() {
            self.age.clear();
        }
        done
    }

    fn batch_failed(&mut self, now: Instant) {
        self.in_flight = 0;
        if self.lines > 0 {
            self.age.waiting_since(now);
        }
    }

    fn depth(&self) -> usize {
        self.lines
    }

    fn dropped(&self) -> u64 {
        self.dropped
    }

    fn persist(&mut self) -> Result<(), BufferError> {
        if !self.unsynced {
            return Ok(());
        }
        self.commit_with(Durability::Immediate, |_| Ok(()))?;
        self.unsynced = false;
        Ok(())
    }
}

fn count_lines(value: &[u8]) -> usize {
    value.iter().filter(|b| **b == b'\n').count()
}

/// Bytes of the first `lines` lines of `value`.
fn prefix_len(value: &[u8], lines: usize) -> usize {
    if lines == 0 {
        return 0;
    }
    value
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .nth(lines - 1)
        .map_or(value.len(), |(i, _)| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::influx::queue::tests::{behaves_like_a_buffer, lines, numbers};

    const AGE: Duration = Duration::from_secs(1);

    #[test]
    fn the_spool_is_a_buffer() {
        let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
        let mut next = dirs.iter();
        behaves_like_a_buffer(|| {
            let dir = next.next().unwrap();
            Box::new(Spool::open(dir.path(), 1 << 20, 3, AGE).unwrap())
        });
    }

    #[test]
    fn what_was_accepted_is_there_after_a_crash_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let now = Instant::now();
        {
            let mut spool = Spool::open(dir.path(), 1 << 20, 4, AGE).unwrap();
            spool.push(lines(0..10), now).unwrap();
            assert_eq!(numbers(&spool.take_batch(6).unwrap()), [0, 1, 2, 3, 4, 5]);
            assert_eq!(spool.batch_done(), 6);
            spool.push(lines(10..12), now).unwrap();
            // A batch in flight when the process dies is sent again.
            spool.take_batch(3).unwrap();
            // Dropped without any shutdown: as after `kill -9`.
            std::mem::forget(spool);
        }
        // The lock died with the "process" in real life; here the forgotten handle still holds
        // it, so reopen through a copy of the files.
        let copy = tempfile::tempdir().unwrap();
        std::fs::copy(dir.path().join(FILE_NAME), copy.path().join(FILE_NAME)).unwrap();
        let mut spool = Spool::open(copy.path(), 1 << 20, 4, AGE).unwrap();
        assert_eq!(spool.depth(), 6);
        assert!(
            spool.batch_due(Instant::now(), 100),
            "spooled lines are due at once"
        );
        assert_eq!(
            numbers(&spool.take_batch(100).unwrap()),
            [6, 7, 8, 9, 10, 11]
        );
    }

    /// A spool in `dir` of lines 0–9, 0–5 written (their removal not yet durable).
    fn six_of_ten_written(dir: &Path) -> Spool {
        let mut spool = Spool::open(dir, 1 << 20, 4, AGE).unwrap();
        spool.push(lines(0..10), Instant::now()).unwrap();
        spool.take_batch(6).unwrap();
        assert_eq!(spool.batch_done(), 6);
        spool
    }

    /// The spool file of `dir` opened from a copy, as a restart after a crash finds it (the
    /// forgotten spool still holds the original open).
    fn reopened_after_a_crash(dir: &Path) -> (tempfile::TempDir, Spool) {
        let copy = tempfile::tempdir().unwrap();
        std::fs::copy(dir.join(FILE_NAME), copy.path().join(FILE_NAME)).unwrap();
        let spool = Spool::open(copy.path(), 1 << 20, 4, AGE).unwrap();
        (copy, spool)
    }

    #[test]
    fn written_lines_stay_gone_after_a_clean_close() {
        let dir = tempfile::tempdir().unwrap();
        drop(six_of_ten_written(dir.path()));
        let mut spool = Spool::open(dir.path(), 1 << 20, 4, AGE).unwrap();
        assert_eq!(spool.depth(), 4);
        assert_eq!(numbers(&spool.take_batch(100).unwrap()), [6, 7, 8, 9]);
    }

    #[test]
    fn a_crash_right_after_a_write_sends_its_lines_again_and_loses_none() {
        let dir = tempfile::tempdir().unwrap();
        // Dropped without any shutdown: as after `kill -9`.
        std::mem::forget(six_of_ten_written(dir.path()));
        let (_copy, mut spool) = reopened_after_a_crash(dir.path());
        // The removal was not yet durable: at least once, in order.
        assert_eq!(
            numbers(&spool.take_batch(100).unwrap()),
            [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
        );
    }

    #[test]
    fn persisted_removals_stay_gone_after_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut spool = six_of_ten_written(dir.path());
            spool.persist().unwrap();
            std::mem::forget(spool);
        }
        let (_copy, mut spool) = reopened_after_a_crash(dir.path());
        assert_eq!(numbers(&spool.take_batch(100).unwrap()), [6, 7, 8, 9]);
    }

    #[test]
    fn a_full_spool_drops_its_oldest_lines_and_counts_them() {
        let dir = tempfile::tempdir().unwrap();
        let now = Instant::now();
        // Each line is 7 bytes ("m v=Ni\n" with one digit): 64 bytes hold 4 chunks of 2 lines.
        let mut spool = Spool::open(dir.path(), 64, 2, AGE).unwrap();
        spool.push(lines(0..8), now).unwrap();
        assert_eq!(spool.dropped(), 0);
        spool.push(lines(8..10), now).unwrap();
        assert_eq!(spool.dropped(), 2);
        assert_eq!(spool.depth(), 8);
        // The batch in flight is never dropped from under its request.
        assert_eq!(numbers(&spool.take_batch(2).unwrap()), [2, 3]);
        spool.push(lines(0..2), now).unwrap();
        assert_eq!(spool.dropped(), 4);
        assert_eq!(spool.batch_done(), 2);
        assert_eq!(numbers(&spool.take_batch(100).unwrap()), [6, 7, 8, 9, 0, 1]);
    }

    #[test]
    fn two_instances_never_share_a_spool() {
        let dir = tempfile::tempdir().unwrap();
        let _first = Spool::open(dir.path(), 1 << 20, 2, AGE).unwrap();
        let second = Spool::open(dir.path(), 1 << 20, 2, AGE);
        assert!(matches!(second, Err(SpoolError::Open { .. })));
    }
}
