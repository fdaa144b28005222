//! The live view of every VM: its latest sample and features, the recent samples held in memory,
//! and what the next cycle derives from (the previous seed sample and the previous extended
//! sample), all in the VM's own record, which goes when the VM goes. Owned by the feature actor:
//! it records each host's cycle here, and encodes what the table returns as changed.

mod catalog;
mod changes;
mod devices;
mod host;
mod page;
mod recent;
mod row;
mod snapshot;

use std::collections::HashMap;
use std::hash::RandomState;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::extended::{DomainStatsSample, StatsSample};
use crate::guest::GuestSample;
use crate::sample::{DomainSample, HostSample, MemoryFeatures, VmState};
pub use catalog::{Answer, Body, Capacity, Catalog, Catalogs, Encoding, Fleet};
pub use changes::{Changes, StatsChange, StatsChanges, VmChange, VmChanges};
pub use devices::DeviceView;
use host::HostVms;
pub use page::{Order, PageQuery, SortColumn, VmFilter, VmList};
use recent::{RecentSamples, Recorded};
use row::{CpuTrend, ExtendedRates, VmRow};
pub use snapshot::{LentVm, NodeSnapshot, TableSnapshot, VmSnapshot};

pub struct VmTable {
    /// Per host URI, so two hosts never mix even when UUIDs or names repeat.
    hosts: HashMap<Arc<str>, HostVms>,
    /// Hashes a record by its VM's UUID.
    uuid_hasher: RandomState,
    recent_capacity: usize,
}

