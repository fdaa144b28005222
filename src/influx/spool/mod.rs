//! The durable spool: every line the writer accepts is committed to an embedded database (redb)
//! before it is acknowledged, and leaves it only once InfluxDB has taken it. So lines survive a
//! crash or `kill -9` and are replayed in order on the next start; a replay overwrites rather
//! than duplicates, since a point is its measurement, tags and timestamp. When the spool is full
//! (`spool_max_bytes`, or its filesystem down to `spool_min_free_bytes`) the oldest lines are
//! dropped and counted. When its file fails, it is closed and opened again after a backoff, and
//! meanwhile new lines wait in memory (`max_queue`, the oldest dropped first).

mod health;
mod index;
mod recovery;
mod space;
mod store;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use redb::Durability;

use self::health::Health;
use self::index::{Chunk, Index};
pub use self::recovery::SpoolError;
use self::recovery::{FILE_NAME, OpenFailure, Recovered, open_error};
pub use self::space::Limits;
use self::space::Usage;
use self::store::Store;
pub use self::store::is_damage;
use super::buffer::{Batch, BatchAge, LineBuffer};
use super::line_protocol::Lines;
use super::queue::WriteQueue;
use crate::actors::status::{SpoolState, SpoolStatus};

pub struct Spool {
    dir: PathBuf,
    /// Held for the spool's lifetime, so two instances never share one spool.
    _lock: File,
    /// None while a failure keeps the file closed.
    store: Option<Store>,
    index: Index,
    limits: Limits,
    /// The file's and its filesystem's, as last measured.
    usage: Usage,
    chunk_lines: usize,
    /// Since when the oldest line in the file has waited.
    age: BatchAge,
    /// Lines held while the file cannot take them.
    memory: WriteQueue,
    in_flight: Option<Source>,
    /// Oldest lines dropped to make room, or lost with a file.
    evicted: u64,
    /// The last commit of new lines had to drop old ones.
    full: bool,
    /// A removal is committed but not yet durable.
    unsynced: bool,
    health: Health,
    recovered: Recovered,
}

/// Where the batch in flight came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    File,
    Memory,
}

/// How the spool is bounded and batched.
#[derive(Debug, Clone, Copy)]
pub struct SpoolSettings {
    pub limits: Limits,
    /// Lines per stored chunk: a batch's worth.
    pub chunk_lines: usize,
    /// Lines held in memory while the file fails.
    pub max_queue: usize,
    pub batch_max_age: Duration,
}

impl Spool {
    /// Opens (or creates) the spool in `dir`; what an earlier run left is waiting at once. Fails
    /// only when the directory cannot be created, locked or written.
    pub fn open(dir: &Path, settings: SpoolSettings) -> Result<Self, SpoolError> {
        let lock = recovery::lock(dir)?;
        let mut spool = Spool {
            dir: dir.to_owned(),
            _lock: lock,
            store: None,
            index: Index::default(),
            limits: settings.limits,
            usage: Usage::default(),
            chunk_lines: settings.chunk_lines.max(1),
            age: BatchAge::new(settings.batch_max_age),
            memory: WriteQueue::new(settings.max_queue, settings.batch_max_age),
            in_flight: None,
            evicted: 0,
            full: false,
            unsynced: false,
            health: Health::default(),
            recovered: Recovered::default(),
        };
        let path = dir.join(FILE_NAME);
        match recovery::open(dir, &mut spool.recovered) {
            Ok(store) => spool.start_with(store, &path)?,
            // Not the directory's fault: the spool starts in memory, and opens when there is room.
            Err(error) if store::is_full_disk(&error) => spool.fail(&error, Instant::now()),
            Err(error) => return Err(open_error(&path, error)),
        }
        Ok(spool)
    }

