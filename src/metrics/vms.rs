//! The service's own VM families, `vmtelemetry_vm_*`, labelled `host`, `uuid` and `name`: every
//! VM of every host, the seed's fields, the extended counters and the rates derived from them
//! (as gauges), `vm_kvm`'s and `vm_dirtyrate`'s fields (as gauges), in base units. `vmtelemetry_vm_sample_age_seconds` grows while a host is down:
//! its VMs are kept with their last values, and their age says so.

use std::collections::BTreeSet;
use std::fmt;

use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;

use super::family::{Column, Named, Spec, Vm, age_seconds, emit, emit_table, flag};
use super::seed;
use crate::extended::{self, DomainStatsSample, SIZE_FIELDS};
use crate::sample::VmState;
use crate::vms::VmSnapshot;

const INFO: Spec = Spec::gauge(
    "vmtelemetry_vm_info",
    None,
    "1 for every VM, with its VMID (- when not running) and vm_metrics state as labels.",
);
const VALUES: [Column<VmSnapshot>; 3] = [
    (
        Spec::gauge(
            "vmtelemetry_vm_running",
            None,
            "1 for a running VM, else 0.",
        ),
        |vm| Some(flag(vm.latest.state == VmState::Running)),
    ),
    (
        Spec::gauge(
            "vmtelemetry_vm_memory_rate_bytes_per_second",
            None,
            "Change of the VM's memory per second between its two latest samples (vm_features memory_rate_kb_per_sec, in bytes).",
        ),
        |vm| Some(vm.features?.memory_rate_kb_per_sec * 1024.0),
    ),
    (
        Spec::gauge(
            "vmtelemetry_vm_memory_angle_degrees",
            None,
            "vm_features memory_angle_deg.",
        ),
        |vm| Some(vm.features?.memory_angle_deg),
    ),
];

/// An age family: its spec, and when the VM's sample it is the age of was read (None: never).
type Age = (Spec<'static>, fn(&VmSnapshot) -> Option<i64>);

/// The ages of a VM's samples: stale values are never taken for fresh.
const AGES: [Age; 3] = [
    (
        Spec::gauge(
            "vmtelemetry_vm_sample_age",
            Some(Unit::Seconds),
            "Seconds since the VM was last read: it grows while its host cannot be read.",
        ),
        |vm| Some(vm.latest.timestamp_ns),
    ),
    (
        Spec::gauge(
            "vmtelemetry_vm_stats_sample_age",
            Some(Unit::Seconds),
            "Seconds since the VM's extended groups were last read.",
        ),
        |vm| Some(vm.stats.as_ref()?.timestamp_ns),
    ),
    (
        Spec::gauge(
            "vmtelemetry_vm_guest_sample_age",
            Some(Unit::Seconds),
            "Seconds since the VM's guest agent answered (vm_guest_fs, vm_guest_info).",
        ),
        |vm| Some(vm.guest.as_ref()?.timestamp_ns),
    ),
];

pub(super) fn write(encoder: &mut DescriptorEncoder, all: &[Vm], now_ns: i64) -> fmt::Result {
    let info = all.iter().map(|v| {
        let latest = &v.vm.latest;
        let vmid = latest
            .id
            .map_or_else(|| "-".to_owned(), |id| id.to_string());
        let labels = (
            v.labels("name"),
            [("vmid", vmid), ("state", latest.state.as_str().to_owned())],
        );
        (labels, 1.0)
    });
    emit(encoder, &INFO, info)?;
    let vms = || all.iter().map(|v| (v.labels("name"), v.vm));
    emit_table(encoder, &VALUES, vms)?;
    seed::write(encoder, || all.iter(), "name", |f| &f.own)?;
    for (spec, read_at) in &AGES {
        let ages = vms().filter_map(|(l, vm)| Some((l, age_seconds(now_ns, read_at(vm)?))));
        emit(encoder, spec, ages)?;
    }
    for (measurement, field, integer) in extended::field_types() {
        let named = Named::new(
            measurement,
            field,
            extended_kind(measurement, field, integer),
        );
        write_extended(encoder, &named, measurement, field, all)?;
    }
    for (measurement, field) in newer_fields(all) {
        let named = Named::new(measurement, field, MetricType::Gauge);
        write_extended(encoder, &named, measurement, field, all)?;
    }
    Ok(())
}

/// The fields of `vm_kvm` (named by the host's kernel) and `vm_dirtyrate` the VMs have, as
/// gauges: a `vm_kvm` field may be a cumulative, an instant or a peak value.
fn newer_fields(all: &[Vm]) -> BTreeSet<(&'static str, &'static str)> {
    let rows = all
        .iter()
        .flat_map(|v| v.vm.stats.iter().flat_map(|s| &s.rows));
    rows.filter(|r| matches!(r.measurement, extended::VM_KVM | extended::VM_DIRTYRATE))
        .flat_map(|r| {
            r.counters
                .iter()
                .map(move |(field, _)| (r.measurement, *field))
        })
        .collect()
}

/// Levels (memory, a disk's size) and derived values are gauges, the other counters counters.
fn extended_kind(measurement: &str, field: &str, integer: bool) -> MetricType {
    let level = measurement == extended::VM_MEMORY
        && !matches!(field, "swap_in_kb" | "swap_out_kb" | "major_faults")
        || field.ends_with("capacity_bytes")
        || field.ends_with("allocation_bytes")
        || field.ends_with("physical_bytes");
    if integer && !level {
        MetricType::Counter
    } else {
        MetricType::Gauge
    }
}

fn write_extended(
    encoder: &mut DescriptorEncoder,
    named: &Named,
    measurement: &str,
    field: &str,
    all: &[Vm],
) -> fmt::Result {
    let samples = all.iter().flat_map(|v| {
        let stats = v.vm.stats.iter();
        stats.flat_map(move |s| {
            values(s, measurement, field).map(move |(key, value)| {
                let key = key.map_or([].as_slice(), std::slice::from_ref);
                ((v.labels("name"), key), value * named.scale)
            })
        })
    });
    emit(encoder, &named.spec(), samples)
}

/// Each row of `measurement` giving `field`: its device (or vCPU) label, and the value.
fn values<'a>(
    stats: &'a DomainStatsSample,
    measurement: &'a str,
    field: &'a str,
) -> impl Iterator<Item = (Option<&'a (&'static str, String)>, f64)> {
    let rows = stats.rows.iter().zip(&stats.derived);
    rows.filter(move |(row, _)| row.measurement == measurement)
        .filter_map(move |(row, derived)| {
            let value = match row.counter(field) {
                Some(counter) => counter as f64,
                // A disk's sizes come at their own cadence: the last read until the next.
                None if SIZE_FIELDS.contains(&field) => stats.disk_size(&row.key, field)? as f64,
                None => derived.iter().find(|(f, _)| *f == field)?.1,
            };
            Some((row.key.as_ref(), value))
        })
}
