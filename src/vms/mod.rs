//! The live view of every VM: its latest sample and features, the recent samples held in memory,
//! and the previous sample the next features are derived from. Owned by the feature actor.

mod recent;

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use hashbrown::HashTable;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::sample::INACTIVE_VMID;
use crate::sample::{DomainSample, HostSample, MemoryFeatures, VmState};
use recent::{RecentSamples, Recorded};

pub struct VmTable {
    /// Per host URI, so two hosts never mix even when UUIDs or names repeat.
    hosts: HashMap<Arc<str>, HostVms>,
    /// Hashes a record by its latest sample's UUID.
    uuid_hasher: RandomState,
    recent_capacity: usize,
}

struct HostVms {
    host: Arc<str>,
    /// Found by each record's own UUID, so no copy of it is kept as a key (10,000 VMs: 0.7 MB).
    /// Boxed: the table keeps room for up to twice its entries, which then costs a pointer each
    /// instead of a whole record (10,000 VMs: 4.1 MB of table → 0.5 MB + 2.4 MB of records).
    vms: HashTable<Box<VmRecord>>,
    /// This host's cycles so far, wrapping: a record stamped with another was not in the last.
    cycle: u32,
}

impl HostVms {
    fn find(&self, hasher: &RandomState, uuid: &Uuid) -> Option<&VmRecord> {
        self.vms
            .find(hasher.hash_one(uuid), |r| r.latest.uuid == *uuid)
            .map(|r| &**r)
    }
}

struct VmRecord {
    latest: DomainSample,
    /// False after the feature actor restarts: the next sample derives no features.
    baseline: bool,
    /// The host's cycle this VM was last in.
    seen_in: u32,
    recent: RecentSamples,
}

/// A VM as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct VmView {
    pub host: String,
    pub uri: String,
    /// libvirt's id, or `-` for a domain that is not running.
    pub vmid: String,
    pub name: String,
    pub uuid: String,
    pub state: VmState,
    pub cpu_count: u32,
    pub memory_max_kb: u64,
    pub memory_used_kb: u64,
    pub cputime_ns: u64,
    pub timestamp: DateTime<Utc>,
    pub memory_rate_kb_per_sec: Option<f64>,
    pub memory_angle_deg: Option<f64>,
}

/// A recent sample held in memory, oldest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RecentSample {
    pub timestamp: DateTime<Utc>,
    pub state: VmState,
    pub cpu_count: u32,
    pub memory_max_kb: u64,
    pub memory_used_kb: u64,
    pub cputime_ns: u64,
    pub memory_rate_kb_per_sec: Option<f64>,
    pub memory_angle_deg: Option<f64>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct VmDetail {
    pub vm: VmView,
    pub recent: Vec<RecentSample>,
}

/// Filters of the VM list; `name` matches a substring.
#[derive(Debug, Clone, Default)]
pub struct VmFilter {
    pub host: Option<String>,
    pub state: Option<String>,
    pub name: Option<String>,
}

#[derive(Debug)]
pub enum VmLookup {
    Found(Box<VmDetail>),
    NotFound,
    /// The name or VMID is on several VMs; `?host=` settles it.
    Ambiguous(Vec<VmView>),
}

impl VmTable {
    pub fn new(recent_capacity: usize) -> Self {
        VmTable {
            hosts: HashMap::new(),
            uuid_hasher: RandomState::new(),
            recent_capacity,
        }
    }

    /// Records one host's cycle. `on_domain` sees each domain with the features derived from its
    /// previous sample (none for a VM's first sample). VMs missing from the cycle are forgotten.
    pub fn record(
        &mut self,
        sample: HostSample,
        mut on_domain: impl FnMut(&str, &DomainSample, Option<&MemoryFeatures>),
    ) {
        let entry = self
            .hosts
            .entry(sample.uri.clone())
            .or_insert_with(|| HostVms {
                host: sample.host.clone(),
                vms: HashTable::new(),
                cycle: 0,
            });
        entry.host = sample.host.clone();
        entry.cycle = entry.cycle.wrapping_add(1);
        let cycle = entry.cycle;
        let hasher = &self.uuid_hasher;
        for domain in sample.domains {
            let hash = hasher.hash_one(domain.uuid);
            match entry.vms.find_mut(hash, |r| r.latest.uuid == domain.uuid) {
                Some(record) => {
                    record.seen_in = cycle;
                    let features = record
                        .baseline
                        .then(|| MemoryFeatures::between(&record.latest, &domain))
                        .flatten();
                    on_domain(&sample.host, &domain, features.as_ref());
                    record.baseline = true;
                    let capacity = self.recent_capacity;
                    record
                        .recent
                        .push(&record.latest, &domain, features.is_some(), capacity);
                    record.latest = domain;
                }
                None => {
                    on_domain(&sample.host, &domain, None);
                    let record = VmRecord {
                        latest: domain,
                        baseline: true,
                        seen_in: cycle,
                        recent: RecentSamples::new(self.recent_capacity),
                    };
                    entry
                        .vms
                        .insert_unique(hash, Box::new(record), |r| hasher.hash_one(r.latest.uuid));
                }
            }
        }
        entry.vms.retain(|record| record.seen_in == cycle);
    }

