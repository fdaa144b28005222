//! The service's own VM families, `vmtelemetry_vm_*`, labelled `host`, `uuid` and `name`: every
//! VM of every host, the seed's fields, the extended counters and the rates derived from them
//! (as gauges), `vm_kvm`'s and `vm_dirtyrate`'s fields (as gauges), in base units. `vmtelemetry_vm_sample_age_seconds` grows while a host is down:
//! its VMs are kept with their last values, and their age says so.

use std::collections::BTreeSet;
use std::fmt;

use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;

use super::family::{Named, Spec, Vm, age_seconds, emit, flag};
use super::seed;
use crate::extended::{self, DomainStatsSample};
use crate::sample::VmState;

const INFO: Spec = Spec::gauge(
    "vmtelemetry_vm_info",
    None,
    "1 for every VM, with its VMID (- when not running) and vm_metrics state as labels.",
);
const RUNNING: Spec = Spec::gauge(
    "vmtelemetry_vm_running",
    None,
    "1 for a running VM, else 0.",
);
const AGE: Spec = Spec::gauge(
    "vmtelemetry_vm_sample_age",
    Some(Unit::Seconds),
    "Seconds since the VM was last read: it grows while its host cannot be read.",
);
const STATS_AGE: Spec = Spec::gauge(
    "vmtelemetry_vm_stats_sample_age",
    Some(Unit::Seconds),
    "Seconds since the VM's extended groups were last read.",
);
const MEMORY_RATE: Spec = Spec::gauge(
    "vmtelemetry_vm_memory_rate_bytes_per_second",
    None,
    "Change of the VM's memory per second between its two latest samples (vm_features memory_rate_kb_per_sec, in bytes).",
);
const MEMORY_ANGLE: Spec = Spec::gauge(
    "vmtelemetry_vm_memory_angle_degrees",
    None,
    "vm_features memory_angle_deg.",
);

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
    let running = all.iter().map(|v| {
        (
            v.labels("name"),
            flag(v.vm.latest.state == VmState::Running),
        )
    });
    emit(encoder, &RUNNING, running)?;
    seed::write(encoder, || all.iter(), "name", |f| &f.own)?;
    let age = |t: i64| age_seconds(now_ns, t);
    emit(
        encoder,
        &AGE,
        all.iter()
            .map(|v| (v.labels("name"), age(v.vm.latest.timestamp_ns))),
    )?;
    let stats_age = all
        .iter()
        .filter_map(|v| Some((v.labels("name"), age(v.vm.stats.as_ref()?.timestamp_ns))));
    emit(encoder, &STATS_AGE, stats_age)?;
    let features = |f: fn(&crate::sample::MemoryFeatures) -> f64| {
        all.iter()
            .filter_map(move |v| Some((v.labels("name"), f(v.vm.features.as_ref()?))))
    };
    emit(
        encoder,
        &MEMORY_RATE,
        features(|f| f.memory_rate_kb_per_sec * 1024.0),
    )?;
    emit(encoder, &MEMORY_ANGLE, features(|f| f.memory_angle_deg))?;
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
                None => derived.iter().find(|(f, _)| *f == field)?.1,
            };
            Some((row.key.as_ref(), value))
        })
}
