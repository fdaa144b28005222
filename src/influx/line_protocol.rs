//! The seed's measurements as InfluxDB line protocol.
//!
//! Escaping is done by InfluxDB's own builder (`influxdb-line-protocol`, from InfluxDB 3's source
//! tree). Checked against the same crate's parser, it falls short for tag values that no escape can
//! carry: a newline or a tab ends the value whatever precedes it, and a value ending in a backslash
//! is refused even when escaped. The builder would emit a corrupt or rejected line; such values are
//! refused here with an error instead.

use influxdb_line_protocol::LineProtocolBuilder;

use crate::sample::{DomainSample, MemoryFeatures};

/// One encoded line, ending with `\n`.
pub type Line = Vec<u8>;

/// `VMID` of a domain that is not running: libvirt gives inactive domains no id, and
/// `virsh list --all` shows them as `-`.
pub const INACTIVE_VMID: &str = "-";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EncodeError {
    #[error(
        "tag `{key}` of VM {uuid} is {value:?}: line protocol cannot carry a newline, a tab or an empty tag value"
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
    let id;
    let vmid = match domain.id {
        Some(n) => {
            id = n.to_string();
            id.as_str()
        }
        None => INACTIVE_VMID,
    };
    let checked = |key, value: &str| {
        if value.is_empty() || value.contains(['\n', '\t']) || value.ends_with('\\') {
            Err(EncodeError::UnrepresentableTag {
                key,
                value: value.to_owned(),
                uuid: domain.uuid.clone(),
            })
        } else {
            Ok(())
        }
    };
    checked("host", host)?;
    checked("name", &domain.name)?;
    checked("uuid", &domain.uuid)?;
    Ok(builder
        .tag("VMID", vmid)
        .tag("host", host)
        .tag("name", &domain.name)
        .tag("uuid", &domain.uuid))
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
}
