//! Nothing lost through outages, crashes and stops: against a real InfluxDB of the test's own,
//! stopped and started under the service.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{Influx, TestDomain, TestNode, spawn_app, wait_for};
use crate::support::influxd::OwnInfluxd;
use crate::support::service::ServiceProcess;

pub fn domains(n: u32) -> Vec<TestDomain> {
    TestDomain::running("vm-", 0..n)
}

#[actix_web::test]
async fn every_line_collected_while_influxdb_was_down_arrives_once() {
    let mut influxd = OwnInfluxd::start();
    let influx = Influx::new_database_at(&influxd.url).await;
    let node = TestNode::new(&domains(5));
    let app = spawn_app(&[
        ("VMTELEMETRY_LIBVIRT_URI", &node.uri),
        ("VMTELEMETRY_INFLUX_URL", &influxd.url),
        ("VMTELEMETRY_INFLUX_DB", &influx.db),
        ("VMTELEMETRY_POLL_INTERVAL", "0.5"),
        ("VMTELEMETRY_RETRY_MAX_DELAY", "1"),
    ])
    .await;
    wait_for("lines written", Duration::from_secs(10), || async {
        (app.status().await["total_metrics_written"].as_u64()? > 0).then_some(())
    })
    .await;

    influxd.kill();
    let written_before = app.status().await["total_metrics_written"]
        .as_u64()
        .unwrap();
    actix_rt::time::sleep(Duration::from_secs(20)).await;
    let during = app.status().await;
    assert!(during["write_retries"].as_u64().unwrap() >= 1, "{during}");
    assert!(
        during["queue_depth"].as_u64().unwrap() >= 5 * 20,
        "{during}"
    );
    assert_eq!(
        during["total_metrics_written"].as_u64().unwrap(),
        written_before
    );
    influxd.resume();

    // Every line produced, before, during and after the outage, is a distinct point, once.
    let produced = wait_for("the backlog written", Duration::from_secs(30), || async {
        let status = app.status().await;
        let produced = status["features"]["lines_produced"].as_u64()?;
        let stored = influx.point_count().await as u64;
        (status["queue_depth"] == json!(0) && stored == produced).then_some(produced)
    })
    .await;
    let status = app.status().await;
    assert_eq!(status["dropped_lines"], json!(0));
    assert!(status["total_metrics_written"].as_u64().unwrap() >= produced);
}

/// A host actor collects once at start; with an hour between cycles a run produces exactly one
/// cycle: `n` lines, which the test can count on.
pub fn one_cycle_env<'a>(
    node: &'a TestNode,
    influx: &'a OwnInfluxd,
    db: &'a str,
    spool: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("VMTELEMETRY_LIBVIRT_URI", node.uri.as_str()),
        ("VMTELEMETRY_INFLUX_API", "v1"),
        ("VMTELEMETRY_INFLUX_URL", influx.url.as_str()),
        ("VMTELEMETRY_INFLUX_DB", db),
        ("VMTELEMETRY_SPOOL_DIR", spool),
        ("VMTELEMETRY_POLL_INTERVAL", "3600"),
        ("VMTELEMETRY_RETRY_MAX_DELAY", "1"),
        ("VMTELEMETRY_SHUTDOWN_TIMEOUT", "1"),
        ("VMTELEMETRY_STATS_GROUPS", ""),
        ("VMTELEMETRY_HOST_METRICS", "false"),
    ]
}

/// Starts the service again on the same spool, with a host of no VM (so it adds no line), and
/// waits until the spool has been written out.
async fn replay(spool: &str, influx: &OwnInfluxd, db: &str) {
    let empty = TestNode::new(&[]);
    let service = ServiceProcess::start(&one_cycle_env(&empty, influx, db, spool));
    wait_for("the spool replayed", Duration::from_secs(20), || async {
        let status = service.status()?;
        (status["queue_depth"] == json!(0) && status["total_metrics_written"].as_u64()? > 0)
            .then_some(())
    })
    .await;
}

#[actix_web::test]
async fn what_the_service_accepted_survives_kill_9_while_influxdb_is_down() {
    let (mut influxd, influx) = OwnInfluxd::down_with_database().await;
    let spool = tempfile::tempdir().unwrap();
    let spool_dir = spool.path().to_str().unwrap();
    let node = TestNode::new(&domains(100));
    let service = ServiceProcess::start(&one_cycle_env(&node, &influxd, &influx.db, spool_dir));
    wait_for("the cycle accepted", Duration::from_secs(20), || async {
        let status = service.status()?;
        (status["queue_depth"] == json!(100)).then_some(())
    })
    .await;
    service.kill_9();

    influxd.resume();
    replay(spool_dir, &influxd, &influx.db).await;
    assert_eq!(influx.point_count().await, 100);
}

#[actix_web::test]
async fn sigterm_flushes_what_it_can_keeps_the_rest_and_exits_0() {
    let mut influxd = OwnInfluxd::start();
    let influx = Influx::new_database_at(&influxd.url).await;
    let spool = tempfile::tempdir().unwrap();
    let spool_dir = spool.path().to_str().unwrap();

    // InfluxDB up: everything is written before the exit.
    let node = TestNode::new(&domains(30));
    let service = ServiceProcess::start(&one_cycle_env(&node, &influxd, &influx.db, spool_dir));
    wait_for("the cycle accepted", Duration::from_secs(20), || async {
        (service.status()?["features"]["lines_produced"] == json!(30)).then_some(())
    })
    .await;
    let exit = service
        .terminate(Duration::from_secs(10))
        .expect("it exits");
    assert!(exit.success(), "{exit:?}");
    assert_eq!(influx.point_count().await, 30);

    // InfluxDB down: it gives up after shutdown_timeout, exits 0, and the next start delivers.
    influxd.kill();
    let other = TestNode::new(&TestDomain::running("vm-", 100..140));
    let service = ServiceProcess::start(&one_cycle_env(&other, &influxd, &influx.db, spool_dir));
    wait_for("the cycle accepted", Duration::from_secs(20), || async {
        (service.status()?["queue_depth"] == json!(40)).then_some(())
    })
    .await;
    let exit = service
        .terminate(Duration::from_secs(10))
        .expect("it exits within the timeout");
    assert!(exit.success(), "{exit:?}");
    influxd.resume();
    replay(spool_dir, &influxd, &influx.db).await;
    assert_eq!(influx.point_count().await, 70);
}

#[actix_web::test]
async fn a_full_spool_drops_its_oldest_lines_and_says_how_many() {
    let node = TestNode::new(&domains(10));
    let app = spawn_app(&[
        ("VMTELEMETRY_LIBVIRT_URI", &node.uri),
        ("VMTELEMETRY_INFLUX_URL", "http://127.0.0.1:9"),
        ("VMTELEMETRY_SPOOL_MAX_BYTES", "8192"),
        ("VMTELEMETRY_POLL_INTERVAL", "0.3"),
    ])
    .await;
    // Nothing is written, so every line produced is either spooled or counted as dropped.
    let status = wait_for("lines dropped", Duration::from_secs(20), || async {
        let status = app.status().await;
        let produced = status["features"]["lines_produced"].as_u64()?;
        let dropped = status["dropped_lines"].as_u64()?;
        let held = status["queue_depth"].as_u64()?;
        (dropped > 0 && produced == dropped + held).then_some(status)
    })
    .await;
    assert!(status["writer"]["spooled"].as_bool().unwrap());
    assert_eq!(status["total_metrics_written"], json!(0));
}
