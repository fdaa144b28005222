//! The families of Debian's prometheus-libvirt-exporter 0.2.0, under its names, labels, units
//! and help texts, plus a `host` label (one service may collect several hosts). As the exporter,
//! only active domains, and only of hosts connected now: a host that is down shows
//! `libvirt_up 0` and none of its domains, never their last values. A disk's `source_file` is
//! its path as the bulk stats give it, a NIC's `source_bridge` its bridge from the domain's XML.

use std::collections::HashSet;
use std::fmt;

use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::registry::Unit;

use super::family::{Spec, Vm, emit, flag, host_name};
use super::seed;
use crate::actors::status::{ConnectionState, HostStatus};
use crate::extended::{StatsRow, VM_DISK, VM_NET};
use crate::sample::VmState;

const UP: Spec = Spec::gauge(
    "libvirt_up",
    None,
    "Whether scraping libvirt's metrics was successful.",
);
const DOMAINS: Spec = Spec::gauge("libvirt_domains_number", None, "Number of domains.");
const STATE: Spec = Spec::gauge("libvirt_domain_state_code", None, "State of the domain.");

/// The exporter's per-device families: the measurement, the exporter's label for the device's
/// source, and each counter under its family.
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
    let up = hosts.iter().map(|h| {
        let up = h.connection == ConnectionState::Connected;
        ([("host", host_name(h))], flag(up))
    });
    emit(encoder, &UP, up)?;
    let domains = hosts
        .iter()
        .filter(|h| connected.contains(h.uri.as_str()))
        .map(|h| {
            let n = shown.iter().filter(|v| *v.vm.uri == *h.uri).count();
            ([("host", host_name(h))], n as f64)
        });
    emit(encoder, &DOMAINS, domains)?;
    let states = shown
        .iter()
        .filter_map(|v| Some((v.labels("domain"), state_code(v.vm.latest.state)?)));
    emit(encoder, &STATE, states)?;
    seed::write(encoder, || shown.iter().copied(), "domain", |f| &f.exporter)?;
    for (measurement, source, counters) in DEVICES {
        for (counter, spec) in counters {
            let samples = shown.iter().flat_map(|v| {
                device_rows(v, measurement).filter_map(move |row| {
                    let device = row.key.as_ref()?.1.as_str();
                    let [host, uuid, domain] = v.labels("domain");
                    let source = (source, row.source.as_deref().unwrap_or_default());
                    let labels = [host, uuid, domain, source, ("target_device", device)];
                    Some((labels, row.counter(counter)? as f64))
                })
            });
            emit(encoder, spec, samples)?;
        }
    }
    Ok(())
}

/// The rows of one measurement.
fn device_rows<'a>(v: &'a Vm, measurement: &'a str) -> impl Iterator<Item = &'a StatsRow> {
    let rows = v.vm.stats.iter().flat_map(|s| &s.rows);
    rows.filter(move |r| r.measurement == measurement)
}

/// libvirt's `virDomainState` number, which the exporter reports.
fn state_code(state: VmState) -> Option<f64> {
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
