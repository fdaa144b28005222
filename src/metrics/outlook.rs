//! The outlook (`insights = true`): each resource's forecast (`vm_forecasts`, labelled
//! `resource`; a host's committed memory by `host` and `resource` only, as in InfluxDB) and each
//! VM's right-sizing (`vm_recommendations`, its `class` a label of one gauge), as they would be
//! written now. A value the outlook does not have now (no growth, no recommendation yet, no
//! memory figures for a guest without balloon statistics) is left out, as in InfluxDB.

use std::fmt;

use prometheus_client::encoding::DescriptorEncoder;

use super::family::{FieldOf, Spec, emit, emit_fields, flag};
use crate::influx::schema::{vm_forecasts as forecasts, vm_recommendations as recommendations};
use crate::insights::forecast::trend::Outlook;
use crate::insights::rightsizing::recommend::Recommendation;
use crate::insights::scrape::{HostOutlookScrape, VmOutlookScrape};

const CLASS: Spec = Spec::gauge(
    "vmtelemetry_vm_recommendations_class",
    None,
    "1 for every VM with a recommendation, with vm_recommendations class (over_provisioned, right_sized or under_provisioned) as a label.",
);

const FORECASTS: [FieldOf<Outlook>; 7] = [
    (forecasts::USED, |o| Some(o.used)),
    (forecasts::CAPACITY, |o| Some(o.capacity)),
    (forecasts::GROWTH_PER_HOUR, |o| Some(o.growth_per_hour)),
    (forecasts::SECONDS_TO_FULL, |o| Some(o.to_full?.seconds)),
    (forecasts::SECONDS_TO_FULL_LOWER, |o| Some(o.to_full?.lower)),
    (forecasts::SECONDS_TO_FULL_UPPER, |o| o.to_full?.upper),
    (forecasts::GROWING, |o| Some(flag(o.to_full.is_some()))),
];

const RECOMMENDATIONS: [FieldOf<Recommendation>; 12] = [
    (recommendations::CPU[0], |r| Some(r.cpu.current as f64)),
    (recommendations::CPU[1], |r| Some(r.cpu.lower as f64)),
    (recommendations::CPU[2], |r| Some(r.cpu.target as f64)),
    (recommendations::CPU[3], |r| Some(r.cpu.upper as f64)),
    (recommendations::MEMORY[0], |r| {
        Some(r.memory?.current as f64)
    }),
    (recommendations::MEMORY[1], |r| Some(r.memory?.lower as f64)),
    (recommendations::MEMORY[2], |r| {
        Some(r.memory?.target as f64)
    }),
    (recommendations::MEMORY[3], |r| Some(r.memory?.upper as f64)),
    (recommendations::RECLAIMABLE_VCPUS, |r| {
        Some(r.cpu.reclaimable as f64)
    }),
    (recommendations::RECLAIMABLE_MEMORY_MIB, |r| {
        Some(r.memory?.reclaimable as f64)
    }),
    (recommendations::HISTORY_HOURS, |r| Some(r.history_hours)),
    (recommendations::CONFIDENCE_DAYS, |r| {
        Some(r.confidence_days)
    }),
];

/// A VM with its host, and its `uuid` and `name` labels.
type VmOf<'a> = (
    &'a HostOutlookScrape,
    &'a VmOutlookScrape,
    [(&'static str, &'a str); 2],
);

/// `host`, `resource`, and `uuid` and `name` for a VM's.
type ResourceLabels<'a> = ([(&'static str, &'a str); 2], &'a [(&'static str, &'a str)]);

pub(super) fn write(encoder: &mut DescriptorEncoder, hosts: &[HostOutlookScrape]) -> fmt::Result {
    let vms: Vec<VmOf> = (hosts.iter())
        .flat_map(|h| {
            (h.vms.iter()).map(move |vm| (h, vm, [("uuid", &*vm.uuid), ("name", &*vm.name)]))
        })
        .collect();
    let resources = || {
        let committed = hosts.iter().flat_map(|h| {
            let labels = |name| [("host", &*h.host), ("resource", name)];
            (h.committed.iter()).map(move |(name, o)| ((labels(name), [].as_slice()), o))
        });
        let of_vms = vms.iter().flat_map(|(h, vm, labels)| {
            (vm.forecasts.iter()).map(move |(name, o)| {
                let labels: ResourceLabels = ([("host", &*h.host), ("resource", name)], labels);
                (labels, o)
            })
        });
        committed.chain(of_vms)
    };
    emit_fields(encoder, forecasts::MEASUREMENT, &FORECASTS, resources)?;
    let recommended = || {
        vms.iter().filter_map(|(h, vm, labels)| {
            let labels = ([("host", &*h.host)], *labels);
            Some((labels, vm.recommendation.as_ref()?))
        })
    };
    let class = recommended().map(|(l, r)| ((l, [("class", r.class.name())]), 1.0));
    emit(encoder, &CLASS, class)?;
    emit_fields(
        encoder,
        recommendations::MEASUREMENT,
        &RECOMMENDATIONS,
        recommended,
    )
}
