//! What a list request asks of the catalog: filters, a sort column and order, and a page. Every
//! column of `VmView` but the CPU trend sorts; a VM without a value in it comes last in either order, and VMs
//! with equal values keep the default order (host, name, UUID), so pages never overlap.

use std::cmp::Ordering;

use serde::Serialize;
use serde::ser::{SerializeStruct, Serializer};
use utoipa::ToSchema;
use uuid::Uuid;

use super::VmView;
use super::row::VmRow;
use crate::sample::DomainSample;

/// Filters of the VM list; `name` matches a substring.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct VmFilter {
    pub host: Option<String>,
    pub state: Option<String>,
    pub name: Option<String>,
}

impl VmFilter {
    pub fn is_empty(&self) -> bool {
        self.host.is_none() && self.state.is_none() && self.name.is_none()
    }

    /// Whether the VM `latest` of host `host` matches.
    pub fn matches(&self, host: &str, latest: &DomainSample) -> bool {
        self.host.as_deref().is_none_or(|h| h == host)
            && self
                .state
                .as_deref()
                .is_none_or(|s| s == latest.state.as_str())
            && self.name.as_deref().is_none_or(|n| latest.name.contains(n))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Order {
    Asc,
    Desc,
}

/// A column's value in one row, compared only with the same column's.
#[derive(PartialEq, PartialOrd)]
enum Key<'a> {
    Text(&'a str),
    Int(i128),
    Float(f64),
    Uuid(Uuid),
}

type KeyOf = for<'r, 'a> fn(&'r VmRow<'a>) -> Option<Key<'a>>;

fn int(value: impl Into<i128>) -> Option<Key<'static>> {
    Some(Key::Int(value.into()))
}

/// Every sortable column, named as the field of `VmView`.
const COLUMNS: [(&str, KeyOf); 18] = [
    ("host", |r| Some(Key::Text(r.host))),
    ("uri", |r| Some(Key::Text(r.uri))),
    ("vmid", |r| r.latest.id.and_then(int)),
    ("name", |r| Some(Key::Text(&r.latest.name))),
    ("uuid", |r| Some(Key::Uuid(r.latest.uuid))),
    ("state", |r| Some(Key::Text(r.latest.state.as_str()))),
    ("cpu_count", |r| int(r.latest.cpu_count)),
    ("memory_max_kb", |r| int(r.latest.memory_max_kb)),
    ("memory_used_kb", |r| int(r.latest.memory_used_kb)),
    ("cputime_ns", |r| int(r.latest.cputime_ns)),
    ("timestamp", |r| int(r.latest.timestamp_ns)),
    ("memory_rate_kb_per_sec", |r| {
        r.features.map(|f| Key::Float(f.memory_rate_kb_per_sec))
    }),
    ("memory_angle_deg", |r| {
        r.features.map(|f| Key::Float(f.memory_angle_deg))
    }),
    ("cpu_usage_percent", |r| {
        r.rates.cpu_usage_percent.map(Key::Float)
    }),
    ("disk_read_bytes_per_sec", |r| {
        r.rates.disk_read_bytes_per_sec.map(Key::Float)
    }),
    ("disk_write_bytes_per_sec", |r| {
        r.rates.disk_write_bytes_per_sec.map(Key::Float)
    }),
    ("net_rx_bytes_per_sec", |r| {
        r.rates.net_rx_bytes_per_sec.map(Key::Float)
    }),
    ("net_tx_bytes_per_sec", |r| {
        r.rates.net_tx_bytes_per_sec.map(Key::Float)
    }),
];

/// One of `COLUMNS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SortColumn(usize);

impl SortColumn {
    /// The list's own order (host, name, UUID) is by host first.
    pub const HOST: SortColumn = SortColumn(0);
    pub const COUNT: usize = COLUMNS.len();

    pub fn named(name: &str) -> Option<Self> {
        COLUMNS.iter().position(|(n, _)| *n == name).map(SortColumn)
    }

    pub fn names() -> impl Iterator<Item = &'static str> {
        COLUMNS.iter().map(|(name, _)| *name)
    }

    /// Where its order is cached in a catalog, one slot per column and order.
    pub(super) fn slot(self, order: Order) -> usize {
        self.0 * 2 + usize::from(order == Order::Desc)
    }

    /// Indices of `rows` (in the default order) sorted by this column in `order`.
    pub(super) fn sorted<'a>(
        self,
        rows: impl ExactSizeIterator<Item = VmRow<'a>>,
        order: Order,
    ) -> Box<[u32]> {
        let key = COLUMNS[self.0].1;
        let mut indices: Vec<u32> = (0..rows.len() as u32).collect();
        let keys: Vec<_> = rows.map(|row| key(&row)).collect();
        indices.sort_unstable_by(|&a, &b| {
            let by_key = match (&keys[a as usize], &keys[b as usize]) {
                (Some(x), Some(y)) if order == Order::Asc => compare(x, y),
                (Some(x), Some(y)) => compare(y, x),
                (x, y) => x.is_none().cmp(&y.is_none()),
            };
            by_key.then(a.cmp(&b))
        });
        indices.into()
    }
}

fn compare(a: &Key, b: &Key) -> Ordering {
    match (a, b) {
        (Key::Float(x), Key::Float(y)) => x.total_cmp(y),
        _ => a.partial_cmp(b).unwrap_or(Ordering::Equal),
    }
}

/// A checked list request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct PageQuery {
    pub filter: VmFilter,
    /// None: the default order.
    pub sort: Option<(SortColumn, Order)>,
    pub offset: usize,
    /// None: every VM from `offset` on.
    pub limit: Option<usize>,
}

/// One page of the list, and how many VMs match in all.
pub struct Page<'a> {
    pub rows: Vec<VmRow<'a>>,
    pub count: usize,
}

/// A page as the API shows it, its views made: `Page` serialises the same, making each view as
/// it is written.
#[derive(Serialize, ToSchema)]
pub struct VmList {
    pub vms: Vec<VmView>,
    /// Every VM matching the filters, whatever the page.
    pub count: usize,
}

impl Page<'_> {
    pub fn views(&self) -> VmList {
        VmList {
            vms: self.rows.iter().map(VmRow::view).collect(),
            count: self.count,
        }
    }
}

/// `{"vms": [VmView…], "count": n}`, each view made as it is written.
impl Serialize for Page<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        struct Views<'r, 'a>(&'r [VmRow<'a>]);
        impl Serialize for Views<'_, '_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_seq(self.0.iter().map(|row| row.view()))
            }
        }
        let mut page = serializer.serialize_struct("VmList", 2)?;
        page.serialize_field("vms", &Views(&self.rows))?;
        page.serialize_field("count", &self.count)?;
        page.end()
    }
}
