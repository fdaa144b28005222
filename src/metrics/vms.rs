//! The service's own VM families, `vmtelemetry_vm_*`, labelled `host`, `uuid` and `name`: every
//! VM of every host, the seed's fields, the extended counters and the rates derived from them
//! (as gauges), in base units. `vmtelemetry_vm_sample_age_seconds` grows while a host is down:
//! its VMs are kept with their last values, and their age says so.

use std::fmt;

use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;

use super::family::{Spec, Vm, emit};
use crate::extended::{self, DomainStatsSample};
use crate::sample::{DomainSample, VmState};

type Field = fn(&DomainSample) -> f64;

const SEED: [(Spec, Field); 4] = [
    (
        Spec::counter(
            "vmtelemetry_vm_cpu_time",
            Some(Unit::Seconds),
            "CPU time used by the VM (vm_metrics cputime_ns).",
        ),
        |d| d.cputime_ns as f64 / 1e9,
    ),
    (
        Spec::gauge(
            "vmtelemetry_vm_memory_max",
            Some(Unit::Bytes),
            "The VM's maximum memory (vm_metrics memory_max_kb).",
        ),
        |d| d.memory_max_kb as f64 * 1024.0,
    ),
    (
        Spec::gauge(
            "vmtelemetry_vm_memory_used",
            Some(Unit::Bytes),
            "The VM's memory (vm_metrics memory_used_kb).",
        ),
        |d| d.memory_used_kb as f64 * 1024.0,
    ),
    (
        Spec::gauge(
            "vmtelemetry_vm_cpus",
            None,
            "The VM's vCPUs (vm_metrics cpu_count).",
        ),
        |d| f64::from(d.cpu_count),
    ),
];

const INFO: Spec = Spec::gauge(
    "vmtelemetry_vm_info",
    None,
    "1 for every VM, with its VMID (- when not running) and state.",
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
            labels(v),
            [("vmid", vmid), ("state", latest.state.as_str().to_owned())],
        );
        (labels, 1.0)
    });
    emit(encoder, &INFO, info)?;
    let running = all.iter().map(|v| {
        (
            labels(v),
            f64::from(u8::from(v.vm.latest.state == VmState::Running)),
        )
    });
    emit(encoder, &RUNNING, running)?;
    for (spec, field) in &SEED {
        emit(
            encoder,
            spec,
            all.iter().map(|v| (labels(v), field(&v.vm.latest))),
        )?;
    }
    let age = |t: i64| now_ns.saturating_sub(t).max(0) as f64 / 1e9;
    emit(
        encoder,
        &AGE,
        all.iter()
            .map(|v| (labels(v), age(v.vm.latest.timestamp_ns))),
    )?;
    let stats_age = all
        .iter()
        .filter_map(|v| Some((labels(v), age(v.vm.stats.as_ref()?.timestamp_ns))));
    emit(encoder, &STATS_AGE, stats_age)?;
    let features = |f: fn(&crate::sample::MemoryFeatures) -> f64| {
        all.iter()
            .filter_map(move |v| Some((labels(v), f(v.vm.features.as_ref()?))))
    };
    emit(
        encoder,
        &MEMORY_RATE,
        features(|f| f.memory_rate_kb_per_sec * 1024.0),
    )?;
    emit(encoder, &MEMORY_ANGLE, features(|f| f.memory_angle_deg))?;
    for (measurement, field, integer) in extended::field_types() {
        let named = Named::new(measurement, field, integer);
        write_extended(encoder, &named, measurement, field, all)?;
    }
    Ok(())
}

/// An extended field under a Prometheus name, in base units.
struct Named {
    name: String,
    kind: MetricType,
    scale: f64,
}

impl Named {
    /// `vmtelemetry_<measurement>_<field>`, `_ns` in seconds, `_kb` in bytes, `_per_sec` spelt
    /// out; levels (memory, a disk's size) are gauges, the other counters counters.
    fn new(measurement: &str, field: &str, integer: bool) -> Self {
        let (base, suffix, scale) = if let Some(base) = field.strip_suffix("_ns") {
            (base, "_seconds", 1e-9)
        } else if let Some(base) = field.strip_suffix("_kb") {
            (base, "_bytes", 1024.0)
        } else if let Some(base) = field.strip_suffix("_per_sec") {
            (base, "_per_second", 1.0)
        } else {
            (field, "", 1.0)
        };
        let level = measurement == extended::VM_MEMORY
            && !matches!(field, "swap_in_kb" | "swap_out_kb" | "major_faults")
            || field.ends_with("capacity_bytes")
            || field.ends_with("allocation_bytes")
            || field.ends_with("physical_bytes");
        let kind = if integer && !level {
            MetricType::Counter
        } else {
            MetricType::Gauge
        };
        Named {
            name: format!("vmtelemetry_{measurement}_{base}{suffix}"),
            kind,
            scale,
        }
    }
}

fn write_extended(
    encoder: &mut DescriptorEncoder,
    named: &Named,
    measurement: &str,
    field: &str,
    all: &[Vm],
) -> fmt::Result {
    let help = format!("{measurement} {field}, as written to InfluxDB (in base units).");
    let spec = Spec {
        name: &named.name,
        help: &help,
        unit: None,
        kind: named.kind,
    };
    let samples = all.iter().flat_map(|v| {
        let stats = v.vm.stats.iter();
        stats.flat_map(move |s| {
            values(s, measurement, field).map(move |(key, value)| {
                let key = key.map_or([].as_slice(), std::slice::from_ref);
                ((labels(v), key), value * named.scale)
            })
        })
    });
    emit(encoder, &spec, samples)
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

fn labels<'a>(v: &'a Vm) -> [(&'static str, &'a str); 3] {
    [
        ("host", &v.vm.host),
        ("uuid", &v.uuid),
        ("name", &v.vm.latest.name),
    ]
}
