//! Every measurement as InfluxDB line protocol: the seed's two, the extended ones and
//! `host_metrics`.
//!
//! Escaping is done by InfluxDB's own builder (`influxdb-line-protocol`, from InfluxDB 3's source
//! tree). Checked against the same crate's parser, it falls short for tag values that no escape can
//! carry: a newline or a tab ends the value whatever precedes it, and a value ending in a backslash
//! is refused even when escaped. The builder would emit a corrupt or rejected line; such values are
//! refused here with an error instead.

use influxdb_line_protocol::LineProtocolBuilder;

use crate::extended::{DomainStatsSample, StatsRow};
use crate::sample::{DomainSample, MemoryFeatures, NodeSample};

/// One encoded line, ending with `\n`.
pub type Line = Vec<u8>;

/// `VMID` of a domain that is not running: libvirt gives inactive domains no id, and
/// `virsh list --all` shows them as `-`.
pub const INACTIVE_VMID: &str = "-";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EncodeError {
    #[error(
        "tag `{key}` of VM {uuid} is {value:?}: line protocol cannot carry an empty tag value, a newline, a tab or a trailing backslash"
    )]
    UnrepresentableTag {
        key: &'static str,
        value: String,
        uuid: String,
    },
    #[error("field `{field}` of VM {uuid} is {value}, beyond a signed 64-bit integer")]
    IntegerOverflow {
        field: &'static str,
        value: u64,
        uuid: String,
    },
}

/// `vm_metrics,VMID=..,host=..,name=..,uuid=.. state="..",cpu_count=..i,memory_max_kb=..i,memory_used_kb=..i,cputime_ns=..i <ns>`
pub fn vm_metrics(host: &str, domain: &DomainSample) -> Result<Line, EncodeError> {
    let integer = |field, value: u64| {
        i64::try_from(value).map_err(|_| EncodeError::IntegerOverflow {
            field,
            value,
            uuid: domain.uuid.clone(),
        })
    };
    let line = tags(
        LineProtocolBuilder::new().measurement("vm_metrics"),
        host,
        domain,
    )?
    .field("state", domain.state.as_str())
    .field("cpu_count", i64::from(domain.cpu_count))
    .field(
        "memory_max_kb",
        integer("memory_max_kb", domain.memory_max_kb)?,
    )
    .field(
        "memory_used_kb",
        integer("memory_used_kb", domain.memory_used_kb)?,
    )
    .field("cputime_ns", integer("cputime_ns", domain.cputime_ns)?)
    .timestamp(domain.timestamp_ns)
    .close_line();
    Ok(line.build())
}

/// `vm_features,<same tags> memory_rate_kb_per_sec=..,memory_angle_deg=.. <ns>`
pub fn vm_features(
    host: &str,
    domain: &DomainSample,
    features: &MemoryFeatures,
) -> Result<Line, EncodeError> {
    let line = tags(
        LineProtocolBuilder::new().measurement("vm_features"),
        host,
        domain,
    )?
    .field("memory_rate_kb_per_sec", features.memory_rate_kb_per_sec)
    .field("memory_angle_deg", features.memory_angle_deg)
    .timestamp(domain.timestamp_ns)
    .close_line();
    Ok(line.build())
}

type AfterMeasurement =
    LineProtocolBuilder<Vec<u8>, influxdb_line_protocol::builder::AfterMeasurement>;

/// The seed's tags plus `host`, in key order (InfluxDB stores series fastest that way).
fn tags(
    builder: AfterMeasurement,
    host: &str,
    domain: &DomainSample,
) -> Result<AfterMeasurement, EncodeError> {
    vm_tags(builder, host, domain.id, &domain.name, &domain.uuid, None)
}

