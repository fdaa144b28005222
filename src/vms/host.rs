//! One host's VMs, each in a record holding its history: its latest seed sample, its recent
//! samples and its last extended sample. Recording a cycle updates each VM's record and forgets
//! the VMs the cycle no longer has.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::mem;
use std::sync::Arc;

use hashbrown::HashTable;
use uuid::Uuid;

use crate::guest::GuestSample;

use super::recent::RecentSamples;
use crate::extended::{self, DomainStatsSample, StatsSample};
use crate::sample::{DomainSample, MemoryFeatures, NodeSample};

pub(super) struct HostVms {
    pub host: Arc<str>,
    /// Found by each record's own UUID, so no copy of it is kept as a key. Boxed: the table keeps
    /// room for up to twice its entries, which then costs a pointer each, not a whole record.
    pub vms: HashTable<Box<VmRecord>>,
    /// The VMs of the last cycle: the records but those known only from extended samples.
    pub listed: usize,
    /// The host itself, as its last cycle that read it saw it.
    pub node: Option<NodeSample>,
    /// The answers of the last guest agent round, by VM: a VM whose agent fell silent has none.
    pub guests: HashMap<Uuid, Arc<GuestSample>>,
    /// This host's cycles so far, wrapping: a record stamped with another was not in the last.
    cycle: u8,
    /// The feature actor restarted: the next cycle derives no features.
    forgotten: bool,
    /// Whether the host's own line (`host_metrics`) was logged as unencodable.
    unencodable_logged: bool,
}

/// One VM's history.
pub(super) struct VmRecord {
    /// None for a VM known only from its extended sample (its seed fields unread), kept for the
    /// rates of its next one.
    pub latest: Option<DomainSample>,
    pub recent: RecentSamples,
    /// Its last extended sample with rows, that the next rates derive from.
    pub stats: Option<Box<DomainStatsSample>>,
}

/// A stats cycle as recorded: the extended samples of the VMs with a seed sample, each with the
/// one before it.
pub(super) struct RecordedStats {
    /// The `host` tag of the extended lines.
    pub host: Arc<str>,
    /// The rows of every extended sample of the cycle.
    pub rows: usize,
    pub changed: Vec<Uuid>,
}

impl HostVms {
    pub fn new(host: Arc<str>) -> Self {
        HostVms {
            host,
            vms: HashTable::new(),
            listed: 0,
            node: None,
            guests: HashMap::new(),
            cycle: 0,
            forgotten: false,
            unencodable_logged: false,
        }
    }

    pub fn find(&self, hasher: &RandomState, uuid: &Uuid) -> Option<&VmRecord> {
        self.vms
            .find(hasher.hash_one(uuid), |r| r.uuid() == *uuid)
            .map(|r| &**r)
    }

    /// True the first time the lines of VM `uuid` (None: the host's own) cannot be encoded, so
    /// that they are logged once while they are counted every cycle.
    pub fn first_unencodable(&mut self, hasher: &RandomState, uuid: Option<&Uuid>) -> bool {
        let logged = match uuid {
            Some(uuid) => match self
                .vms
                .find_mut(hasher.hash_one(uuid), |r| r.uuid() == *uuid)
            {
                Some(record) => &mut record.recent.unencodable_logged,
                None => return true,
            },
            None => &mut self.unencodable_logged,
        };
        !mem::replace(logged, true)
    }

    /// Forgets every previous sample: the next cycle derives no features, the next extended
    /// sample no rates.
    pub fn forget_baselines(&mut self) {
        self.forgotten = true;
        self.vms.retain(|record| {
            record.stats = None;
            record.latest.is_some()
        });
    }

    /// Records each VM's sample, and forgets the VMs the cycle lacks. Returns each VM's UUID and
    /// the features derived for it, in the cycle's order.
    pub fn record_seed(
        &mut self,
        hasher: &RandomState,
        domains: Vec<DomainSample>,
        capacity: usize,
    ) -> Vec<(Uuid, Option<MemoryFeatures>)> {
        self.cycle = self.cycle.wrapping_add(1);
        let derive = !mem::take(&mut self.forgotten);
        // Collected into the samples' own buffer: no allocation.
        let listed = domains
            .into_iter()
            .map(|domain| (domain.uuid, self.upsert(hasher, domain, derive, capacity)))
            .collect();
        let cycle = self.cycle;
        self.vms
            .retain(|record| record.latest.is_some() && record.recent.seen_in == cycle);
        self.listed = self.vms.len();
        listed
    }

