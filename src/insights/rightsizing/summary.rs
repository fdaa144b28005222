//! What `/api/telemetry/recommendations` shows: every VM's recommendation and forecasts, and
//! per host and fleet what could be reclaimed and what needs more.

use std::cmp::Reverse;

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::recommend::{Class, Recommendation, recommend};
use super::vm::VpaClock;
use crate::insights::forecast::trend::Outlook as Verdict;
use crate::insights::outlook::{HostOutlook, Outlook, VmOutlook};

/// What the VMs are sorted by, largest first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SortBy {
    /// vCPUs, then memory, that could be reclaimed.
    #[default]
    ReclaimableVcpus,
    ReclaimableMemory,
    Name,
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RecommendationsQuery {
    /// Only the hosts with this `host` tag.
    pub host: Option<String>,
    pub sort: Option<SortBy>,
    /// At most this many VMs (default 100, at most 10,000).
    pub limit: Option<usize>,
}

/// A VM, with what it has.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct VmRecommendation {
    pub host: String,
    pub uuid: String,
    pub name: String,
    pub cpu_count: u32,
    pub memory_max_kb: u64,
    /// None while it is learning (less than two CPU samples a minute apart).
    pub recommendation: Option<Recommendation>,
    pub forecasts: Vec<Forecast>,
}

/// One resource's forecast.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Forecast {
    /// `memory`, `disk:<device>`, `fs:<mountpoint>` or `committed_memory`.
    pub resource: String,
    /// Bytes.
    pub used: f64,
    pub capacity: f64,
    pub growth_per_hour: f64,
    /// None: not growing (or not within the horizon).
    pub seconds_to_full: Option<f64>,
    /// The 80 % interval; the upper bound none when the slower growth would not fill it.
    pub seconds_to_full_lower: Option<f64>,
    pub seconds_to_full_upper: Option<f64>,
}

/// The vCPUs and memory that could be reclaimed from the over-provisioned VMs, and that the
/// under-provisioned ones need.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct Totals {
    pub vms: usize,
    pub vms_recommended: usize,
    pub over_provisioned: usize,
    pub right_sized: usize,
    pub under_provisioned: usize,
    pub reclaimable_vcpus: u64,
    pub reclaimable_memory_gib: f64,
    pub vcpus_needed: u64,
    pub memory_needed_gib: f64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HostRecommendations {
    pub host: String,
    pub totals: Totals,
    pub forecasts: Vec<Forecast>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Recommendations {
    pub fleet: Totals,
    pub hosts: Vec<HostRecommendations>,
    /// Sorted as asked, at most `limit`.
    pub vms: Vec<VmRecommendation>,
}

pub fn forecasts(vm: &crate::insights::forecast::Forecasts) -> Vec<Forecast> {
    let with = |r: &crate::insights::forecast::Resource, v: &Verdict| Forecast {
        resource: r.name.to_string(),
        used: v.used,
        capacity: v.capacity,
        growth_per_hour: v.growth_per_hour,
        seconds_to_full: v.to_full.map(|f| f.seconds),
        seconds_to_full_lower: v.to_full.map(|f| f.lower),
        seconds_to_full_upper: v.to_full.and_then(|f| f.upper),
    };
    let resources = vm.resources.iter();
    resources
        .filter_map(|r| Some(with(r, r.last.as_ref()?)))
        .collect()
}

pub fn vm_recommendation(
    host: &HostOutlook,
    uuid: u128,
    vm: &VmOutlook,
    clock: VpaClock,
) -> VmRecommendation {
    VmRecommendation {
        host: host.host.to_string(),
        uuid: Uuid::from_u128(uuid).to_string(),
        name: vm.name.to_string(),
        cpu_count: vm.cpu_count,
        memory_max_kb: vm.memory_max_kb,
        recommendation: recommend(&vm.rightsizing, vm.cpu_count, vm.memory_max_kb, clock),
        forecasts: forecasts(&vm.forecasts),
    }
}

impl Totals {
    fn add(&mut self, vm: &VmRecommendation) {
        self.vms += 1;
        let Some(r) = &vm.recommendation else {
            return;
        };
        self.vms_recommended += 1;
        match r.class {
            Class::OverProvisioned => self.over_provisioned += 1,
            Class::RightSized => self.right_sized += 1,
            Class::UnderProvisioned => self.under_provisioned += 1,
        }
        let gib = |mib: i64| mib as f64 / 1024.0;
        let cpu = r.cpu.reclaimable;
        let memory = r.memory.map_or(0, |m| m.reclaimable);
        self.reclaimable_vcpus += cpu.max(0) as u64;
        self.vcpus_needed += (-cpu).max(0) as u64;
        self.reclaimable_memory_gib += gib(memory.max(0));
        self.memory_needed_gib += gib((-memory).max(0));
    }

    fn merge(&mut self, other: &Totals) {
        self.vms += other.vms;
        self.vms_recommended += other.vms_recommended;
        self.over_provisioned += other.over_provisioned;
        self.right_sized += other.right_sized;
        self.under_provisioned += other.under_provisioned;
        self.reclaimable_vcpus += other.reclaimable_vcpus;
        self.reclaimable_memory_gib += other.reclaimable_memory_gib;
        self.vcpus_needed += other.vcpus_needed;
        self.memory_needed_gib += other.memory_needed_gib;
    }
}

/// The present VMs of the hosts asked for, their totals and the fleet's.
pub fn recommendations(
    outlook: &Outlook,
    query: &RecommendationsQuery,
    clock: VpaClock,
) -> Recommendations {
    let mut all = Recommendations {
        fleet: Totals::default(),
        hosts: Vec::new(),
        vms: Vec::new(),
    };
    let hosts = outlook.hosts.values();
    for host in hosts.filter(|h| query.host.as_deref().is_none_or(|q| *h.host == *q)) {
        let mut totals = Totals::default();
        for (uuid, vm) in host.vms.iter().filter(|(_, vm)| vm.present) {
            let vm = vm_recommendation(host, *uuid, vm, clock);
            totals.add(&vm);
            all.vms.push(vm);
        }
        all.fleet.merge(&totals);
        all.hosts.push(HostRecommendations {
            host: host.host.to_string(),
            totals,
            forecasts: forecasts(&host.committed),
        });
    }
    all.hosts.sort_by(|a, b| a.host.cmp(&b.host));
    sort(&mut all.vms, query.sort.unwrap_or_default());
    all.vms.truncate(query.limit.unwrap_or(100).min(10_000));
    all
}

fn sort(vms: &mut [VmRecommendation], by: SortBy) {
    let reclaim = |vm: &VmRecommendation| {
        let r = vm.recommendation.as_ref();
        let cpu = r.map_or(i64::MIN, |r| r.cpu.reclaimable);
        let memory = r.and_then(|r| r.memory).map_or(i64::MIN, |m| m.reclaimable);
        (cpu, memory)
    };
    match by {
        SortBy::ReclaimableVcpus => vms.sort_by_key(|vm| (Reverse(reclaim(vm)), vm.uuid.clone())),
        SortBy::ReclaimableMemory => vms.sort_by_key(|vm| {
            let (cpu, memory) = reclaim(vm);
            (Reverse((memory, cpu)), vm.uuid.clone())
        }),
        SortBy::Name => vms.sort_by(|a, b| a.name.cmp(&b.name).then(a.uuid.cmp(&b.uuid))),
    }
}
