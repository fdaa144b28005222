//! What one host's cycle changed in the VM table, as the encoder takes it: the host's own
//! sample, each VM's sample with the features derived for it, and each extended sample with the
//! one before it. The samples are lent by the table, not copied.

use std::hash::RandomState;
use std::sync::Arc;
use std::vec;

use uuid::Uuid;

use super::host::{HostVms, RecordedStats, VmRecord};
use crate::extended::DomainStatsSample;
use crate::sample::{DomainSample, MemoryFeatures, NodeSample};

pub struct Changes<'a> {
    /// The `host` tag.
    pub host: &'a str,
    /// The host itself, when the cycle read it.
    pub node: Option<NodeSample>,
    /// Every VM of the cycle, in its order.
    pub vms: VmChanges<'a>,
    /// The extended samples, when the cycle carried them.
    pub stats: Option<StatsChanges<'a>>,
}

/// One VM of the cycle.
pub struct VmChange<'a> {
    pub sample: &'a DomainSample,
    /// None for a VM's first sample, and after the feature actor restarted.
    pub features: Option<MemoryFeatures>,
}

/// One VM's extended sample, and what its lines are tagged and derived with.
pub struct StatsChange<'a> {
    /// libvirt's id, from the VM's seed sample of this cycle.
    pub id: Option<u32>,
    /// With its rates, derived from the VM's extended sample before.
    pub current: &'a DomainStatsSample,
}

/// The VMs of the cycle, each looked up in the table as it comes.
pub struct VmChanges<'a> {
    table: Table<'a>,
    listed: vec::IntoIter<(Uuid, Option<MemoryFeatures>)>,
}

/// The extended samples of the VMs with a seed sample, each looked up as it comes.
pub struct StatsChanges<'a> {
    /// The `host` tag of the extended lines.
    pub host: Arc<str>,
    /// The rows of every extended sample of the cycle.
    pub rows: usize,
    table: Table<'a>,
    changed: vec::IntoIter<Uuid>,
}

#[derive(Clone, Copy)]
struct Table<'a> {
    vms: &'a HostVms,
    hasher: &'a RandomState,
}

impl<'a> Table<'a> {
    fn find(self, uuid: &Uuid) -> Option<&'a VmRecord> {
        self.vms.find(self.hasher, uuid)
    }
}

impl<'a> Changes<'a> {
    pub(super) fn new(
        vms: &'a HostVms,
        hasher: &'a RandomState,
        node: Option<NodeSample>,
        listed: Vec<(Uuid, Option<MemoryFeatures>)>,
        stats: Option<RecordedStats>,
    ) -> Self {
        let table = Table { vms, hasher };
        Changes {
            host: &vms.host,
            node,
            vms: VmChanges {
                table,
                listed: listed.into_iter(),
            },
            stats: stats.map(|stats| StatsChanges {
                host: stats.host,
                rows: stats.rows,
                table,
                changed: stats.changed.into_iter(),
            }),
        }
    }
}

impl<'a> Iterator for VmChanges<'a> {
    type Item = VmChange<'a>;

    fn next(&mut self) -> Option<VmChange<'a>> {
        let table = self.table;
        self.listed.find_map(|(uuid, features)| {
            let sample = table.find(&uuid)?.latest.as_ref()?;
            Some(VmChange { sample, features })
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.listed.size_hint()
    }
}

/// Every VM listed was just recorded: each is found.
impl ExactSizeIterator for VmChanges<'_> {}

impl<'a> Iterator for StatsChanges<'a> {
    type Item = StatsChange<'a>;

    fn next(&mut self) -> Option<StatsChange<'a>> {
        let table = self.table;
        self.changed.find_map(|uuid| {
            let record = table.find(&uuid)?;
            let latest = record.latest.as_ref()?;
            Some(StatsChange {
                id: latest.id,
                current: record.stats.as_deref()?,
            })
        })
    }
}
