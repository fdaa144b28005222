//! The seed's per-VM values (`vm_metrics`), each under the exporter's name and the service's own.

use std::fmt;

use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::registry::Unit;

use super::family::{Spec, Vm, emit};
use crate::sample::DomainSample;

/// One of the seed's per-VM values: the exporter's family and the service's own (same kind and
/// unit), and how to read it in base units.
pub(super) struct SeedField {
    pub exporter: Spec<'static>,
    pub own: Spec<'static>,
    pub value: fn(&DomainSample) -> f64,
}

pub(super) const SEED: [SeedField; 4] = [
    SeedField {
        exporter: Spec::counter(
            "libvirt_domain_info_cpu_time",
            Some(Unit::Seconds),
            "Amount of CPU time used by the domain, in seconds.",
        ),
        own: Spec::counter(
            "vmtelemetry_vm_cpu_time",
            Some(Unit::Seconds),
            "CPU time used by the VM (vm_metrics cputime_ns).",
        ),
        value: |d| d.cputime_ns as f64 / 1e9,
    },
    SeedField {
        exporter: Spec::gauge(
            "libvirt_domain_info_maximum_memory",
            Some(Unit::Bytes),
            "Maximum allowed memory of the domain, in bytes.",
        ),
        own: Spec::gauge(
            "vmtelemetry_vm_memory_max",
            Some(Unit::Bytes),
            "The VM's maximum memory (vm_metrics memory_max_kb).",
        ),
        value: |d| d.memory_max_kb as f64 * 1024.0,
    },
    SeedField {
        exporter: Spec::gauge(
            "libvirt_domain_info_memory_usage",
            Some(Unit::Bytes),
            "Memory usage of the domain, in bytes.",
        ),
        own: Spec::gauge(
            "vmtelemetry_vm_memory_used",
            Some(Unit::Bytes),
            "The VM's memory (vm_metrics memory_used_kb).",
        ),
        value: |d| d.memory_used_kb as f64 * 1024.0,
    },
    SeedField {
        exporter: Spec::gauge(
            "libvirt_domain_info_virtual_cpus",
            None,
            "Number of virtual CPUs for the domain.",
        ),
        own: Spec::gauge(
            "vmtelemetry_vm_cpus",
            None,
            "The VM's vCPUs (vm_metrics cpu_count).",
        ),
        value: |d| f64::from(d.cpu_count),
    },
];

/// Writes each seed value of `vms` under the family `family` picks (the exporter's or the
/// service's), the VM's name under the label `name`.
pub(super) fn write<'a, I: Iterator<Item = &'a Vm<'a>>>(
    encoder: &mut DescriptorEncoder,
    vms: impl Fn() -> I,
    name: &'static str,
    family: fn(&SeedField) -> &Spec<'static>,
) -> fmt::Result {
    for field in &SEED {
        let samples = vms().map(|v| (v.labels(name), (field.value)(&v.vm.latest)));
        emit(encoder, family(field), samples)?;
    }
    Ok(())
}