/// A VM with a seed sample: what the API shows.
#[derive(Clone, Copy)]
struct Listed<'a> {
    host: &'a Arc<str>,
    uri: &'a Arc<str>,
    latest: &'a DomainSample,
    recent: &'a RecentSamples,
    stats: Option<&'a DomainStatsSample>,
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
    /// Its CPU use over its vCPUs: from the latest extended sample's `cpu_total`, or without it
    /// from its latest two seed samples (Δ`cputime_ns` / (Δt × vCPUs)); null across a restart.
    pub cpu_usage_percent: Option<f64>,
    /// Summed over the VM's disks (`block`).
    pub disk_read_bytes_per_sec: Option<f64>,
    pub disk_write_bytes_per_sec: Option<f64>,
    /// Summed over the VM's interfaces (`interface`).
    pub net_rx_bytes_per_sec: Option<f64>,
    pub net_tx_bytes_per_sec: Option<f64>,
    /// CPU use between the VM's latest seed samples (up to 12 pairs, oldest first, the last
    /// ending at `timestamp`): Δ`cputime_ns` / (Δt × vCPUs) in whole percent, at most 100; null
    /// across a restart. From the samples held in memory, for the table's trend bars.
    pub cpu_trend: Vec<Option<u8>>,
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
    /// From the latest extended sample (`block`, `interface`); empty without those groups.
    pub disks: Vec<DeviceView>,
    pub interfaces: Vec<DeviceView>,
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

    /// Records one host's cycle: its VMs' samples, then their extended samples if it carried
    /// them. A VM missing from the cycle is forgotten; one missing only from its extended samples
    /// keeps its extended baseline. Returns what changed, for the encoder.
    pub fn record(&mut self, sample: HostSample, stats: Option<StatsSample>) -> Changes<'_> {
        let HostSample {
            uri,
            host,
            domains,
            node,
        } = sample;
        let vms = self
            .hosts
            .entry(uri)
            .or_insert_with(|| HostVms::new(host.clone()));
        vms.host = host;
        if node.is_some() {
            vms.node.clone_from(&node);
        }
        let hasher = &self.uuid_hasher;
        let listed = vms.record_seed(hasher, domains, self.recent_capacity);
        let stats = stats.map(|stats| vms.record_stats(hasher, stats));
        Changes::new(vms, hasher, node, listed, stats)
    }

    /// True the first time the lines of VM `uuid` (None: the host's own) of host `uri` cannot be
    /// encoded: each is logged once in the record's life, and counted every cycle.
    pub fn first_unencodable(&mut self, uri: &str, uuid: Option<&Uuid>) -> bool {
        match self.hosts.get_mut(uri) {
            Some(host) => host.first_unencodable(&self.uuid_hasher, uuid),
            None => true,
        }
    }

    /// Forgets every previous sample: the next cycle derives no features, the next extended
    /// sample no rates.
    pub fn forget_baselines(&mut self) {
        for host in self.hosts.values_mut() {
            host.forget_baselines();
        }
    }

    /// Keeps the answers of host `uri`'s guest agent round `samples` (what `/metrics` shows),
    /// in place of the last round's.
    pub fn record_guests(&mut self, uri: &str, samples: Vec<GuestSample>) {
        if let Some(host) = self.hosts.get_mut(uri) {
            let answers = samples.into_iter().map(|s| (s.uuid, Arc::new(s)));
            host.guests = answers.collect();
        }
    }

    /// Forgets every VM of host `uri` (it went to another replica); whether it had any.
    pub fn forget_host(&mut self, uri: &str) -> bool {
        self.hosts.remove(uri).is_some()
    }

    pub fn len(&self) -> usize {
        self.hosts.values().map(|h| h.listed).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A VM by UUID (always unique), or by name or numeric VMID, optionally on one host.
    pub fn lookup(&self, selector: &str, host: Option<&str>) -> VmLookup {
        let on_host = |vm: &Listed| host.is_none_or(|wanted| wanted == &**vm.host);
        let uuid = Uuid::try_parse(selector).ok();
        let candidates: Vec<_> = self
            .listed()
            .filter(|vm| on_host(vm) && uuid == Some(vm.latest.uuid))
            .collect();
        let candidates = if candidates.is_empty() {
            self.listed()
                .filter(|vm| {
                    on_host(vm)
                        && (&*vm.latest.name == selector
                            || vm.latest.id.is_some_and(|id| id.to_string() == selector))
                })
                .collect()
        } else {
            candidates
        };
        match candidates.as_slice() {
            [] => VmLookup::NotFound,
            [vm] => VmLookup::Found(Box::new(VmDetail {
                vm: vm.view(),
                recent: vm.recent_views(self.recent_capacity),
                disks: devices::disks(vm.stats),
                interfaces: devices::interfaces(vm.stats),
            })),
            several => {
                let mut views: Vec<_> = several.iter().map(Listed::view).collect();
                sort(&mut views);
                VmLookup::Ambiguous(views)
            }
        }
    }

    fn listed(&self) -> impl Iterator<Item = Listed<'_>> {
        self.hosts.iter().flat_map(|(uri, host)| {
            host.vms.iter().filter_map(move |record| {
                Some(Listed {
                    host: &host.host,
                    uri,
                    latest: record.latest.as_ref()?,
                    recent: &record.recent,
                    stats: record.stats.as_deref(),
                })
            })
        })
    }
}
impl<'a> Listed<'a> {
    fn row(&self) -> VmRow<'a> {
        let trend = self.recent.cpu_trend(self.latest, row::TREND_PAIRS);
        let mut rates = ExtendedRates::of(self.stats);
        // Without `cpu_total`, the same figure from the seed's CPU time, read every cycle.
        rates.cpu_usage_percent = rates
            .cpu_usage_percent
            .or_else(|| trend.last().copied().flatten());
        VmRow {
            host: self.host,
            uri: self.uri,
            latest: self.latest,
            features: self.recent.latest_features(self.latest),
            rates,
            cpu_trend: CpuTrend::of(&trend),
        }
    }

    fn view(&self) -> VmView {
        self.row().view()
    }

    /// The recent samples, oldest first, with their features.
    fn recent_views(&self, capacity: usize) -> Vec<RecentSample> {
        self.recent
            .shown(self.latest, capacity)
            .iter()
            .map(|(sample, features)| recent_view(sample, *features))
            .collect()
    }
}