    /// The libvirt id and vCPU count of a VM's latest sample, if that VM is known on that host.
    pub fn identity(&self, uri: &str, uuid: &Uuid) -> Option<(Option<u32>, u32)> {
        let record = self.hosts.get(uri)?.find(&self.uuid_hasher, uuid)?;
        Some((record.latest.id, record.latest.cpu_count))
    }

    /// Forgets every previous sample, so the next cycle derives no features.
    pub fn forget_baselines(&mut self) {
        for host in self.hosts.values_mut() {
            for record in host.vms.iter_mut() {
                record.baseline = false;
            }
        }
    }

    pub fn len(&self) -> usize {
        self.hosts.values().map(|h| h.vms.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Matching VMs, ordered by host, name and UUID.
    pub fn list(&self, filter: &VmFilter) -> Vec<VmView> {
        let mut views: Vec<VmView> = self
            .records()
            .filter(|(host, _, record)| {
                filter.host.as_deref().is_none_or(|h| h == &***host)
                    && filter
                        .state
                        .as_deref()
                        .is_none_or(|s| s == record.latest.state.as_str())
                    && filter
                        .name
                        .as_deref()
                        .is_none_or(|n| record.latest.name.contains(n))
            })
            .map(|(host, uri, record)| view(host, uri, record))
            .collect();
        sort(&mut views);
        views
    }

    /// A VM by UUID (always unique), or by name or numeric VMID, optionally on one host.
    pub fn lookup(&self, selector: &str, host: Option<&str>) -> VmLookup {
        let on_host = |h: &Arc<str>| host.is_none_or(|wanted| wanted == &**h);
        let uuid = Uuid::try_parse(selector).ok();
        let candidates: Vec<_> = self
            .records()
            .filter(|(h, _, _)| on_host(h))
            .filter(|(_, _, r)| uuid == Some(r.latest.uuid))
            .collect();
        let candidates = if candidates.is_empty() {
            self.records()
                .filter(|(h, _, _)| on_host(h))
                .filter(|(_, _, r)| {
                    &*r.latest.name == selector
                        || r.latest.id.is_some_and(|id| id.to_string() == selector)
                })
                .collect()
        } else {
            candidates
        };
        match candidates.as_slice() {
            [] => VmLookup::NotFound,
            [(host, uri, record)] => VmLookup::Found(Box::new(VmDetail {
                vm: view(host, uri, record),
                recent: record.recent_views(self.recent_capacity),
            })),
            several => {
                let mut views: Vec<_> = several.iter().map(|(h, u, r)| view(h, u, r)).collect();
                sort(&mut views);
                VmLookup::Ambiguous(views)
            }
        }
    }

    fn records(&self) -> impl Iterator<Item = (&Arc<str>, &Arc<str>, &VmRecord)> {
        self.hosts
            .iter()
            .flat_map(|(uri, host)| host.vms.iter().map(move |r| (&host.host, uri, &**r)))
    }
}

impl VmRecord {
    /// The recent samples, oldest first, with their features.
    fn recent_views(&self, capacity: usize) -> Vec<RecentSample> {
        self.recent
            .shown(&self.latest, capacity)
            .iter()
            .map(|(sample, features)| recent_view(sample, *features))
            .collect()
    }
}

fn sort(views: &mut [VmView]) {
    views.sort_by(|a, b| (&a.host, &a.name, &a.uuid).cmp(&(&b.host, &b.name, &b.uuid)));
}

fn view(host: &str, uri: &str, record: &VmRecord) -> VmView {
    let latest = &record.latest;
    let features = record.recent.latest_features(latest);
    VmView {
        host: host.to_owned(),
        uri: uri.to_owned(),
        vmid: latest
            .id
            .map_or_else(|| INACTIVE_VMID.to_owned(), |id| id.to_string()),
        name: latest.name.to_string(),
        uuid: latest.uuid.to_string(),
        state: latest.state,
        cpu_count: latest.cpu_count,
        memory_max_kb: latest.memory_max_kb,
        memory_used_kb: latest.memory_used_kb,
        cputime_ns: latest.cputime_ns,
        timestamp: DateTime::from_timestamp_nanos(latest.timestamp_ns),
        memory_rate_kb_per_sec: features.map(|f| f.memory_rate_kb_per_sec),
        memory_angle_deg: features.map(|f| f.memory_angle_deg),
    }
}

fn recent_view(sample: &Recorded, features: Option<MemoryFeatures>) -> RecentSample {
    RecentSample {
        timestamp: DateTime::from_timestamp_nanos(sample.timestamp_ns),
        state: sample.state,
        cpu_count: sample.cpu_count,
        memory_max_kb: sample.memory_max_kb,
        memory_used_kb: sample.memory_used_kb,
        cputime_ns: sample.cputime_ns,
        memory_rate_kb_per_sec: features.map(|f| f.memory_rate_kb_per_sec),
        memory_angle_deg: features.map(|f| f.memory_angle_deg),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A UUID from a few hex digits, e.g. `a` for 00000000-0000-0000-0000-00000000000a.
    fn uuid(hex: &str) -> Uuid {
        Uuid::from_u128(u128::from_str_radix(hex, 16).unwrap())
    }

    fn vm(hex: &str, name: &str, id: Option<u32>, t: i64, memory: u64) -> DomainSample {
        DomainSample {
            id,
            name: name.into(),
            uuid: uuid(hex),
            state: if id.is_some() {
                VmState::Running
            } else {
                VmState::Stopped
            },
            cpu_count: 1,
            memory_max_kb: 4096,
            memory_used_kb: memory,
            cputime_ns: 0,
            timestamp_ns: t,
        }
    }

    fn cycle(table: &mut VmTable, uri: &str, host: &str, domains: Vec<DomainSample>) -> usize {
        let mut with_features = 0;
        table.record(
            HostSample {
                uri: uri.into(),
                host: host.into(),
                domains,
                node: None,
            },
            |_, _, features| with_features += usize::from(features.is_some()),
        );
        with_features
    }

    fn table() -> VmTable {
        let mut table = VmTable::new(3);
        cycle(
            &mut table,
            "u1",
            "h1",
            vec![vm("a", "web", Some(1), 0, 10), vm("b", "db", None, 0, 10)],
        );
        cycle(&mut table, "u2", "h2", vec![vm("c", "web", Some(1), 0, 10)]);
        table
    }

    #[test]
    fn lists_sorted_and_filtered() {
        let table = table();
        let all: Vec<_> = table
            .list(&VmFilter::default())
            .into_iter()
            .map(|v| v.uuid)
            .collect();
        assert_eq!(all, ["b", "a", "c"].map(|hex| uuid(hex).to_string()));
        let filter = VmFilter {
            name: Some("we".into()),
            ..VmFilter::default()
        };
        assert_eq!(table.list(&filter).len(), 2);
        let filter = VmFilter {
            host: Some("h1".into()),
            state: Some("stopped".into()),
            ..VmFilter::default()
        };
        let stopped = table.list(&filter);
        assert_eq!(stopped.len(), 1);
        assert_eq!(stopped[0].vmid, "-");
    }

    #[test]
    fn lookup_by_uuid_name_or_vmid_and_ambiguity() {
        let table = table();
        let a = uuid("a").to_string();
        let found = table.lookup(&a.to_uppercase(), None);
        assert!(matches!(found, VmLookup::Found(d) if d.vm.uuid == a));
        assert!(matches!(table.lookup("db", None), VmLookup::Found(d) if d.vm.host == "h1"));
        match table.lookup("web", None) {
            VmLookup::Ambiguous(candidates) => assert_eq!(candidates.len(), 2),
            other => panic!("{other:?}"),
        }
        assert!(matches!(table.lookup("1", None), VmLookup::Ambiguous(_)));
        let found = table.lookup("web", Some("h2"));
        assert!(matches!(found, VmLookup::Found(d) if d.vm.uuid == uuid("c").to_string()));
        assert!(matches!(table.lookup("nope", None), VmLookup::NotFound));
    }

    #[test]
    fn recent_samples_are_bounded_and_features_follow() {
        let mut table = VmTable::new(3);
        for t in 0..5 {
            let with_features = cycle(
                &mut table,
                "u",
                "h",
                vec![vm("a", "x", Some(1), t * 1_000_000_000, 10 + t as u64)],
            );
            assert_eq!(with_features, usize::from(t > 0));
        }
        let VmLookup::Found(detail) = table.lookup(&uuid("a").to_string(), None) else {
            panic!()
        };
        let memory: Vec<_> = detail.recent.iter().map(|s| s.memory_used_kb).collect();
        assert_eq!(memory, [12, 13, 14]);
        assert_eq!(detail.vm.memory_rate_kb_per_sec, Some(1.0));
    }

    #[test]
    fn forgotten_baselines_give_no_features_once_but_keep_the_view() {
        let mut table = VmTable::new(3);
        cycle(&mut table, "u", "h", vec![vm("a", "x", Some(1), 0, 10)]);
        table.forget_baselines();
        assert_eq!(table.len(), 1);
        assert_eq!(
            cycle(&mut table, "u", "h", vec![vm("a", "x", Some(1), 1, 10)]),
            0
        );
        assert_eq!(
            cycle(&mut table, "u", "h", vec![vm("a", "x", Some(1), 2, 10)]),
            1
        );
    }

    #[test]
    fn vanished_vms_are_forgotten() {
        let mut table = table();
        cycle(&mut table, "u1", "h1", vec![vm("a", "web", Some(1), 5, 10)]);
        assert!(matches!(table.lookup("db", None), VmLookup::NotFound));
        assert_eq!(table.identity("u1", &uuid("b")), None);
        assert_eq!(table.len(), 2);
        // Back a cycle later, it starts over: no features from the sample before it vanished.
        let with_features = cycle(
            &mut table,
            "u1",
            "h1",
            vec![vm("a", "web", Some(1), 6, 10), vm("b", "db", None, 6, 10)],
        );
        assert_eq!(with_features, 1);
        assert_eq!(table.identity("u1", &uuid("b")), Some((None, 1)));
        // Another host's cycles forget nothing of this one.
        cycle(&mut table, "u2", "h2", vec![]);
        assert_eq!(table.len(), 2);
        assert!(table.identity("u1", &uuid("a")).is_some());
    }

    proptest::proptest! {
        /// The recent samples show exactly what was recorded, features included, though none
        /// are kept.
        #[test]
        fn recent_samples_show_what_was_recorded(
            capacity in 0usize..6,
            steps in proptest::collection::vec((-3i64..4, 0u64..u64::MAX, 0u64..u64::MAX, proptest::bool::weighted(0.15)), 1..20),
        ) {
            let mut table = VmTable::new(capacity);
            let mut expected = Vec::new();
            let mut t = 0i64;
            for (dt, memory, cputime, forget) in steps {
                if forget {
                    table.forget_baselines();
                }
                // Time may stand still or go back: such samples derive no features.
                t += dt * 1_000_000_000;
                let mut sample = vm("a", "x", Some(1), t, memory);
                sample.cputime_ns = cputime;
                let mut derived = None;
                table.record(
                    HostSample { uri: "u".into(), host: "h".into(), domains: vec![sample.clone()], node: None },
                    |_, _, features| derived = features.copied(),
                );
                expected.push((t, memory, cputime, derived));
            }
            let VmLookup::Found(detail) = table.lookup(&uuid("a").to_string(), None) else { panic!() };
            let shown: Vec<_> = detail
                .recent
                .iter()
                .map(|r| {
                    let features = r.memory_rate_kb_per_sec.zip(r.memory_angle_deg).map(|(rate, angle)| MemoryFeatures {
                        memory_rate_kb_per_sec: rate,
                        memory_angle_deg: angle,
                    });
                    (r.timestamp.timestamp_nanos_opt().unwrap(), r.memory_used_kb, r.cputime_ns, features)
                })
                .collect();
            let kept = &expected[expected.len().saturating_sub(capacity)..];
            proptest::prop_assert_eq!(shown.as_slice(), kept);
            let latest = expected.last().and_then(|(_, _, _, features)| *features);
            proptest::prop_assert_eq!(detail.vm.memory_rate_kb_per_sec, latest.map(|f| f.memory_rate_kb_per_sec));
            proptest::prop_assert_eq!(detail.vm.memory_angle_deg, latest.map(|f| f.memory_angle_deg));
        }
    }
}