    fn upsert(
        &mut self,
        hasher: &RandomState,
        domain: DomainSample,
        derive: bool,
        capacity: usize,
    ) -> Option<MemoryFeatures> {
        let cycle = self.cycle;
        let hash = hasher.hash_one(domain.uuid);
        if let Some(record) = self.vms.find_mut(hash, |r| r.uuid() == domain.uuid) {
            return record.follow(domain, derive, cycle, capacity);
        }
        let record = VmRecord {
            latest: Some(domain),
            recent: RecentSamples::new(capacity, cycle),
            stats: None,
        };
        self.vms
            .insert_unique(hash, Box::new(record), |r| hasher.hash_one(r.uuid()));
        None
    }

    /// Derives each extended sample's rates from its VM's baseline, then makes it the baseline,
    /// with the rows of the groups it did not read carried over. Returns the VMs with a seed
    /// sample (which tags their lines) and rows read. A VM without one gives no lines but keeps
    /// its sample for the next rates; a baseline without any row is not kept.
    pub fn record_stats(&mut self, hasher: &RandomState, stats: StatsSample) -> RecordedStats {
        let StatsSample { host, domains, .. } = stats;
        let rows = domains.iter().map(|d| d.rows.len()).sum();
        let with_rows = domains.iter().filter(|d| !d.rows.is_empty()).count();
        let mut changed = Vec::with_capacity(with_rows);
        for domain in domains {
            let (uuid, hash) = (domain.uuid, hasher.hash_one(domain.uuid));
            match self.vms.find_mut(hash, |r| r.uuid() == uuid) {
                Some(record) => {
                    let mut domain = domain;
                    let vcpus = record.latest.as_ref().map(|l| l.cpu_count);
                    let previous = record.stats.as_deref();
                    domain.derived = extended::derive(previous, &domain, vcpus);
                    domain.carry(previous);
                    let read = !domain.rows.is_empty();
                    if !read && domain.carried.is_empty() {
                        record.stats = None;
                    } else if let Some(baseline) = &mut record.stats {
                        **baseline = domain;
                    } else {
                        record.stats = Some(Box::new(domain));
                    }
                    if read && record.latest.is_some() {
                        changed.push(uuid);
                    }
                }
                None if domain.rows.is_empty() => {}
                None => {
                    let mut domain = domain;
                    domain.derived = extended::derive(None, &domain, None);
                    let record = VmRecord {
                        latest: None,
                        recent: RecentSamples::default(),
                        stats: Some(Box::new(domain)),
                    };
                    self.vms
                        .insert_unique(hash, Box::new(record), |r| hasher.hash_one(r.uuid()));
                }
            }
        }
        RecordedStats {
            host,
            rows,
            changed,
        }
    }
}

impl VmRecord {
    fn uuid(&self) -> Uuid {
        match (&self.latest, &self.stats) {
            (Some(latest), _) => latest.uuid,
            (None, Some(stats)) => stats.uuid,
            // Never kept: a record holds one sample or the other.
            (None, None) => Uuid::nil(),
        }
    }

    /// Takes `sample` as its latest. Returns the features derived from the one before, if
    /// `derive`.
    fn follow(
        &mut self,
        sample: DomainSample,
        derive: bool,
        cycle: u8,
        capacity: usize,
    ) -> Option<MemoryFeatures> {
        let Some(latest) = &mut self.latest else {
            // Known from its extended sample only until now: its seed history starts here.
            self.latest = Some(sample);
            self.recent = RecentSamples::new(capacity, cycle);
            return None;
        };
        let features = derive
            .then(|| MemoryFeatures::between(latest, &sample))
            .flatten();
        self.recent
            .push(latest, &sample, features.is_some(), capacity);
        self.recent.seen_in = cycle;
        *latest = sample;
        features
    }
}

#[cfg(test)]
mod tests {
    use super::VmRecord;

    /// With malloc's 8-byte header a record takes one 128-byte chunk; a byte more takes 144.
    #[test]
    fn a_record_fits_one_128_byte_heap_chunk() {
        assert!(size_of::<VmRecord>() <= 120, "{}", size_of::<VmRecord>());
    }
}
