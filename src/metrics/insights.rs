//! The insights' families (`insights = true`): per VM, labelled `host`, `uuid` and `name` as
//! `vm_anomalies` and `vm_bottlenecks` are tagged, and per host as `host_insights`. A score, a
//! rate or a condition the VM does not have now is left out, as in InfluxDB.

use std::fmt;

use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::registry::Unit;

use super::family::{Column, Spec, emit, emit_table, flag};
use crate::insights::bottlenecks::{Condition, Evidence};
use crate::insights::host::HostSummary;
use crate::insights::scrape::{HostScrape, InsightsScrape, VmScrape};
use crate::insights::signals::Signal;

const VMS: [Column<VmScrape>; 4] = [
    (
        Spec::gauge(
            "vmtelemetry_vm_model_trained",
            None,
            "1 once at least one of the VM's signals has left learning, else 0.",
        ),
        |vm| Some(flag(vm.trained)),
    ),
    (
        Spec::gauge(
            "vmtelemetry_vm_anomalous_signals",
            None,
            "vm_anomalies anomalous_signals: the VM's signals scored anomalous in its last cycle.",
        ),
        |vm| Some(f64::from(vm.anomalous_signals)),
    ),
    (
        Spec::gauge(
            "vmtelemetry_vm_peer_outlier_signals",
            None,
            "vm_anomalies peer_outlier_signals: the VM's signals far from its peers' in its last cycle.",
        ),
        |vm| Some(f64::from(vm.peer_outlier_signals)),
    ),
    (
        Spec::gauge(
            "vmtelemetry_vm_anomaly_rate",
            None,
            "vm_anomalies anomaly_rate: the share of the VM's anomalous signal-samples over the window.",
        ),
        |vm| vm.anomaly_rate,
    ),
];

const SCORE: Spec = Spec::gauge(
    "vmtelemetry_vm_anomaly_score",
    None,
    "vm_anomalies <signal>_score, 0 to 1, of each signal scored in the VM's last cycle.",
);
const HELD: Spec = Spec::gauge(
    "vmtelemetry_vm_bottleneck_held",
    Some(Unit::Seconds),
    "vm_bottlenecks held_sec: how long each condition of the VM has held, while it holds.",
);

/// A held condition's evidence, labelled with its signal.
const EVIDENCE: [Column<Evidence>; 2] = [
    (
        Spec::gauge(
            "vmtelemetry_vm_bottleneck_value",
            None,
            "vm_bottlenecks value: the evidence's value of each condition of the VM, while it holds, labelled with vm_bottlenecks signal.",
        ),
        |evidence| Some(evidence.value),
    ),
    (
        Spec::gauge(
            "vmtelemetry_vm_bottleneck_threshold",
            None,
            "vm_bottlenecks threshold: the threshold the evidence reached, labelled with vm_bottlenecks signal.",
        ),
        |evidence| Some(evidence.threshold),
    ),
];

const HOSTS: [Column<HostSummary>; 6] = [
    (
        Spec::gauge("vmtelemetry_host_insights_vms", None, "host_insights vms."),
        |s| Some(s.vms as f64),
    ),
    (
        Spec::gauge(
            "vmtelemetry_host_insights_vms_trained",
            None,
            "host_insights vms_trained.",
        ),
        |s| Some(s.vms_trained as f64),
    ),
    (
        Spec::gauge(
            "vmtelemetry_host_insights_vms_anomalous",
            None,
            "host_insights vms_anomalous.",
        ),
        |s| Some(s.vms_anomalous as f64),
    ),
    (
        Spec::gauge(
            "vmtelemetry_host_insights_anomaly_rate",
            None,
            "host_insights anomaly_rate.",
        ),
        |s| s.anomaly_rate,
    ),
    (
        Spec::gauge(
            "vmtelemetry_host_insights_vcpu_overcommit",
            None,
            "host_insights vcpu_overcommit: vCPUs of the running VMs per host CPU.",
        ),
        |s| s.vcpu_overcommit,
    ),
    (
        Spec::gauge(
            "vmtelemetry_host_insights_memory_overcommit",
            None,
            "host_insights memory_overcommit: maximum memory of the running VMs per byte of host memory.",
        ),
        |s| s.memory_overcommit,
    ),
];

const IN_CONDITION: Spec = Spec::gauge(
    "vmtelemetry_host_insights_vms_in_condition",
    None,
    "host_insights vms_cpu_saturated, vms_cpu_contention, vms_memory_pressure, vms_disk_latency, vms_disk_errors and vms_network_drops: the host's VMs in each condition (kind).",
);

pub(super) fn write(encoder: &mut DescriptorEncoder, insights: &InsightsScrape) -> fmt::Result {
    let hosts = &insights.hosts;
    let vms = || {
        hosts
            .iter()
            .flat_map(|h| h.vms.iter().map(move |vm| (labels(h, vm), vm)))
    };
    emit_table(encoder, &VMS, vms)?;
    let scores = vms().flat_map(|(l, vm)| {
        Signal::ALL.into_iter().filter_map(move |signal| {
            let score = vm.scores.get(signal)?;
            Some(((l, [("signal", signal.name())]), f64::from(score)))
        })
    });
    emit(encoder, &SCORE, scores)?;
    let held = || {
        vms().flat_map(|(l, vm)| {
            (vm.held.iter()).map(move |(kind, evidence, sec)| ((l, kind.name()), evidence, *sec))
        })
    };
    let held_sec = held().map(|((l, kind), _, sec)| ((l, [("kind", kind)]), sec));
    emit(encoder, &HELD, held_sec)?;
    let evidence = || {
        held().map(|((l, kind), evidence, _)| {
            ((l, [("kind", kind), ("signal", evidence.signal)]), evidence)
        })
    };
    emit_table(encoder, &EVIDENCE, evidence)?;
    let summaries = || hosts.iter().map(|h| ([("host", &*h.host)], &h.summary));
    emit_table(encoder, &HOSTS, summaries)?;
    let in_condition = hosts.iter().flat_map(|h| {
        (Condition::ALL.into_iter().zip(h.summary.vms_in)).map(move |(kind, n)| {
            let labels = [("host", &*h.host), ("kind", kind.name())];
            (labels, n as f64)
        })
    });
    emit(encoder, &IN_CONDITION, in_condition)
}

/// `host`, `uuid` and `name`, as the other `vmtelemetry_vm_*` families.
fn labels<'a>(host: &'a HostScrape, vm: &'a VmScrape) -> [(&'static str, &'a str); 3] {
    [("host", &host.host), ("uuid", &vm.uuid), ("name", &vm.name)]
}
