//! The VM list as the API serves it, per cycle: the first request after a cycle asks the feature
//! actor for the cycle's catalog, which holds the fleet's totals for the summary, the order of
//! the table's VMs (the default one, and each column's, sorted when first asked for) and the
//! answers (each serialised once, and gzipped once). The rows stay in the table, a page's
//! derived when it is serialised: the feature actor answers a query the catalog lacks, and
//! every later request of the cycle reads it on the HTTP workers.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use serde::Serialize;
use utoipa::ToSchema;

use super::page::{Page, PageQuery, SortColumn, VmList};
use super::{Listed, VmTable};
use crate::sample::DomainSample;

/// What the feature actor and the HTTP workers share: which cycle the table is at, and the
/// catalog last built.
pub struct Catalogs {
    /// Tells this process's generations from another's (a restart starts them over).
    pub epoch: u64,
    generation: AtomicU64,
    latest: RwLock<Option<Arc<Catalog>>>,
}

impl Default for Catalogs {
    fn default() -> Self {
        Catalogs {
            epoch: fastrand::u64(..),
            generation: AtomicU64::new(0),
            latest: RwLock::new(None),
        }
    }
}

impl Catalogs {
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The table changed: the catalog built before no longer shows it.
    pub fn advance(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// The catalog of the current generation, if built.
    pub fn current(&self) -> Option<Arc<Catalog>> {
        let latest = self.latest.read().unwrap_or_else(|e| e.into_inner());
        latest
            .as_ref()
            .filter(|c| c.generation == self.generation())
            .cloned()
    }

    pub fn publish(&self, catalog: Arc<Catalog>) {
        *self.latest.write().unwrap_or_else(|e| e.into_inner()) = Some(catalog);
    }
}

/// Every listed VM at one generation, in the default order (host, name, UUID).
pub struct Catalog {
    pub epoch: u64,
    pub generation: u64,
    /// Each VM's place in the table's listing at this generation, in the default order: a copy
    /// of the table's rows would hold 240 bytes a VM (benches/README.md).
    listing: Box<[u32]>,
    pub fleet: Fleet,
    pub capacity: Capacity,
    /// Per column and order: indices into `listing`.
    orders: Box<[OnceLock<Box<[u32]>>]>,
    /// The answers of the first `KEPT_ANSWERS` queries asked, plain and gzipped.
    answers: Mutex<HashMap<(PageQuery, Encoding), Bytes>>,
}

/// A page of 100 is about 50 KB plain and 5 KB gzipped, the whole list of 10,000 VMs 5.3 MB and
/// 300 KB (benches/README.md): the whole list is kept gzipped only.
const KEPT_ANSWERS: usize = 64;
const KEPT_PLAIN_BYTES: usize = 1 << 20;

/// Where an answer's body came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// Serialised for this request.
    Serialised,
    /// Serialised for an earlier request of the same generation.
    Reused,
}

/// The feature actor's answer to a query its catalog lacks.
pub enum Answer {
    Body(Bytes, Body),
    /// The whole list, plain, not serialised yet.
    Views(VmList),
}

/// How an answer is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    Identity,
    Gzip,
}

/// The VMs' totals.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, ToSchema)]
pub struct Fleet {
    pub vms: usize,
    /// VMs by state, for the states at least one VM is in.
    pub by_state: BTreeMap<String, usize>,
    /// vCPUs and maximum memory of every VM, allocated whatever its state.
    pub vcpus: u64,
    pub memory_max_kb: u64,
    pub memory_used_kb: u64,
}

/// The hosts' own CPUs and memory (`host_metrics`), summed over the hosts whose last cycle read
/// them (none without `host_metrics`); each figure none if no host's driver gave it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, ToSchema)]
pub struct Capacity {
    pub hosts_reporting: usize,
    pub cpus: Option<u64>,
    pub memory_total_kb: Option<u64>,
    pub memory_free_kb: Option<u64>,
}

fn add(sum: &mut Option<u64>, value: Option<u64>) {
    if let Some(value) = value {
        *sum = Some(sum.unwrap_or(0) + value);
    }
}

