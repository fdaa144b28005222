//! The tags of every line of one VM, checked and escaped once for all of its lines.

use uuid::Uuid;

use super::EncodeError;
use super::escape::{formatted_tag_into, tag_into};
use crate::influx::schema::vm_tags;
use crate::sample::INACTIVE_VMID;

/// `VMID`, `host`, `name`, `uuid`. Reused from VM to VM, so it costs no allocation either.
#[derive(Debug, Default)]
pub struct VmTags {
    /// `,VMID=…,host=…,name=…,uuid=…`
    text: Vec<u8>,
    /// Where each tag starts in `text`, in `vm_tags::ALL` order, for a row's own tag to go in key
    /// order.
    starts: [usize; 4],
    /// The VM an error of a row's own tag names.
    uuid: Uuid,
    /// The last host and its `,host=…`, checked and escaped once for every VM of that host.
    host: Option<(String, Vec<u8>)>,
}

impl VmTags {
    /// Sets the tags of the VM whose lines come next.
    pub fn set(
        &mut self,
        host: &str,
        id: Option<u32>,
        name: &str,
        uuid: &Uuid,
    ) -> Result<(), EncodeError> {
        self.uuid = *uuid;
        let mut uuid_text = Uuid::encode_buffer();
        uuid.hyphenated().encode_lower(&mut uuid_text);
        // Always 36 bytes: copied at a length the compiler knows, without a call to memcpy.
        let uuid_text = &uuid_text[..uuid::fmt::Hyphenated::LENGTH];
        let mut id_text = itoa::Buffer::new();
        let vmid = match id {
            Some(n) => id_text.format(n),
            None => INACTIVE_VMID,
        };
        self.text.clear();
        self.starts[0] = 0;
        formatted_tag_into(&mut self.text, vm_tags::VMID, vmid.as_bytes());
        self.starts[1] = self.text.len();
        let host_tag = match &mut self.host {
            Some((cached, tag)) if cached == host => tag,
            _ => {
                let mut tag = Vec::new();
                tag_into(&mut tag, vm_tags::HOST, host, uuid)?;
                &self.host.insert((host.to_owned(), tag)).1
            }
        };
        self.text.extend_from_slice(host_tag);
        self.starts[2] = self.text.len();
        tag_into(&mut self.text, vm_tags::NAME, name, uuid)?;
        self.starts[3] = self.text.len();
        formatted_tag_into(&mut self.text, vm_tags::UUID, uuid_text);
        Ok(())
    }

    /// Tags in key order (InfluxDB stores series fastest that way), with the row's own if any.
    pub(super) fn write(
        &self,
        out: &mut Vec<u8>,
        extra: Option<(&'static str, &str)>,
    ) -> Result<(), EncodeError> {
        match extra {
            None => {
                out.extend_from_slice(&self.text);
                Ok(())
            }
            Some(extra) => self.write_sorted(out, &[extra]),
        }
    }

    /// Tags in key order with the row's own, `extras`, whose keys must be sorted.
    pub(super) fn write_sorted(
        &self,
        out: &mut Vec<u8>,
        extras: &[(&'static str, &str)],
    ) -> Result<(), EncodeError> {
        debug_assert!(extras.is_sorted_by_key(|(k, _)| *k));
        let mut from = 0;
        for (key, value) in extras {
            let position = vm_tags::ALL.iter().position(|k| k > key);
            let at = position
                .map_or(self.text.len(), |i| self.starts[i])
                .max(from);
            out.extend_from_slice(&self.text[from..at]);
            from = at;
            tag_into(out, key, value, &self.uuid)?;
        }
        out.extend_from_slice(&self.text[from..]);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extended::{DomainStatsSample, StatsRow};
    use crate::influx::line_protocol::measurements::tests::{domain, encoded, metrics, text};
    use crate::influx::line_protocol::{Lines, stats_row, vm_metrics};
    use crate::sample::DomainSample;

    #[test]
    fn reused_tags_follow_each_vms_host_and_refuse_a_bad_one_every_time() {
        let vm = domain("web");
        let mut tags = VmTags::default();
        let line = |tags: &VmTags| encoded(|lines| vm_metrics(lines, tags, &vm)).unwrap().1;
        tags.set("kvm1", vm.id, &vm.name, &vm.uuid).unwrap();
        assert!(line(&tags).contains(",host=kvm1,"));
        tags.set("kvm 2", vm.id, &vm.name, &vm.uuid).unwrap();
        assert!(line(&tags).contains(r",host=kvm\ 2,"));
        for bad in ["", "new\nline", "", r"ends\"] {
            let error = tags.set(bad, vm.id, &vm.name, &vm.uuid).unwrap_err();
            assert!(
                matches!(&error, EncodeError::UnrepresentableTag { key: "host", .. }),
                "{bad:?}: {error}"
            );
        }
        tags.set("kvm 2", vm.id, &vm.name, &vm.uuid).unwrap();
        assert!(line(&tags).contains(r",host=kvm\ 2,"));
        tags.set("kvm1", None, &vm.name, &vm.uuid).unwrap();
        assert_eq!(
            line(&tags),
            metrics(
                "kvm1",
                &DomainSample {
                    id: None,
                    ..domain("web")
                }
            )
            .unwrap()
        );
    }

    #[test]
    fn a_row_tag_takes_its_place_in_key_order() {
        let sample = DomainStatsSample {
            derived: Vec::new(),
            uuid: Uuid::from_u128(1),
            name: "n".into(),
            timestamp_ns: 1,
            vcpus: Some(1),
            rows: vec![],
        };
        let mut tags = VmTags::default();
        tags.set("h", None, &sample.name, &sample.uuid).unwrap();
        for (key, expected) in [
            (
                "device",
                "m,VMID=-,device=x,host=h,name=n,uuid=00000000-0000-0000-0000-000000000001 ",
            ),
            (
                "interface",
                "m,VMID=-,host=h,interface=x,name=n,uuid=00000000-0000-0000-0000-000000000001 ",
            ),
            (
                "vcpu",
                "m,VMID=-,host=h,name=n,uuid=00000000-0000-0000-0000-000000000001,vcpu=x ",
            ),
        ] {
            let row = StatsRow {
                measurement: "m",
                key: Some((key, "x".into())),
                source: None,
                counters: vec![("c", 1)],
            };
            let (_, line) = encoded(|l| stats_row(l, &tags, &sample, &row, &[])).unwrap();
            assert!(line.starts_with(expected), "{line}");
        }
    }

    #[test]
    fn tags_set_for_one_vm_carry_nothing_of_the_previous() {
        let mut tags = VmTags::default();
        let mut lines = Lines::default();
        let long = domain("a-much-longer-name with space");
        tags.set("host,one", long.id, &long.name, &long.uuid)
            .unwrap();
        vm_metrics(&mut lines, &tags, &long).unwrap();
        let mut short = domain("b");
        short.id = None;
        short.uuid = Uuid::from_u128(1);
        tags.set("h2", short.id, &short.name, &short.uuid).unwrap();
        vm_metrics(&mut lines, &tags, &short).unwrap();
        let text = text(lines);
        let second = text.lines().nth(1).unwrap();
        assert!(
            second.starts_with(
                "vm_metrics,VMID=-,host=h2,name=b,uuid=00000000-0000-0000-0000-000000000001 state="
            ),
            "{second}"
        );
    }
}
