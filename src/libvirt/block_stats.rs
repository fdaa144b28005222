//! A running domain's block counters disk by disk (`virDomainBlockStatsFlags`, which `virt` 0.5
//! does not wrap: its `block_stats` gives no times). QEMU is sent two monitor commands per disk
//! where the bulk block group sends three, and its CPU follows what it is sent; the sizes, which
//! only the third gives, come at their own cadence through the bulk call.
//!
//! Unlike the bulk call, this one waits for the domain's job lock (there is no NOWAIT): a domain
//! whose call is still outstanding is not asked again until it returns, so a stuck guest holds
//! one request at most and costs only its own rows.

use std::collections::{HashMap, HashSet};
use std::ffi::{CString, c_int};
use std::sync::{Arc, Mutex, PoisonError};

use uuid::Uuid;
use virt::domain::Domain;
use virt::error::Error;
use virt::sys;

use super::LibvirtError;
use super::bulk_stats::{DomainStats, StatValue, decode_param};
use super::heartbeat::Heartbeat;

const CALL: &str = "virDomainBlockStatsFlags";
/// libvirt's remote protocol sends at most this many (`REMOTE_DOMAIN_BLOCK_STATS_PARAMETERS_MAX`);
/// QEMU gives 8.
const MAX_PARAMS: usize = 16;
/// `virDomainBlockStatsFlags`' names, and the bulk group's for the same counters.
const NAMES: [(&str, &str); 7] = [
    ("rd_bytes", "rd.bytes"),
    ("rd_operations", "rd.reqs"),
    ("rd_total_times", "rd.times"),
    ("wr_bytes", "wr.bytes"),
    ("wr_operations", "wr.reqs"),
    ("wr_total_times", "wr.times"),
    ("errs", "errs"),
];

/// A disk as the bulk block group lists it: its target, and its source (`block.N.path`).
#[derive(Debug, Clone, PartialEq)]
pub struct Disk {
    pub name: String,
    pub path: Option<String>,
}

/// The domains whose disk-by-disk call has not returned yet: shared with the threads making them.
pub type Outstanding = Arc<Mutex<HashSet<Uuid>>>;

/// Each domain's disks as the last bulk read of its block group listed them, and the domains
/// whose call is outstanding.
#[derive(Default)]
pub struct DiskBook {
    disks: HashMap<Uuid, Arc<[Disk]>>,
    outstanding: Outstanding,
}

/// How a cycle reads the block group of its domains.
#[derive(Default)]
pub struct Plan {
    /// Running, with their disks known: disk by disk.
    pub per_disk: Vec<(Domain, Arc<[Disk]>)>,
    /// Disks not known (new, just started, one unplugged), or not running: the bulk group.
    pub bulk: Vec<Domain>,
    /// A call of theirs is still outstanding: no block group this cycle.
    pub waiting: Vec<Domain>,
}

impl DiskBook {
    /// Sorts `domains` (the cycle's list) by how their block group is read, and forgets the
    /// disks of domains no longer listed.
    pub fn plan(&mut self, domains: Vec<Domain>) -> Plan {
        let outstanding = self
            .outstanding
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut plan = Plan::default();
        let mut listed = HashSet::with_capacity(domains.len());
        for domain in domains {
            let Ok(uuid) = domain.uuid() else {
                plan.bulk.push(domain);
                continue;
            };
            listed.insert(uuid);
            if outstanding.contains(&uuid) {
                plan.waiting.push(domain);
                continue;
            }
            match self.disks.get(&uuid) {
                Some(disks) if domain.id().is_some() => {
                    plan.per_disk.push((domain, Arc::clone(disks)))
                }
                _ => plan.bulk.push(domain),
            }
        }
        drop(outstanding);
        self.disks.retain(|uuid, _| listed.contains(uuid));
        plan
    }

