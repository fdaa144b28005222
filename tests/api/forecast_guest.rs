//! A real guest leaking memory (tests/guest's `leak`: 1 MiB into a tmpfs, never freed, then a
//! second's sleep): once a quarter of the way from its level at the onset to all it has is
//! behind it, the forecast time until its memory is full is within ±15 % of the true one: the
//! room left at the leak's true rate, measured from the guest's own memory in use between the
//! onset and then (the nominal 1 MiB/s is slower by each write's time, more so on a busy host).
//! Then, while it still leaks, the dashboard draws that forecast on the guest's memory chart.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::{Influx, spawn_collecting};
use crate::support::guest::Guest;

/// The leak's nominal rate: `vmt.leak` MiB a second.
const LEAK_BYTES_PER_SEC: f64 = 1024.0 * 1024.0;

/// The guest's memory forecast: (used, capacity, seconds to full) in the API now.
fn memory(body: &Value, name: &str) -> Option<(f64, f64, Option<f64>)> {
    let vm = body["vms"]
        .as_array()?
        .iter()
        .find(|vm| vm["name"] == name)?;
    let forecast = vm["forecasts"]
        .as_array()?
        .iter()
        .find(|f| f["resource"] == "memory")?;
    Some((
        forecast["used"].as_f64()?,
        forecast["capacity"].as_f64()?,
        forecast["seconds_to_full"].as_f64(),
    ))
}

#[actix_web::test]
async fn a_leaking_guests_time_to_full_is_forecast_within_15_percent() {
    // Idle 15 s after boot, then leaking past all it has (the tmpfs may take 400 MiB).
    let guest = Guest::options("leak")
        .arg("vmt.after", 15)
        .arg("vmt.leakcap", 400)
        .start();
    let influx = Influx::new_database().await;
    let settings = [
        ("VMTELEMETRY_INSIGHTS", "true"),
        ("VMTELEMETRY_DOMAIN_INCLUDE", guest.name.as_str()),
        ("VMTELEMETRY_POLL_INTERVAL", "1"),
        ("VMTELEMETRY_STATS_INTERVAL", "1"),
        ("VMTELEMETRY_STATS_GROUPS", "cpu_total,balloon"),
        // The leak fills the guest in about two minutes, not days: the trend's memory shrinks
        // to match.
        ("VMTELEMETRY_INSIGHTS_FORECAST_HALF_LIFE", "5"),
    ];
    let app = spawn_collecting("qemu:///system", &influx, &settings).await;
    let onset_marker = "VMT-GUEST-ONSET leak";
    let deadline = Instant::now() + Duration::from_secs(150);
    let mut level_at_onset: Option<f64> = None;
    let mut leaking: Vec<(Instant, f64)> = Vec::new();
    let mut checked = Vec::new();
    while checked.len() < 3 {
        assert!(
            Instant::now() < deadline,
            "no forecast a quarter of the way in: {checked:?}; console:\n{}",
            guest.console_text()
        );
        let before_onset = !guest.console_text().contains(onset_marker);
        let (_, body) = app.get("/api/telemetry/recommendations").await;
        let at = Instant::now();
        actix_web::rt::time::sleep(Duration::from_secs(1)).await;
        let Some((used, capacity, to_full)) = memory(&body, &guest.name) else {
            continue;
        };
        if before_onset {
            level_at_onset = Some(used);
            continue;
        }
        let Some(level) = level_at_onset else {
            panic!("the leak began before the first forecast");
        };
        leaking.push((at, used));
        let quarter = level + 0.25 * (capacity - level);
        if let (true, Some(forecast)) = (used >= quarter, to_full) {
            let (since, first) = leaking[0];
            let rate = (used - first) / (at - since).as_secs_f64();
            assert!(
                (0.5..=1.05).contains(&(rate / LEAK_BYTES_PER_SEC)),
                "a leak of {rate:.0} B/s, not about 1 MiB/s"
            );
            checked.push((used, forecast, (capacity - used) / rate));
        }
    }
    crate::dashboard_outlook::forecast_line_is_drawn(&app, &guest.name).await;
    eprintln!("leak: (used, forecast s, true s) a quarter of the way in: {checked:?}");
    for (used, forecast, truth) in checked {
        assert!(
            (forecast / truth - 1.0).abs() <= 0.15,
            "at {used} bytes: forecast {forecast:.1} s, truly {truth:.1} s"
        );
    }
}
