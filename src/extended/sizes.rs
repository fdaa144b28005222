//! A disk's sizes (capacity, allocation, physical) come at a cadence of their own
//! (`block_sizes`): only the bulk block group gives them, while its counters come every block
//! cycle. A sample whose disk rows lack them keeps the last read at hand, never to be written
//! again, for `/metrics` and the VM's page.

use super::{DomainStatsSample, StatsRow, VM_DISK};

pub const SIZE_FIELDS: [&str; 3] = ["capacity_bytes", "allocation_bytes", "physical_bytes"];

impl DomainStatsSample {
    /// The sizes of disk `key` last read (they have a cadence of their own), and when: a row of
    /// them alone.
    pub(super) fn sizes(&self, key: &Option<(&'static str, String)>) -> Option<(i64, StatsRow)> {
        let sized = |r: &&StatsRow| {
            r.measurement == VM_DISK && &r.key == key && r.counter(SIZE_FIELDS[0]).is_some()
        };
        let (at, row) = match self.rows.iter().find(sized) {
            Some(row) => (self.timestamp_ns, row),
            None => self
                .carried
                .iter()
                .map(|c| (c.read_at, &c.row))
                .find(|(_, r)| sized(r))?,
        };
        let counters = row.counters.iter().filter(|(f, _)| SIZE_FIELDS.contains(f));
        Some((
            at,
            StatsRow {
                measurement: VM_DISK,
                key: key.clone(),
                source: None,
                counters: counters.copied().collect(),
            },
        ))
    }

    /// A disk's size `field` as last read: this sample's, else the one before's it keeps.
    pub fn disk_size(&self, key: &Option<(&'static str, String)>, field: &str) -> Option<u64> {
        self.sizes(key)?.1.counter(field)
    }
}

impl StatsRow {
    /// A disk's sizes alone, kept from an earlier sample: no reading of its counters.
    pub(super) fn sizes_only(&self) -> bool {
        self.measurement == VM_DISK && self.counters.iter().all(|(f, _)| SIZE_FIELDS.contains(f))
    }
}