impl VmTable {
    /// The catalog of the table as it is, which `page` and `answer` then read with it until
    /// the table changes.
    pub fn catalog(&self, epoch: u64, generation: u64) -> Catalog {
        let listed: Vec<Listed> = self.listed().collect();
        let mut listing: Vec<u32> = (0..listed.len() as u32).collect();
        listing.sort_unstable_by_key(|&i| {
            let vm = &listed[i as usize];
            (vm.host, &vm.latest.name, vm.latest.uuid)
        });
        let mut capacity = Capacity::default();
        for node in self.hosts.values().filter_map(|host| host.node.as_ref()) {
            capacity.hosts_reporting += 1;
            add(&mut capacity.cpus, node.cpus.map(u64::from));
            add(&mut capacity.memory_total_kb, node.memory_total_kb);
            add(&mut capacity.memory_free_kb, node.memory_free_kb);
        }
        Catalog {
            epoch,
            generation,
            fleet: Fleet::of(listed.iter().map(|vm| vm.latest)),
            capacity,
            listing: listing.into(),
            orders: (0..SortColumn::COUNT * 2)
                .map(|_| OnceLock::new())
                .collect(),
            answers: Mutex::default(),
        }
    }

    /// The page `query` asks for, from `catalog`, which must be the table's as it is.
    pub fn page<'t>(&'t self, catalog: &Catalog, query: &PageQuery) -> Page<'t> {
        let listed: Vec<Listed> = self.listed().collect();
        let limit = query.limit.unwrap_or(usize::MAX);
        let ordered: Box<dyn Iterator<Item = &Listed>> = match query.sort {
            None => Box::new(catalog.listing.iter().map(|&i| &listed[i as usize])),
            Some((column, order)) => {
                let order = catalog.orders[column.slot(order)].get_or_init(|| {
                    let rows = catalog.listing.iter().map(|&i| listed[i as usize].row());
                    column.sorted(rows, order)
                });
                let vms = order.iter().map(|&i| catalog.listing[i as usize]);
                Box::new(vms.map(|i| &listed[i as usize]))
            }
        };
        if query.filter.is_empty() {
            let rows = ordered.skip(query.offset).take(limit).map(Listed::row);
            return Page {
                rows: rows.collect(),
                count: catalog.listing.len(),
            };
        }
        let mut page = Page {
            rows: Vec::new(),
            count: 0,
        };
        for vm in ordered.filter(|vm| query.filter.matches(vm.host, vm.latest)) {
            if page.count >= query.offset && page.rows.len() < limit {
                page.rows.push(vm.row());
            }
            page.count += 1;
        }
        page
    }

    /// The answer to `query` as JSON, gzipped or not, from `catalog`, which must be the
    /// table's as it is: serialised once per generation for the first queries asked. The whole
    /// list plain (megabytes at 10,000 VMs) is handed out as views instead, for the caller to
    /// serialise off the feature actor.
    pub fn answer(&self, catalog: &Catalog, query: &PageQuery, encoding: Encoding) -> Answer {
        if let Some(answer) = catalog.cached(query, encoding) {
            return Answer::Body(answer, Body::Reused);
        }
        let page = self.page(catalog, query);
        // Writing to memory cannot fail, nor can serialising these types.
        let answer = Bytes::from(match encoding {
            Encoding::Identity if query.limit.is_none() => return Answer::Views(page.views()),
            Encoding::Identity => serde_json::to_vec(&page).expect("JSON"),
            Encoding::Gzip => {
                let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
                serde_json::to_writer(&mut encoder, &page).expect("JSON gzipped");
                encoder.finish().expect("gzip into memory")
            }
        });
        catalog.keep(query, encoding, answer.clone());
        Answer::Body(answer, Body::Serialised)
    }
}

impl Fleet {
    fn of<'a>(vms: impl Iterator<Item = &'a DomainSample>) -> Self {
        let mut fleet = Fleet::default();
        for latest in vms {
            fleet.vms += 1;
            *fleet
                .by_state
                .entry(latest.state.as_str().to_owned())
                .or_default() += 1;
            fleet.vcpus += u64::from(latest.cpu_count);
            fleet.memory_max_kb += latest.memory_max_kb;
            fleet.memory_used_kb += latest.memory_used_kb;
        }
        fleet
    }
}

impl Catalog {
    /// The answer to `query` if an earlier request of this generation asked it.
    pub fn cached(&self, query: &PageQuery, encoding: Encoding) -> Option<Bytes> {
        let answers = self.answers.lock().unwrap_or_else(|e| e.into_inner());
        answers.get(&(query.clone(), encoding)).cloned()
    }

    /// Keeps `answer` for the generation's later requests, if among the first and small enough.
    pub fn keep(&self, query: &PageQuery, encoding: Encoding, answer: Bytes) {
        let mut answers = self.answers.lock().unwrap_or_else(|e| e.into_inner());
        let small = encoding == Encoding::Gzip || answer.len() <= KEPT_PLAIN_BYTES;
        if answers.len() < KEPT_ANSWERS && small {
            answers.insert((query.clone(), encoding), answer);
        }
    }
}
