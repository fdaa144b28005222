//! Writing one family: its descriptor, then one sample per label set.

use std::fmt;

use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabelSet, EncodeMetric, MetricEncoder, NoLabelSet,
};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Unit;

use crate::actors::status::HostStatus;
use crate::vms::VmSnapshot;

/// What a family is: its name without unit or `_total`, which `prometheus-client` appends.
pub(super) struct Spec<'a> {
    pub name: &'a str,
    pub help: &'a str,
    pub unit: Option<Unit>,
    pub kind: MetricType,
}

impl Spec<'static> {
    pub const fn gauge(name: &'static str, unit: Option<Unit>, help: &'static str) -> Self {
        Spec {
            name,
            help,
            unit,
            kind: MetricType::Gauge,
        }
    }

    pub const fn histogram(name: &'static str, help: &'static str) -> Self {
        Spec {
            name,
            help,
            unit: Some(Unit::Seconds),
            kind: MetricType::Histogram,
        }
    }

    pub const fn counter(name: &'static str, unit: Option<Unit>, help: &'static str) -> Self {
        Spec {
            name,
            help,
            unit,
            kind: MetricType::Counter,
        }
    }
}

/// An extended field's name in base units: its base, the unit's suffix, and the factor to it
/// (`_ns` in seconds, `_kb` in bytes, `_mib_per_sec` in bytes per second, `_per_sec` and `_sec`
/// spelt out).
pub(super) fn base_unit(field: &str) -> (&str, &'static str, f64) {
    if let Some(base) = field.strip_suffix("_ns") {
        (base, "_seconds", 1e-9)
    } else if let Some(base) = field.strip_suffix("_kb") {
        (base, "_bytes", 1024.0)
    } else if let Some(base) = field.strip_suffix("_mib_per_sec") {
        (base, "_bytes_per_second", 1024.0 * 1024.0)
    } else if let Some(base) = field.strip_suffix("_per_sec") {
        (base, "_per_second", 1.0)
    } else if let Some(base) = field.strip_suffix("_sec") {
        (base, "_seconds", 1.0)
    } else {
        (field, "", 1.0)
    }
}

/// A yes or no as a gauge's 1 or 0.
pub(super) fn flag(yes: bool) -> f64 {
    f64::from(u8::from(yes))
}

/// A host's `host` label: its name once connected, else its URI.
pub(super) fn host_name(host: &HostStatus) -> &str {
    host.host.as_deref().unwrap_or(&host.uri)
}

/// The label set of a family's one unlabelled sample.
pub(super) const NO_LABELS: [(&str, &str); 0] = [];

/// Writes `spec` and its `samples`; a counter's value must never go down.
pub(super) fn emit<L: EncodeLabelSet>(
    encoder: &mut DescriptorEncoder,
    spec: &Spec<'_>,
    samples: impl IntoIterator<Item = (L, f64)>,
) -> fmt::Result {
    let counter = spec.kind == MetricType::Counter;
    emit_each(encoder, spec, samples, |mut sample, value| {
        if counter {
            sample.encode_counter::<NoLabelSet, _, f64>(&value, None)
        } else {
            sample.encode_gauge(&value)
        }
    })
}

/// Writes the histogram `spec` and one histogram per label set.
pub(super) fn emit_histograms<'h, L: EncodeLabelSet>(
    encoder: &mut DescriptorEncoder,
    spec: &Spec<'_>,
    samples: impl IntoIterator<Item = (L, &'h Histogram)>,
) -> fmt::Result {
    emit_each(encoder, spec, samples, |sample, histogram| {
        histogram.encode(sample)
    })
}

fn emit_each<L: EncodeLabelSet, V>(
    encoder: &mut DescriptorEncoder,
    spec: &Spec<'_>,
    samples: impl IntoIterator<Item = (L, V)>,
    mut value: impl FnMut(MetricEncoder, V) -> fmt::Result,
) -> fmt::Result {
    // prometheus-client ends every help text with a full stop of its own.
    let help = spec.help.strip_suffix('.').unwrap_or(spec.help);
    let mut metric = encoder.encode_descriptor(spec.name, help, spec.unit.as_ref(), spec.kind)?;
    for (labels, sample) in samples {
        value(metric.encode_family(&labels)?, sample)?;
    }
    Ok(())
}

/// A VM with its UUID as text, formatted once for all its families.
pub(super) struct Vm<'a> {
    pub vm: &'a VmSnapshot,
    pub uuid: String,
}

impl Vm<'_> {
    /// `host`, `uuid`, and the VM's name under `name` (the exporter's `domain`, else `name`).
    pub fn labels(&self, name: &'static str) -> [(&'static str, &str); 3] {
        [
            ("host", &self.vm.host),
            ("uuid", &self.uuid),
            (name, &self.vm.latest.name),
        ]
    }
}
