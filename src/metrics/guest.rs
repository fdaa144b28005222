//! The guest agents' answers (`guest` group), as each host's last round gave them: `vm_guest_fs`
//! per filesystem (labelled by its `mountpoint`, `device` and `fstype`, one series each), and
//! `vm_guest_info`, whose strings are the labels of one info gauge per VM. A VM whose agent fell
//! silent has none; the age of an answer is `vmtelemetry_vm_guest_sample_age_seconds` (`vms`).

use std::fmt;

use prometheus_client::encoding::DescriptorEncoder;

use super::family::{FieldOf, Spec, Vm, emit, emit_fields};
use crate::guest::{GuestFs, GuestInfo, VM_GUEST_FS, VM_GUEST_INFO};

const INFO: Spec = Spec::gauge(
    "vmtelemetry_vm_guest_info",
    None,
    "1 for every VM whose guest agent answered, with vm_guest_info os_id, os_version, kernel_release and hostname as labels (empty: not told).",
);
const FS: [FieldOf<GuestFs>; 3] = [
    ("total_bytes", |fs| Some(fs.total_bytes as f64)),
    ("used_bytes", |fs| Some(fs.used_bytes as f64)),
    ("used_percent", GuestFs::used_percent),
];

const USERS: [FieldOf<GuestInfo>; 1] = [("users", |info| Some(info.users? as f64))];

pub(super) fn write(encoder: &mut DescriptorEncoder, all: &[Vm]) -> fmt::Result {
    let answered = || {
        all.iter()
            .filter_map(|v| Some((v.labels("name"), v.vm.guest.as_deref()?)))
    };
    let filesystems = || {
        answered().flat_map(|(vm, guest)| {
            guest.filesystems.iter().map(move |fs| {
                let labels = [
                    ("mountpoint", fs.mountpoint.as_str()),
                    ("device", &fs.device),
                    ("fstype", &fs.fstype),
                ];
                ((vm, labels), fs)
            })
        })
    };
    emit_fields(encoder, VM_GUEST_FS, &FS, filesystems)?;
    let info = answered().map(|(vm, guest)| {
        let text = |part: &Option<String>| part.clone().unwrap_or_default();
        let strings = [
            ("os_id", text(&guest.info.os_id)),
            ("os_version", text(&guest.info.os_version)),
            ("kernel_release", text(&guest.info.kernel_release)),
            ("hostname", text(&guest.info.hostname)),
        ];
        ((vm, strings), 1.0)
    });
    emit(encoder, &INFO, info)?;
    let users = || answered().map(|(vm, guest)| (vm, &guest.info));
    emit_fields(encoder, VM_GUEST_INFO, &USERS, users)
}
