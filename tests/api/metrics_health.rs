//! `/metrics` on the service's own health and through a host outage: cycle and write durations
//! as histograms, InfluxDB failures by class, the spool's figures, and a host that goes down
//! taking its VMs out of the exporter's families while their age keeps growing.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use serde_json::json;

use crate::helpers::{
    Influx, TestApp, TestDomain, TestNode, collecting, serve_every_request, spawn_collecting,
    spawn_writing_to, wait_for,
};
use crate::support::libvirtd::PrivateLibvirtd;
use crate::support::prometheus::{Sample, scrape, value_of};

/// A scrape once `ready` holds of it; fails the test after `within` with `what`.
async fn scrape_when(
    app: &TestApp,
    what: &str,
    within: Duration,
    ready: impl Fn(&[Sample]) -> bool,
) -> Vec<Sample> {
    wait_for(what, within, || async {
        let samples = scrape(&app.client, &app.address).await;
        ready(&samples).then_some(samples)
    })
    .await
}

/// The samples of `name` whose `label` is `value`.
fn of<'a>(samples: &'a [Sample], name: &str, label: &str, value: &str) -> Vec<&'a Sample> {
    samples
        .iter()
        .filter(|s| s.name == name && s.labels.get(label).map(String::as_str) == Some(value))
        .collect()
}

#[actix_web::test]
async fn cycles_and_writes_are_histograms_and_the_spool_is_measured() {
    let (app, _influx, node) = collecting(&[TestDomain::new("h", 1, 1)], &[]).await;
    let count = "vmtelemetry_host_cycle_duration_seconds_count";
    let uri = [("uri", node.uri.as_str())];
    let samples = scrape_when(
        &app,
        "three cycles and a write",
        Duration::from_secs(20),
        |s| {
            let cycles = value_of(s, count, &uri).unwrap_or(0.0);
            let writes = value_of(s, "vmtelemetry_write_duration_seconds_count", &[]);
            cycles >= 3.0 && writes.unwrap_or(0.0) >= 1.0
        },
    )
    .await;
    // Read after the status it comes with: the histogram has every cycle the counter has.
    let collections = value_of(&samples, "vmtelemetry_collections_total", &uri).unwrap();
    let cycles = value_of(&samples, count, &uri).unwrap();
    assert!(
        cycles >= collections,
        "{cycles} cycles, {collections} collections"
    );
    let all = [("uri", node.uri.as_str()), ("le", "+Inf")];
    let bucket = "vmtelemetry_host_cycle_duration_seconds_bucket";
    assert_eq!(value_of(&samples, bucket, &all), Some(cycles));
    let sum = value_of(
        &samples,
        "vmtelemetry_host_cycle_duration_seconds_sum",
        &uri,
    )
    .unwrap();
    assert!(
        sum > 0.0 && sum < cycles * 5.0,
        "{sum} s over {cycles} cycles"
    );
    for class in [
        "transient",
        "auth",
        "refused",
        "too_large",
        "database_missing",
    ] {
        let failures = value_of(
            &samples,
            "vmtelemetry_influx_failures_total",
            &[("class", class)],
        );
        assert_eq!(failures, Some(0.0), "{class}");
    }
    assert_eq!(
        value_of(&samples, "vmtelemetry_spool_state", &[("state", "ok")]),
        Some(1.0)
    );
    for gauge in [
        "vmtelemetry_spool_file_bytes",
        "vmtelemetry_spool_free_bytes",
    ] {
        let bytes = value_of(&samples, gauge, &[]).unwrap_or_else(|| panic!("{gauge}"));
        assert!(bytes > 0.0, "{gauge} {bytes}");
    }
}

