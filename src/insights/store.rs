//! The insights' snapshot file, `insights.redb` beside the spool's file: one redb table of every
//! VM's snapshot, replaced whole by each save in one commit. A VM's snapshot is what it has
//! learned (`vm::Learned`) as a value of redb's own fixed-width types, 424 bytes: redb encodes
//! it, and refuses a file of another layout as a table of another type. A file of its own rather than a
//! table in `spool.redb`: that one is the writer's (its thread, its byte budget, closed, moved
//! aside and salvaged on failure), and redb lets one process open a file once.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{Database, DatabaseError, ReadableDatabase, ReadableTable, TableDefinition, TableError};

use super::detector::{ModelParts, SignalModel};
use super::signals::SIGNALS;
use super::vm::Learned;
use super::window::{AnomalyWindow, WindowParts};
use crate::influx::spool::is_damage;

pub const FILE_NAME: &str = "insights.redb";
/// Key: the host's URI and the VM's UUID.
const VMS: TableDefinition<(&str, u128), VmSnapshot> = TableDefinition::new("insights_vms");
/// The forecasts' and right-sizing's state (`outlook::Outlook`) as one JSON value, under `STATE`.
const OUTLOOK: TableDefinition<&str, &[u8]> = TableDefinition::new("insights_outlook");
const STATE: &str = "state";
/// Read at start and written every few minutes: its pages need not stay resident.
const CACHE_BYTES: usize = 1 << 20;

/// A VM's models, its window, and when it was last seen running (`NEVER`: not yet).
pub type VmSnapshot = ([ModelParts; SIGNALS], WindowParts, i64);
const NEVER: i64 = i64::MIN;

/// One VM's snapshot: its host's URI, its UUID, what it has learned.
pub type SnapshotEntry = (Arc<str>, u128, VmSnapshot);

impl Learned {
    pub fn to_snapshot(&self) -> VmSnapshot {
        let models = self.models.map(|model| model.parts());
        (
            models,
            self.window.parts(),
            self.running_ns.unwrap_or(NEVER),
        )
    }

    /// What a snapshot kept, every run interrupted; None if any part is unsound.
    pub fn from_snapshot((models, window, running_ns): VmSnapshot) -> Option<Self> {
        let mut learned = Learned {
            window: AnomalyWindow::from_parts(window)?,
            running_ns: (running_ns != NEVER).then_some(running_ns),
            ..Learned::default()
        };
        for (model, parts) in learned.models.iter_mut().zip(models) {
            *model = SignalModel::from_parts(parts)?;
        }
        Some(learned)
    }
}