/// `VMID`, `host`, `name`, `uuid` and the extra tag if any (`device`, `interface`, `vcpu`), in
/// key order.
fn vm_tags(
    builder: AfterMeasurement,
    host: &str,
    id: Option<u32>,
    name: &str,
    uuid: &str,
    extra: Option<(&'static str, &str)>,
) -> Result<AfterMeasurement, EncodeError> {
    let id_text;
    let vmid = match id {
        Some(n) => {
            id_text = n.to_string();
            id_text.as_str()
        }
        None => INACTIVE_VMID,
    };
    let mut pairs = vec![
        ("VMID", vmid),
        ("host", host),
        ("name", name),
        ("uuid", uuid),
    ];
    if let Some(extra) = extra {
        pairs.push(extra);
    }
    checked_tags(builder, pairs, uuid)
}

/// Refuses the values no escape can carry, then adds the tags sorted by key.
fn checked_tags(
    mut builder: AfterMeasurement,
    mut pairs: Vec<(&'static str, &str)>,
    uuid: &str,
) -> Result<AfterMeasurement, EncodeError> {
    for (key, value) in &pairs {
        if *key != "VMID"
            && (value.is_empty() || value.contains(['\n', '\t']) || value.ends_with('\\'))
        {
            return Err(EncodeError::UnrepresentableTag {
                key,
                value: (*value).to_owned(),
                uuid: uuid.to_owned(),
            });
        }
    }
    pairs.sort_by_key(|(key, _)| *key);
    for (key, value) in pairs {
        builder = builder.tag(key, value);
    }
    Ok(builder)
}

enum Value {
    Int(i64),
    Float(f64),
}

/// The fields in order; `None` when there are none (a line needs at least one).
fn with_fields(
    builder: AfterMeasurement,
    fields: &[(&str, Value)],
) -> Option<LineProtocolBuilder<Vec<u8>, influxdb_line_protocol::builder::AfterField>> {
    let ((key, value), rest) = fields.split_first()?;
    let mut builder = match value {
        Value::Int(v) => builder.field(key, *v),
        Value::Float(v) => builder.field(key, *v),
    };
    for (key, value) in rest {
        builder = match value {
            Value::Int(v) => builder.field(key, *v),
            Value::Float(v) => builder.field(key, *v),
        };
    }
    Some(builder)
}

/// One extended row (`vm_cpu`, `vm_memory`, `vm_disk`, `vm_net`): the vm_metrics tags plus the
/// row's own, its counters as integers and what was derived from them as floats. `None` when the
/// row has no field at all. A counter beyond `i64` (never seen) is left out rather than retyped.
pub fn stats_row(
    host: &str,
    id: Option<u32>,
    domain: &DomainStatsSample,
    row: &StatsRow,
    derived: &[(&'static str, f64)],
) -> Result<Option<Line>, EncodeError> {
    let builder = vm_tags(
        LineProtocolBuilder::new().measurement(row.measurement),
        host,
        id,
        &domain.name,
        &domain.uuid,
        row.key.as_ref().map(|(k, v)| (*k, v.as_str())),
    )?;
    let fields: Vec<(&str, Value)> = row
        .counters
        .iter()
        .filter_map(|(f, v)| i64::try_from(*v).ok().map(|v| (*f, Value::Int(v))))
        .chain(
            derived
                .iter()
                .filter(|(_, v)| v.is_finite())
                .map(|(f, v)| (*f, Value::Float(*v))),
        )
        .collect();
    Ok(
        with_fields(builder, &fields)
            .map(|b| b.timestamp(domain.timestamp_ns).close_line().build()),
    )
}

/// `host_metrics,host=.. cpus=..i,memory_total_kb=..i,memory_free_kb=..i,domains=..i,
/// domains_running=..i,…,collection_duration_sec=.. <ns>`
pub fn host_metrics(host: &str, node: &NodeSample) -> Result<Line, EncodeError> {
    let builder = checked_tags(
        LineProtocolBuilder::new().measurement("host_metrics"),
        vec![("host", host)],
        "-",
    )?;
    let mut fields = Vec::new();
    let int = |v: u64| Value::Int(i64::try_from(v).unwrap_or(i64::MAX));
    if let Some(cpus) = node.cpus {
        fields.push(("cpus", int(cpus.into())));
    }
    if let Some(total) = node.memory_total_kb {
        fields.push(("memory_total_kb", int(total)));
    }
    if let Some(free) = node.memory_free_kb {
        fields.push(("memory_free_kb", int(free)));
    }
    fields.push(("domains", int(node.domains)));
    fields.push(("domains_running", int(node.domains_running)));
    fields.push(("domains_paused", int(node.domains_paused)));
    fields.push(("domains_stopped", int(node.domains_stopped)));
    fields.push(("domains_other", int(node.domains_other)));
    fields.push((
        "collection_duration_sec",
        Value::Float(node.collection_duration_sec),
    ));
    let line = with_fields(builder, &fields).expect("host_metrics always has fields");
    Ok(line.timestamp(node.timestamp_ns).close_line().build())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::VmState;
    use influxdb_line_protocol::{FieldValue, parse_lines};

    fn domain(name: &str) -> DomainSample {
        DomainSample {
            id: Some(1),
            name: name.to_owned(),
            uuid: "550e8400-e29b-41d4-a716-446655440000".to_owned(),
            state: VmState::Running,
            cpu_count: 2,
            memory_max_kb: 2_097_152,
            memory_used_kb: 1_048_576,
            cputime_ns: 5_000_000_000,
            timestamp_ns: 1_699_868_400_000_000_000,
        }
    }

    fn text(line: Line) -> String {
        String::from_utf8(line).unwrap()
    }

    #[test]
    fn vm_metrics_matches_the_seed_example_plus_host() {
        let line = text(vm_metrics("kvm1", &domain("ubuntu-vm")).unwrap());
        assert_eq!(
            line,
            "vm_metrics,VMID=1,host=kvm1,name=ubuntu-vm,uuid=550e8400-e29b-41d4-a716-446655440000 \
             state=\"running\",cpu_count=2i,memory_max_kb=2097152i,memory_used_kb=1048576i,\
             cputime_ns=5000000000i 1699868400000000000\n"
        );
    }

    #[test]
    fn vm_features_are_floats_even_when_whole() {
        let features = MemoryFeatures {
            memory_rate_kb_per_sec: 0.0,
            memory_angle_deg: 45.0,
        };
        let line = text(vm_features("kvm1", &domain("ubuntu-vm"), &features).unwrap());
        let parsed = parse_lines(&line).next().unwrap().unwrap();
        assert_eq!(parsed.series.measurement.as_str(), "vm_features");
        assert_eq!(
            parsed.field_value("memory_rate_kb_per_sec"),
            Some(&FieldValue::F64(0.0))
        );
        assert_eq!(
            parsed.field_value("memory_angle_deg"),
            Some(&FieldValue::F64(45.0))
        );
    }

    #[test]
    fn an_inactive_domain_reads_as_dash() {
        let mut stopped = domain("off");
        stopped.id = None;
        stopped.state = VmState::Stopped;
        let line = text(vm_metrics("kvm1", &stopped).unwrap());
        assert!(line.starts_with("vm_metrics,VMID=-,"), "{line}");
        assert!(line.contains("state=\"stopped\""), "{line}");
    }

    #[test]
    fn every_awkward_name_round_trips_through_influxdbs_parser() {
        let names = [
            "with space",
            "with,comma",
            "with=equals",
            "with\"double\"quotes",
            "with'single'quotes",
            r"back\slash",
            r"\\double\\ inside",
            r"esc\ aped\,already\=",
            "ünïcødé €",
            "日本語のVM",
            "emoji 🚀",
            " leading and trailing ",
            "x' OR '1'='1",
        ];
        for name in names {
            let line = text(vm_metrics("host with space,comma", &domain(name)).unwrap());
            let parsed = parse_lines(&line).next().unwrap().unwrap();
            assert_eq!(parsed.tag_value("name").unwrap().as_str(), name, "{line}");
            assert_eq!(
                parsed.tag_value("host").unwrap().as_str(),
                "host with space,comma"
            );
            assert_eq!(
                parsed.field_value("state"),
                Some(&FieldValue::String("running".into()))
            );
            assert_eq!(
                parsed.field_value("cputime_ns"),
                Some(&FieldValue::I64(5_000_000_000))
            );
            assert_eq!(parsed.timestamp, Some(1_699_868_400_000_000_000));
        }
    }

    #[test]
    fn unrepresentable_names_are_refused_not_corrupted() {
        for name in ["line\nbreak", "tab\there", r"trailing\", ""] {
            let error = vm_metrics("kvm1", &domain(name)).unwrap_err();
            assert!(
                matches!(error, EncodeError::UnrepresentableTag { key: "name", .. }),
                "{error}"
            );
        }
    }

    #[test]
    fn integers_beyond_i64_are_refused() {
        let mut huge = domain("big");
        huge.cputime_ns = u64::MAX;
        assert!(matches!(
            vm_metrics("kvm1", &huge),
            Err(EncodeError::IntegerOverflow {
                field: "cputime_ns",
                ..
            })
        ));
    }

    #[test]
    fn extended_rows_have_the_vm_tags_plus_their_own_integers_and_floats() {
        use crate::extended::{DomainStatsSample, StatsRow};
        let sample = DomainStatsSample {
            uuid: "550e8400-e29b-41d4-a716-446655440000".into(),
            name: "web 1".into(),
            timestamp_ns: 1_699_868_400_000_000_000,
            vcpus: Some(2),
            rows: vec![],
        };
        let row = StatsRow {
            measurement: "vm_disk",
            key: Some(("device", "vda".into())),
            counters: vec![
                ("read_bytes", 4096),
                ("write_bytes", 0),
                ("errors", u64::MAX),
            ],
        };
        let derived = [("read_bytes_per_sec", 2.0), ("read_iops", f64::NAN)];
        let line = text(
            stats_row("kvm1", Some(4), &sample, &row, &derived)
                .unwrap()
                .unwrap(),
        );
        assert!(
            line.starts_with("vm_disk,VMID=4,device=vda,host=kvm1,name=web\\ 1,uuid="),
            "{line}"
        );
        let parsed = parse_lines(&line).next().unwrap().unwrap();
        assert_eq!(
            parsed.field_value("read_bytes"),
            Some(&FieldValue::I64(4096))
        );
        assert_eq!(parsed.field_value("write_bytes"), Some(&FieldValue::I64(0)));
        // Whole rates stay floats; what cannot be written is left out, never retyped.
        assert_eq!(
            parsed.field_value("read_bytes_per_sec"),
            Some(&FieldValue::F64(2.0))
        );
        assert_eq!(parsed.field_value("errors"), None);
        assert_eq!(parsed.field_value("read_iops"), None);
        assert_eq!(parsed.timestamp, Some(1_699_868_400_000_000_000));

        let vcpu = StatsRow {
            measurement: "vm_cpu",
            key: Some(("vcpu", "1".into())),
            counters: vec![("vcpu_time_ns", 5)],
        };
        let line = text(
            stats_row("kvm1", None, &sample, &vcpu, &[])
                .unwrap()
                .unwrap(),
        );
        let parsed = parse_lines(&line).next().unwrap().unwrap();
        assert_eq!(parsed.tag_value("VMID").unwrap().as_str(), "-");
        assert_eq!(parsed.tag_value("vcpu").unwrap().as_str(), "1");
        let empty = StatsRow {
            measurement: "vm_net",
            key: Some(("interface", "tap0".into())),
            counters: vec![],
        };
        assert_eq!(stats_row("kvm1", None, &sample, &empty, &[]), Ok(None));
        let bad = StatsRow {
            measurement: "vm_net",
            key: Some(("interface", "tab\there".into())),
            counters: vec![("rx_bytes", 1)],
        };
        assert!(matches!(
            stats_row("kvm1", None, &sample, &bad, &[]),
            Err(EncodeError::UnrepresentableTag {
                key: "interface",
                ..
            })
        ));
    }

    #[test]
    fn host_metrics_counts_are_integers_and_the_duration_a_float() {
        let node = NodeSample {
            cpus: Some(16),
            memory_total_kb: Some(3_145_728),
            memory_free_kb: None,
            domains: 3,
            domains_running: 1,
            domains_paused: 1,
            domains_stopped: 1,
            domains_other: 0,
            collection_duration_sec: 0.0,
            timestamp_ns: 7,
        };
        let line = text(host_metrics("kvm 1", &node).unwrap());
        let parsed = parse_lines(&line).next().unwrap().unwrap();
        assert_eq!(parsed.series.measurement.as_str(), "host_metrics");
        assert_eq!(parsed.tag_value("host").unwrap().as_str(), "kvm 1");
        assert_eq!(parsed.field_value("cpus"), Some(&FieldValue::I64(16)));
        assert_eq!(parsed.field_value("memory_free_kb"), None);
        assert_eq!(
            parsed.field_value("domains_other"),
            Some(&FieldValue::I64(0))
        );
        assert_eq!(
            parsed.field_value("collection_duration_sec"),
            Some(&FieldValue::F64(0.0))
        );
    }
}