/// Each class of failure once, in this order, on the write path; then every write accepted.
const FAILURES: [(u16, &str, &str); 5] = [
    (401, "auth", r#"{"error":"unauthorized"}"#),
    (503, "transient", ""),
    (413, "too_large", ""),
    (404, "database_missing", r#"{"error":"database not found"}"#),
    (422, "refused", r#"{"error":"parse error"}"#),
];

#[actix_web::test]
async fn influxdb_failures_are_counted_by_class() {
    let writes = Arc::new(AtomicUsize::new(0));
    let seen = writes.clone();
    let url = serve_every_request(move |request: HttpRequest| {
        let writes = seen.clone();
        async move {
            if !request.path().contains("write") {
                return HttpResponse::Ok().json(json!({}));
            }
            match FAILURES.get(writes.fetch_add(1, Ordering::SeqCst)) {
                Some((status, _, body)) => {
                    HttpResponse::build(StatusCode::from_u16(*status).unwrap()).body(*body)
                }
                None => HttpResponse::NoContent().finish(),
            }
        }
    });
    let node = TestNode::new(&[TestDomain::new("a", 1, 1), TestDomain::new("b", 1, 2)]);
    let env = [("VMTELEMETRY_RETRY_MAX_DELAY", "0.2")];
    let app = spawn_writing_to(&node.uri, &url, "v3", &env).await;
    let samples = scrape_when(&app, "lines written", Duration::from_secs(30), |s| {
        value_of(s, "vmtelemetry_lines_written_total", &[]).unwrap_or(0.0) > 0.0
    })
    .await;
    for (status, class, _) in FAILURES {
        let failures = value_of(
            &samples,
            "vmtelemetry_influx_failures_total",
            &[("class", class)],
        );
        assert_eq!(failures, Some(1.0), "{status} is {class}");
    }
}

#[actix_web::test]
async fn a_host_that_goes_down_leaves_the_exporter_families_and_its_vms_age() {
    let mut daemon = PrivateLibvirtd::start(false);
    let node = TestNode::new(&[
        TestDomain::new("down-a", 1, 1),
        TestDomain::new("down-b", 1, 2),
    ]);
    let uri = format!("{}?socket={}", node.uri, daemon.socket().display());
    let influx = Influx::new_database().await;
    let app = spawn_collecting(&uri, &influx, &[("VMTELEMETRY_HOST_METRICS", "true")]).await;
    let vcpus = "libvirt_domain_info_virtual_cpus";
    let up = scrape_when(&app, "both VMs in /metrics", Duration::from_secs(20), |s| {
        s.iter().filter(|s| s.name == vcpus).count() == 2
    })
    .await;
    let host = up.iter().find(|s| s.name == vcpus).unwrap().labels["host"].clone();
    assert_eq!(value_of(&up, "libvirt_up", &[("host", &host)]), Some(1.0));
    daemon.stop();
    let down = scrape_when(&app, "libvirt_up 0", Duration::from_secs(20), |s| {
        value_of(s, "libvirt_up", &[("host", &host)]) == Some(0.0)
    })
    .await;
    let exporter: Vec<&Sample> = down
        .iter()
        .filter(|s| s.name.starts_with("libvirt_domain") && s.labels.get("host") == Some(&host))
        .collect();
    assert!(exporter.is_empty(), "a down host's VMs: {exporter:?}");
    assert_eq!(
        value_of(&down, "vmtelemetry_host_up", &[("host", &host)]),
        Some(0.0)
    );
    // Kept with their last values, the VMs' age keeps growing: never frozen as if fresh.
    let age = "vmtelemetry_vm_sample_age_seconds";
    actix_rt::time::sleep(Duration::from_secs(1)).await;
    let later = scrape(&app.client, &app.address).await;
    let (before, after) = (
        of(&down, age, "host", &host),
        of(&later, age, "host", &host),
    );
    assert_eq!((before.len(), after.len()), (2, 2), "{before:?} {after:?}");
    for before in before {
        let after = after.iter().find(|a| a.labels == before.labels).unwrap();
        assert!(
            after.value - before.value >= 0.9,
            "{before:?} then {after:?}"
        );
    }
    // The host's own figures (`host_metrics`) likewise.
    let host_age =
        |s: &[Sample]| value_of(s, "vmtelemetry_host_sample_age_seconds", &[("host", &host)]);
    let (before, after) = (host_age(&down).unwrap(), host_age(&later).unwrap());
    assert!(after - before >= 0.9, "{before} then {after}");
    let domains = "vmtelemetry_host_metrics_domains";
    assert_eq!(value_of(&up, domains, &[("host", &host)]), Some(2.0));
}
