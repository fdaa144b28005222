//! Every measurement as InfluxDB line protocol: the seed's two, the extended ones and
//! `host_metrics`.
//!
//! Written by hand into one buffer per line. InfluxDB's own builder (`influxdb-line-protocol`,
//! from InfluxDB 3's source tree) was used first and measured at 0.5 M lines/s per core, ten times
//! short of the target, as it formats every piece through `fmt`. The escaping here is the
//! builder's, and the tests check every line with the same crate's parser. That parser also shows
//! what no escape can carry in a tag value: a newline or a tab ends the value whatever precedes
//! it, and a value ending in a backslash is refused even when escaped. Such values are refused
//! here with an error rather than written corrupt.

use std::io::Write as _;

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

/// Characters escaped with a backslash, as InfluxDB's builder does (a backslash always is).
const MEASUREMENT_SPECIAL: &[u8] = b", \\";
const KEY_SPECIAL: &[u8] = b",= \\";
const STRING_SPECIAL: &[u8] = b"\"\\";

/// The most tags a line has: `VMID`, `host`, `name`, `uuid` and one of the row's own.
const MAX_TAGS: usize = 5;

/// Builds one line: the measurement, then tags, then fields, then the timestamp.
struct LineWriter {
    line: Vec<u8>,
    fields: usize,
}

impl LineWriter {
    fn new(measurement: &str) -> Self {
        let mut line = Vec::with_capacity(256);
        escape_into(&mut line, measurement, MEASUREMENT_SPECIAL);
        LineWriter { line, fields: 0 }
    }

    /// Tags in key order (InfluxDB stores series fastest that way); values already checked.
    fn tags(&mut self, tags: &mut [(&str, &str)]) {
        tags.sort_unstable_by_key(|(key, _)| *key);
        for (key, value) in tags.iter() {
            self.line.push(b',');
            escape_into(&mut self.line, key, KEY_SPECIAL);
            self.line.push(b'=');
            escape_into(&mut self.line, value, KEY_SPECIAL);
        }
    }

    fn key(&mut self, key: &str) {
        self.line.push(if self.fields == 0 { b' ' } else { b',' });
        self.fields += 1;
        escape_into(&mut self.line, key, KEY_SPECIAL);
        self.line.push(b'=');
    }

    fn int(&mut self, key: &str, value: i64) {
        self.key(key);
        self.line
            .extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
        self.line.push(b'i');
    }

    /// Rust prints the shortest text that reads back as the same `f64`, never as an integer
    /// literal with `i`, so line protocol takes it as a float.
    fn float(&mut self, key: &str, value: f64) {
        self.key(key);
        // Writing to a Vec cannot fail.
        let _ = write!(self.line, "{value}");
    }

    fn string(&mut self, key: &str, value: &str) {
        self.key(key);
        self.line.push(b'"');
        escape_into(&mut self.line, value, STRING_SPECIAL);
        self.line.push(b'"');
    }

    /// None when no field was written: a line needs at least one.
    fn finish(mut self, timestamp_ns: i64) -> Option<Line> {
        if self.fields == 0 {
            return None;
        }
        self.line.push(b' ');
        self.line
            .extend_from_slice(itoa::Buffer::new().format(timestamp_ns).as_bytes());
        self.line.push(b'\n');
        Some(self.line)
    }
}

fn escape_into(out: &mut Vec<u8>, text: &str, special: &[u8]) {
    if !text.bytes().any(|b| special.contains(&b)) {
        out.extend_from_slice(text.as_bytes());
        return;
    }
    // The special characters are ASCII, so escaping byte by byte keeps UTF-8 intact.
    for byte in text.bytes() {
        if special.contains(&byte) {
            out.push(b'\\');
        }
        out.push(byte);
    }
}

