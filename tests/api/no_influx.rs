//! `influx_url = ""`: the service without InfluxDB, for Prometheus only. Collection, the live
//! views and `/metrics` work; the writer never fails; history answers 503 saying why.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{TestDomain, TestNode, assert_error, spawn_app};
use crate::support::prometheus::{scrape, value_of};

#[actix_web::test]
async fn without_influxdb_the_live_views_and_metrics_work_and_history_says_why_not() {
    let node = TestNode::new(&[TestDomain::new("alone", 1, 1)]);
    let uuid = TestDomain::new("alone", 1, 1).uuid;
    let env = [
        ("VMTELEMETRY_LIBVIRT_URI", node.uri.as_str()),
        ("VMTELEMETRY_INFLUX_URL", ""),
    ];
    let app = spawn_app(&env).await;
    let status = app
        .status_when("five cycles", Duration::from_secs(20), |status| {
            Some(status["total_collections"].as_u64()? >= 5)
        })
        .await;
    let writer = &status["writer"];
    assert_eq!(writer["url"], json!(""), "{status}");
    for count in ["failed_writes", "write_retries", "consecutive_failures"] {
        assert_eq!(writer[count], json!(0), "{count}: {status}");
    }
    assert_eq!(writer["last_error"], json!(null), "{status}");
    assert_eq!(status["queue_depth"], json!(0), "no line is held: {status}");
    assert_eq!(app.get("/ready").await.0, 200);
    let (code, vm) = app.get(&format!("/api/telemetry/stats/{uuid}")).await;
    assert_eq!((code, &vm["vm"]["name"]), (200, &json!("alone")), "{vm}");
    let samples = scrape(&app.client, &app.address).await;
    let cpus = value_of(
        &samples,
        "libvirt_domain_info_virtual_cpus",
        &[("domain", "alone")],
    );
    assert!(cpus.is_some_and(|n| n >= 1.0), "{cpus:?}");
    let history = app.get("/api/telemetry/history?vm=alone").await;
    assert_error(&history, 503, "influx_not_configured", "influx_url");
}
