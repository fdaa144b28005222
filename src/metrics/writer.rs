//! The writer's figures beyond its line counts: failed requests by class, the time InfluxDB
//! takes to answer, and the durable spool's size, room and troubles.

use std::fmt;

use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::MetricType;
use serde::Serialize;
use serde_json::Value;

use super::family::{NO_LABELS, Spec, emit, emit_histograms, flag};
use crate::actors::status::{SpoolState, WriterStatus};

const FAILURES: Spec = Spec::counter(
    "vmtelemetry_influx_failures",
    None,
    "Write requests that failed, by class: transient (no answer, 5xx, 429), auth (401, 403), refused (400, 422; InfluxDB 3: 422), too_large (413), database_missing.",
);

const WRITE_DURATIONS: Spec = Spec::histogram(
    "vmtelemetry_write_duration",
    "Time from sending a batch to InfluxDB's answer (or the request's failure).",
);

const STATE: Spec = Spec::gauge(
    "vmtelemetry_spool_state",
    None,
    "1 for the spool's state: ok, full (its last commit dropped its oldest lines) or failing (its file closed, lines held in memory).",
);

/// The spool's figures that only grow; the others are levels.
const SPOOL_COUNTERS: [&str; 6] = [
    "evicted_lines",
    "errors",
    "reopens",
    "damaged_files",
    "salvaged_lines",
    "empty_files",
];

pub(super) fn write(encoder: &mut DescriptorEncoder, writer: &WriterStatus) -> fmt::Result {
    let failures = numbers(&writer.failures)
        .into_iter()
        .map(|(class, count)| ([("class", class)], count));
    emit(encoder, &FAILURES, failures)?;
    emit_histograms(
        encoder,
        &WRITE_DURATIONS,
        [(NO_LABELS, &writer.write_durations.0)],
    )?;
    // Without a spool (lines in memory only), no spool family has a sample.
    let Some(spool) = &writer.spool else {
        return Ok(());
    };
    let states = [SpoolState::Ok, SpoolState::Full, SpoolState::Failing].map(|state| {
        let name = serde_json::to_value(state).unwrap_or_default();
        let name = name.as_str().unwrap_or_default().to_owned();
        ([("state", name)], flag(spool.state == state))
    });
    emit(encoder, &STATE, states)?;
    // Every figure of `SpoolStatus` under its own name: the status's field docs say what each is.
    for (field, value) in numbers(spool) {
        let kind = if SPOOL_COUNTERS.contains(&field.as_str()) {
            MetricType::Counter
        } else {
            MetricType::Gauge
        };
        let spec = Spec {
            name: &format!("vmtelemetry_spool_{field}"),
            help: &format!(
                "The spool's {field}, as writer.spool.{field} in /api/telemetry/status."
            ),
            unit: None,
            kind,
        };
        emit(encoder, &spec, [(NO_LABELS, value)])?;
    }
    Ok(())
}

/// The numeric fields of a status, by name.
fn numbers(status: &impl Serialize) -> Vec<(String, f64)> {
    match serde_json::to_value(status) {
        Ok(Value::Object(fields)) => fields
            .into_iter()
            .filter_map(|(name, value)| Some((name, value.as_f64()?)))
            .collect(),
        _ => Vec::new(),
    }
}