/// Refuses the tag values no escape can carry (`VMID` is ours and always fine).
fn check_tags(tags: &[(&'static str, &str)], uuid: &str) -> Result<(), EncodeError> {
    for (key, value) in tags {
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
    Ok(())
}

/// A line with `VMID`, `host`, `name`, `uuid` and the row's own tag if any (`device`,
/// `interface`, `vcpu`).
fn vm_line(
    measurement: &str,
    host: &str,
    id: Option<u32>,
    name: &str,
    uuid: &str,
    extra: Option<(&'static str, &str)>,
) -> Result<LineWriter, EncodeError> {
    let mut id_text = itoa::Buffer::new();
    let vmid = match id {
        Some(n) => id_text.format(n),
        None => INACTIVE_VMID,
    };
    let mut tags = [("", ""); MAX_TAGS];
    let mut count = 0;
    for tag in [
        ("VMID", vmid),
        ("host", host),
        ("name", name),
        ("uuid", uuid),
    ]
    .into_iter()
    .chain(extra)
    {
        tags[count] = tag;
        count += 1;
    }
    let tags = &mut tags[..count];
    check_tags(tags, uuid)?;
    let mut line = LineWriter::new(measurement);
    line.tags(tags);
    Ok(line)
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
    let mut line = vm_line(
        "vm_metrics",
        host,
        domain.id,
        &domain.name,
        &domain.uuid,
        None,
    )?;
    line.string("state", domain.state.as_str());
    line.int("cpu_count", i64::from(domain.cpu_count));
    line.int(
        "memory_max_kb",
        integer("memory_max_kb", domain.memory_max_kb)?,
    );
    line.int(
        "memory_used_kb",
        integer("memory_used_kb", domain.memory_used_kb)?,
    );
    line.int("cputime_ns", integer("cputime_ns", domain.cputime_ns)?);
    Ok(line.finish(domain.timestamp_ns).unwrap_or_default())
}

/// `vm_features,<same tags> memory_rate_kb_per_sec=..,memory_angle_deg=.. <ns>`
pub fn vm_features(
    host: &str,
    domain: &DomainSample,
    features: &MemoryFeatures,
) -> Result<Line, EncodeError> {
    let mut line = vm_line(
        "vm_features",
        host,
        domain.id,
        &domain.name,
        &domain.uuid,
        None,
    )?;
    line.float("memory_rate_kb_per_sec", features.memory_rate_kb_per_sec);
    line.float("memory_angle_deg", features.memory_angle_deg);
    Ok(line.finish(domain.timestamp_ns).unwrap_or_default())
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
    let mut line = vm_line(
        row.measurement,
        host,
        id,
        &domain.name,
        &domain.uuid,
        row.key.as_ref().map(|(k, v)| (*k, v.as_str())),
    )?;
    for (field, value) in &row.counters {
        if let Ok(value) = i64::try_from(*value) {
            line.int(field, value);
        }
    }
    for (field, value) in derived.iter().filter(|(_, v)| v.is_finite()) {
        line.float(field, *value);
    }
    Ok(line.finish(domain.timestamp_ns))
}

/// `host_metrics,host=.. cpus=..i,memory_total_kb=..i,memory_free_kb=..i,domains=..i,
/// domains_running=..i,…,collection_duration_sec=.. <ns>`
pub fn host_metrics(host: &str, node: &NodeSample) -> Result<Line, EncodeError> {
    let mut tags = [("host", host)];
    check_tags(&tags, "-")?;
    let mut line = LineWriter::new("host_metrics");
    line.tags(&mut tags);
    let int = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    if let Some(cpus) = node.cpus {
        line.int("cpus", cpus.into());
    }
    if let Some(total) = node.memory_total_kb {
        line.int("memory_total_kb", int(total));
    }
    if let Some(free) = node.memory_free_kb {
        line.int("memory_free_kb", int(free));
    }
    line.int("domains", int(node.domains));
    line.int("domains_running", int(node.domains_running));
    line.int("domains_paused", int(node.domains_paused));
    line.int("domains_stopped", int(node.domains_stopped));
    line.int("domains_other", int(node.domains_other));
    line.float("collection_duration_sec", node.collection_duration_sec);
    Ok(line.finish(node.timestamp_ns).unwrap_or_default())
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
