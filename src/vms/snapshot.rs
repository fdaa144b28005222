//! Every VM's latest values, copied out of the table for `/metrics`: a scrape encodes them off
//! the feature actor, which is busy only for the copy. And one host's VMs lent to the insights'
//! readings.

use std::sync::Arc;

use super::VmTable;
use crate::extended::DomainStatsSample;
use crate::guest::GuestSample;
use crate::sample::{DomainSample, MemoryFeatures, NodeSample};

/// One VM as a scrape shows it.
#[derive(Debug, Clone)]
pub struct VmSnapshot {
    /// The host's configured URI, which ties the VM to its host's status.
    pub uri: Arc<str>,
    /// The `host` tag.
    pub host: Arc<str>,
    pub latest: DomainSample,
    pub features: Option<MemoryFeatures>,
    /// Its latest extended sample, with the rates derived for it.
    pub stats: Option<DomainStatsSample>,
    /// Its guest agent's answer in the host's last guest round (`guest` group).
    pub guest: Option<Arc<GuestSample>>,
}

/// A host as its last cycle that read it saw it (`host_metrics`).
#[derive(Debug, Clone)]
pub struct NodeSnapshot {
    /// The `host` tag.
    pub host: Arc<str>,
    pub node: NodeSample,
}

/// What a scrape shows of the table.
#[derive(Debug, Default)]
pub struct TableSnapshot {
    pub vms: Vec<VmSnapshot>,
    pub nodes: Vec<NodeSnapshot>,
}

impl VmTable {
    /// Every VM with a seed sample and every host read, in no particular order.
    pub fn snapshot(&self) -> TableSnapshot {
        let nodes = self.hosts.values().filter_map(|host| {
            Some(NodeSnapshot {
                host: host.host.clone(),
                node: host.node.clone()?,
            })
        });
        TableSnapshot {
            vms: self.vm_snapshots(),
            nodes: nodes.collect(),
        }
    }

    fn vm_snapshots(&self) -> Vec<VmSnapshot> {
        self.hosts
            .iter()
            .flat_map(|(uri, host)| {
                host.vms.iter().filter_map(move |record| {
                    let latest = record.latest.as_ref()?;
                    Some(VmSnapshot {
                        uri: uri.clone(),
                        host: host.host.clone(),
                        latest: latest.clone(),
                        features: record.recent.latest_features(latest),
                        stats: record.stats.as_deref().cloned(),
                        guest: host.guests.get(&latest.uuid).cloned(),
                    })
                })
            })
            .collect()
    }
}

/// One VM lent by the table: its latest sample, its features, its latest extended sample.
pub type LentVm<'a> = (
    &'a DomainSample,
    Option<MemoryFeatures>,
    Option<&'a DomainStatsSample>,
);

impl VmTable {
    /// Every VM of host `uri` with a seed sample, in no particular order.
    pub fn host_vms<'a>(&'a self, uri: &str) -> impl Iterator<Item = LentVm<'a>> + 'a {
        self.hosts.get(uri).into_iter().flat_map(|host| {
            host.vms.iter().filter_map(|record| {
                let latest = record.latest.as_ref()?;
                let features = record.recent.latest_features(latest);
                Some((latest, features, record.stats.as_deref()))
            })
        })
    }
}
