//! Forecasts and right-sizing through the whole pipeline on a test-driver node: every VM in
//! `/api/telemetry/recommendations` (learning until VPA's minute samples span a minute), the
//! host's committed memory against its own in the API and as a `vm_forecasts` line in the real
//! InfluxDB, the query checked, and the endpoint in the OpenAPI document.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{TestDomain, assert_error, collecting, each_str, spawn_app, wait_for};
use crate::support::prometheus::{scrape, value_of};

/// Three running VMs and one shut off (not committed).
fn domains() -> Vec<TestDomain> {
    let mut domains = TestDomain::running("rs-", [1, 2, 3]);
    domains.push(TestDomain::new("rs-off", 5, 4));
    domains
}

const SETTINGS: [(&str, &str); 2] = [
    ("VMTELEMETRY_INSIGHTS", "true"),
    ("VMTELEMETRY_HOST_METRICS", "true"),
];

#[actix_web::test]
async fn every_vm_is_listed_learning_and_the_hosts_committed_memory_is_forecast() {
    let domains = domains();
    let (app, influx, _node) = collecting(&domains, &SETTINGS).await;
    let body = wait_for("every VM listed", Duration::from_secs(15), || async {
        let (status, body) = app.get("/api/telemetry/recommendations").await;
        assert_eq!(status, 200, "{body}");
        (body["fleet"]["vms"] == json!(4)).then_some(body)
    })
    .await;
    // Learning: VPA needs CPU samples a minute apart before its bounds are finite.
    let vms = body["vms"].as_array().unwrap();
    assert!(
        vms.iter().all(|vm| vm["recommendation"].is_null()),
        "{body}"
    );
    assert_eq!(body["fleet"]["vms_recommended"], json!(0));
    let host = &body["hosts"][0];
    assert_eq!(host["totals"]["vms"], json!(4), "{body}");
    // Committed: the maximum memory of the three running VMs, in bytes.
    let committed: u64 = domains[..3].iter().map(|d| d.memory_kib * 1024).sum();
    let forecast = &host["forecasts"][0];
    assert_eq!(forecast["resource"], json!("committed_memory"), "{host}");
    assert_eq!(forecast["used"], json!(committed as f64), "{host}");
    assert_eq!(
        forecast["seconds_to_full"],
        Value::Null,
        "a steady commitment is not growing"
    );

    // The same in InfluxDB, against the host's memory, with the field types it keeps.
    let rows = influx
        .rows_when(
            "the host's vm_forecasts line",
            Duration::from_secs(15),
            "SELECT * FROM vm_forecasts WHERE \"resource\" = 'committed_memory'",
            |rows| !rows.is_empty(),
        )
        .await;
    let total_kb = influx
        .rows("SELECT LAST(memory_total_kb) FROM host_metrics")
        .await;
    let total_kb = total_kb[0]["last"].as_f64().unwrap();
    assert_eq!(
        rows[0]["capacity"].as_f64(),
        Some(total_kb * 1024.0),
        "{rows:?}"
    );
    assert_eq!(rows[0]["used"].as_f64(), Some(committed as f64), "{rows:?}");
    assert_eq!(rows[0]["growing"], json!(0));
    let types = influx.field_types("vm_forecasts").await;
    for (field, kind) in [
        ("capacity", "float"),
        ("growing", "integer"),
        ("growth_per_hour", "float"),
        ("used", "float"),
    ] {
        assert_eq!(
            types.get(field).map(String::as_str),
            Some(kind),
            "{types:?}"
        );
    }

    // The same in /metrics, from the actor's state: no recommendation while every VM learns.
    let samples = scrape(&app.client, &app.address).await;
    let labels = [
        ("host", host["host"].as_str().unwrap()),
        ("resource", "committed_memory"),
    ];
    for (field, expected) in [
        ("used", Some(committed as f64)),
        ("capacity", Some(total_kb * 1024.0)),
        ("growing", Some(0.0)),
        ("seconds_to_full", None),
    ] {
        let family = format!("vmtelemetry_vm_forecasts_{field}");
        assert_eq!(value_of(&samples, &family, &labels), expected, "{family}");
    }
    let classes = samples
        .iter()
        .filter(|s| s.name == "vmtelemetry_vm_recommendations_class");
    assert_eq!(classes.count(), 0);

    // The query: another host's VMs, sorting by name, a bad sort, an unknown parameter.
    let (_, none) = app
        .get("/api/telemetry/recommendations?host=elsewhere")
        .await;
    assert_eq!(none["fleet"]["vms"], json!(0), "{none}");
    let (_, by_name) = app
        .get("/api/telemetry/recommendations?sort=name&limit=2")
        .await;
    assert_eq!(
        each_str(&by_name["vms"], "name"),
        ["rs-1", "rs-2"],
        "{by_name}"
    );
    for query in ["sort=biggest", "limit=-1", "colour=red"] {
        let path = format!("/api/telemetry/recommendations?{query}");
        assert_eq!(app.get(&path).await.0, 400, "{query}");
    }
    let (_, openapi) = app.get("/api/openapi.json").await;
    assert!(openapi["paths"]["/api/telemetry/recommendations"]["get"].is_object());

    let off = spawn_app(&[("VMTELEMETRY_INSIGHTS", "false")]).await;
    let answer = off.get("/api/telemetry/recommendations").await;
    assert_error(&answer, 404, "insights_disabled", "insights = true");
}
