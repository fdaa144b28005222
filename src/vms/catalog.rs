//! The VM list as the API serves it: copied out of the table once per cycle (the first request
//! after a cycle asks the feature actor for it), then read by every request of that cycle on
//! the HTTP workers: pages, sort orders (each sorted once, when first asked for), answers (each
//! serialised once, and gzipped once), and the fleet's totals for the summary.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use serde::Serialize;
use utoipa::ToSchema;

use super::VmTable;
use super::page::{Order, Page, PageQuery, SortColumn};
use super::row::VmRow;

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
    rows: Box<[VmRow]>,
    pub fleet: Fleet,
    pub capacity: Capacity,
    /// Per column and order: indices into `rows`.
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
    pub fn catalog(&self, epoch: u64, generation: u64) -> Catalog {
        let mut rows: Vec<VmRow> = self.listed().map(|vm| vm.row()).collect();
        rows.sort_unstable_by(|a, b| {
            (&a.host, &a.latest.name, a.latest.uuid).cmp(&(&b.host, &b.latest.name, b.latest.uuid))
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
            fleet: Fleet::of(&rows),
            capacity,
            rows: rows.into(),
            orders: (0..SortColumn::COUNT * 2)
                .map(|_| OnceLock::new())
                .collect(),
            answers: Mutex::default(),
        }
    }
}

impl Fleet {
    fn of(rows: &[VmRow]) -> Self {
        let mut fleet = Fleet {
            vms: rows.len(),
            ..Fleet::default()
        };
        for row in rows {
            let latest = &row.latest;
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
    pub fn page(&self, query: &PageQuery) -> Page<'_> {
        let limit = query.limit.unwrap_or(usize::MAX);
        let ordered: Box<dyn Iterator<Item = &VmRow>> = match query.sort {
            None => Box::new(self.rows.iter()),
            Some((column, order)) => Box::new(
                self.order(column, order)
                    .iter()
                    .map(|&i| &self.rows[i as usize]),
            ),
        };
        if query.filter.is_empty() {
            let rows = ordered.skip(query.offset).take(limit).collect();
            return Page {
                rows,
                count: self.rows.len(),
            };
        }
        let mut page = Page {
            rows: Vec::new(),
            count: 0,
        };
        for row in ordered.filter(|row| query.filter.matches(row)) {
            if page.count >= query.offset && page.rows.len() < limit {
                page.rows.push(row);
            }
            page.count += 1;
        }
        page
    }

    fn order(&self, column: SortColumn, order: Order) -> &[u32] {
        self.orders[column.slot(order)].get_or_init(|| column.sorted(&self.rows, order))
    }

    /// The answer to `query` as JSON, gzipped or not: serialised once per generation for the
    /// first queries asked. Says whether this call serialised it.
    pub fn answer(&self, query: &PageQuery, encoding: Encoding) -> (Bytes, Body) {
        let key = (query.clone(), encoding);
        let cached = |answers: &HashMap<_, Bytes>| answers.get(&key).cloned();
        if let Some(answer) = cached(&self.answers.lock().unwrap_or_else(|e| e.into_inner())) {
            return (answer, Body::Reused);
        }
        // Writing to memory cannot fail, nor can serialising these types.
        let answer = Bytes::from(match encoding {
            Encoding::Identity => serde_json::to_vec(&self.page(query)).expect("JSON"),
            Encoding::Gzip => {
                let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
                serde_json::to_writer(&mut encoder, &self.page(query)).expect("JSON gzipped");
                encoder.finish().expect("gzip into memory")
            }
        });
        let mut answers = self.answers.lock().unwrap_or_else(|e| e.into_inner());
        let small = encoding == Encoding::Gzip || answer.len() <= KEPT_PLAIN_BYTES;
        if answers.len() < KEPT_ANSWERS && small {
            answers.insert(key, answer.clone());
        }
        (answer, Body::Serialised)
    }
}
