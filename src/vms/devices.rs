//! A VM's disks and interfaces as its latest extended sample read them: each device's counters
//! and the rates derived from them, for the VM's page.

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::ToSchema;

use crate::extended::{DomainStatsSample, SIZE_FIELDS, VM_DISK, VM_NET};

/// One disk (`device`) or interface (`interface`) of a VM.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeviceView {
    /// libvirt's name for it: `vda`, `vnet3`.
    pub name: String,
    /// The `vm_disk` or `vm_net` counters, as libvirt gave them; a disk's sizes as last read
    /// (they have a cadence of their own).
    pub counters: BTreeMap<&'static str, u64>,
    /// The rates derived from the sample before (none on the VM's first extended sample).
    pub rates: BTreeMap<&'static str, f64>,
}

/// The devices of `measurement` in `stats`, in libvirt's order; none without the stats groups.
pub fn devices(stats: Option<&DomainStatsSample>, measurement: &str) -> Vec<DeviceView> {
    let Some(stats) = stats else {
        return Vec::new();
    };
    let derived = stats
        .derived
        .iter()
        .map(Some)
        .chain(std::iter::repeat(None));
    stats
        .rows
        .iter()
        .zip(derived)
        .filter(|(row, _)| row.measurement == measurement)
        .filter_map(|(row, derived)| {
            let (_, name) = row.key.as_ref()?;
            let mut counters: BTreeMap<_, _> = row.counters.iter().copied().collect();
            if row.measurement == VM_DISK {
                for field in SIZE_FIELDS {
                    if let Some(size) = stats.disk_size(&row.key, field) {
                        counters.entry(field).or_insert(size);
                    }
                }
            }
            Some(DeviceView {
                name: name.clone(),
                counters,
                rates: derived.into_iter().flatten().copied().collect(),
            })
        })
        .collect()
}

pub fn disks(stats: Option<&DomainStatsSample>) -> Vec<DeviceView> {
    devices(stats, VM_DISK)
}

pub fn interfaces(stats: Option<&DomainStatsSample>) -> Vec<DeviceView> {
    devices(stats, VM_NET)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extended::{StatsRow, VM_CPU};

    #[test]
    fn each_keyed_row_is_a_device_with_its_counters_and_rates() {
        let row = |measurement, key: Option<(&'static str, &str)>, n| StatsRow {
            measurement,
            key: key.map(|(tag, name)| (tag, name.to_owned())),
            source: None,
            counters: vec![("read_bytes", n)],
        };
        let stats = DomainStatsSample {
            uuid: uuid::Uuid::nil(),
            name: "vm".into(),
            timestamp_ns: 1,
            vcpus: None,
            rows: vec![
                row(VM_CPU, None, 1),
                row(VM_DISK, Some(("device", "vda")), 10),
                row(VM_DISK, Some(("device", "vdb")), 20),
            ],
            // The first sample derives nothing; this one only for vda.
            derived: vec![vec![], vec![("read_bytes_per_sec", 5.0)]],
            carried: Vec::new(),
        };
        let disks = disks(Some(&stats));
        assert_eq!(disks.len(), 2);
        assert_eq!(
            (disks[0].name.as_str(), disks[0].counters["read_bytes"]),
            ("vda", 10)
        );
        assert_eq!(disks[0].rates["read_bytes_per_sec"], 5.0);
        assert!(disks[1].rates.is_empty());
        assert!(interfaces(Some(&stats)).is_empty());
        assert!(interfaces(None).is_empty());
    }
}
