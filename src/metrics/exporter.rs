//! The families of Debian's prometheus-libvirt-exporter 0.2.0, under its names, labels, units
//! and help texts, plus a `host` label (one service may collect several hosts). As the exporter,
//! only active domains, and only of hosts connected now: a host that is down shows
//! `libvirt_up 0` and none of its domains, never their last values.

use std::collections::HashSet;
use std::fmt;

use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::registry::Unit;

use super::family::{Spec, Vm, emit};
use crate::actors::status::{ConnectionState, HostStatus};
use crate::extended::{StatsRow, VM_DISK, VM_NET};
use crate::sample::{DomainSample, VmState};

const UP: Spec = Spec::gauge(
    "libvirt_up",
    None,
    "Whether scraping libvirt's metrics was successful.",
);
const DOMAINS: Spec = Spec::gauge("libvirt_domains_number", None, "Number of domains.");
const STATE: Spec = Spec::gauge("libvirt_domain_state_code", None, "State of the domain.");

type Field = fn(&DomainSample) -> f64;

const INFO: [(Spec, Field); 4] = [
    (
        Spec::counter(
            "libvirt_domain_info_cpu_time",
            Some(Unit::Seconds),
            "Amount of CPU time used by the domain, in seconds.",
        ),
        |d| d.cputime_ns as f64 / 1e9,
    ),
    (
        Spec::gauge(
            "libvirt_domain_info_maximum_memory",
            Some(Unit::Bytes),
            "Maximum allowed memory of the domain, in bytes.",
        ),
        |d| d.memory_max_kb as f64 * 1024.0,
    ),
    (
        Spec::gauge(
            "libvirt_domain_info_memory_usage",
            Some(Unit::Bytes),
            "Memory usage of the domain, in bytes.",
        ),
        |d| d.memory_used_kb as f64 * 1024.0,
    ),
    (
        Spec::gauge(
            "libvirt_domain_info_virtual_cpus",
            None,
            "Number of virtual CPUs for the domain.",
        ),
        |d| f64::from(d.cpu_count),
    ),
];

/// The exporter's per-device families: the measurement, the exporter's label for the device's
/// source (which the bulk stats do not give: left empty), and each counter.
/// A measurement, the exporter's label for its source, and its counters.
type Devices = (
    &'static str,
    &'static str,
    &'static [(&'static str, Spec<'static>)],
);

const DEVICES: [Devices; 2] = [
    (VM_DISK, "source_file", &BLOCK),
    (VM_NET, "source_bridge", &INTERFACE),
];

const BLOCK: [(&str, Spec); 4] = [
    (
        "read_bytes",
        Spec::counter(
            "libvirt_domain_block_stats_read",
            Some(Unit::Bytes),
            "Number of bytes read from a block device, in bytes.",
        ),
    ),
    (
        "read_requests",
        Spec::counter(
            "libvirt_domain_block_stats_read_requests",
            None,
            "Number of read requests from a block device.",
        ),
    ),
    (
        "write_bytes",
        Spec::counter(
            "libvirt_domain_block_stats_write",
            Some(Unit::Bytes),
            "Number of bytes written from a block device, in bytes.",
        ),
    ),
    (
        "write_requests",
        Spec::counter(
            "libvirt_domain_block_stats_write_requests",
            None,
            "Number of write requests from a block device.",
        ),
    ),
];

