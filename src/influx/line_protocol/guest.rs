//! The guest agent's measurements: `vm_guest_fs` (one line per filesystem) and `vm_guest_info`.

use super::EncodeError;
use super::line::LineWriter;
use super::lines::Lines;
use super::tags::VmTags;
use crate::guest::{GuestFs, GuestSample, VM_GUEST_FS, VM_GUEST_INFO};

/// `vm_guest_fs,VMID=..,device=..,fstype=..,host=..,mountpoint=..,name=..,uuid=..
/// total_bytes=..i,used_bytes=..i,used_percent=.. <ns>`. A size beyond `i64` (an exabyte-scale
/// filesystem) is left out rather than retyped.
pub fn vm_guest_fs(
    lines: &mut Lines,
    tags: &VmTags,
    sample: &GuestSample,
    fs: &GuestFs,
) -> Result<(), EncodeError> {
    let extras = [
        ("device", fs.device.as_str()),
        ("fstype", fs.fstype.as_str()),
        ("mountpoint", fs.mountpoint.as_str()),
    ];
    let mut line = LineWriter::tagged(lines, VM_GUEST_FS, |t| tags.write_sorted(t, &extras))?;
    for (field, value) in [
        ("total_bytes", fs.total_bytes),
        ("used_bytes", fs.used_bytes),
    ] {
        if let Ok(value) = i64::try_from(value) {
            line.int(field, value);
        }
    }
    if let Some(percent) = fs.used_percent() {
        line.float("used_percent", percent);
    }
    line.finish(sample.timestamp_ns);
    Ok(())
}

/// `vm_guest_info,<VM tags> os_id="..",os_version="..",kernel_release="..",hostname="..",
/// users=..i <ns>`: what the agent told, nothing for what it did not.
pub fn vm_guest_info(
    lines: &mut Lines,
    tags: &VmTags,
    sample: &GuestSample,
) -> Result<(), EncodeError> {
    let mut line = LineWriter::tagged(lines, VM_GUEST_INFO, |t| tags.write(t, None))?;
    let info = &sample.info;
    for (field, value) in [
        ("os_id", &info.os_id),
        ("os_version", &info.os_version),
        ("kernel_release", &info.kernel_release),
        ("hostname", &info.hostname),
    ] {
        if let Some(value) = value {
            line.string(field, value);
        }
    }
    if let Some(users) = info.users {
        line.int("users", i64::try_from(users).unwrap_or(i64::MAX));
    }
    line.finish(sample.timestamp_ns);
    Ok(())
}

#[cfg(test)]
mod tests {
    use influxdb_line_protocol::{FieldValue, parse_lines};
    use uuid::Uuid;

    use super::*;
    use crate::guest::GuestInfo;
    use crate::influx::line_protocol::measurements::tests::{encoded, text};

    const AWKWARD: [&str; 8] = [
        "/with space",
        "/with,comma",
        "/with=equals",
        "/with\"quotes\"",
        r"/back\slash",
        "/ünïcødé €",
        "/日本語",
        r"C:\dir",
    ];

    fn sample(info: GuestInfo) -> GuestSample {
        GuestSample {
            uuid: Uuid::from_u128(9),
            name: "vm one".into(),
            id: Some(4),
            timestamp_ns: 1_699_868_400_000_000_000,
            filesystems: Vec::new(),
            info,
            rejected: 0,
        }
    }

    fn tags() -> VmTags {
        let mut tags = VmTags::default();
        tags.set("kvm,1", Some(4), "vm one", &Uuid::from_u128(9))
            .unwrap();
        tags
    }

    fn fs(mountpoint: &str, device: &str) -> GuestFs {
        GuestFs {
            mountpoint: mountpoint.into(),
            fstype: "ext4".into(),
            device: device.into(),
            total_bytes: 1 << 40,
            used_bytes: 1 << 38,
        }
    }

    #[test]
    fn a_filesystem_line_has_the_vm_tags_its_own_in_key_order_and_typed_fields() {
        let line =
            encoded(|l| vm_guest_fs(l, &tags(), &sample(GuestInfo::default()), &fs("/", "vda1")))
                .unwrap()
                .1;
        assert_eq!(
            line,
            "vm_guest_fs,VMID=4,device=vda1,fstype=ext4,host=kvm\\,1,mountpoint=/,name=vm\\ one,\
             uuid=00000000-0000-0000-0000-000000000009 total_bytes=1099511627776i,\
             used_bytes=274877906944i,used_percent=25.0 1699868400000000000\n"
        );
    }

    #[test]
    fn awkward_mountpoints_and_devices_round_trip_through_influxdbs_parser() {
        for name in AWKWARD {
            let line = encoded(|l| {
                vm_guest_fs(l, &tags(), &sample(GuestInfo::default()), &fs(name, name))
            })
            .unwrap()
            .1;
            let parsed = parse_lines(&line).next().unwrap().unwrap();
            assert_eq!(
                parsed.tag_value("mountpoint").unwrap().as_str(),
                name,
                "{line}"
            );
            assert_eq!(parsed.tag_value("device").unwrap().as_str(), name, "{line}");
            assert_eq!(parsed.tag_value("host").unwrap().as_str(), "kvm,1");
            assert_eq!(
                parsed.field_value("used_percent"),
                Some(&FieldValue::F64(25.0))
            );
        }
        // A newline cannot be carried in a tag: refused, and nothing written.
        let mut lines = Lines::default();
        let refused = vm_guest_fs(
            &mut lines,
            &tags(),
            &sample(GuestInfo::default()),
            &fs("/a\nb", "vda"),
        );
        assert!(matches!(
            refused,
            Err(EncodeError::UnrepresentableTag { .. })
        ));
        assert!(text(lines).is_empty());
    }

    #[test]
    fn identity_strings_are_escaped_and_users_an_integer() {
        for name in AWKWARD
            .iter()
            .map(|n| n.to_string())
            .chain(["tab\there\nline".into()])
        {
            let info = GuestInfo {
                os_id: Some("debian".into()),
                os_version: None,
                kernel_release: Some("6.1".into()),
                hostname: Some(name.clone()),
                users: Some(3),
            };
            let line = encoded(|l| vm_guest_info(l, &tags(), &sample(info)))
                .unwrap()
                .1;
            let parsed = parse_lines(&line).next().unwrap().unwrap();
            let expected = name.replace(['\t', '\n'], " ");
            assert_eq!(
                parsed.field_value("hostname"),
                Some(&FieldValue::String(expected.as_str().into())),
                "{line}"
            );
            assert_eq!(parsed.field_value("users"), Some(&FieldValue::I64(3)));
            assert_eq!(parsed.field_value("os_version"), None);
            assert_eq!(line.lines().count(), 1);
        }
    }
}
