//! `GET /api/telemetry/stats/{vm_id}`: one VM by UUID, name or VMID.

use serde_json::{Value, json};

use crate::helpers::{TestApp, TestDomain, assert_error, each_str};
use crate::vms::two_host_app;

/// The VM that `path` finds, asserting a 200.
async fn found(app: &TestApp, path: &str) -> Value {
    let (code, body) = app.get(path).await;
    assert_eq!(code, 200, "{path}: {body}");
    body["vm"].clone()
}

#[actix_web::test]
async fn one_vm_by_uuid_with_features_and_recent_samples() {
    let (app, _alpha, _beta) = two_host_app(&[]).await;
    let uuid = TestDomain::new("db", 3, 2).uuid;
    let (code, body) = app.get(&format!("/api/telemetry/stats/{uuid}")).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["vm"]["name"], json!("db"));
    assert_eq!(
        body["vm"]["memory_angle_deg"],
        json!(1e-12_f64.atan().to_degrees())
    );
    let recent = body["recent"].as_array().unwrap();
    assert!(recent.len() >= 2, "{body}");
    assert!(
        recent[0]["memory_rate_kb_per_sec"].is_null(),
        "the first sample has no features"
    );
    let times: Vec<&str> = recent
        .iter()
        .map(|s| s["timestamp"].as_str().unwrap())
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] < w[1]),
        "oldest first: {times:?}"
    );
    // Upper case works too: a UUID is a UUID.
    let (code, _) = app
        .get(&format!("/api/telemetry/stats/{}", uuid.to_uppercase()))
        .await;
    assert_eq!(code, 200);
}

#[actix_web::test]
async fn a_unique_name_finds_its_vm() {
    let (app, _alpha, _beta) = two_host_app(&[]).await;
    let vm = found(&app, "/api/telemetry/stats/old").await;
    assert_eq!(vm["state"], json!("stopped"));
}

#[actix_web::test]
async fn a_name_or_vmid_on_two_hosts_is_a_409_listing_candidates_unless_host_settles_it() {
    let (app, _alpha, _beta) = two_host_app(&[]).await;
    // Each test-driver host numbers its running domains from 1: beta's first is `web`.
    for selector in ["web", "1"] {
        let answer = app.get(&format!("/api/telemetry/stats/{selector}")).await;
        assert_error(&answer, 409, "ambiguous_vm", "?host=");
        let hosts = each_str(&answer.1["error"]["candidates"], "host");
        assert_eq!(hosts, ["alpha", "beta"], "{selector}");
        let vm = found(&app, &format!("/api/telemetry/stats/{selector}?host=beta")).await;
        let web = TestDomain::new("web", 1, 4);
        assert_eq!(vm["uuid"], json!(web.uuid), "{selector}");
    }
}

#[actix_web::test]
async fn an_unknown_vm_is_a_404_saying_so() {
    let (app, _alpha, _beta) = two_host_app(&[]).await;
    let answer = app.get("/api/telemetry/stats/no-such-vm").await;
    assert_error(&answer, 404, "vm_not_found", "no-such-vm");
    let (code, _) = app.get("/api/telemetry/stats/web?host=gamma").await;
    assert_eq!(code, 404);
}