const INTERFACE: [(&str, Spec); 8] = [
    (
        "rx_bytes",
        Spec::counter(
            "libvirt_domain_interface_stats_receive",
            Some(Unit::Bytes),
            "Number of bytes received on a network interface, in bytes.",
        ),
    ),
    (
        "rx_drops",
        Spec::counter(
            "libvirt_domain_interface_stats_receive_drops",
            None,
            "Number of packet receive drops on a network interface.",
        ),
    ),
    (
        "rx_errors",
        Spec::counter(
            "libvirt_domain_interface_stats_receive_errors",
            None,
            "Number of packet receive errors on a network interface.",
        ),
    ),
    (
        "rx_packets",
        Spec::counter(
            "libvirt_domain_interface_stats_receive_packets",
            None,
            "Number of packets received on a network interface.",
        ),
    ),
    (
        "tx_bytes",
        Spec::counter(
            "libvirt_domain_interface_stats_transmit",
            Some(Unit::Bytes),
            "Number of bytes transmitted on a network interface, in bytes.",
        ),
    ),
    (
        "tx_drops",
        Spec::counter(
            "libvirt_domain_interface_stats_transmit_drops",
            None,
            "Number of packet transmit drops on a network interface.",
        ),
    ),
    (
        "tx_errors",
        Spec::counter(
            "libvirt_domain_interface_stats_transmit_errors",
            None,
            "Number of packet transmit errors on a network interface.",
        ),
    ),
    (
        "tx_packets",
        Spec::counter(
            "libvirt_domain_interface_stats_transmit_packets",
            None,
            "Number of packets transmitted on a network interface.",
        ),
    ),
];

pub(super) fn write(
    encoder: &mut DescriptorEncoder,
    all: &[Vm],
    hosts: &[HostStatus],
    connected: &HashSet<&str>,
) -> fmt::Result {
    let shown: Vec<&Vm> = all
        .iter()
        .filter(|v| v.vm.latest.id.is_some() && connected.contains(&*v.vm.uri))
        .collect();
    let host_label = |h: &HostStatus| h.host.as_deref().unwrap_or(&h.uri).to_owned();
    let up = hosts.iter().map(|h| {
        let up = h.connection == ConnectionState::Connected;
        ([("host", host_label(h))], f64::from(u8::from(up)))
    });
    emit(encoder, &UP, up)?;
    let domains = hosts
        .iter()
        .filter(|h| connected.contains(h.uri.as_str()))
        .map(|h| {
            let n = shown.iter().filter(|v| *v.vm.uri == *h.uri).count();
            ([("host", host_label(h))], n as f64)
        });
    emit(encoder, &DOMAINS, domains)?;
    let states = shown
        .iter()
        .filter_map(|v| Some((domain_labels(v), state_code(v.vm.latest.state)?)));
    emit(encoder, &STATE, states)?;
    for (spec, field) in &INFO {
        let samples = shown
            .iter()
            .map(|v| (domain_labels(v), field(&v.vm.latest)));
        emit(encoder, spec, samples)?;
    }
    for (measurement, source, counters) in DEVICES {
        for (counter, spec) in counters {
            let samples = shown.iter().flat_map(|v| {
                device_rows(v, measurement).filter_map(move |(device, row)| {
                    let labels = [
                        ("domain", &*v.vm.latest.name),
                        (source, ""),
                        ("target_device", device),
                        ("uuid", &v.uuid),
                        ("host", &v.vm.host),
                    ];
                    Some((labels, row.counter(counter)? as f64))
                })
            });
            emit(encoder, spec, samples)?;
        }
    }
    Ok(())
}

fn domain_labels<'a>(v: &'a Vm) -> [(&'static str, &'a str); 3] {
    [
        ("domain", &v.vm.latest.name),
        ("uuid", &v.uuid),
        ("host", &v.vm.host),
    ]
}

/// The rows of one measurement, with the device each is of.
fn device_rows<'a>(
    v: &'a Vm,
    measurement: &'a str,
) -> impl Iterator<Item = (&'a str, &'a StatsRow)> {
    let rows = v.vm.stats.iter().flat_map(|s| &s.rows);
    rows.filter(move |r| r.measurement == measurement)
        .filter_map(|r| Some((r.key.as_ref()?.1.as_str(), r)))
}

/// libvirt's `virDomainState` number, which the exporter reports.
pub(super) fn state_code(state: VmState) -> Option<f64> {
    let code = match state {
        VmState::NoState => 0,
        VmState::Running => 1,
        VmState::Blocked => 2,
        VmState::Paused => 3,
        VmState::Shutdown => 4,
        VmState::Stopped => 5,
        VmState::Crashed => 6,
        VmState::PmSuspended => 7,
        VmState::Unknown => return None,
    };
    Some(f64::from(code))
}