    fn start_with(&mut self, store: Store, path: &Path) -> Result<(), SpoolError> {
        let chunks = store.load().map_err(|e| open_error(path, e))?;
        self.usage = store.usage().map_err(|e| open_error(path, e))?;
        self.index = Index::new(chunks);
        self.store = Some(store);
        if self.index.unsent() > 0 {
            self.age.overdue();
            tracing::info!(
                lines = self.index.unsent(),
                bytes = self.index.bytes(),
                "spooled lines from an earlier run"
            );
        }
        Ok(())
    }

    /// The file failed: closed until it opens again; the index stays, as memory of what it holds.
    fn fail(&mut self, error: &dyn std::fmt::Display, now: Instant) {
        self.store = None;
        self.health.failed(error, now);
    }

    fn reopen(&mut self, now: Instant) {
        let opened = recovery::open(&self.dir, &mut self.recovered)
            .map_err(OpenFailure::from)
            .and_then(|store| Ok((store.load()?, store)));
        let (chunks, store) = match opened {
            Ok(opened) => opened,
            Err(error) => return self.fail(&error, now),
        };
        let lost = self.index.reconcile(chunks);
        if lost > 0 {
            self.evicted += lost as u64;
            tracing::error!(lines = lost, "lines lost with the spool's file");
        }
        self.store = Some(store);
        self.unsynced = false;
        self.health.reopened();
        self.remove_written(now);
    }

    /// Takes out of the file the lines InfluxDB has; until that succeeds they stay there, never
    /// to be sent again.
    fn remove_written(&mut self, now: Instant) {
        let removal = self.index.removal();
        let Some(store) = &self.store else { return };
        if removal.is_empty() {
            return;
        }
        // Not durable: the next push's commit, or closing the spool, makes it so. A crash before
        // then sends these lines again, which InfluxDB overwrites: cheaper than an fsync per batch
        // (benches/README.md).
        match store.commit(Durability::None, &removal, &[], &[]) {
            Ok(rest_bytes) => {
                self.index.removed(&removal, rest_bytes);
                self.unsynced = true;
            }
            Err(error) => self.fail(&error, now),
        }
    }

    /// Moves the lines memory held while the file failed into it, in front of newer ones.
    fn take_in_memory(&mut self, now: Instant) {
        let lines = self.memory.take_waiting();
        if !lines.is_empty() {
            self.store_lines(lines, now);
        }
    }

    /// Commits `lines` to the file, dropping its oldest to make room; when the file fails,
    /// they wait in memory.
    fn store_lines(&mut self, lines: Lines, now: Instant) {
        let Some(store) = &self.store else {
            return self.memory.push(lines, now);
        };
        let new: Vec<(Chunk, &[u8])> = lines
            .chunks(self.chunk_lines)
            .map(|(value, count)| (self.index.chunk(count, value.len() as u64), value))
            .collect();
        let new_chunks: Vec<Chunk> = new.iter().map(|(chunk, _)| *chunk).collect();
        let removal = self.index.removal();
        let committed = store.usage().and_then(|usage| {
            let evict = self
                .index
                .overflow(&new_chunks, &removal, self.limits.allowed(usage));
            let rest_bytes = store.commit(Durability::Immediate, &removal, &evict, &new)?;
            Ok((usage, evict, rest_bytes))
        });
        let (usage, evict, rest_bytes) = match committed {
            Ok(committed) => committed,
            Err(error) => {
                self.fail(&error, now);
                return self.memory.push(lines, now);
            }
        };
        self.usage = usage;
        self.unsynced = false;
        self.index.removed(&removal, rest_bytes);
        let mut dropped = 0;
        for chunk in new_chunks {
            match evict.contains(&chunk) {
                true => dropped += chunk.lines,
                false => self.index.append(chunk),
            }
        }
        dropped += self.index.evicted(&evict);
        self.full = dropped > 0;
        if self.full {
            tracing::error!(
                lines = dropped,
                max_bytes = self.limits.max_bytes,
                allowed_bytes = self.limits.allowed(usage),
                free_bytes = usage.free_bytes,
                "spool full: oldest lines dropped"
            );
            self.evicted += dropped as u64;
        }
        if self.index.waiting() > 0 {
            self.age.waiting_since(now);
        }
    }