    /// The disks of each record that lists its block group's.
    pub fn learn<'a>(&mut self, stats: impl IntoIterator<Item = &'a DomainStats>) {
        for record in stats {
            if let (Some(uuid), Some(disks)) = (record.uuid, disks_of(record)) {
                self.disks.insert(uuid, disks.into());
            }
        }
    }

    pub fn outstanding(&self) -> Outstanding {
        Arc::clone(&self.outstanding)
    }
}

/// The disks a record's block group lists, each once (with backing chains a disk repeats: its
/// top image comes first); none without a block group.
fn disks_of(record: &DomainStats) -> Option<Vec<Disk>> {
    let count = record.get_u64("block.count")?;
    let mut disks: Vec<Disk> = Vec::new();
    for n in 0..count.min(4096) {
        let Some(name) = record.get_str(&format!("block.{n}.name")) else {
            continue;
        };
        if !name.is_empty() && disks.iter().all(|d| d.name != name) {
            let path = record.get_str(&format!("block.{n}.path"));
            disks.push(Disk {
                name: name.to_owned(),
                path: path.map(str::to_owned),
            });
        }
    }
    Some(disks)
}

/// `domain`'s counters on `disks`, as a record of the bulk block group's keys (`block.N.…`)
/// without the sizes. Marked outstanding while its calls run.
pub fn read_domain(
    domain: &Domain,
    disks: &[Disk],
    heartbeat: &Heartbeat,
    outstanding: &Outstanding,
) -> Result<DomainStats, LibvirtError> {
    let uuid = domain.uuid().map_err(|e| LibvirtError::call(CALL, e))?;
    let name = domain.name().map_err(|e| LibvirtError::call(CALL, e))?;
    let read = {
        let _mark = Mark::new(outstanding, uuid);
        read_disks(domain, disks, heartbeat)
    };
    Ok(DomainStats {
        uuid: Some(uuid),
        name,
        params: read?,
        skipped: 0,
    })
}

/// A domain marked outstanding until this drops, however its calls end.
struct Mark<'a>(&'a Outstanding, Uuid);

impl<'a> Mark<'a> {
    fn new(outstanding: &'a Outstanding, uuid: Uuid) -> Self {
        let mut set = outstanding.lock().unwrap_or_else(PoisonError::into_inner);
        set.insert(uuid);
        Mark(outstanding, uuid)
    }
}

impl Drop for Mark<'_> {
    fn drop(&mut self) {
        let mut set = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        set.remove(&self.1);
    }
}

fn read_disks(
    domain: &Domain,
    disks: &[Disk],
    heartbeat: &Heartbeat,
) -> Result<Vec<(String, StatValue)>, LibvirtError> {
    let mut params = vec![(
        "block.count".to_owned(),
        StatValue::ULLong(disks.len() as u64),
    )];
    for (n, disk) in disks.iter().enumerate() {
        let counters = heartbeat
            .call(|| block_stats_flags(domain, &disk.name))
            .map_err(|e| LibvirtError::call(CALL, e))?;
        let key = |field: &str| format!("block.{n}.{field}");
        params.push((key("name"), StatValue::String(disk.name.clone())));
        if let Some(path) = &disk.path {
            params.push((key("path"), StatValue::String(path.clone())));
        }
        for (field, value) in counters {
            if let Some((_, bulk)) = NAMES.iter().find(|(name, _)| *name == field) {
                params.push((key(bulk), value));
            }
        }
    }
    Ok(params)
}

