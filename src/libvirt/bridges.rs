//! The bridge each domain's NIC is plugged into, for `/metrics`' `source_bridge` (the label
//! prometheus-libvirt-exporter reads from `<interface><source bridge=…>`). The bulk stats do not
//! give it, so a domain's XML is read when its NICs are first seen, and again when they change (a
//! hotplug), a few domains a cycle: not per scrape, and not per cycle.

use std::collections::HashMap;

use uuid::Uuid;
use virt::domain::Domain;

use super::heartbeat::Heartbeat;
use crate::extended::{StatsSample, VM_NET};

/// Domains whose XML one cycle reads at most: a host of thousands of new domains spreads them
/// over its first cycles instead of doubling one.
const XML_READS_PER_CYCLE: usize = 64;

/// One domain's NICs (the bulk stats' names, in order) and the bridge of each that has one.
struct Nics {
    names: Vec<String>,
    bridges: HashMap<String, String>,
}

#[derive(Default)]
pub struct Bridges {
    known: HashMap<Uuid, Nics>,
}

impl Bridges {
    /// Sets the `source` of every NIC row of `sample` whose bridge is known, reading the XML of
    /// those of `domains` (the ones the stats were read of) whose NICs are new.
    pub fn fill(&mut self, domains: &[Domain], sample: &mut StatsSample, heartbeat: &Heartbeat) {
        let mut handles: Option<HashMap<Uuid, &Domain>> = None;
        let mut known = HashMap::with_capacity(self.known.len());
        let mut reads = 0;
        for stats in &mut sample.domains {
            let rows = stats.rows.iter_mut().filter(|r| r.measurement == VM_NET);
            let mut rows: Vec<_> = rows.filter(|r| r.key.is_some()).collect();
            let names: Vec<String> = rows.iter().filter_map(|r| Some(r.key.clone()?.1)).collect();
            let same = self.known.remove(&stats.uuid);
            let nics = match same {
                // A cycle whose call skipped the group (NOWAIT) changes nothing.
                Some(nics) if names.is_empty() || nics.names == names => nics,
                _ if names.is_empty() || reads == XML_READS_PER_CYCLE => continue,
                _ => {
                    reads += 1;
                    let handles = handles.get_or_insert_with(|| by_uuid(domains));
                    let Some(domain) = handles.get(&stats.uuid) else {
                        continue;
                    };
                    let Some(bridges) = heartbeat.call(|| read(domain)) else {
                        continue;
                    };
                    Nics { names, bridges }
                }
            };
            for row in &mut rows {
                let name = row.key.as_ref().map(|k| &k.1);
                row.source = name.and_then(|name| nics.bridges.get(name)).cloned();
            }
            known.insert(stats.uuid, nics);
        }
        // Domains gone (or not read this cycle) are forgotten, and read again if they come back.
        self.known = known;
    }
}

fn by_uuid(domains: &[Domain]) -> HashMap<Uuid, &Domain> {
    let uuids = domains.iter().filter_map(|d| Some((d.uuid().ok()?, d)));
    uuids.collect()
}

/// The bridges of `domain`'s NICs by their host-side name; none when its XML cannot be read (it
/// went away meanwhile: the next cycle tries again if it is still there).
fn read(domain: &Domain) -> Option<HashMap<String, String>> {
    let xml = domain.xml_desc(0).ok()?;
    bridges_of(&xml)
}

/// `<target dev>` → `<source bridge>` of each `<interface>` under `<devices>` that has both.
fn bridges_of(xml: &str) -> Option<HashMap<String, String>> {
    let document = roxmltree::Document::parse(xml).ok()?;
    let devices = document
        .root_element()
        .children()
        .find(|n| n.has_tag_name("devices"))?;
    let interfaces = devices.children().filter(|n| n.has_tag_name("interface"));
    let bridges = interfaces.filter_map(|nic| {
        Some((
            child(nic, "target", "dev")?,
            child(nic, "source", "bridge")?,
        ))
    });
    Some(bridges.collect())
}

/// `attribute` of `node`'s first child `tag`.
fn child(node: roxmltree::Node, tag: &str, attribute: &str) -> Option<String> {
    let element = node.children().find(|n| n.has_tag_name(tag))?;
    Some(element.attribute(attribute)?.to_owned())
}

#[cfg(test)]
mod tests {
    use super::bridges_of;

    #[test]
    fn each_nic_with_a_bridge_gives_it_by_its_target() {
        let xml = "<domain type='kvm'><name>a</name><devices>\
             <disk type='file'><source file='/a.img'/><target dev='vda'/></disk>\
             <interface type='bridge'><source bridge='br0'/><target dev='vnet0'/></interface>\
             <interface type='network'><source network='default' bridge='virbr0'/>\
             <target dev='vnet1'/></interface>\
             <interface type='ethernet'><target dev='tap0'/></interface>\
             <interface type='bridge'><source bridge='br1'/></interface>\
             </devices></domain>";
        let bridges = bridges_of(xml).unwrap();
        assert_eq!(bridges.len(), 2, "{bridges:?}");
        assert_eq!(bridges["vnet0"], "br0");
        assert_eq!(bridges["vnet1"], "virbr0");
        assert_eq!(bridges_of("<domain"), None);
    }
}