    /// Where the next batch comes from: the file, unless it is closed or has nothing waiting.
    fn source(&self) -> Source {
        match self.store.is_some() && self.index.waiting() > 0 {
            true => Source::File,
            false => Source::Memory,
        }
    }

    fn take_file_batch(&mut self, limit: usize) -> Option<Batch> {
        let store = self.store.as_ref()?;
        let spans = self.index.take_batch(limit);
        match store.read(&spans) {
            Ok(body) => Some(Batch {
                body,
                lines: spans.iter().map(|span| span.take).sum(),
            }),
            Err(error) => {
                self.index.batch_failed();
                self.fail(&error, Instant::now());
                None
            }
        }
    }

    fn state(&self) -> SpoolState {
        match (self.health.failing(), self.full) {
            (true, _) => SpoolState::Failing,
            (false, true) => SpoolState::Full,
            (false, false) => SpoolState::Ok,
        }
    }
}

impl LineBuffer for Spool {
    fn push(&mut self, lines: Lines, now: Instant) {
        if lines.is_empty() {
            return;
        }
        if self.store.is_some() {
            self.take_in_memory(now);
        }
        self.store_lines(lines, now);
    }

    fn batch_due(&self, now: Instant, batch_lines: usize) -> bool {
        if self.in_flight.is_some() {
            return false;
        }
        match self.source() {
            Source::File => self.age.batch_due(now, self.index.waiting(), batch_lines),
            Source::Memory => self.memory.batch_due(now, batch_lines),
        }
    }

    fn take_batch(&mut self, limit: usize) -> Batch {
        if self.source() == Source::File
            && let Some(batch) = self.take_file_batch(limit)
        {
            self.in_flight = Some(Source::File);
            return batch;
        }
        let batch = self.memory.take_batch(limit);
        if batch.lines > 0 {
            self.in_flight = Some(Source::Memory);
        }
        batch
    }

    fn batch_done(&mut self) -> usize {
        match self.in_flight.take() {
            Some(Source::File) => {
                let done = self.index.batch_done();
                self.remove_written(Instant::now());
                if self.index.waiting() == 0 {
                    self.age.clear();
                }
                done
            }
            Some(Source::Memory) => self.memory.batch_done(),
            None => 0,
        }
    }

    fn batch_failed(&mut self, now: Instant) {
        match self.in_flight.take() {
            Some(Source::File) => {
                self.index.batch_failed();
                self.age.waiting_since(now);
            }
            Some(Source::Memory) => self.memory.batch_failed(now),
            None => {}
        }
    }

    fn depth(&self) -> usize {
        self.index.unsent() + self.memory.depth()
    }

    fn dropped(&self) -> u64 {
        self.evicted + self.memory.dropped()
    }

    fn persist(&mut self) {
        let Some(store) = &self.store else { return };
        if !self.unsynced {
            return;
        }
        match store.sync() {
            Ok(()) => self.unsynced = false,
            // Nothing is lost: the written lines would go out again, and InfluxDB overwrites.
            Err(error) => self.fail(&error, Instant::now()),
        }
    }

    fn maintain(&mut self, now: Instant) {
        if self.health.reopen_due(now) {
            self.reopen(now);
        }
        if self.store.is_some() {
            self.take_in_memory(now);
        }
    }

