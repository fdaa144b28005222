//! One function per measurement, each appending its line to `Lines`.

use super::EncodeError;
use super::escape::tag_into;
use super::line::LineWriter;
use super::lines::Lines;
use super::tags::VmTags;
use crate::extended::{DomainStatsSample, StatsRow};
use crate::influx::schema;
use crate::sample::{DomainSample, MemoryFeatures, NodeSample};

/// `vm_metrics,VMID=..,host=..,name=..,uuid=.. state="..",cpu_count=..i,memory_max_kb=..i,memory_used_kb=..i,cputime_ns=..i <ns>`
/// `tags` must be set for `domain`.
pub fn vm_metrics(
    lines: &mut Lines,
    tags: &VmTags,
    domain: &DomainSample,
) -> Result<(), EncodeError> {
    let integer = |field, value: u64| {
        i64::try_from(value).map_err(|_| EncodeError::IntegerOverflow {
            field,
            value,
            uuid: domain.uuid.to_string(),
        })
    };
    let memory_max_kb = integer(schema::vm_metrics::MEMORY_MAX_KB, domain.memory_max_kb)?;
    let memory_used_kb = integer(schema::vm_metrics::MEMORY_USED_KB, domain.memory_used_kb)?;
    let cputime_ns = integer(schema::vm_metrics::CPUTIME_NS, domain.cputime_ns)?;
    let mut line = LineWriter::tagged(lines, schema::vm_metrics::MEASUREMENT, |t| {
        tags.write(t, None)
    })?;
    line.constant_string(schema::vm_metrics::STATE, domain.state.as_str());
    line.int(schema::vm_metrics::CPU_COUNT, i64::from(domain.cpu_count));
    line.int(schema::vm_metrics::MEMORY_MAX_KB, memory_max_kb);
    line.int(schema::vm_metrics::MEMORY_USED_KB, memory_used_kb);
    line.int(schema::vm_metrics::CPUTIME_NS, cputime_ns);
    line.finish(domain.timestamp_ns);
    Ok(())
}

/// `vm_features,<same tags> memory_rate_kb_per_sec=..,memory_angle_deg=.. <ns>`
pub fn vm_features(
    lines: &mut Lines,
    tags: &VmTags,
    domain: &DomainSample,
    features: &MemoryFeatures,
) -> Result<(), EncodeError> {
    let mut line = LineWriter::tagged(lines, schema::vm_features::MEASUREMENT, |t| {
        tags.write(t, None)
    })?;
    line.float(
        schema::vm_features::MEMORY_RATE_KB_PER_SEC,
        features.memory_rate_kb_per_sec,
    );
    line.float(
        schema::vm_features::MEMORY_ANGLE_DEG,
        features.memory_angle_deg,
    );
    line.finish(domain.timestamp_ns);
    Ok(())
}

