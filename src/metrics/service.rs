//! The service's own health, from the actors' statuses: each host's cycles and bulk stats
//! calls, the lines through the pipeline, and each actor's restarts.

use std::fmt;

use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::registry::Unit;

use super::family::{Column, NO_LABELS, Spec, emit, emit_histograms, emit_table, flag, host_name};
use crate::actors::status::{ConnectionState, Durations, HostStatus, TelemetryStatus};

const HOSTS: [Column<HostStatus>; 11] = [
    (
        Spec::gauge(
            "vmtelemetry_host_up",
            None,
            "1 while the host is connected.",
        ),
        |h| Some(flag(h.connection == ConnectionState::Connected)),
    ),
    (
        Spec::counter("vmtelemetry_collections", None, "Poll cycles completed."),
        |h| Some(h.total_collections as f64),
    ),
    (
        Spec::counter(
            "vmtelemetry_collection_errors",
            None,
            "Poll cycles failed (connection, list or read).",
        ),
        |h| Some(h.total_errors as f64),
    ),
    (
        Spec::gauge(
            "vmtelemetry_last_collection_duration",
            Some(Unit::Seconds),
            "Wall time of the last successful cycle.",
        ),
        |h| h.last_collection_duration_sec,
    ),
    (
        Spec::counter(
            "vmtelemetry_stats_calls",
            None,
            "Cycles that made the bulk stats calls.",
        ),
        |h| Some(h.stats_collections as f64),
    ),
    (
        Spec::counter(
            "vmtelemetry_stats_call_errors",
            None,
            "Cycles in which a bulk stats call failed or was left behind.",
        ),
        |h| Some(h.stats_errors as f64),
    ),
    (
        Spec::gauge(
            "vmtelemetry_stats_calls_left_behind",
            None,
            "Bulk stats calls given up on after libvirt_timeout that have not returned yet.",
        ),
        |h| Some(h.stats_calls_left_behind as f64),
    ),
    (
        Spec::gauge(
            "vmtelemetry_last_stats_duration",
            Some(Unit::Seconds),
            "Wall time of the last bulk stats calls.",
        ),
        |h| h.last_stats_duration_sec,
    ),
    (
        Spec::gauge("vmtelemetry_vms", None, "VMs of the host's last cycle."),
        |h| Some(h.vms_monitored as f64),
    ),
    (
        Spec::counter(
            "vmtelemetry_domains_vanished",
            None,
            "Domains listed but gone when read.",
        ),
        |h| Some(h.domains_vanished as f64),
    ),
    (
        Spec::counter(
            "vmtelemetry_overrun_ticks",
            None,
            "Poll ticks that found the last cycle running or just ended: cycles come less often.",
        ),
        |h| Some(h.overrun_ticks as f64),
    ),
];

type HostDurations = fn(&HostStatus) -> &Durations;

const HOST_DURATIONS: [(Spec<'static>, HostDurations); 2] = [
    (
        Spec::histogram(
            "vmtelemetry_host_cycle_duration",
            "Wall time of each successful cycle (list, info per domain, the host's own calls).",
        ),
        |h| &h.cycle_durations,
    ),
    (
        Spec::histogram(
            "vmtelemetry_host_stats_duration",
            "Wall time of the bulk stats calls of each cycle that made them.",
        ),
        |h| &h.stats_durations,
    ),
];

const PIPELINE: [Column<TelemetryStatus>; 10] = [
    (
        Spec::counter(
            "vmtelemetry_lines_produced",
            None,
            "Lines of line protocol encoded.",
        ),
        |s| Some(s.features.lines_produced as f64),
    ),
    (
        Spec::counter(
            "vmtelemetry_lines_unencodable",
            None,
            "Lines that line protocol cannot carry, refused before the writer.",
        ),
        |s| Some(s.features.unencodable_lines as f64),
    ),
    (
        Spec::counter(
            "vmtelemetry_lines_written",
            None,
            "Lines InfluxDB accepted.",
        ),
        |s| Some(s.writer.total_metrics_written as f64),
    ),
    (
        Spec::counter(
            "vmtelemetry_lines_dropped",
            None,
            "Lines lost because the buffer was full or could not keep them.",
        ),
        |s| Some(s.writer.dropped_lines as f64),
    ),
    (
        Spec::counter(
            "vmtelemetry_lines_refused",
            None,
            "Lines InfluxDB refused as invalid.",
        ),
        |s| Some(s.writer.rejected_lines as f64),
    ),
    (
        Spec::gauge(
            "vmtelemetry_lines_queued",
            None,
            "Lines held (spool or memory), the batch in flight included.",
        ),
        |s| Some(s.writer.queue_depth as f64),
    ),
    (
        Spec::counter("vmtelemetry_write_retries", None, "Write requests retried."),
        |s| Some(s.writer.write_retries as f64),
    ),
    (
        Spec::counter(
            "vmtelemetry_write_failures",
            None,
            "Write requests that failed, for any reason.",
        ),
        |s| Some(s.writer.failed_writes as f64),
    ),
    (
        Spec::gauge(
            "vmtelemetry_writer_auth_failing",
            None,
            "1 while InfluxDB refuses the token.",
        ),
        |s| Some(flag(s.writer.auth_failing)),
    ),
    (
        Spec::gauge(
            "vmtelemetry_start_time",
            Some(Unit::Seconds),
            "When the service started, in seconds since the Unix epoch.",
        ),
        |s| Some(s.started_at.timestamp_millis() as f64 / 1e3),
    ),
];

const RESTARTS: Spec = Spec::counter(
    "vmtelemetry_actor_restarts",
    None,
    "Restarts of each actor (after a failure, a panic or on request).",
);
const PANICS: Spec = Spec::counter(
    "vmtelemetry_actor_panics",
    None,
    "Panics caught in each actor, each followed by a restart.",
);

pub(super) fn write(encoder: &mut DescriptorEncoder, status: &TelemetryStatus) -> fmt::Result {
    let hosts = || status.hosts.iter().map(|h| (host_labels(h), h));
    emit_table(encoder, &HOSTS, hosts)?;
    for (spec, durations) in &HOST_DURATIONS {
        let samples = status
            .hosts
            .iter()
            .map(|h| (host_labels(h), &durations(h).0));
        emit_histograms(encoder, spec, samples)?;
    }
    emit_table(encoder, &PIPELINE, || std::iter::once((NO_LABELS, status)))?;
    let actors: Vec<(String, u64, u64)> = status
        .hosts
        .iter()
        .map(|h| (format!("host:{}", h.uri), h.restarts, h.panics))
        .chain([
            (
                "features".to_owned(),
                status.features.restarts,
                status.features.panics,
            ),
            (
                "writer".to_owned(),
                status.writer.restarts,
                status.writer.panics,
            ),
        ])
        .collect();
    let each = |count: fn(&(String, u64, u64)) -> u64| {
        actors
            .iter()
            .map(move |a| ([("actor", a.0.as_str())], count(a) as f64))
    };
    emit(encoder, &RESTARTS, each(|a| a.1))?;
    emit(encoder, &PANICS, each(|a| a.2))
}

fn host_labels(h: &HostStatus) -> [(&'static str, &str); 2] {
    [("host", host_name(h)), ("uri", h.uri.as_str())]
}
