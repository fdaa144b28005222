//! The insights' three measurements: `vm_anomalies`, `vm_bottlenecks` and `host_insights`.

use super::EncodeError;
use super::escape::tag_into;
use super::line::LineWriter;
use super::lines::Lines;
use super::tags::VmTags;
use crate::influx::schema::{host_insights, vm_anomalies, vm_bottlenecks};
use crate::insights::host::HostSummary;

/// One VM's scores of one cycle.
pub struct AnomalyLine<'a> {
    /// (field, score) of each signal scored this cycle.
    pub scores: &'a [(&'static str, f64)],
    pub anomalous_signals: u32,
    pub peer_outlier_signals: u32,
    pub anomaly_rate: Option<f64>,
    pub timestamp_ns: i64,
}

/// One condition of one VM while it holds.
pub struct BottleneckLine {
    pub kind: &'static str,
    pub signal: &'static str,
    pub value: f64,
    pub threshold: f64,
    pub held_sec: f64,
    pub timestamp_ns: i64,
}

/// `vm_anomalies,<VM tags> <signal>_score=..,…,anomalous_signals=..i,peer_outlier_signals=..i,
/// anomaly_rate=.. <ns>`; `tags` must be set for the VM.
pub fn vm_anomalies(lines: &mut Lines, tags: &VmTags, a: &AnomalyLine) -> Result<(), EncodeError> {
    let mut line = LineWriter::tagged(lines, vm_anomalies::MEASUREMENT, |t| tags.write(t, None))?;
    for (field, score) in a.scores {
        line.float(field, *score);
    }
    line.int(vm_anomalies::ANOMALOUS_SIGNALS, a.anomalous_signals.into());
    line.int(
        vm_anomalies::PEER_OUTLIER_SIGNALS,
        a.peer_outlier_signals.into(),
    );
    if let Some(rate) = a.anomaly_rate {
        line.float(vm_anomalies::ANOMALY_RATE, rate);
    }
    line.finish(a.timestamp_ns);
    Ok(())
}

/// `vm_bottlenecks,<VM tags with kind> signal="..",value=..,threshold=..,held_sec=.. <ns>`
pub fn vm_bottleneck(
    lines: &mut Lines,
    tags: &VmTags,
    b: &BottleneckLine,
) -> Result<(), EncodeError> {
    let kind = Some((vm_bottlenecks::KIND, b.kind));
    let mut line = LineWriter::tagged(lines, vm_bottlenecks::MEASUREMENT, |t| tags.write(t, kind))?;
    line.constant_string(vm_bottlenecks::SIGNAL, b.signal);
    line.float(vm_bottlenecks::VALUE, b.value);
    line.float(vm_bottlenecks::THRESHOLD, b.threshold);
    line.float(vm_bottlenecks::HELD_SEC, b.held_sec);
    line.finish(b.timestamp_ns);
    Ok(())
}

/// `host_insights,host=.. anomaly_rate=..,vcpu_overcommit=..,memory_overcommit=..,vms=..i,
/// vms_trained=..i,vms_anomalous=..i,vms_<condition>=..i,… <ns>`: one host's cycle, `vms_in` in
/// `host_insights::VMS_IN` order.
pub fn host_insights(
    lines: &mut Lines,
    host: &str,
    h: &HostSummary,
    timestamp_ns: i64,
) -> Result<(), EncodeError> {
    let mut line = LineWriter::tagged(lines, host_insights::MEASUREMENT, |t| {
        tag_into(t, host_insights::HOST, host, &"-")
    })?;
    let int = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
    for (field, value) in [
        (host_insights::ANOMALY_RATE, h.anomaly_rate),
        (host_insights::VCPU_OVERCOMMIT, h.vcpu_overcommit),
        (host_insights::MEMORY_OVERCOMMIT, h.memory_overcommit),
    ] {
        if let Some(value) = value {
            line.float(field, value);
        }
    }
    line.int(host_insights::VMS, int(h.vms));
    line.int(host_insights::VMS_TRAINED, int(h.vms_trained));
    line.int(host_insights::VMS_ANOMALOUS, int(h.vms_anomalous));
    for (field, count) in host_insights::VMS_IN.into_iter().zip(h.vms_in) {
        line.int(field, int(count));
    }
    line.finish(timestamp_ns);
    Ok(())
}

#[cfg(test)]
mod tests {
    use influxdb_line_protocol::{FieldValue, parse_lines};
    use uuid::Uuid;

    use super::*;
    use crate::influx::line_protocol::measurements::tests::assert_fields;

    fn parsed(lines: &Lines) -> Vec<influxdb_line_protocol::ParsedLine<'_>> {
        let text = std::str::from_utf8(lines.as_bytes()).unwrap();
        parse_lines(text).map(Result::unwrap).collect()
    }

    #[test]
    fn the_three_lines_parse_with_their_tags_and_field_types() {
        let mut lines = Lines::default();
        let mut tags = VmTags::default();
        tags.set("h 1", Some(3), "web,1", &Uuid::from_u128(9))
            .unwrap();
        let scores = [("cpu_percent_score", 0.25), ("disk_read_iops_score", 1.0)];
        let anomalies = AnomalyLine {
            scores: &scores,
            anomalous_signals: 1,
            peer_outlier_signals: 0,
            anomaly_rate: Some(0.5),
            timestamp_ns: 7,
        };
        vm_anomalies(&mut lines, &tags, &anomalies).unwrap();
        let bottleneck = BottleneckLine {
            kind: "cpu_saturated",
            signal: "cpu_percent",
            value: 97.5,
            threshold: 90.0,
            held_sec: 10.0,
            timestamp_ns: 7,
        };
        vm_bottleneck(&mut lines, &tags, &bottleneck).unwrap();
        let host = HostSummary {
            anomaly_rate: None,
            vcpu_overcommit: Some(1.5),
            memory_overcommit: None,
            vms: 2,
            vms_trained: 1,
            vms_anomalous: 1,
            vms_in: [1, 0, 0, 0, 0, 0],
        };
        host_insights(&mut lines, "h 1", &host, 7).unwrap();
        let parsed = parsed(&lines);
        assert_eq!(parsed.len(), 3);
        let a = &parsed[0];
        assert_eq!(a.series.measurement.as_str(), "vm_anomalies");
        assert_eq!(a.tag_value("name").unwrap().as_str(), "web,1");
        assert_fields(
            a,
            &[
                ("cpu_percent_score", Some(FieldValue::F64(0.25))),
                ("disk_read_iops_score", Some(FieldValue::F64(1.0))),
                ("anomalous_signals", Some(FieldValue::I64(1))),
                ("peer_outlier_signals", Some(FieldValue::I64(0))),
                ("anomaly_rate", Some(FieldValue::F64(0.5))),
            ],
        );
        let b = &parsed[1];
        assert_eq!(b.tag_value("kind").unwrap().as_str(), "cpu_saturated");
        assert_eq!(b.tag_value("VMID").unwrap().as_str(), "3");
        assert_eq!(b.field_value("held_sec"), Some(&FieldValue::F64(10.0)));
        let h = &parsed[2];
        assert_eq!(h.tag_value("host").unwrap().as_str(), "h 1");
        assert_fields(
            h,
            &[
                ("vcpu_overcommit", Some(FieldValue::F64(1.5))),
                ("memory_overcommit", None),
                ("vms_cpu_saturated", Some(FieldValue::I64(1))),
                ("vms_network_drops", Some(FieldValue::I64(0))),
            ],
        );
    }
}
