//! The spool's file: a redb database of chunks, key = sequence number, value = lines ending in
//! `\n`. Any error here leaves the database unusable ("Previous I/O error occurred"): the spool
//! then drops this handle and opens the file again.

use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use redb::{
    Database, DatabaseError, Durability, ReadableDatabase, ReadableTable, StorageError,
    TableDefinition,
};

use super::index::{Chunk, Removal, Span};
use super::space::{self, Usage};

const CHUNKS: TableDefinition<u64, &[u8]> = TableDefinition::new("chunks");
/// redb caches pages in memory up to 1 GiB by default, so during an outage the backlog would
/// stay resident: the file and the OS page cache hold it instead. A larger cache only holds more
/// resident, and drains no faster (benches/README.md).
const CACHE_BYTES: usize = 1 << 20;
/// Chunks copied per commit out of a damaged file.
const SALVAGE_BATCH: usize = 64;

pub struct Store {
    db: Database,
    path: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Redb(#[from] redb::Error),
    #[error("spool chunk {0} is missing")]
    MissingChunk(u64),
    #[error("cannot measure the spool's disk: {0}")]
    Space(#[from] io::Error),
}

impl Store {
    /// Opens (or creates) the file, checking every page: a file damaged outside redb is then an
    /// error (`is_damage`) rather than a panic later.
    pub fn open(path: &Path) -> Result<Self, DatabaseError> {
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .set_check_integrity_on_open(true)
            .create(path)?;
        Ok(Store {
            db,
            path: path.to_owned(),
        })
    }

    /// Every chunk in the file, oldest first.
    pub fn load(&self) -> Result<Vec<Chunk>, StoreError> {
        let read = self.db.begin_read().map_err(redb::Error::from)?;
        let table = match read.open_table(CHUNKS) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(redb::Error::from(e).into()),
        };
        let mut chunks = Vec::new();
        for entry in table.iter().map_err(redb::Error::from)? {
            let (key, value) = entry.map_err(redb::Error::from)?;
            chunks.push(chunk(key.value(), value.value()));
        }
        Ok(chunks)
    }

    /// The lines of `spans`, back to back.
    pub fn read(&self, spans: &[Span]) -> Result<Vec<u8>, StoreError> {
        let read = self.db.begin_read().map_err(redb::Error::from)?;
        let table = read.open_table(CHUNKS).map_err(redb::Error::from)?;
        let mut body = Vec::new();
        for span in spans {
            let value = table
                .get(span.key)
                .map_err(redb::Error::from)?
                .ok_or(StoreError::MissingChunk(span.key))?;
            let value = value.value();
            let start = prefix_len(value, span.skip);
            body.extend_from_slice(&value[start..prefix_len(value, span.skip + span.take)]);
        }
        Ok(body)
    }

    /// One commit: `removal` made, `evict` dropped, `insert` added (but those of `evict`).
    /// Returns the bytes left of the partly removed chunk.
    pub fn commit(
        &self,
        durability: Durability,
        removal: &Removal,
        evict: &[Chunk],
        insert: &[(Chunk, &[u8])],
    ) -> Result<u64, StoreError> {
        let mut rest_bytes = 0;
        let mut write = self.db.begin_write().map_err(redb::Error::from)?;
        write
            .set_durability(durability)
            .map_err(redb::Error::from)?;
        {
            let mut table = write.open_table(CHUNKS).map_err(redb::Error::from)?;
            let gone = removal.whole.iter().chain(evict);
            for chunk in gone {
                table.remove(chunk.key).map_err(redb::Error::from)?;
            }
            if let Some((chunk, lines)) = removal.partly {
                let rest = match table.get(chunk.key).map_err(redb::Error::from)? {
                    Some(value) => value.value()[prefix_len(value.value(), lines)..].to_vec(),
                    None => Vec::new(),
                };
                rest_bytes = rest.len() as u64;
                table
                    .insert(chunk.key, rest.as_slice())
                    .map_err(redb::Error::from)?;
            }
            for (chunk, value) in insert {
                if !evict.iter().any(|e| e.key == chunk.key) {
                    table.insert(chunk.key, *value).map_err(redb::Error::from)?;
                }
            }
        }
        write.commit().map_err(redb::Error::from)?;
        Ok(rest_bytes)
    }

    /// Makes every commit so far durable.
    pub fn sync(&self) -> Result<(), StoreError> {
        self.commit(Durability::Immediate, &Removal::default(), &[], &[])
            .map(|_| ())
    }

    /// What the file occupies on disk and what its filesystem has left.
    pub fn usage(&self) -> Result<Usage, StoreError> {
        Ok(space::measure(&self.path)?)
    }

    /// Copies what redb can still read of the damaged file at `path`, keys kept; returns the
    /// lines copied. redb may panic on a page damaged outside it: the copy stops there.
    pub fn salvage(&self, path: &Path) -> usize {
        let mut copied = 0;
        let read = catch_unwind(AssertUnwindSafe(|| self.copy_from(path, &mut copied)));
        match read {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(%error, "reading the damaged spool file stopped"),
            Err(_) => tracing::warn!("reading the damaged spool file stopped at a damaged page"),
        }
        copied
    }

    fn copy_from(&self, path: &Path, copied: &mut usize) -> Result<(), StoreError> {
        let damaged = Database::builder()
            .open_read_only(path)
            .map_err(redb::Error::from)?;
        let read = damaged.begin_read().map_err(redb::Error::from)?;
        let table = read.open_table(CHUNKS).map_err(redb::Error::from)?;
        let mut batch: Vec<(Chunk, Vec<u8>)> = Vec::new();
        for entry in table.iter().map_err(redb::Error::from)? {
            let (key, value) = entry.map_err(redb::Error::from)?;
            batch.push((chunk(key.value(), value.value()), value.value().to_vec()));
            if batch.len() == SALVAGE_BATCH {
                *copied += self.insert_all(&std::mem::take(&mut batch))?;
            }
        }
        *copied += self.insert_all(&batch)?;
        Ok(())
    }

    fn insert_all(&self, chunks: &[(Chunk, Vec<u8>)]) -> Result<usize, StoreError> {
        let insert: Vec<(Chunk, &[u8])> = chunks.iter().map(|(c, v)| (*c, v.as_slice())).collect();
        self.commit(Durability::Immediate, &Removal::default(), &[], &insert)?;
        Ok(chunks.iter().map(|(chunk, _)| chunk.lines).sum())
    }
}

/// The file is not a sound redb database (rather than a directory or disk that fails).
pub fn is_damage(error: &DatabaseError) -> bool {
    match error {
        DatabaseError::UpgradeRequired(_) | DatabaseError::RepairAborted => true,
        DatabaseError::Storage(StorageError::Corrupted(_)) => true,
        DatabaseError::Storage(StorageError::Io(e)) => matches!(
            e.kind(),
            io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof
        ),
        _ => false,
    }
}

/// The disk (or the user's quota) is full: no fault of the file nor of its directory.
pub fn is_full_disk(error: &DatabaseError) -> bool {
    matches!(error, DatabaseError::Storage(StorageError::Io(e))
        if matches!(e.kind(), io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded))
}

fn chunk(key: u64, value: &[u8]) -> Chunk {
    Chunk {
        key,
        lines: value.iter().filter(|b| **b == b'\n').count(),
        bytes: value.len() as u64,
    }
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
