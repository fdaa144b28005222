//! The insights' families (`insights = true`): per VM, labelled `host`, `uuid` and `name` as
//! `vm_anomalies` and `vm_bottlenecks` are tagged, and per host as `host_insights`. A score, a
//! rate or a condition the VM does not have now is left out, as in InfluxDB.

use std::fmt;

use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::registry::Unit;

use super::family::{Spec, emit, flag};
use crate::insights::bottlenecks::Condition;
use crate::insights::host::HostSummary;
use crate::insights::scrape::{HostScrape, InsightsScrape, VmScrape};
use crate::insights::signals::Signal;

const TRAINED: Spec = Spec::gauge(
    "vmtelemetry_vm_model_trained",
    None,
    "1 once at least one of the VM's signals has left learning, else 0.",
);
const ANOMALOUS: Spec = Spec::gauge(
    "vmtelemetry_vm_anomalous_signals",
    None,
    "vm_anomalies anomalous_signals: the VM's signals scored anomalous in its last cycle.",
);
const RATE: Spec = Spec::gauge(
    "vmtelemetry_vm_anomaly_rate",
    None,
    "vm_anomalies anomaly_rate: the share of the VM's anomalous signal-samples over the window.",
);
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

type HostField = fn(&HostSummary) -> Option<f64>;

const HOSTS: [(Spec<'static>, HostField); 6] = [
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
    "host_insights vms_<kind>: the host's VMs in each condition.",
);

pub(super) fn write(encoder: &mut DescriptorEncoder, insights: &InsightsScrape) -> fmt::Result {
    let hosts = &insights.hosts;
    let vms = || {
        hosts
            .iter()
            .flat_map(|h| h.vms.iter().map(move |vm| (labels(h, vm), vm)))
    };
    emit(
        encoder,
        &TRAINED,
        vms().map(|(l, vm)| (l, flag(vm.trained))),
    )?;
    let anomalous = vms().map(|(l, vm)| (l, f64::from(vm.anomalous_signals)));
    emit(encoder, &ANOMALOUS, anomalous)?;
    let rate = vms().filter_map(|(l, vm)| Some((l, vm.anomaly_rate?)));
    emit(encoder, &RATE, rate)?;
    let scores = vms().flat_map(|(l, vm)| {
        Signal::ALL.into_iter().filter_map(move |signal| {
            let score = vm.scores.get(signal)?;
            Some(((l, [("signal", signal.name())]), f64::from(score)))
        })
    });
    emit(encoder, &SCORE, scores)?;
    let held = vms().flat_map(|(l, vm)| {
        (vm.held.iter()).map(move |(kind, sec)| ((l, [("kind", kind.name())]), *sec))
    });
    emit(encoder, &HELD, held)?;
    for (spec, field) in &HOSTS {
        let samples = hosts
            .iter()
            .filter_map(|h| Some(([("host", &*h.host)], field(&h.summary)?)));
        emit(encoder, spec, samples)?;
    }
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
