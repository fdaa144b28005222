//! Groups have cadences of their own (`stats_group_intervals`, `block_sizes`): a sample keeps
//! the rows of the kinds it did not read from the samples before, with their rates, so that the
//! next read of a kind derives its rates from the last, and the VM list shows each kind's latest.

use std::collections::HashSet;

use super::{DomainStatsSample, SIZE_FIELDS, StatsRow, VM_DISK};

/// A row read by an earlier sample, never written again.
#[derive(Debug, Clone, PartialEq)]
pub struct Carried {
    /// When it was read, in nanoseconds since the Unix epoch.
    pub read_at: i64,
    pub row: StatsRow,
    /// Its rates as derived when it was read (none for a disk's sizes).
    pub derived: Vec<(&'static str, f64)>,
}

impl DomainStatsSample {
    /// Keeps, from `previous` (the VM's sample before), the rows of the kinds this one did not
    /// read (a kind: a measurement, and which tag tells its rows apart), and the sizes last read
    /// of each disk read without them.
    pub fn carry(&mut self, previous: Option<&DomainStatsSample>) {
        let Some(previous) = previous else { return };
        let kind = |r: &StatsRow| (r.measurement, r.key.as_ref().map(|(tag, _)| *tag));
        let read: HashSet<_> = self.rows.iter().map(kind).collect();
        let derived = (previous.derived.iter().map(Some)).chain(std::iter::repeat(None));
        let before = (previous.rows.iter().zip(derived))
            .filter(|(row, _)| !read.contains(&kind(row)))
            .map(|(row, derived)| Carried {
                read_at: previous.timestamp_ns,
                row: row.clone(),
                derived: derived.cloned().unwrap_or_default(),
            });
        let older = (previous.carried.iter())
            .filter(|c| !read.contains(&kind(&c.row)))
            .cloned();
        let sizes = self
            .rows
            .iter()
            .filter(|r| r.measurement == VM_DISK && r.counter(SIZE_FIELDS[0]).is_none())
            .filter_map(|r| previous.sizes(&r.key))
            .map(|(read_at, row)| Carried {
                read_at,
                row,
                derived: Vec::new(),
            });
        // Only what is kept is cloned: most rows are read again every cycle.
        self.carried = before.chain(older).chain(sizes).collect();
    }
}
