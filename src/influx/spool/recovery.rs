//! Opening the spool's directory and file. A damaged file never keeps the service down: it is
//! moved aside (`spool.redb.corrupt-<UTC time>`, kept for inspection), what redb can still read
//! of it is replayed first, and a fresh file takes its place. Only a directory that cannot be
//! created, locked or written stops the start.

use std::fs::File;
use std::path::{Path, PathBuf};

use chrono::Utc;
use redb::DatabaseError;

use super::store::{self, Store, StoreError};

pub const FILE_NAME: &str = "spool.redb";
const LOCK_NAME: &str = "spool.lock";

/// The directory itself is unusable: the service cannot start.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("cannot use {path}: {source}")]
    Open { path: PathBuf, source: OpenFailure },
}

/// Why the directory or its file could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenFailure {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Database(#[from] DatabaseError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("another vmtelemetry is using this spool")]
    Locked,
}

/// What opening the file found, over the spool's life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recovered {
    /// Damaged files moved aside.
    pub damaged_files: u64,
    /// Lines read back from them.
    pub salvaged_lines: u64,
    /// Files found empty: whatever they held is lost, in a number nobody knows.
    pub empty_files: u64,
}

/// Creates `dir` and takes its lock, held for the spool's lifetime: two instances never share a
/// spool.
pub fn lock(dir: &Path) -> Result<File, SpoolError> {
    std::fs::create_dir_all(dir).map_err(|e| open_error(dir, e))?;
    let lock_path = dir.join(LOCK_NAME);
    let lock = File::create(&lock_path).map_err(|e| open_error(&lock_path, e))?;
    lock.try_lock()
        .map_err(|_| open_error(dir, OpenFailure::Locked))?;
    Ok(lock)
}

/// Opens the file of `dir`, a damaged one replaced by a fresh one; an error is the file or its
/// disk failing, not damage.
pub fn open(dir: &Path, recovered: &mut Recovered) -> Result<Store, DatabaseError> {
    let path = dir.join(FILE_NAME);
    if std::fs::metadata(&path).is_ok_and(|meta| meta.len() == 0) {
        recovered.empty_files += 1;
        tracing::error!(
            path = %path.display(),
            "the spool file was empty: the lines it held, if any, are lost, and how many is unknown"
        );
    }
    match Store::open(&path) {
        Err(error) if store::is_damage(&error) => replace_damaged(&path, &error, recovered),
        opened => opened,
    }
}

fn replace_damaged(
    path: &Path,
    error: &DatabaseError,
    recovered: &mut Recovered,
) -> Result<Store, DatabaseError> {
    let size = std::fs::metadata(path).map_or(0, |meta| meta.len());
    let aside = aside_path(path);
    std::fs::rename(path, &aside)?;
    recovered.damaged_files += 1;
    tracing::error!(
        %error,
        bytes = size,
        kept_as = %aside.display(),
        "the spool file is damaged: moved aside, its readable lines replayed, a fresh one started"
    );
    let fresh = Store::open(path)?;
    let salvaged = fresh.salvage(&aside);
    recovered.salvaged_lines += salvaged as u64;
    tracing::warn!(
        lines = salvaged,
        "lines read back from the damaged spool file (the rest of it is lost)"
    );
    Ok(fresh)
}

/// `spool.redb.corrupt-<UTC time>`, one that does not exist yet.
fn aside_path(path: &Path) -> PathBuf {
    let stamp = Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
    let mut aside = path.with_extension(format!("redb.corrupt-{stamp}"));
    let mut n = 1;
    while aside.exists() {
        aside = path.with_extension(format!("redb.corrupt-{stamp}-{n}"));
        n += 1;
    }
    aside
}

pub fn open_error(path: &Path, failure: impl Into<OpenFailure>) -> SpoolError {
    SpoolError::Open {
        path: path.to_owned(),
        source: failure.into(),
    }
}
