//! One host's insights of one cycle as line protocol: `vm_anomalies` for every running VM with a
//! trained model, `vm_bottlenecks` for every condition that holds, and the host's
//! `host_insights`.

use super::host::HostInsights;
use super::settings::InsightsSettings;
use super::signals::{SIGNALS, Signal};
use super::vm::VmInsights;
use crate::influx::line_protocol::{
    AnomalyLine, BottleneckLine, EncodeError, Lines, VmTags, host_insights, vm_anomalies,
    vm_bottleneck,
};

/// The lines, and how many could not be encoded (a VM whose name line protocol cannot carry).
#[derive(Debug, Default)]
pub struct EncodedInsights {
    pub lines: Lines,
    pub unencodable: u64,
}

pub fn encode_host(
    host: &HostInsights,
    settings: &InsightsSettings,
    tags: &mut VmTags,
) -> EncodedInsights {
    let mut encoded = EncodedInsights::default();
    for vm in host.vms.values().filter(|vm| vm.running()) {
        if let Err(lines) = encode_vm(&mut encoded.lines, tags, &host.host, vm, settings) {
            encoded.unencodable += lines;
        }
    }
    let written = host_insights(
        &mut encoded.lines,
        &host.host,
        &host.summary,
        host.timestamp_ns,
    );
    if written.is_err() {
        encoded.unencodable += 1;
    }
    encoded
}

/// A VM's lines; `Err` with the number of lines it could not encode.
fn encode_vm(
    lines: &mut Lines,
    tags: &mut VmTags,
    host: &str,
    vm: &VmInsights,
    settings: &InsightsSettings,
) -> Result<(), u64> {
    let active: Vec<_> = vm.bottlenecks.active(&settings.thresholds).collect();
    let trained = vm.trained(settings);
    let wanted = usize::from(trained) + active.len();
    if wanted == 0 {
        return Ok(());
    }
    let failed = |_: EncodeError| wanted as u64;
    let id = &vm.vm;
    tags.set(host, id.id, &id.name, &id.uuid).map_err(failed)?;
    if trained {
        let mut scores = [("", 0.0); SIGNALS];
        let mut n = 0;
        for signal in Signal::ALL {
            if let Some(score) = vm.last.scores.get(signal) {
                scores[n] = (signal.score_field(), f64::from(score));
                n += 1;
            }
        }
        let line = AnomalyLine {
            scores: &scores[..n],
            anomalous_signals: vm.last.anomalous_signals(),
            peer_outlier_signals: vm.last.peer_outliers.count_ones(),
            anomaly_rate: vm.anomaly_rate(),
            timestamp_ns: vm.vm.timestamp_ns,
        };
        vm_anomalies(lines, tags, &line).map_err(failed)?;
    }
    for active in active {
        let line = BottleneckLine {
            kind: active.condition.name(),
            signal: active.evidence.signal,
            value: active.evidence.value,
            threshold: active.evidence.threshold,
            held_sec: active.held_sec,
            timestamp_ns: vm.vm.timestamp_ns,
        };
        vm_bottleneck(lines, tags, &line).map_err(failed)?;
    }
    Ok(())
}