/// One extended row (`vm_cpu`, `vm_memory`, `vm_disk`, `vm_net`): the VM's tags plus the row's
/// own, its counters as integers and what was derived from them as floats. `Ok(false)`, with
/// nothing written, when the row has no field at all. A counter beyond `i64` (never seen) is
/// left out rather than retyped.
pub fn stats_row(
    lines: &mut Lines,
    tags: &VmTags,
    domain: &DomainStatsSample,
    row: &StatsRow,
    derived: &[(&'static str, f64)],
) -> Result<bool, EncodeError> {
    let extra = row.key.as_ref().map(|(k, v)| (*k, v.as_str()));
    // The row's own tag if any (`device`, `interface`, `vcpu`).
    let mut line = LineWriter::tagged(lines, row.measurement, |t| tags.write(t, extra))?;
    for (field, value) in &row.counters {
        if let Ok(value) = i64::try_from(*value) {
            line.int(field, value);
        }
    }
    for (field, value) in derived {
        line.float(field, *value);
    }
    Ok(line.finish(domain.timestamp_ns))
}

/// `host_metrics,host=.. cpus=..i,memory_total_kb=..i,memory_free_kb=..i,domains=..i,
/// domains_running=..i,…,collection_duration_sec=.. <ns>`
pub fn host_metrics(lines: &mut Lines, host: &str, node: &NodeSample) -> Result<(), EncodeError> {
    let mut line = LineWriter::tagged(lines, schema::host_metrics::MEASUREMENT, |t| {
        tag_into(t, schema::host_metrics::HOST, host, &"-")
    })?;
    let int = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    if let Some(cpus) = node.cpus {
        line.int(schema::host_metrics::CPUS, cpus.into());
    }
    if let Some(total) = node.memory_total_kb {
        line.int(schema::host_metrics::MEMORY_TOTAL_KB, int(total));
    }
    if let Some(free) = node.memory_free_kb {
        line.int(schema::host_metrics::MEMORY_FREE_KB, int(free));
    }
    line.int(schema::host_metrics::DOMAINS, int(node.domains));
    line.int(
        schema::host_metrics::DOMAINS_RUNNING,
        int(node.domains_running),
    );
    line.int(
        schema::host_metrics::DOMAINS_PAUSED,
        int(node.domains_paused),
    );
    line.int(
        schema::host_metrics::DOMAINS_STOPPED,
        int(node.domains_stopped),
    );
    line.int(schema::host_metrics::DOMAINS_OTHER, int(node.domains_other));
    line.float(
        schema::host_metrics::COLLECTION_DURATION_SEC,
        node.collection_duration_sec,
    );
    line.finish(node.timestamp_ns);
    Ok(())
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::sample::VmState;
    use influxdb_line_protocol::{FieldValue, ParsedLine, parse_lines};
    use uuid::Uuid;

    pub fn domain(name: &str) -> DomainSample {
        DomainSample {
            id: Some(1),
            name: name.into(),
            uuid: Uuid::from_u128(0x550e8400_e29b_41d4_a716_446655440000),
            state: VmState::Running,
            cpu_count: 2,
            memory_max_kb: 2_097_152,
            memory_used_kb: 1_048_576,
            cputime_ns: 5_000_000_000,
            timestamp_ns: 1_699_868_400_000_000_000,
        }
    }

    // One-line forms of the encoders, with the VM's tags set for that one line.
    fn vm_metrics(lines: &mut Lines, host: &str, domain: &DomainSample) -> Result<(), EncodeError> {
        let mut tags = VmTags::default();
        tags.set(host, domain.id, &domain.name, &domain.uuid)?;
        super::vm_metrics(lines, &tags, domain)
    }

    fn vm_features(
        lines: &mut Lines,
        host: &str,
        domain: &DomainSample,
        features: &MemoryFeatures,
    ) -> Result<(), EncodeError> {
        let mut tags = VmTags::default();
        tags.set(host, domain.id, &domain.name, &domain.uuid)?;
        super::vm_features(lines, &tags, domain, features)
    }

    fn stats_row(
        lines: &mut Lines,
        host: &str,
        id: Option<u32>,
        domain: &DomainStatsSample,
        row: &StatsRow,
        derived: &[(&'static str, f64)],
    ) -> Result<bool, EncodeError> {
        let mut tags = VmTags::default();
        tags.set(host, id, &domain.name, &domain.uuid)?;
        super::stats_row(lines, &tags, domain, row, derived)
    }

    pub fn text(lines: Lines) -> String {
        String::from_utf8(lines.as_bytes().to_vec()).unwrap()
    }

    /// One call's output as text.
    pub fn encoded<T>(
        encode: impl FnOnce(&mut Lines) -> Result<T, EncodeError>,
    ) -> Result<(T, String), EncodeError> {
        let mut lines = Lines::default();
        let result = encode(&mut lines)?;
        Ok((result, text(lines)))
    }

    pub fn metrics(host: &str, domain: &DomainSample) -> Result<String, EncodeError> {
        encoded(|lines| vm_metrics(lines, host, domain)).map(|(_, text)| text)
    }

    /// Asserts each field's value as InfluxDB's own parser reads it (`None`: left out).
    #[track_caller]
    pub fn assert_fields(line: &ParsedLine, expected: &[(&str, Option<FieldValue>)]) {
        for (name, value) in expected {
            assert_eq!(line.field_value(name), value.as_ref(), "{name}");
        }
    }

    #[test]
    fn vm_metrics_matches_the_seed_example_plus_host() {
        let line = metrics("kvm1", &domain("ubuntu-vm")).unwrap();
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
        let line = encoded(|l| vm_features(l, "kvm1", &domain("ubuntu-vm"), &features))
            .unwrap()
            .1;
        let parsed = parse_lines(&line).next().unwrap().unwrap();
        assert_eq!(parsed.series.measurement.as_str(), "vm_features");
        assert_fields(
            &parsed,
            &[
                ("memory_rate_kb_per_sec", Some(FieldValue::F64(0.0))),
                ("memory_angle_deg", Some(FieldValue::F64(45.0))),
            ],
        );
    }

    #[test]
    fn an_inactive_domain_reads_as_dash() {
        let mut stopped = domain("off");
        stopped.id = None;
        stopped.state = VmState::Stopped;
        let line = metrics("kvm1", &stopped).unwrap();
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
            let line = metrics("host with space,comma", &domain(name)).unwrap();
            let parsed = parse_lines(&line).next().unwrap().unwrap();
            assert_eq!(parsed.tag_value("name").unwrap().as_str(), name, "{line}");
            assert_eq!(
                parsed.tag_value("host").unwrap().as_str(),
                "host with space,comma"
            );
            assert_fields(
                &parsed,
                &[
                    ("state", Some(FieldValue::String("running".into()))),
                    ("cputime_ns", Some(FieldValue::I64(5_000_000_000))),
                ],
            );
            assert_eq!(parsed.timestamp, Some(1_699_868_400_000_000_000));
        }
    }

    #[test]
    fn a_backslash_before_an_ordinary_character_is_written_as_it_is() {
        let line = metrics("kvm1", &domain(r"back\slash")).unwrap();
        assert!(line.contains(r",name=back\slash,"), "{line}");
    }

    #[test]
    fn unrepresentable_names_are_refused_not_corrupted() {
        for name in ["line\nbreak", "tab\there", r"trailing\", ""] {
            let error = metrics("kvm1", &domain(name)).unwrap_err();
            assert!(
                matches!(&error, EncodeError::UnrepresentableTag { key: "name", uuid, .. }
                    if uuid == "550e8400-e29b-41d4-a716-446655440000"),
                "{error}"
            );
        }
    }

    #[test]
    fn integers_beyond_i64_are_refused() {
        let mut huge = domain("big");
        huge.cputime_ns = u64::MAX;
        assert!(matches!(
            metrics("kvm1", &huge),
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
            derived: Vec::new(),
            carried: Vec::new(),
            uuid: Uuid::from_u128(0x550e8400_e29b_41d4_a716_446655440000),
            name: "web 1".into(),
            timestamp_ns: 1_699_868_400_000_000_000,
            vcpus: Some(2),
            rows: vec![],
        };
        let row = StatsRow {
            measurement: "vm_disk",
            key: Some(("device", "vda".into())),
            source: None,
            counters: vec![
                ("read_bytes", 4096),
                ("write_bytes", 0),
                ("errors", u64::MAX),
            ],
        };
        let derived = [("read_bytes_per_sec", 2.0), ("read_iops", f64::NAN)];
        let (written, line) =
            encoded(|l| stats_row(l, "kvm1", Some(4), &sample, &row, &derived)).unwrap();
        assert!(written);
        assert!(
            line.starts_with("vm_disk,VMID=4,device=vda,host=kvm1,name=web\\ 1,uuid="),
            "{line}"
        );
        let parsed = parse_lines(&line).next().unwrap().unwrap();
        assert_fields(
            &parsed,
            &[
                ("read_bytes", Some(FieldValue::I64(4096))),
                ("write_bytes", Some(FieldValue::I64(0))),
                // Whole rates stay floats; what cannot be written is left out, never retyped.
                ("read_bytes_per_sec", Some(FieldValue::F64(2.0))),
                ("errors", None),
                ("read_iops", None),
            ],
        );
        assert_eq!(parsed.timestamp, Some(1_699_868_400_000_000_000));

        let vcpu = StatsRow {
            measurement: "vm_cpu",
            key: Some(("vcpu", "1".into())),
            source: None,
            counters: vec![("vcpu_time_ns", 5)],
        };
        let (_, line) = encoded(|l| stats_row(l, "kvm1", None, &sample, &vcpu, &[])).unwrap();
        let parsed = parse_lines(&line).next().unwrap().unwrap();
        assert_eq!(parsed.tag_value("VMID").unwrap().as_str(), "-");
        assert_eq!(parsed.tag_value("vcpu").unwrap().as_str(), "1");
        let empty = StatsRow {
            measurement: "vm_net",
            key: Some(("interface", "tap0".into())),
            source: None,
            counters: vec![],
        };
        // A row without a field writes nothing, even after other lines.
        let mut lines = Lines::default();
        stats_row(&mut lines, "kvm1", None, &sample, &vcpu, &[]).unwrap();
        let before = lines.clone();
        assert_eq!(
            stats_row(&mut lines, "kvm1", None, &sample, &empty, &[]),
            Ok(false)
        );
        assert_eq!(lines, before);
        let bad = StatsRow {
            measurement: "vm_net",
            key: Some(("interface", "tab\there".into())),
            source: None,
            counters: vec![("rx_bytes", 1)],
        };
        assert!(matches!(
            stats_row(&mut lines, "kvm1", None, &sample, &bad, &[]),
            Err(EncodeError::UnrepresentableTag {
                key: "interface",
                uuid,
                ..
            }) if uuid == "550e8400-e29b-41d4-a716-446655440000"
        ));
        assert_eq!(lines, before, "a refused row leaves no trace");
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
        let line = encoded(|l| host_metrics(l, "kvm 1", &node)).unwrap().1;
        let parsed = parse_lines(&line).next().unwrap().unwrap();
        assert_eq!(parsed.series.measurement.as_str(), "host_metrics");
        assert_eq!(parsed.tag_value("host").unwrap().as_str(), "kvm 1");
        assert_fields(
            &parsed,
            &[
                ("cpus", Some(FieldValue::I64(16))),
                ("memory_free_kb", None),
                ("domains_other", Some(FieldValue::I64(0))),
                ("collection_duration_sec", Some(FieldValue::F64(0.0))),
            ],
        );
    }

    fn features(rate: f64, angle: f64) -> MemoryFeatures {
        MemoryFeatures {
            memory_rate_kb_per_sec: rate,
            memory_angle_deg: angle,
        }
    }

    #[test]
    fn floats_of_every_magnitude_read_back_exactly() {
        let values = [
            0.0,
            -0.0,
            1.0,
            -12.375,
            1e-7,
            -2.5e-300,
            f64::MIN_POSITIVE,
            5e-324,
            1e15,
            1.5e16,
            1e21,
            -1.7976931348623157e308,
            f64::MAX,
            0.1 + 0.2,
        ];
        for value in values {
            let (_, line) =
                encoded(|l| vm_features(l, "kvm1", &domain("vm"), &features(value, 45.0))).unwrap();
            let parsed = parse_lines(&line).next().unwrap().unwrap();
            match parsed.field_value("memory_rate_kb_per_sec") {
                Some(FieldValue::F64(read)) => {
                    assert_eq!(read.to_bits(), value.to_bits(), "{line}")
                }
                other => panic!("{value} read as {other:?} from {line}"),
            }
        }
    }

    #[test]
    fn non_finite_floats_are_left_out() {
        let (_, line) =
            encoded(|l| vm_features(l, "kvm1", &domain("vm"), &features(f64::NAN, f64::INFINITY)))
                .unwrap();
        assert_eq!(line, "", "a line without a field is no line");
        let (_, line) =
            encoded(|l| vm_features(l, "kvm1", &domain("vm"), &features(f64::NAN, 1.5))).unwrap();
        assert!(line.contains(" memory_angle_deg=1.5 "), "{line}");
        assert!(!line.contains("memory_rate_kb_per_sec"), "{line}");
    }

    #[test]
    fn lines_share_one_buffer_and_a_refused_line_leaves_no_trace() {
        let mut lines = Lines::default();
        vm_metrics(&mut lines, "kvm1", &domain("a")).unwrap();
        let one = lines.clone();
        assert!(vm_metrics(&mut lines, "kvm1", &domain("tab\there")).is_err());
        let mut huge = domain("b");
        huge.memory_used_kb = u64::MAX;
        assert!(vm_metrics(&mut lines, "kvm1", &huge).is_err());
        assert_eq!(lines, one);
        vm_metrics(&mut lines, "kvm1", &domain("b")).unwrap();
        vm_metrics(&mut lines, "kvm1", &domain("c")).unwrap();
        assert_eq!(lines.len(), 3);
        let names: Vec<String> = lines
            .iter()
            .map(|line| {
                let text = std::str::from_utf8(line).unwrap();
                assert!(text.ends_with('\n'));
                let parsed = parse_lines(text).next().unwrap().unwrap();
                parsed.tag_value("name").unwrap().to_string()
            })
            .collect();
        assert_eq!(names, ["a", "b", "c"]);
    }

    proptest::proptest! {
        #[test]
        fn any_finite_float_reads_back_exactly(bits: u64) {
            let value = f64::from_bits(bits);
            proptest::prop_assume!(value.is_finite());
            let (_, line) =
                encoded(|l| vm_features(l, "kvm1", &domain("vm"), &features(value, 0.5))).unwrap();
            let parsed = parse_lines(&line).next().unwrap().unwrap();
            proptest::prop_assert_eq!(
                parsed.field_value("memory_rate_kb_per_sec"),
                Some(&FieldValue::F64(value))
            );
        }
    }
}