    fn spool_status(&self) -> Option<SpoolStatus> {
        Some(SpoolStatus {
            state: self.state(),
            lines: self.index.unsent(),
            line_bytes: self.index.bytes(),
            allowed_bytes: self.limits.allowed(self.usage),
            file_bytes: self.usage.file_bytes,
            free_bytes: self.usage.free_bytes,
            lines_in_memory: self.memory.depth(),
            written_not_removed: self.index.written(),
            evicted_lines: self.evicted,
            errors: self.health.errors,
            reopens: self.health.reopens,
            last_error: self.health.last_error.clone(),
            last_error_time: self.health.last_error_time,
            damaged_files: self.recovered.damaged_files,
            salvaged_lines: self.recovered.salvaged_lines,
            empty_files: self.recovered.empty_files,
        })
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::influx::queue::tests::{
        behaves_like_a_buffer, drops_its_oldest_lines_when_full, lines, numbers,
    };

    const AGE: Duration = Duration::from_secs(1);

    /// A spool in `dir` of at most `max_bytes` of lines, in chunks of `chunk_lines`.
    fn spool_in(dir: &Path, max_bytes: u64, chunk_lines: usize) -> Result<Spool, SpoolError> {
        let limits = Limits {
            max_bytes,
            min_free: 0,
        };
        let settings = SpoolSettings {
            limits,
            chunk_lines,
            max_queue: 100,
            batch_max_age: AGE,
        };
        Spool::open(dir, settings)
    }

    /// A spool in `dir` of 1 MiB at most, in chunks of `chunk_lines`, holding `held`.
    fn holding(dir: &Path, chunk_lines: usize, held: std::ops::Range<u32>) -> Spool {
        let mut spool = spool_in(dir, 1 << 20, chunk_lines).unwrap();
        spool.push(lines(held), Instant::now());
        spool
    }

    #[test]
    fn the_spool_is_a_buffer() {
        let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
        let mut next = dirs.iter();
        behaves_like_a_buffer(|| {
            let dir = next.next().unwrap();
            Box::new(spool_in(dir.path(), 1 << 20, 3).unwrap())
        });
    }

    #[test]
    fn what_was_accepted_is_there_after_a_crash_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let now = Instant::now();
        {
            let mut spool = holding(dir.path(), 4, 0..10);
            assert_eq!(numbers(&spool.take_batch(6)), [0, 1, 2, 3, 4, 5]);
            assert_eq!(spool.batch_done(), 6);
            spool.push(lines(10..12), now);
            // A batch in flight when the process dies is sent again.
            spool.take_batch(3);
            // Dropped without any shutdown: as after `kill -9`.
            std::mem::forget(spool);
        }
        // The lock died with the "process" in real life; here the forgotten handle still holds
        // it, so reopen through a copy of the files.
        let (_copy, mut spool) = reopened_after_a_crash(dir.path());
        assert_eq!(spool.depth(), 6);
        assert!(
            spool.batch_due(Instant::now(), 100),
            "spooled lines are due at once"
        );
        assert_eq!(numbers(&spool.take_batch(100)), [6, 7, 8, 9, 10, 11]);
    }

    /// A spool in `dir` of lines 0–9, 0–5 written (their removal not yet durable).
    fn six_of_ten_written(dir: &Path) -> Spool {
        let mut spool = holding(dir, 4, 0..10);
        spool.take_batch(6);
        assert_eq!(spool.batch_done(), 6);
        spool
    }

    /// The spool file of `dir` opened from a copy, as a restart after a crash finds it (the
    /// forgotten spool still holds the original open).
    fn reopened_after_a_crash(dir: &Path) -> (tempfile::TempDir, Spool) {
        let copy = tempfile::tempdir().unwrap();
        std::fs::copy(dir.join(FILE_NAME), copy.path().join(FILE_NAME)).unwrap();
        let spool = spool_in(copy.path(), 1 << 20, 4).unwrap();
        (copy, spool)
    }

    #[test]
    fn written_lines_stay_gone_after_a_clean_close() {
        let dir = tempfile::tempdir().unwrap();
        drop(six_of_ten_written(dir.path()));
        let mut spool = spool_in(dir.path(), 1 << 20, 4).unwrap();
        assert_eq!(spool.depth(), 4);
        assert_eq!(numbers(&spool.take_batch(100)), [6, 7, 8, 9]);
    }

