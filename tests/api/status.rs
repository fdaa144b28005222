use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{TestDomain, TestNode, collecting, spawn_app};
use crate::support::browser::{host_row, on_page};
use crate::support::prometheus::{scrape, value_of};

#[actix_web::test]
async fn status_reports_the_seeds_statistics_and_each_host() {
    let (app, _influx, node) = collecting(
        &[TestDomain::new("one", 1, 1), TestDomain::new("two", 5, 2)],
        &[
            ("VMTELEMETRY_POLL_INTERVAL", "0.5"),
            ("VMTELEMETRY_BATCH_MAX_SEC", "0.05"),
        ],
    )
    .await;
    // Eventually every line produced (two VMs, metrics every cycle, features after the first) is
    // written.
    let written = |produced, status: &Value| {
        Some(
            status["total_collections"].as_u64()? >= 3
                && status["total_metrics_written"].as_u64()? == produced,
        )
    };
    let status = app
        .status_when_settled(
            "three collections written",
            Duration::from_secs(15),
            written,
        )
        .await;
    for key in [
        "started_at",
        "total_collections",
        "total_errors",
        "last_collection_time",
        "vms_monitored",
        "total_metrics_written",
        "queue_depth",
        "dropped_lines",
        "write_retries",
    ] {
        assert!(!status[key].is_null(), "{key} missing from {status}");
    }
    assert_eq!(status["vms_monitored"], json!(2));
    assert_eq!(status["total_errors"], json!(0));
    assert_eq!(status["dropped_lines"], json!(0));
    let host = &status["hosts"][0];
    assert_eq!(host["uri"], json!(node.uri));
    assert_eq!(host["connection"], json!("connected"));
    assert!(host["host"].as_str().is_some_and(|h| !h.is_empty()));
    assert!(
        host["last_collection_duration_sec"].as_f64().is_some(),
        "{host}"
    );
    // No stats groups: no bulk call to time.
    assert!(host["last_stats_duration_sec"].is_null(), "{host}");
}

#[actix_web::test]
async fn status_times_each_hosts_last_cycle_and_bulk_call() {
    let (app, _influx, _node) = collecting(
        &[TestDomain::new("one", 1, 1), TestDomain::new("two", 1, 2)],
        &[
            ("VMTELEMETRY_POLL_INTERVAL", "0.5"),
            ("VMTELEMETRY_STATS_INTERVAL", "0.5"),
            ("VMTELEMETRY_STATS_GROUPS", "block,interface"),
        ],
    )
    .await;
    let status = app
        .status_when(
            "a cycle and a bulk call done",
            Duration::from_secs(15),
            |s| {
                let host = &s["hosts"][0];
                Some(
                    host["total_collections"].as_u64()? >= 2
                        && host["stats_collections"].as_u64()? >= 2,
                )
            },
        )
        .await;
    let host = &status["hosts"][0];
    // Two test domains on a local socket: well under the poll interval, yet never nothing.
    for key in ["last_collection_duration_sec", "last_stats_duration_sec"] {
        let seconds = host[key].as_f64();
        assert!(
            seconds.is_some_and(|s| s > 0.0 && s < 0.5),
            "{key} in {host}"
        );
    }
    // Such cycles end long before the next tick: none is late.
    assert_eq!(host["overrun_ticks"], json!(0), "{host}");
}

#[actix_web::test]
async fn ticks_that_find_the_last_cycle_running_or_just_ended_are_counted_and_shown() {
    // 100 domains at the floor's 10 ms: every cycle outlasts its tick.
    let domains = TestDomain::running("vm", 0..100);
    let (app, _influx, node) = collecting(&domains, &[("VMTELEMETRY_POLL_INTERVAL", "0.01")]).await;
    let status = app
        .status_when("overrun ticks", Duration::from_secs(20), |status| {
            let host = &status["hosts"][0];
            Some(host["overrun_ticks"].as_u64()? >= 10 && host["total_collections"].as_u64()? >= 3)
        })
        .await;
    let host = &status["hosts"][0];
    assert_eq!(host["total_errors"], json!(0), "{host}");
    let uri = [("uri", node.uri.as_str())];
    let samples = scrape(&app.client, &app.address).await;
    let scraped = value_of(&samples, "vmtelemetry_overrun_ticks_total", &uri);
    let counted = host["overrun_ticks"].as_f64().unwrap();
    assert!(
        scraped.is_some_and(|s| s >= counted),
        "{scraped:?} after {host}"
    );
    // The dashboard's collection table says so beside the host's last cycle.
    let row = on_page(app.address.clone(), move |tab| {
        host_row(tab, &node.uri, "/ticks late$/.test(row.cycle)")
    })
    .await;
    assert_eq!(row["state"], json!("connected"), "{row}");
}

#[actix_web::test]
async fn the_extended_groups_ride_on_every_cycle_of_their_interval() {
    let (app, _influx, _node) = collecting(
        &[TestDomain::new("one", 1, 1)],
        &[
            ("VMTELEMETRY_POLL_INTERVAL", "0.3"),
            // Two poll intervals: the first cycle carries them, then every second one.
            ("VMTELEMETRY_STATS_INTERVAL", "0.6"),
            ("VMTELEMETRY_STATS_GROUPS", "interface"),
        ],
    )
    .await;
    let status = app
        .status_when("six cycles", Duration::from_secs(15), |status| {
            Some(status["hosts"][0]["total_collections"].as_u64()? >= 6)
        })
        .await;
    let host = &status["hosts"][0];
    let cycles = host["total_collections"].as_u64().unwrap();
    assert_eq!(
        host["stats_collections"],
        json!(cycles.div_ceil(2)),
        "{host}"
    );
    assert_eq!(host["stats_errors"], json!(0), "{host}");
}

#[actix_web::test]
async fn a_full_queue_drops_the_oldest_lines_and_counts_each() {
    let node = TestNode::new(&TestDomain::running("vm", 0..4));
    let app = spawn_app(&[
        ("VMTELEMETRY_LIBVIRT_URI", &node.uri),
        ("VMTELEMETRY_INFLUX_URL", "http://127.0.0.1:9"),
        // Memory only: no spool.
        ("VMTELEMETRY_SPOOL_DIR", ""),
        ("VMTELEMETRY_MAX_QUEUE", "5"),
        ("VMTELEMETRY_BATCH_MAX_LINES", "2"),
        ("VMTELEMETRY_POLL_INTERVAL", "0.5"),
    ])
    .await;
    // Nothing is written, so every line produced is either still queued or counted as dropped
    // (checked between cycles, when no line is on its way to the writer).
    let status = app
        .status_when("lines dropped", Duration::from_secs(15), |status| {
            let produced = status["features"]["lines_produced"].as_u64()?;
            let dropped = status["dropped_lines"].as_u64()?;
            let queued = status["queue_depth"].as_u64()?;
            Some(dropped >= 10 && produced == dropped + queued)
        })
        .await;
    assert_eq!(status["total_metrics_written"], json!(0));
    assert_eq!(status["queue_depth"], json!(5));
    assert!(status["write_retries"].as_u64().unwrap() >= 1);
}