fn sort(views: &mut [VmView]) {
    views.sort_by(|a, b| (&a.host, &a.name, &a.uuid).cmp(&(&b.host, &b.name, &b.uuid)));
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
impl VmTable {
    /// The libvirt id and vCPU count of a VM's latest sample, if that VM is listed on that host.
    pub(crate) fn identity(&self, uri: &str, uuid: &Uuid) -> Option<(Option<u32>, u32)> {
        let record = self.hosts.get(uri)?.find(&self.uuid_hasher, uuid)?;
        let latest = record.latest.as_ref()?;
        Some((latest.id, latest.cpu_count))
    }

    /// The VMs of a host that keep an extended sample, by UUID.
    pub(crate) fn stats_baselines(&self, uri: &str) -> Vec<Uuid> {
        let host = &self.hosts[uri];
        let mut uuids: Vec<_> = host
            .vms
            .iter()
            .filter_map(|r| Some(r.stats.as_ref()?.uuid))
            .collect();
        uuids.sort();
        uuids
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
        let sample = HostSample {
            uri: uri.into(),
            host: host.into(),
            domains,
            node: None,
        };
        let changes = table.record(sample, None);
        changes.vms.filter(|vm| vm.features.is_some()).count()
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

    fn page<'t>(table: &'t VmTable, query: &PageQuery) -> page::Page<'t> {
        table.page(&table.catalog(0, 0), query)
    }

    fn uuids(page: page::Page) -> Vec<String> {
        page.rows
            .iter()
            .map(|r| r.latest.uuid.to_string())
            .collect()
    }

    #[test]
    fn lists_sorted_and_filtered() {
        let table = table();
        let all = page(&table, &PageQuery::default());
        assert_eq!(all.count, 3);
        assert_eq!(uuids(all), ["b", "a", "c"].map(|hex| uuid(hex).to_string()));
        let query = |filter| PageQuery {
            filter,
            ..PageQuery::default()
        };
        let named = query(VmFilter {
            name: Some("we".into()),
            ..VmFilter::default()
        });
        assert_eq!(page(&table, &named).count, 2);
        let stopped = query(VmFilter {
            host: Some("h1".into()),
            state: Some("stopped".into()),
            ..VmFilter::default()
        });
        let stopped = page(&table, &stopped);
        assert_eq!(stopped.count, 1);
        assert_eq!(stopped.rows[0].view().vmid, "-");
    }

    #[test]
    fn the_whole_list_plain_is_handed_out_as_views_and_pages_are_serialised_once() {
        let table = table();
        let catalog = table.catalog(0, 0);
        let whole = PageQuery::default();
        let Answer::Views(views) = table.answer(&catalog, &whole, Encoding::Identity) else {
            panic!("the whole list plain is serialised by the caller");
        };
        let expected = serde_json::to_vec(&page(&table, &whole)).unwrap();
        assert_eq!(serde_json::to_vec(&views).unwrap(), expected);
        assert!(catalog.cached(&whole, Encoding::Identity).is_none());
        let first = PageQuery {
            limit: Some(2),
            ..PageQuery::default()
        };
        for (encoding, source) in [
            (Encoding::Gzip, Body::Serialised),
            (Encoding::Gzip, Body::Reused),
        ] {
            let Answer::Body(_, answered) = table.answer(&catalog, &whole, encoding) else {
                panic!("a gzipped answer is serialised by the actor");
            };
            assert_eq!(answered, source);
        }
        let Answer::Body(body, Body::Serialised) =
            table.answer(&catalog, &first, Encoding::Identity)
        else {
            panic!("a page is serialised by the actor");
        };
        assert_eq!(catalog.cached(&first, Encoding::Identity), Some(body));
    }

    #[test]
    fn sorts_with_missing_values_last_and_pages_without_overlap() {
        let mut table = table();
        // a gets features (a second sample, 5 kB more over 1 s), b and c have none.
        cycle(
            &mut table,
            "u1",
            "h1",
            vec![
                vm("a", "web", Some(1), 1_000_000_000, 15),
                vm("b", "db", None, 0, 10),
            ],
        );
        let catalog = table.catalog(0, 0);
        let sorted = |name, order, offset, limit| {
            let query = PageQuery {
                sort: Some((SortColumn::named(name).unwrap(), order)),
                offset,
                limit,
                ..PageQuery::default()
            };
            uuids(table.page(&catalog, &query))
        };
        let id = |hex| uuid(hex).to_string();
        assert_eq!(
            sorted("name", Order::Desc, 0, None),
            [id("a"), id("c"), id("b")]
        );
        assert_eq!(
            sorted("memory_used_kb", Order::Desc, 0, None),
            [id("a"), id("b"), id("c")]
        );
        for order in [Order::Asc, Order::Desc] {
            // Only a has a rate: it comes first, the others in the default order.
            let by_rate = sorted("memory_rate_kb_per_sec", order, 0, None);
            assert_eq!(by_rate, [id("a"), id("b"), id("c")]);
            let pages: Vec<_> = (0..3)
                .flat_map(|o| sorted("vmid", order, o, Some(1)))
                .collect();
            assert_eq!(pages, sorted("vmid", order, 0, None));
        }
        assert!(sorted("name", Order::Asc, 5, Some(2)).is_empty());
        assert_eq!(SortColumn::named("colour"), None);
    }

    fn counters(
        measurement: &'static str,
        device: Option<&str>,
        counter: &'static str,
        value: u64,
    ) -> crate::extended::StatsRow {
        crate::extended::StatsRow {
            measurement,
            key: device.map(|d| ("device", d.into())),
            source: None,
            counters: vec![(counter, value)],
        }
    }

    /// A cycle of VM `a` at `t` s, its seed's CPU time at half a vCPU, and its extended `rows`.
    fn stats_cycle(table: &mut VmTable, t: i64, rows: Vec<crate::extended::StatsRow>) {
        let sample = HostSample {
            uri: "u".into(),
            host: "h".into(),
            domains: vec![DomainSample {
                cputime_ns: t as u64 * 500_000_000,
                ..vm("a", "x", Some(1), t * 1_000_000_000, 10)
            }],
            node: None,
        };
        let stats = StatsSample {
            uri: "u".into(),
            host: "h".into(),
            domains: vec![crate::extended::DomainStatsSample {
                derived: Vec::new(),
                carried: Vec::new(),
                uuid: uuid("a"),
                name: "x".into(),
                timestamp_ns: t * 1_000_000_000,
                vcpus: None,
                rows,
            }],
        };
        let _ = table.record(sample, Some(stats));
    }

    fn first_view(table: &VmTable) -> VmView {
        page(table, &PageQuery::default()).rows[0].view()
    }

    #[test]
    fn extended_rates_are_summed_over_devices_and_fleet_totals_add_up() {
        use crate::extended::{VM_CPU, VM_DISK};
        // The seed's CPU time runs at half a vCPU; `cpu_total`'s, when read, at a quarter.
        for (cpu_total, cpu_percent) in [(false, 50.0), (true, 25.0)] {
            let mut table = VmTable::new(3);
            for (t, bytes) in [(0, 100), (2, 300)] {
                let mut rows = vec![
                    counters(VM_DISK, Some("vda"), "read_bytes", bytes),
                    counters(VM_DISK, Some("vdb"), "read_bytes", bytes),
                ];
                if cpu_total {
                    rows.push(counters(
                        VM_CPU,
                        None,
                        "cpu_time_ns",
                        t as u64 * 250_000_000,
                    ));
                }
                stats_cycle(&mut table, t, rows);
            }
            let view = first_view(&table);
            // (300 - 100) / 2 s on each of two disks.
            assert_eq!(view.disk_read_bytes_per_sec, Some(200.0));
            assert_eq!(view.net_rx_bytes_per_sec, None);
            assert_eq!(view.cpu_usage_percent, Some(cpu_percent));
            let catalog = table.catalog(0, 0);
            assert_eq!(catalog.fleet.vms, 1);
            assert_eq!(catalog.fleet.by_state["running"], 1);
            assert_eq!(
                (catalog.fleet.vcpus, catalog.fleet.memory_max_kb),
                (1, 4096)
            );
        }
    }

    #[test]
    fn a_group_at_its_own_cadence_keeps_its_last_rates_between_reads() {
        use crate::extended::{VM_DISK, VM_NET};
        let mut table = VmTable::new(3);
        let disk = |bytes| counters(VM_DISK, Some("vda"), "read_bytes", bytes);
        let net = |bytes| counters(VM_NET, None, "rx_bytes", bytes);
        stats_cycle(&mut table, 0, vec![disk(0), net(0)]);
        stats_cycle(&mut table, 2, vec![disk(200), net(1000)]);
        // Only the disks read at 3 s and 4 s: the network's rate stays its last, 500 B/s.
        for (t, bytes) in [(3, 500), (4, 600)] {
            stats_cycle(&mut table, t, vec![disk(bytes)]);
            let view = first_view(&table);
            assert_eq!(view.net_rx_bytes_per_sec, Some(500.0), "at {t} s");
        }
        assert_eq!(first_view(&table).disk_read_bytes_per_sec, Some(100.0));
        // Read again: (4000 - 1000) B over the 4 s since its last read.
        stats_cycle(&mut table, 6, vec![net(4000)]);
        let view = first_view(&table);
        assert_eq!(view.net_rx_bytes_per_sec, Some(750.0));
        assert_eq!(view.disk_read_bytes_per_sec, Some(100.0));
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

    fn stats(uri: &str, hexes: &[&str]) -> StatsSample {
        use crate::extended::{DomainStatsSample, StatsRow};
        let domains = hexes
            .iter()
            .map(|hex| DomainStatsSample {
                derived: Vec::new(),
                carried: Vec::new(),
                uuid: uuid(hex),
                name: format!("vm-{hex}"),
                timestamp_ns: 0,
                vcpus: None,
                rows: vec![StatsRow {
                    measurement: "vm_disk",
                    key: Some(("device", "vda".into())),
                    source: None,
                    counters: vec![("read_bytes", 1)],
                }],
            })
            .collect();
        StatsSample {
            uri: uri.into(),
            host: "h".into(),
            domains,
        }
    }

    #[test]
    fn extended_samples_are_kept_by_their_vm_and_forgotten_with_the_baselines() {
        let mut table = VmTable::new(3);
        let sample = HostSample {
            uri: "u".into(),
            host: "h".into(),
            domains: vec![vm("a", "x", Some(1), 0, 10)],
            node: None,
        };
        // VM b's seed fields were not read: it keeps its extended sample, but is not listed.
        let changes = table.record(sample, Some(stats("u", &["a", "b"])));
        let tagged: Vec<_> = changes.stats.unwrap().map(|s| s.current.uuid).collect();
        assert_eq!(tagged, [uuid("a")]);
        assert_eq!(table.stats_baselines("u"), [uuid("a"), uuid("b")]);
        assert_eq!(table.len(), 1);
        assert!(matches!(table.lookup("vm-b", None), VmLookup::NotFound));
        table.forget_baselines();
        assert!(table.stats_baselines("u").is_empty());
        assert_eq!(table.len(), 1);
        // A cycle without b forgets it; a's baseline went with the others.
        cycle(&mut table, "u", "h", vec![vm("a", "x", Some(1), 1, 10)]);
        assert!(table.stats_baselines("u").is_empty());
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
                let changes = table.record(
                    HostSample { uri: "u".into(), host: "h".into(), domains: vec![sample.clone()], node: None },
                    None,
                );
                let derived = changes.vms.map(|vm| vm.features).next().flatten();
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
