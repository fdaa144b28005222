//! Each host as its last cycle read it (`host_metrics`), labelled `host`: while a host cannot be
//! read its figures stay, and `vmtelemetry_host_sample_age_seconds` grows.

use std::fmt;

use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::registry::Unit;

use super::family::{FieldOf, Spec, age_seconds, emit, emit_fields};
use crate::influx::schema::host_metrics as schema;
use crate::sample::NodeSample;
use crate::vms::NodeSnapshot;

const AGE: Spec = Spec::gauge(
    "vmtelemetry_host_sample_age",
    Some(Unit::Seconds),
    "Seconds since the host was last read (host_metrics).",
);

const FIELDS: [FieldOf<NodeSample>; 9] = [
    (schema::CPUS, |n| Some(f64::from(n.cpus?))),
    (schema::MEMORY_TOTAL_KB, |n| Some(n.memory_total_kb? as f64)),
    (schema::MEMORY_FREE_KB, |n| Some(n.memory_free_kb? as f64)),
    (schema::DOMAINS, |n| Some(n.domains as f64)),
    (schema::DOMAINS_RUNNING, |n| Some(n.domains_running as f64)),
    (schema::DOMAINS_PAUSED, |n| Some(n.domains_paused as f64)),
    (schema::DOMAINS_STOPPED, |n| Some(n.domains_stopped as f64)),
    (schema::DOMAINS_OTHER, |n| Some(n.domains_other as f64)),
    (schema::COLLECTION_DURATION_SEC, |n| {
        Some(n.collection_duration_sec)
    }),
];

pub(super) fn write(
    encoder: &mut DescriptorEncoder,
    nodes: &[NodeSnapshot],
    now_ns: i64,
) -> fmt::Result {
    let hosts = || nodes.iter().map(|n| ([("host", &*n.host)], &n.node));
    emit_fields(encoder, schema::MEASUREMENT, &FIELDS, hosts)?;
    let age = hosts().map(|(host, node)| (host, age_seconds(now_ns, node.timestamp_ns)));
    emit(encoder, &AGE, age)
}
