//! The insights' families in `/metrics`: with insights on, every VM of a test-driver node with
//! the model state and conditions the insights API gives, its host's figures, and promtool clean;
//! with insights off, none of them.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{TestApp, TestDomain, collecting, wait_for};
use crate::insights::SETTINGS;
use crate::support::prometheus::{Sample, assert_promtool_clean, get_text, parse, value_of};

/// The test driver counts CPU time at the wall clock's pace: the 1-vCPU VMs (n % 4 == 0) are
/// saturated, the others not. Insights on with short learning, as in tests/api/insights.rs.
fn domains() -> Vec<TestDomain> {
    TestDomain::running("mi-", [4, 5, 6, 8])
}

/// The names of the insights' families begin so.
const INSIGHTS_PREFIXES: [&str; 4] = [
    "vmtelemetry_vm_model_trained",
    "vmtelemetry_vm_anomal",
    "vmtelemetry_vm_bottleneck_",
    "vmtelemetry_host_insights_",
];

async fn scrape_text(app: &TestApp) -> String {
    let url = format!("{}/metrics", app.address);
    get_text(&app.client, &url, "text/plain").await.0
}

/// The held conditions of each VM in `samples`, by UUID.
fn held(samples: &[Sample]) -> BTreeMap<String, Vec<(String, f64)>> {
    let mut held: BTreeMap<String, Vec<(String, f64)>> = BTreeMap::new();
    let rows = samples
        .iter()
        .filter(|s| s.name == "vmtelemetry_vm_bottleneck_held_seconds");
    for s in rows {
        let kind = s.labels["kind"].clone();
        held.entry(s.labels["uuid"].clone())
            .or_default()
            .push((kind, s.value));
    }
    held
}

#[actix_web::test]
async fn every_vm_has_the_insights_families_with_the_values_of_the_insights_api() {
    let (app, _influx, _node) = collecting(&domains(), &SETTINGS).await;
    let fleet = wait_for(
        "every VM trained and scored, two saturated",
        Duration::from_secs(30),
        || async {
            let (status, body) = app.get("/api/telemetry/insights").await;
            assert_eq!(status, 200, "{body}");
            let scored = (body["attention"].as_array().unwrap().iter())
                .all(|vm| vm["anomaly_rate"].is_number());
            let ready = body["vms_trained"] == json!(4)
                && body["conditions"]["cpu_saturated"] == json!(2)
                && scored;
            ready.then_some(body)
        },
    )
    .await;
    let text = scrape_text(&app).await;
    assert_promtool_clean(&text);
    let samples = parse(&text);
    let held = held(&samples);
    let attention = fleet["attention"].as_array().unwrap();
    assert_eq!(attention.len(), 4, "{fleet}");
    let mut saturated = Vec::new();
    for vm in attention {
        let labels = labels(vm);
        let trained = value_of(&samples, "vmtelemetry_vm_model_trained", &labels);
        assert_eq!(trained, Some(1.0), "{vm}");
        let anomalous = value_of(&samples, "vmtelemetry_vm_anomalous_signals", &labels);
        assert!(anomalous.is_some_and(|n| (0.0..=16.0).contains(&n)), "{vm}");
        // A condition seen in the API holds on: the scrape, later, says it held as long or longer.
        let api: Vec<(String, f64)> = (vm["conditions"].as_array().unwrap().iter())
            .map(|c| {
                (
                    c["kind"].as_str().unwrap().to_owned(),
                    c["held_sec"].as_f64().unwrap(),
                )
            })
            .collect();
        let scraped = held
            .get(vm["uuid"].as_str().unwrap())
            .cloned()
            .unwrap_or_default();
        let kinds =
            |held: &[(String, f64)]| held.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
        assert_eq!(kinds(&scraped), kinds(&api), "{vm}");
        for ((_, scraped), (_, api)) in scraped.iter().zip(&api) {
            assert!(
                scraped >= api,
                "held {scraped} s in /metrics, {api} s in the API: {vm}"
            );
        }
        if !api.is_empty() {
            saturated.push(vm["name"].as_str().unwrap());
        }
    }
    saturated.sort();
    assert_eq!(saturated, ["mi-4", "mi-8"], "{fleet}");
    // Every VM scored in the API is scored in the scrape, between 0 and 1.
    let scores: Vec<&Sample> = (samples.iter())
        .filter(|s| s.name == "vmtelemetry_vm_anomaly_score")
        .collect();
    assert!(
        scores.iter().all(|s| (0.0..=1.0).contains(&s.value)),
        "{scores:?}"
    );
    for vm in attention {
        let scored = scores.iter().any(|s| s.labels["uuid"] == vm["uuid"]);
        assert!(scored, "no score for {vm}");
        let rate = value_of(&samples, "vmtelemetry_vm_anomaly_rate", &labels(vm));
        assert!(rate.is_some_and(|r| (0.0..=1.0).contains(&r)), "{vm}");
    }
    let host = fleet["hosts"][0]["host"].as_str().unwrap();
    let by_host = [("host", host)];
    let figure = |name: &str| value_of(&samples, name, &by_host);
    assert_eq!(figure("vmtelemetry_host_insights_vms"), Some(4.0));
    assert_eq!(figure("vmtelemetry_host_insights_vms_trained"), Some(4.0));
    let in_condition = [("host", host), ("kind", "cpu_saturated")];
    let name = "vmtelemetry_host_insights_vms_in_condition";
    assert_eq!(value_of(&samples, name, &in_condition), Some(2.0));
}

/// `host`, `uuid` and `name` of a VM of the insights API.
fn labels(vm: &Value) -> [(&'static str, &str); 3] {
    [
        ("host", vm["host"].as_str().unwrap()),
        ("uuid", vm["uuid"].as_str().unwrap()),
        ("name", vm["name"].as_str().unwrap()),
    ]
}

#[actix_web::test]
async fn with_insights_off_none_of_their_families_is_given() {
    let (app, _influx, _node) =
        collecting(&domains()[..1], &[("VMTELEMETRY_INSIGHTS", "false")]).await;
    let samples = wait_for("the VM in /metrics", Duration::from_secs(20), || async {
        let samples = parse(&scrape_text(&app).await);
        samples
            .iter()
            .any(|s| s.name == "vmtelemetry_vm_info")
            .then_some(samples)
    })
    .await;
    for prefix in INSIGHTS_PREFIXES {
        assert!(
            samples.iter().all(|s| !s.name.starts_with(prefix)),
            "{prefix}* with insights off"
        );
    }
}
