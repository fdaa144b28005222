//! The insights as the API shows them: the fleet (what needs attention first, counts per
//! condition and host) and one VM (every signal, its conditions with their evidence).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::bottlenecks::{Active, Condition, Evidence};
use super::fleet::Insights;
use super::host::{HostInsights, HostSummary};
use super::signals::Signal;
use super::vm::{CycleResult, VmInsights};
use crate::sample::INACTIVE_VMID;

/// Whether a model has seen enough samples to score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ModelState {
    Learning,
    Trained,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ConditionView {
    pub kind: Condition,
    pub evidence: EvidenceView,
    /// When its rule started to hold.
    pub since: DateTime<Utc>,
    pub held_sec: f64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EvidenceView {
    /// The signal the value is of (`disk_errors_per_sec` for disk errors, `cpu_busy_percent`
    /// for a saturation its use alone does not show: its vCPUs' running and waiting time, or
    /// `cpu_percent` + `cpu_steal_percent` without the vCPUs' times).
    pub signal: String,
    pub value: f64,
    pub threshold: f64,
}

/// One VM in the fleet's list.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct VmAttention {
    pub host: String,
    pub uri: String,
    pub name: String,
    pub uuid: String,
    /// libvirt's id, or `-` for a domain that is not running.
    pub vmid: String,
    pub model: ModelState,
    pub conditions: Vec<ConditionView>,
    /// Anomalous against the VM's own past this cycle.
    pub anomalous_signals: Vec<Signal>,
    /// Departing from the VM's peers (the other VMs of its host) this cycle.
    pub peer_outlier_signals: Vec<Signal>,
    /// The share of its anomalous signal-samples over the window.
    pub anomaly_rate: Option<f64>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HostInsightsView {
    pub host: String,
    pub uri: String,
    /// The overcommit ratios only when `host_metrics` gives the host's CPUs and memory.
    #[serde(flatten)]
    pub summary: HostSummary,
    /// VMs per condition, every condition named.
    pub conditions: BTreeMap<String, usize>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FleetInsights {
    pub vms: usize,
    pub vms_trained: usize,
    pub vms_learning: usize,
    /// VMs per condition over the hosts shown, every condition named.
    pub conditions: BTreeMap<String, usize>,
    /// VMs with a condition or an anomalous signal now: the first ones of `attention`.
    pub needs_attention: usize,
    pub hosts: Vec<HostInsightsView>,
    /// Every VM, what needs attention first: the most conditions, then the most anomalous
    /// signals now, then the highest anomaly rate.
    pub attention: Vec<VmAttention>,
}

/// One signal of one VM.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SignalView {
    pub signal: Signal,
    /// Its value this cycle; none when the VM lacks it now.
    pub value: Option<f64>,
    pub model: ModelState,
    /// Against the VM's own past, 0 to 1 (0.5 at the threshold); none while learning.
    pub score: Option<f64>,
    pub anomalous: bool,
    pub peer_outlier: bool,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct VmInsightsDetail {
    #[serde(flatten)]
    pub vm: VmAttention,
    pub running: bool,
    pub window_sec: f64,
    /// Scored and anomalous signal-samples in the window.
    pub samples_scored: u64,
    pub samples_anomalous: u64,
    pub signals: Vec<SignalView>,
}

impl Insights {
    /// The fleet, or only the hosts whose `host` tag is `host`; `attention` holds the first
    /// `limit` VMs (all without one): every VM is ranked, only those are built.
    pub fn fleet(&self, host: Option<&str>, limit: Option<usize>) -> FleetInsights {
        let hosts: Vec<(&str, &HostInsights)> = self
            .hosts
            .iter()
            .filter(|(_, h)| host.is_none_or(|wanted| *h.host == *wanted))
            .map(|(uri, h)| (&**uri, h))
            .collect();
        let thresholds = &self.settings.thresholds;
        let mut ranked: Vec<Ranked> = hosts
            .iter()
            .flat_map(|(uri, h)| {
                h.vms.values().map(move |vm| Ranked {
                    conditions: vm.bottlenecks.active(thresholds).count(),
                    anomalous: vm.last.anomalous_signals(),
                    rate: vm.anomaly_rate().unwrap_or(0.0),
                    uri,
                    host: h,
                    vm,
                })
            })
            .collect();
        ranked.sort_by(Ranked::first_things_first);
        let vms = ranked.len();
        let needs_attention = ranked
            .iter()
            .take_while(|r| r.conditions > 0 || r.anomalous > 0)
            .count();
        let attention = ranked
            .iter()
            .take(limit.unwrap_or(vms))
            .map(|r| self.attention(r.uri, r.host, r.vm))
            .collect();
        let mut views: Vec<HostInsightsView> =
            hosts.iter().map(|(uri, h)| host_view(uri, h)).collect();
        views.sort_by(|a, b| (&a.host, &a.uri).cmp(&(&b.host, &b.uri)));
        let mut conditions = condition_counts(&[0; Condition::ALL.len()]);
        for view in &views {
            for (kind, count) in &view.conditions {
                *conditions.entry(kind.clone()).or_default() += count;
            }
        }
        let vms_trained = views.iter().map(|h| h.summary.vms_trained).sum();
        FleetInsights {
            vms,
            vms_trained,
            vms_learning: vms - vms_trained,
            conditions,
            needs_attention,
            hosts: views,
            attention,
        }
    }

    /// VM `uuid` of the host at `uri`, if it is known.
    pub fn vm(&self, uri: &str, uuid: &uuid::Uuid) -> Option<VmInsightsDetail> {
        let host = self.hosts.get(uri)?;
        let vm = host.vms.get(uuid)?;
        let (samples_anomalous, samples_scored) = vm.window_counts();
        let last = &vm.last;
        let signals = Signal::ALL
            .into_iter()
            .map(|signal| SignalView {
                signal,
                value: last.values.get(signal),
                model: model_state(vm.model(signal).trained(&self.settings.detector)),
                score: last.scores.get(signal).map(f64::from),
                anomalous: CycleResult::has(last.anomalous, signal),
                peer_outlier: CycleResult::has(last.peer_outliers, signal),
            })
            .collect();
        Some(VmInsightsDetail {
            vm: self.attention(uri, host, vm),
            running: vm.running(),
            window_sec: self.settings.window.as_secs_f64(),
            samples_scored,
            samples_anomalous,
            signals,
        })
    }

    fn attention(&self, uri: &str, host: &HostInsights, vm: &VmInsights) -> VmAttention {
        let signals = |mask: u16| {
            Signal::ALL
                .into_iter()
                .filter(|s| CycleResult::has(mask, *s))
                .collect()
        };
        VmAttention {
            host: host.host.to_string(),
            uri: uri.to_owned(),
            name: vm.vm.name.to_string(),
            uuid: vm.vm.uuid.to_string(),
            vmid: vm
                .vm
                .id
                .map_or_else(|| INACTIVE_VMID.to_owned(), |id| id.to_string()),
            model: model_state(vm.trained(&self.settings)),
            conditions: vm
                .bottlenecks
                .active(&self.settings.thresholds)
                .map(condition_view)
                .collect(),
            anomalous_signals: signals(vm.last.anomalous),
            peer_outlier_signals: signals(vm.last.peer_outliers),
            anomaly_rate: vm.anomaly_rate(),
        }
    }
}

/// A VM's place in the fleet's list, cheap to know for every VM.
struct Ranked<'a> {
    conditions: usize,
    anomalous: u32,
    rate: f64,
    uri: &'a str,
    host: &'a HostInsights,
    vm: &'a VmInsights,
}

impl Ranked<'_> {
    /// The most conditions, then the most anomalous signals now, then the highest anomaly rate;
    /// ties by host, name and UUID.
    fn first_things_first(a: &Self, b: &Self) -> std::cmp::Ordering {
        (b.conditions, b.anomalous)
            .cmp(&(a.conditions, a.anomalous))
            .then(b.rate.total_cmp(&a.rate))
            .then_with(|| {
                let key = |r: &Self| (&*r.host.host, &*r.vm.vm.name, r.vm.vm.uuid);
                key(a).cmp(&key(b))
            })
    }
}

fn host_view(uri: &str, host: &HostInsights) -> HostInsightsView {
    HostInsightsView {
        host: host.host.to_string(),
        uri: uri.to_owned(),
        summary: host.summary.clone(),
        conditions: condition_counts(&host.summary.vms_in),
    }
}

fn condition_counts(counts: &[usize]) -> BTreeMap<String, usize> {
    Condition::ALL
        .into_iter()
        .zip(counts)
        .map(|(c, n)| (c.name().to_owned(), *n))
        .collect()
}

fn condition_view(active: Active) -> ConditionView {
    let Evidence {
        signal,
        value,
        threshold,
    } = active.evidence;
    ConditionView {
        kind: active.condition,
        evidence: EvidenceView {
            signal: signal.to_owned(),
            value,
            threshold,
        },
        since: DateTime::from_timestamp_nanos(active.since_ns),
        held_sec: active.held_sec,
    }
}

fn model_state(trained: bool) -> ModelState {
    if trained {
        ModelState::Trained
    } else {
        ModelState::Learning
    }
}