/// One disk's counters, by its target name, as libvirt names them.
fn block_stats_flags(domain: &Domain, disk: &str) -> Result<Vec<(String, StatValue)>, Error> {
    let Ok(disk) = CString::new(disk) else {
        return Ok(Vec::new()); // a name libvirt gave has no NUL; none to ask for otherwise
    };
    // SAFETY: plain-data parameters that libvirt fills in; all-zero is a valid value for them.
    let mut params: [sys::virTypedParameter; MAX_PARAMS] = unsafe { std::mem::zeroed() };
    let mut count = MAX_PARAMS as c_int;
    // SAFETY: the domain and the disk's name are borrowed for the call; `params` has room for
    // `count` parameters, which libvirt fills and then sets `count` to how many it did.
    let result = unsafe {
        sys::virDomainBlockStatsFlags(
            domain.as_ptr(),
            disk.as_ptr(),
            params.as_mut_ptr(),
            &mut count,
            0,
        )
    };
    if result < 0 {
        // libvirt's error is per thread and set by the call that just failed.
        return Err(Error::last_error());
    }
    let filled = usize::try_from(count).unwrap_or(0).min(MAX_PARAMS);
    // SAFETY: the first `filled` parameters are libvirt's, any string among them its own.
    let decoded = params[..filled]
        .iter()
        .filter_map(|p| unsafe { decode_param(p) })
        .collect();
    // SAFETY: frees the strings libvirt may have allocated in them (none are kept: copied).
    unsafe { sys::virTypedParamsClear(params.as_mut_ptr(), filled as c_int) };
    Ok(decoded)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(params: &[(&str, StatValue)]) -> DomainStats {
        DomainStats::of(7, params)
    }

    #[test]
    fn a_records_disks_are_its_block_groups_each_once() {
        use StatValue::*;
        let listed = record(&[
            ("block.count", UInt(3)),
            ("block.0.name", String("vda".into())),
            ("block.0.path", String("/a.img".into())),
            ("block.1.name", String("vda".into())),
            ("block.1.path", String("/base.img".into())),
            ("block.2.name", String("sda".into())),
        ]);
        let disks = disks_of(&listed).unwrap();
        let names: Vec<(&str, Option<&str>)> = disks
            .iter()
            .map(|d| (d.name.as_str(), d.path.as_deref()))
            .collect();
        assert_eq!(names, [("vda", Some("/a.img")), ("sda", None)]);
        assert_eq!(disks_of(&record(&[("block.count", UInt(0))])), Some(vec![]));
        assert_eq!(disks_of(&record(&[("net.count", UInt(1))])), None);
    }

    #[test]
    fn a_domain_with_its_disks_known_is_read_disk_by_disk_and_marked_while_it_is() {
        virt::error::clear_error_callback();
        let conn = virt::connect::Connect::open(Some("test:///default")).unwrap();
        let domain = conn.list_all_domains(0).unwrap().remove(0);
        let mut book = DiskBook::default();
        let plan = book.plan(vec![domain.clone()]);
        assert_eq!(
            plan.bulk.len(),
            1,
            "its disks not known yet: the bulk group"
        );
        // The test driver's bulk call gives no block group: its disk, as a guest's would list.
        let listed = DomainStats {
            uuid: Some(domain.uuid().unwrap()),
            ..record(&[
                ("block.count", StatValue::UInt(1)),
                ("block.0.name", StatValue::String("vda".into())),
            ])
        };
        book.learn(&[listed]);
        let plan = book.plan(vec![domain]);
        assert!(plan.bulk.is_empty() && plan.waiting.is_empty());
        let (domain, disks) = &plan.per_disk[0];
        assert_eq!(disks[0].name, "vda", "{disks:?}");
        // The test driver has no virDomainBlockStatsFlags (real guests' are read in
        // tests/api/disk_cadence.rs): the call fails, says which, and leaves no mark.
        let heartbeat = Heartbeat::default();
        let outstanding = book.outstanding();
        let error = read_domain(domain, disks, &heartbeat, &outstanding).unwrap_err();
        assert!(error.to_string().contains(CALL), "{error}");
        assert_eq!(heartbeat.beats(), 1);
        assert!(outstanding.lock().unwrap().is_empty());
        // A domain marked is not asked until its mark goes.
        outstanding.lock().unwrap().insert(domain.uuid().unwrap());
        let plan = book.plan(vec![domain.clone()]);
        assert_eq!((plan.waiting.len(), plan.per_disk.len()), (1, 0));
        // Not listed any more: forgotten.
        book.plan(Vec::new());
        assert!(book.disks.is_empty());
    }
}