    #[test]
    fn a_crash_right_after_a_write_sends_its_lines_again_and_loses_none() {
        let dir = tempfile::tempdir().unwrap();
        // Dropped without any shutdown: as after `kill -9`.
        std::mem::forget(six_of_ten_written(dir.path()));
        let (_copy, mut spool) = reopened_after_a_crash(dir.path());
        // The removal was not yet durable: at least once, in order.
        assert_eq!(
            numbers(&spool.take_batch(100)),
            [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
        );
    }

    #[test]
    fn persisted_removals_stay_gone_after_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut spool = six_of_ten_written(dir.path());
            spool.persist();
            std::mem::forget(spool);
        }
        let (_copy, mut spool) = reopened_after_a_crash(dir.path());
        assert_eq!(numbers(&spool.take_batch(100)), [6, 7, 8, 9]);
    }

    #[test]
    fn a_full_spool_drops_its_oldest_lines_and_counts_them() {
        let dir = tempfile::tempdir().unwrap();
        // Each line is 7 bytes ("m v=Ni\n" with one digit): 64 bytes hold 4 chunks of 2 lines.
        drops_its_oldest_lines_when_full(Box::new(spool_in(dir.path(), 64, 2).unwrap()));
    }

    #[test]
    fn two_instances_never_share_a_spool() {
        let dir = tempfile::tempdir().unwrap();
        let _first = spool_in(dir.path(), 1 << 20, 2).unwrap();
        let second = spool_in(dir.path(), 1 << 20, 2);
        assert!(matches!(second, Err(SpoolError::Open { .. })));
    }

    /// As an I/O error does: the file closed until it opens again.
    fn break_file(spool: &mut Spool, now: Instant) {
        spool.fail(&"No space left on device", now);
        assert_eq!(spool.spool_status().unwrap().state, SpoolState::Failing);
    }

    #[test]
    fn a_failed_file_opens_again_and_takes_in_order_what_memory_held() {
        let dir = tempfile::tempdir().unwrap();
        let now = Instant::now();
        let mut spool = holding(dir.path(), 4, 0..4);
        break_file(&mut spool, now);
        spool.push(lines(4..6), now);
        let status = spool.spool_status().unwrap();
        assert_eq!((status.lines, status.lines_in_memory), (4, 2));
        assert_eq!(spool.depth(), 6);
        spool.maintain(now);
        assert!(spool.store.is_none(), "not before its backoff");
        spool.maintain(now + Duration::from_secs(60));
        let status = spool.spool_status().unwrap();
        assert_eq!((status.state, status.reopens), (SpoolState::Ok, 1));
        assert_eq!((status.lines, status.lines_in_memory), (6, 0));
        assert_eq!(numbers(&spool.take_batch(100)), [0, 1, 2, 3, 4, 5]);
        assert_eq!(spool.dropped(), 0);
    }

    #[test]
    fn a_batch_written_while_its_removal_fails_is_never_sent_again() {
        let dir = tempfile::tempdir().unwrap();
        let now = Instant::now();
        {
            let mut spool = holding(dir.path(), 4, 0..6);
            assert_eq!(numbers(&spool.take_batch(4)), [0, 1, 2, 3]);
            break_file(&mut spool, now);
            assert_eq!(spool.batch_done(), 4);
            assert_eq!(spool.spool_status().unwrap().written_not_removed, 4);
            assert_eq!(spool.depth(), 2);
            spool.maintain(now + Duration::from_secs(60));
            assert_eq!(spool.spool_status().unwrap().written_not_removed, 0);
            assert_eq!(numbers(&spool.take_batch(100)), [4, 5]);
        }
        // The removal made once the file opened again lasts.
        let mut spool = spool_in(dir.path(), 1 << 20, 4).unwrap();
        assert_eq!(numbers(&spool.take_batch(100)), [4, 5]);
    }

    #[test]
    fn a_filesystem_without_room_drops_the_oldest_lines_first() {
        let dir = tempfile::tempdir().unwrap();
        let now = Instant::now();
        let mut spool = holding(dir.path(), 2, 0..4);
        // Far more kept free than the disk has: no line fits any more.
        spool.limits.min_free = u64::MAX / 2;
        spool.push(lines(4..6), now);
        let status = spool.spool_status().unwrap();
        assert_eq!((status.state, status.allowed_bytes), (SpoolState::Full, 0));
        assert!(status.free_bytes > 0 && status.file_bytes > 0, "{status:?}");
        assert_eq!(spool.dropped(), 6);
        spool.limits.min_free = 0;
        spool.push(lines(6..8), now);
        assert_eq!(spool.spool_status().unwrap().state, SpoolState::Ok);
        assert_eq!(numbers(&spool.take_batch(100)), [6, 7]);
    }

    /// A spool file of lines 0–9 in `dir`, closed, of `len` bytes; `damage` done to it.
    fn damaged(damage: impl FnOnce(&Path, u64)) -> (tempfile::TempDir, Spool) {
        let dir = tempfile::tempdir().unwrap();
        drop(holding(dir.path(), 4, 0..10));
        let path = dir.path().join(FILE_NAME);
        damage(&path, std::fs::metadata(&path).unwrap().len());
        let spool = spool_in(dir.path(), 1 << 20, 4).expect("a damaged file never stops the start");
        (dir, spool)
    }

    fn files_aside(dir: &Path) -> Vec<u64> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(Result::unwrap)
            .filter(|entry| {
                entry
                    .file_name()
                    .to_string_lossy()
                    .starts_with("spool.redb.corrupt-")
            })
            .map(|entry| entry.metadata().unwrap().len())
            .collect()
    }

    #[test]
    fn a_damaged_file_is_moved_aside_and_a_fresh_one_takes_lines() {
        let zero_header = |path: &Path, _| {
            let mut bytes = std::fs::read(path).unwrap();
            bytes[..4096].fill(0);
            std::fs::write(path, bytes).unwrap();
        };
        let half = |path: &Path, len: u64| {
            File::options()
                .write(true)
                .open(path)
                .unwrap()
                .set_len(len / 2)
                .unwrap();
        };
        for damage in [&zero_header as &dyn Fn(&Path, u64), &half] {
            let (dir, mut spool) = damaged(damage);
            let status = spool.spool_status().unwrap();
            assert_eq!((status.damaged_files, status.state), (1, SpoolState::Ok));
            assert_eq!(files_aside(dir.path()).len(), 1, "kept for inspection");
            spool.push(lines(10..12), Instant::now());
            assert_eq!(numbers(&spool.take_batch(100)), [10, 11]);
        }
    }

    #[test]
    fn what_a_damaged_file_still_holds_is_replayed_first() {
        // A byte of a line changed: its page's checksum fails, its lines can still be read.
        let (dir, mut spool) = damaged(|path, _| {
            let mut bytes = std::fs::read(path).unwrap();
            let at = bytes.windows(6).position(|w| w == b"m v=5i").unwrap();
            bytes[at] = b'n';
            std::fs::write(path, bytes).unwrap();
        });
        let status = spool.spool_status().unwrap();
        assert_eq!((status.damaged_files, status.salvaged_lines), (1, 10));
        assert_eq!(files_aside(dir.path()).len(), 1);
        spool.push(lines(10..11), Instant::now());
        assert_eq!(spool.take_batch(100).lines, 11);
    }

    #[test]
    fn an_empty_file_is_counted_its_lost_lines_unknown() {
        let (dir, spool) = damaged(|path, _| File::create(path).map(drop).unwrap());
        let status = spool.spool_status().unwrap();
        assert_eq!((status.empty_files, status.damaged_files), (1, 0));
        assert!(files_aside(dir.path()).is_empty());
        assert_eq!(spool.depth(), 0);
    }
}
