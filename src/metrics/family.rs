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

/// A field's name in base units: its base, the unit's suffix, and the factor to it (`_ns` in
/// seconds, `_kb` and `_mib` in bytes, `_mib_per_sec` in bytes per second, `_per_sec` and `_sec`
/// spelt out, `_hours` and `_days` in seconds, `_per_hour` per second).
pub(super) fn base_unit(field: &str) -> (&str, &'static str, f64) {
    const MIB: f64 = 1024.0 * 1024.0;
    if let Some(base) = field.strip_suffix("_mib") {
        (base, "_bytes", MIB)
    } else if let Some(base) = field.strip_suffix("_hours") {
        (base, "_seconds", 3600.0)
    } else if let Some(base) = field.strip_suffix("_days") {
        (base, "_seconds", 86_400.0)
    } else if let Some(base) = field.strip_suffix("_per_hour") {
        (base, "_per_second", 1.0 / 3600.0)
    } else if let Some(base) = field.strip_suffix("_ns") {
        (base, "_seconds", 1e-9)
    } else if let Some(base) = field.strip_suffix("_kb") {
        (base, "_bytes", 1024.0)
    } else if let Some(base) = field.strip_suffix("_mib_per_sec") {
        (base, "_bytes_per_second", MIB)
    } else if let Some(base) = field.strip_suffix("_per_sec") {
        (base, "_per_second", 1.0)
    } else if let Some(base) = field.strip_suffix("_sec") {
        (base, "_seconds", 1.0)
    } else {
        (field, "", 1.0)
    }
}

/// A family read off items of type `T`: its spec, and its value for one item (None: no sample).
pub(super) type Column<T> = (Spec<'static>, fn(&T) -> Option<f64>);

/// Writes every family of `table`, each with one sample per item of `items()` that has a value.
pub(super) fn emit_table<'a, T: 'a, L: EncodeLabelSet, I: Iterator<Item = (L, &'a T)>>(
    encoder: &mut DescriptorEncoder,
    table: &[Column<T>],
    items: impl Fn() -> I,
) -> fmt::Result {
    for (spec, value) in table {
        let samples = items().filter_map(|(labels, item)| Some((labels, value(item)?)));
        emit(encoder, spec, samples)?;
    }
    Ok(())
}

/// A measurement's field as a family: `vmtelemetry_<measurement>_<field>` in base units.
pub(super) struct Named {
    pub name: String,
    pub help: String,
    pub kind: MetricType,
    /// The factor from the field's unit to the base unit.
    pub scale: f64,
}

impl Named {
    pub fn new(measurement: &str, field: &str, kind: MetricType) -> Self {
        let (base, suffix, scale) = base_unit(field);
        Named {
            name: format!("vmtelemetry_{measurement}_{base}{suffix}"),
            help: format!("{measurement} {field}, as written to InfluxDB (in base units)."),
            kind,
            scale,
        }
    }

    pub fn spec(&self) -> Spec<'_> {
        Spec {
            name: &self.name,
            help: &self.help,
            unit: None,
            kind: self.kind,
        }
    }
}

/// A measurement's field read off items of type `T` (None: no sample).
pub(super) type FieldOf<T> = (&'static str, fn(&T) -> Option<f64>);

/// Writes each of `measurement`'s `fields` as a gauge (`Named`), with one sample per item of
/// `items()` that has a value.
pub(super) fn emit_fields<'a, T: 'a, L: EncodeLabelSet, I: Iterator<Item = (L, &'a T)>>(
    encoder: &mut DescriptorEncoder,
    measurement: &str,
    fields: &[FieldOf<T>],
    items: impl Fn() -> I,
) -> fmt::Result {
    for (field, value) in fields {
        let named = Named::new(measurement, field, MetricType::Gauge);
        let samples =
            items().filter_map(|(labels, item)| Some((labels, value(item)? * named.scale)));
        emit(encoder, &named.spec(), samples)?;
    }
    Ok(())
}

/// Seconds from `t_ns` to `now_ns` (never below 0).
pub(super) fn age_seconds(now_ns: i64, t_ns: i64) -> f64 {
    now_ns.saturating_sub(t_ns).max(0) as f64 / 1e9
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
