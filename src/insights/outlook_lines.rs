//! One host's outlook as line protocol, at its own cadence: `vm_forecasts` (every VM's
//! resources and the host's committed memory) and `vm_recommendations` (every VM with one).

use uuid::Uuid;

use super::encode::EncodedInsights;
use super::forecast::Forecasts;
use super::outlook::{HostOutlook, OutlookSettings};
use super::rightsizing::recommend::recommend;
use crate::influx::line_protocol::{
    ForecastLine, Lines, RecommendationLine, VmTags, vm_forecast, vm_recommendation,
};

/// The lines due at the host's latest cycle, if any.
pub fn due_lines(
    host: &mut HostOutlook,
    settings: &OutlookSettings,
    tags: &mut VmTags,
) -> EncodedInsights {
    let mut encoded = EncodedInsights::default();
    let clock = settings.clock;
    let now = host.timestamp_ns;
    let due = |last: Option<i64>, every: std::time::Duration| {
        let every = i64::try_from(every.as_nanos()).unwrap_or(i64::MAX);
        last.is_none_or(|last| now < last || now - last >= every)
    };
    let forecasts = due(host.written.forecasts_ns, settings.forecast_every);
    let recommendations = due(host.written.recommendations_ns, settings.recommend_every);
    if forecasts {
        host.written.forecasts_ns = Some(now);
        let lines = &mut encoded.lines;
        encoded.unencodable += forecast_lines(lines, None, &host.host, &host.committed, now);
    }
    if recommendations {
        host.written.recommendations_ns = Some(now);
    }
    if !(forecasts || recommendations) {
        return encoded;
    }
    for (uuid, vm) in host.vms.iter().filter(|(_, vm)| vm.present) {
        if tags
            .set(&host.host, vm.id, &vm.name, &Uuid::from_u128(*uuid))
            .is_err()
        {
            encoded.unencodable += 1;
            continue;
        }
        if forecasts {
            let lines = &mut encoded.lines;
            encoded.unencodable +=
                forecast_lines(lines, Some(tags), &host.host, &vm.forecasts, now);
        }
        let recommendation = recommendations
            .then(|| recommend(&vm.rightsizing, vm.cpu_count, vm.memory_max_kb, clock))
            .flatten();
        if let Some(r) = recommendation {
            let line = RecommendationLine {
                class: r.class.name(),
                cpu: [r.cpu.current, r.cpu.lower, r.cpu.target, r.cpu.upper],
                memory: r.memory.map(|m| [m.current, m.lower, m.target, m.upper]),
                reclaimable_vcpus: r.cpu.reclaimable,
                reclaimable_memory_mib: r.memory.map(|m| m.reclaimable),
                history_hours: r.history_hours,
                confidence_days: r.confidence_days,
                timestamp_ns: now,
            };
            if vm_recommendation(&mut encoded.lines, tags, &line).is_err() {
                encoded.unencodable += 1;
            }
        }
    }
    encoded
}

/// The lines of `forecasts`' resources; returns how many could not be encoded.
fn forecast_lines(
    lines: &mut Lines,
    tags: Option<&VmTags>,
    host: &str,
    forecasts: &Forecasts,
    now: i64,
) -> u64 {
    let mut failed = 0;
    for resource in &forecasts.resources {
        let Some(outlook) = &resource.last else {
            continue;
        };
        let line = ForecastLine {
            resource: &resource.name,
            used: outlook.used,
            capacity: outlook.capacity,
            growth_per_hour: outlook.growth_per_hour,
            to_full: outlook.to_full.map(|f| (f.seconds, f.lower, f.upper)),
            timestamp_ns: now,
        };
        if vm_forecast(lines, tags, host, &line).is_err() {
            failed += 1;
        }
    }
    failed
}