pub struct SnapshotStore {
    db: Database,
    path: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("cannot open {path}: {source}")]
    Open {
        path: PathBuf,
        source: DatabaseError,
    },
    #[error("cannot replace the damaged {path}: {source}")]
    Replace {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Redb(redb::Error),
    /// redb panics on some pages damaged outside it.
    #[error("redb panicked (a page damaged outside it?)")]
    Panicked,
    #[error("cannot measure the file: {0}")]
    Size(#[from] std::io::Error),
}

fn redb(error: impl Into<redb::Error>) -> SnapshotError {
    SnapshotError::Redb(error.into())
}

impl SnapshotStore {
    /// Opens (or creates) the file at `path`, checking every page. A damaged one is removed and
    /// a fresh one created: the store comes with the damage found.
    pub fn open(path: &Path) -> Result<(Self, Option<DatabaseError>), SnapshotError> {
        let opened = Self::create(path);
        let damage = match opened {
            Ok(store) => return Ok((store, None)),
            Err(error) if is_damage(&error) => error,
            Err(source) => return Err(open_error(path, source)),
        };
        std::fs::remove_file(path).map_err(|source| SnapshotError::Replace {
            path: path.to_owned(),
            source,
        })?;
        let fresh = Self::create(path).map_err(|source| open_error(path, source))?;
        Ok((fresh, Some(damage)))
    }

    fn create(path: &Path) -> Result<Self, DatabaseError> {
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .set_check_integrity_on_open(true)
            .create(path)?;
        Ok(SnapshotStore {
            db,
            path: path.to_owned(),
        })
    }

    /// Every VM's snapshot; none before the first save.
    pub fn load(&self) -> Result<Vec<SnapshotEntry>, SnapshotError> {
        catch_unwind(AssertUnwindSafe(|| self.read())).unwrap_or(Err(SnapshotError::Panicked))
    }

    fn read(&self) -> Result<Vec<SnapshotEntry>, SnapshotError> {
        let read = self.db.begin_read().map_err(redb)?;
        let table = match read.open_table(VMS) {
            Ok(table) => table,
            Err(TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(error) => return Err(redb(error)),
        };
        let mut snapshot = Vec::new();
        for entry in table.iter().map_err(redb)? {
            let (key, value) = entry.map_err(redb)?;
            let (uri, uuid) = key.value();
            snapshot.push((Arc::from(uri), uuid, value.value()));
        }
        Ok(snapshot)
    }

    /// Replaces the snapshot by `snapshot`, in one durable commit; returns the file's size.
    pub fn save(&self, snapshot: &[SnapshotEntry]) -> Result<u64, SnapshotError> {
        let write = self.db.begin_write().map_err(redb)?;
        // Whatever its layout: a file of another version's is replaced, not an error.
        write.delete_table(VMS).map_err(redb)?;
        {
            let mut table = write.open_table(VMS).map_err(redb)?;
            for (uri, uuid, vm) in snapshot {
                table.insert((&**uri, *uuid), vm).map_err(redb)?;
            }
        }
        write.commit().map_err(redb)?;
        Ok(std::fs::metadata(&self.path)?.len())
    }
}

impl SnapshotStore {
    /// Replaces the outlook's state, in one durable commit.
    pub fn save_outlook(&self, json: &[u8]) -> Result<(), SnapshotError> {
        let write = self.db.begin_write().map_err(redb)?;
        {
            let mut table = write.open_table(OUTLOOK).map_err(redb)?;
            table.insert(STATE, json).map_err(redb)?;
        }
        write.commit().map_err(redb)
    }

    /// The outlook's state; none before its first save.
    pub fn load_outlook(&self) -> Result<Option<Vec<u8>>, SnapshotError> {
        let read = self.db.begin_read().map_err(redb)?;
        let table = match read.open_table(OUTLOOK) {
            Ok(table) => table,
            Err(TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(error) => return Err(redb(error)),
        };
        let state = table.get(STATE).map_err(redb)?;
        Ok(state.map(|json| json.value().to_vec()))
    }
}

fn open_error(path: &Path, source: DatabaseError) -> SnapshotError {
    SnapshotError::Open {
        path: path.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use redb::Database;

    use super::*;

    /// VM `n`'s snapshot: every part telling `n` apart.
    fn entry(n: u32) -> SnapshotEntry {
        let f = n as f32;
        let models = [(f, 1.0, 0.0, 2.0, 60); SIGNALS];
        let window = ([(n % 3, 3); 15], i64::from(n));
        (
            Arc::from("qemu+ssh://kvm1/system"),
            u128::from(n),
            (models, window, i64::from(n) * 5),
        )
    }

    #[test]
    fn ten_thousand_vms_saved_and_loaded_back_in_a_file_of_bounded_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let (store, damage) = SnapshotStore::open(&path).unwrap();
        assert!(damage.is_none());
        assert!(store.load().unwrap().is_empty());
        let snapshot: Vec<SnapshotEntry> = (0..10_000).map(entry).collect();
        let first = store.save(&snapshot).unwrap();
        // Copy-on-write: a save writes beside the last one, whose pages the next save reuses.
        let later: Vec<u64> = (0..2).map(|_| store.save(&snapshot).unwrap()).collect();
        println!("insights.redb for 10,000 VMs: {first} bytes after a save, then {later:?}");
        assert!(first / 10_000 <= 1024, "{first} bytes");
        assert!(
            later.iter().all(|bytes| *bytes <= 2 * first + 65_536),
            "{first} then {later:?}"
        );
        drop(store);
        let (store, _) = SnapshotStore::open(&path).unwrap();
        let mut loaded = store.load().unwrap();
        loaded.sort_by_key(|(_, uuid, _)| *uuid);
        assert_eq!(loaded, snapshot);
        let fewer: Vec<SnapshotEntry> = (0..10).map(entry).collect();
        store.save(&fewer).unwrap();
        assert_eq!(store.load().unwrap().len(), 10);
    }

    #[test]
    fn the_outlooks_state_is_kept_beside_the_models_and_replaced_by_each_save() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let (store, _) = SnapshotStore::open(&path).unwrap();
        assert_eq!(store.load_outlook().unwrap(), None);
        store.save_outlook(b"{\"hosts\":{}}").unwrap();
        store.save(&[entry(1)]).unwrap();
        store.save_outlook(b"{\"hosts\":{\"a\":{}}}").unwrap();
        drop(store);
        let (store, _) = SnapshotStore::open(&path).unwrap();
        let json = store.load_outlook().unwrap().unwrap();
        assert_eq!(json, b"{\"hosts\":{\"a\":{}}}");
        assert_eq!(store.load().unwrap(), [entry(1)]);
    }

    #[test]
    fn a_damaged_file_is_replaced_by_a_fresh_one_and_the_damage_told() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        std::fs::write(&path, b"not a redb file at all ".repeat(400)).unwrap();
        let (store, damage) = SnapshotStore::open(&path).unwrap();
        assert!(damage.is_some_and(|d| is_damage(&d)));
        assert!(store.load().unwrap().is_empty());
        store.save(&[entry(1)]).unwrap();
        assert_eq!(store.load().unwrap(), [entry(1)]);
    }

    #[test]
    fn a_table_of_another_layout_is_an_error_then_replaced_by_the_next_save() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        {
            let db = Database::create(&path).unwrap();
            let other: TableDefinition<u64, &[u8]> = TableDefinition::new("insights_vms");
            let write = db.begin_write().unwrap();
            write
                .open_table(other)
                .unwrap()
                .insert(1, b"x".as_slice())
                .unwrap();
            write.commit().unwrap();
        }
        let (store, damage) = SnapshotStore::open(&path).unwrap();
        assert!(damage.is_none());
        let error = store.load().unwrap_err();
        assert!(matches!(error, SnapshotError::Redb(_)), "{error}");
        store.save(&[entry(2)]).unwrap();
        assert_eq!(store.load().unwrap(), [entry(2)]);
    }

    #[test]
    fn a_snapshot_is_a_fixed_424_bytes_a_vm() {
        use redb::Value;
        assert_eq!(<VmSnapshot as Value>::fixed_width(), Some(424));
    }
}
