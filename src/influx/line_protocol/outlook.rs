//! The outlook's two measurements: `vm_forecasts` and `vm_recommendations`.

use super::EncodeError;
use super::escape::tag_into;
use super::line::LineWriter;
use super::lines::Lines;
use super::tags::VmTags;
use crate::influx::schema::{vm_forecasts, vm_recommendations};

/// One resource's forecast.
pub struct ForecastLine<'a> {
    pub resource: &'a str,
    pub used: f64,
    pub capacity: f64,
    pub growth_per_hour: f64,
    /// (seconds, lower, upper) while growing.
    pub to_full: Option<(f64, f64, Option<f64>)>,
    pub timestamp_ns: i64,
}

/// Whole vCPUs or MiB: current, lower, target, upper.
pub struct RecommendationLine {
    pub class: &'static str,
    pub cpu: [u64; 4],
    pub memory: Option<[u64; 4]>,
    pub reclaimable_vcpus: i64,
    pub reclaimable_memory_mib: Option<i64>,
    pub history_hours: f64,
    pub confidence_days: f64,
    pub timestamp_ns: i64,
}

/// `vm_forecasts,<VM tags with resource> used=..,capacity=..,growth_per_hour=..,
/// seconds_to_full=..,…,growing=..i <ns>`; with `tags` None, the host's: `host=..,resource=..`.
pub fn vm_forecast(
    lines: &mut Lines,
    tags: Option<&VmTags>,
    host: &str,
    f: &ForecastLine,
) -> Result<(), EncodeError> {
    let mut line = LineWriter::tagged(lines, vm_forecasts::MEASUREMENT, |t| match tags {
        Some(tags) => tags.write(t, Some((vm_forecasts::RESOURCE, f.resource))),
        None => tag_into(t, vm_forecasts::HOST, host, &"-")
            .and_then(|()| tag_into(t, vm_forecasts::RESOURCE, f.resource, &"-")),
    })?;
    line.float(vm_forecasts::USED, f.used);
    line.float(vm_forecasts::CAPACITY, f.capacity);
    line.float(vm_forecasts::GROWTH_PER_HOUR, f.growth_per_hour);
    if let Some((seconds, lower, upper)) = f.to_full {
        line.float(vm_forecasts::SECONDS_TO_FULL, seconds);
        line.float(vm_forecasts::SECONDS_TO_FULL_LOWER, lower);
        if let Some(upper) = upper {
            line.float(vm_forecasts::SECONDS_TO_FULL_UPPER, upper);
        }
    }
    line.int(vm_forecasts::GROWING, i64::from(f.to_full.is_some()));
    line.finish(f.timestamp_ns);
    Ok(())
}

/// `vm_recommendations,<VM tags> class="..",cpu_current=..i,…,memory_upper_mib=..i,
/// reclaimable_vcpus=..i,reclaimable_memory_mib=..i,history_hours=..,confidence_days=.. <ns>`
pub fn vm_recommendation(
    lines: &mut Lines,
    tags: &VmTags,
    r: &RecommendationLine,
) -> Result<(), EncodeError> {
    let mut line = LineWriter::tagged(lines, vm_recommendations::MEASUREMENT, |t| {
        tags.write(t, None)
    })?;
    let int = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    line.constant_string(vm_recommendations::CLASS, r.class);
    for (field, value) in vm_recommendations::CPU.into_iter().zip(r.cpu) {
        line.int(field, int(value));
    }
    for (field, value) in vm_recommendations::MEMORY
        .into_iter()
        .zip(r.memory.iter().flatten())
    {
        line.int(field, int(*value));
    }
    line.int(vm_recommendations::RECLAIMABLE_VCPUS, r.reclaimable_vcpus);
    if let Some(mib) = r.reclaimable_memory_mib {
        line.int(vm_recommendations::RECLAIMABLE_MEMORY_MIB, mib);
    }
    line.float(vm_recommendations::HISTORY_HOURS, r.history_hours);
    line.float(vm_recommendations::CONFIDENCE_DAYS, r.confidence_days);
    line.finish(r.timestamp_ns);
    Ok(())
}
