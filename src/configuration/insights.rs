//! The insights' keys (`insights`, `insights_*`): windows, the detector's tuning and the
//! bottleneck thresholds, each checked with its key.

use std::sync::Arc;
use std::time::Duration;

use super::Settings;
use super::error::{ConfigError, invalid};
use super::hosts::HostConfig;
use super::values::{PositiveSecs, seconds_in, whole_number_in};
use super::writer::SpoolConfig;
use crate::insights::InsightsSettings;
use crate::insights::bottlenecks::Thresholds;
use crate::insights::detector::DetectorSettings;
use crate::insights::settings::SnapshotSettings;
use crate::insights::signals::Source;
use crate::insights::store::FILE_NAME;

/// A window shorter than a second has no room for its buckets; a day is plenty. The same bounds
/// for the snapshots' interval.
const WINDOW_SECONDS: (f64, f64) = (1.0, 86_400.0);

/// None when `insights = false`. `hosts`: this instance's.
pub fn insights(
    settings: &Settings,
    hosts: &[HostConfig],
) -> Result<Option<InsightsSettings>, ConfigError> {
    if !settings.insights {
        return Ok(None);
    }
    let window = seconds_in("insights_window", settings.insights_window, WINDOW_SECONDS)?;
    let max_gap = max_gap(settings)?;
    let source_gaps = Source::ALL.map(|source| source_gap(settings, source, max_gap));
    let learning_samples = whole_number_in(
        "insights_learning_samples",
        settings.insights_learning_samples,
        2..=u16::MAX,
    )?;
    let baseline_samples = whole_number_in(
        "insights_baseline_samples",
        settings.insights_baseline_samples,
        2..=1_000_000,
    )?;
    Ok(Some(InsightsSettings {
        detector: DetectorSettings {
            learning_samples,
            baseline_samples,
            threshold: positive("insights_threshold", settings.insights_threshold, 1000.0)?,
        },
        window,
        max_gap,
        source_gaps,
        peer_min_vms: whole_number_in(
            "insights_peer_min_vms",
            settings.insights_peer_min_vms,
            3..=1_000_000,
        )?,
        thresholds: thresholds(settings)?,
        snapshots: snapshots(settings, hosts)?,
    }))
}

/// None without a spool directory: the snapshots' file sits beside the spool's.
fn snapshots(
    settings: &Settings,
    hosts: &[HostConfig],
) -> Result<Option<SnapshotSettings>, ConfigError> {
    let interval = seconds_in(
        "insights_snapshot_interval",
        settings.insights_snapshot_interval,
        WINDOW_SECONDS,
    )?;
    let Some(spool) = SpoolConfig::from_settings(settings)? else {
        return Ok(None);
    };
    Ok(Some(SnapshotSettings {
        path: spool.dir.join(FILE_NAME),
        interval,
        hosts: hosts.iter().map(|h| Arc::from(h.uri.as_str())).collect(),
    }))
}

fn thresholds(keys: &Settings) -> Result<Thresholds, ConfigError> {
    let percent = |key, value| positive(key, value, 100.0);
    let rate = |key, value| positive(key, value, f64::MAX);
    Ok(Thresholds {
        cpu_saturated_percent: percent(
            "insights_cpu_saturated_percent",
            keys.insights_cpu_saturated_percent,
        )?,
        cpu_steal_percent: percent(
            "insights_cpu_steal_percent",
            keys.insights_cpu_steal_percent,
        )?,
        memory_used_percent: percent(
            "insights_memory_used_percent",
            keys.insights_memory_used_percent,
        )?,
        swap_kb_per_sec: rate("insights_swap_kb_per_sec", keys.insights_swap_kb_per_sec)?,
        major_faults_per_sec: rate(
            "insights_major_faults_per_sec",
            keys.insights_major_faults_per_sec,
        )?,
        disk_latency_ms: rate("insights_disk_latency_ms", keys.insights_disk_latency_ms)?,
        net_drops_per_sec: rate(
            "insights_net_drops_per_sec",
            keys.insights_net_drops_per_sec,
        )?,
        condition_cycles: whole_number_in(
            "insights_condition_cycles",
            keys.insights_condition_cycles,
            1..=1_000_000,
        )?,
    })
}

/// A gap spans at least `GAP_CYCLES` of the longer cadence (poll or stats), however short
/// `insights_max_gap` is: a slow cadence is no gap.
const GAP_CYCLES: f64 = 2.5;

fn max_gap(settings: &Settings) -> Result<Duration, ConfigError> {
    let configured: Duration =
        PositiveSecs::parse("insights_max_gap", settings.insights_max_gap, 0.01)?.into();
    let cadence = settings.poll_interval.max(settings.stats_interval) * GAP_CYCLES;
    let cadence = Duration::try_from_secs_f64(cadence).unwrap_or(Duration::MAX);
    Ok(configured.max(cadence))
}

