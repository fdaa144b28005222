//! History of the measurements the dashboard charts beyond the seed's: a real QEMU guest's disk
//! (`vm_disk`, each point with its `device`, buckets per device) and its host's `host_metrics`
//! (asked by host alone), through InfluxDB 1.x's InfluxQL and InfluxDB 3's SQL alike.

use std::time::Duration;

use serde_json::Value;

use crate::helpers::{Influx, TestApp, spawn_collecting, spawn_writing_to, wait_for};
use crate::history::{history, path};
use crate::support::guest::Guest;
use crate::support::influxdb3_standin::InfluxDb3StandIn;

/// Waits until the guest's disk has rates in the history, then checks every point carries the
/// disk's name, raw and in buckets; and that the host's `host_metrics` count the guest.
async fn assert_device_and_host_history(app: &TestApp, guest: &str) {
    let stats_path = format!("/api/telemetry/stats/{guest}");
    let stats = wait_for(
        "the guest's disk listed",
        Duration::from_secs(30),
        || async {
            let (code, stats) = app.get(&stats_path).await;
            (code == 200 && stats["disks"][0]["name"].is_string()).then_some(stats)
        },
    )
    .await;
    let host = stats["vm"]["host"].as_str().unwrap().to_owned();
    let asked = [
        ("vm", guest),
        ("measurement", "vm_disk"),
        ("fields", "read_bytes_per_sec,read_iops"),
    ];
    // InfluxDB 3 has no vm_disk table before the first write: a 502 until then.
    let raw = wait_for(
        "the guest's disk rates in the history",
        Duration::from_secs(30),
        || async {
            let (code, body) = app.get(&path(&asked)).await;
            let rated = body["points"]
                .as_array()?
                .iter()
                .filter(|p| p["read_iops"].is_number());
            (code == 200 && rated.count() >= 2).then_some(body)
        },
    )
    .await;
    let bucketed = history(app, &[&asked[..], &[("every", "1h")]].concat()).await;
    for body in [&raw, &bucketed] {
        let points = body["points"].as_array().unwrap();
        assert!(!points.is_empty(), "{body}");
        // A disk's first sample has no rates yet: a point of its name only.
        for point in points {
            assert_eq!(point["device"], stats["disks"][0]["name"], "{body}");
        }
        let rated = points.iter().filter_map(|p| p["read_iops"].as_f64());
        assert!(
            rated.clone().count() > 0 && rated.clone().all(|v| v >= 0.0),
            "{body}"
        );
    }
    let host_metrics = [
        ("measurement", "host_metrics"),
        ("host", host.as_str()),
        ("fields", "domains"),
    ];
    let body = history(app, &host_metrics).await;
    let points = body["points"].as_array().unwrap();
    assert!(!points.is_empty(), "{body}");
    assert!(
        points.iter().all(|p| p["domains"].as_u64() >= Some(1)),
        "{body}"
    );
    assert!(body.get("vm").is_none(), "{body}");
}

#[actix_web::test]
async fn a_guests_disk_and_its_hosts_metrics_have_a_history_in_influxql_and_sql() {
    let name = format!("vmt-test-history-devices-{}", std::process::id());
    let _guest = Guest::firmware_with_disk(&name);
    let env = [
        ("VMTELEMETRY_POLL_INTERVAL", "0.5"),
        ("VMTELEMETRY_STATS_INTERVAL", "0.5"),
        ("VMTELEMETRY_STATS_GROUPS", "block"),
        ("VMTELEMETRY_HOST_METRICS", "true"),
        ("VMTELEMETRY_DOMAIN_INCLUDE", name.as_str()),
    ];
    let influx = Influx::new_database().await;
    let v1 = spawn_collecting("qemu:///system", &influx, &env).await;
    let standin = InfluxDb3StandIn::start(None).await;
    let v3 = spawn_writing_to("qemu:///system", &standin.url, "v3", &env).await;
    assert_device_and_host_history(&v1, &name).await;
    assert_device_and_host_history(&v3, &name).await;
    let sql: Vec<Value> = standin
        .queries()
        .iter()
        .map(|q| serde_json::from_str::<Value>(&q.body).unwrap()["q"].clone())
        .collect();
    assert!(
        sql.iter()
            .any(|q| q.as_str().unwrap().contains("GROUP BY 1, \"device\"")),
        "{sql:?}"
    );
}