/// A source's gap spans at least `GAP_CYCLES` of its group's own interval, where
/// `stats_group_intervals` names a slower one (that key's bounds are checked with the collection's).
fn source_gap(settings: &Settings, source: Source, max_gap: Duration) -> Duration {
    let interval = settings.stats_group_intervals.get(source.group());
    let cadence = interval.and_then(|s| Duration::try_from_secs_f64(s * GAP_CYCLES).ok());
    cadence.map_or(max_gap, |cadence| cadence.max(max_gap))
}

/// A finite number above zero and at most `max`.
fn positive(key: &'static str, value: f64, max: f64) -> Result<f64, ConfigError> {
    if value.is_finite() && value > 0.0 && value <= max {
        return Ok(value);
    }
    Err(invalid(
        key,
        format!("must be a number above 0 and at most {max}, got {value}"),
    ))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::configuration::load_with_env;

    fn error_of(pairs: &[(&str, &str)]) -> String {
        let env = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        load_with_env(None, env).unwrap_err().to_string()
    }

    #[test]
    fn insights_are_on_by_default_with_the_documented_defaults() {
        let config = load_with_env(None, Vec::new()).unwrap();
        let insights = config.insights.expect("on by default");
        assert_eq!(insights.window.as_secs(), 900);
        assert_eq!(insights.detector.learning_samples, 60);
        assert_eq!(insights.thresholds.cpu_saturated_percent, 90.0);
        assert_eq!(insights.thresholds.memory_used_percent, 90.0);
        assert_eq!(insights.thresholds.condition_cycles, 3);
        assert_eq!(insights.max_gap.as_secs(), 60);
        // A slow cadence raises the gap rather than making every sample one.
        let slow = [("VMTELEMETRY_POLL_INTERVAL".to_owned(), "3600".to_owned())];
        let slow = load_with_env(None, slow).unwrap().insights.unwrap();
        assert_eq!(slow.max_gap.as_secs(), 9000);
        assert_eq!(insights.source_gaps.map(|g| g.as_secs()), [60; 4]);
        // A group of a slower cadence of its own: its rows' gap only.
        let balloon = [(
            "VMTELEMETRY_STATS_GROUP_INTERVALS__BALLOON".to_owned(),
            "300".to_owned(),
        )];
        let balloon = load_with_env(None, balloon).unwrap().insights.unwrap();
        assert_eq!(balloon.max_gap.as_secs(), 60);
        assert_eq!(balloon.source_gaps.map(|g| g.as_secs()), [60, 60, 60, 750]);
        let snapshots = insights.snapshots.expect("beside the default spool");
        assert_eq!(snapshots.interval.as_secs(), 300);
        assert!(
            snapshots.path.ends_with("spool/insights.redb"),
            "{snapshots:?}"
        );
        assert_eq!(snapshots.hosts, vec![Arc::<str>::from("qemu:///system")]);
        let no_spool = [("VMTELEMETRY_SPOOL_DIR".to_owned(), String::new())];
        let no_spool = load_with_env(None, no_spool).unwrap().insights.unwrap();
        assert_eq!(no_spool.snapshots, None);
        let off = load_with_env(None, vec![("VMTELEMETRY_INSIGHTS".into(), "false".into())]);
        assert!(off.unwrap().insights.is_none());
    }

    #[test]
    fn bad_insights_keys_are_refused_with_their_name() {
        for (key, value, expected) in [
            (
                "INSIGHTS_WINDOW",
                "0.5",
                "`insights_window`: must be 1 to 86400 seconds",
            ),
            (
                "INSIGHTS_THRESHOLD",
                "-1",
                "`insights_threshold`: must be a number above 0",
            ),
            (
                "INSIGHTS_CPU_SATURATED_PERCENT",
                "150",
                "`insights_cpu_saturated_percent`",
            ),
            (
                "INSIGHTS_LEARNING_SAMPLES",
                "1",
                "`insights_learning_samples`: must be 2 to",
            ),
            ("INSIGHTS_PEER_MIN_VMS", "2", "`insights_peer_min_vms`"),
            (
                "INSIGHTS_MAX_GAP",
                "0",
                "`insights_max_gap`: must be a positive number",
            ),
            (
                "INSIGHTS_DISK_LATENCY_MS",
                "0",
                "`insights_disk_latency_ms`",
            ),
            (
                "INSIGHTS_CONDITION_CYCLES",
                "0",
                "`insights_condition_cycles`",
            ),
            (
                "INSIGHTS_SNAPSHOT_INTERVAL",
                "0",
                "`insights_snapshot_interval`: must be 1 to 86400 seconds",
            ),
        ] {
            let variable = format!("VMTELEMETRY_{key}");
            let message = error_of(&[(&variable, value)]);
            assert!(message.contains(expected), "{key}={value}: {message}");
        }
    }
}
