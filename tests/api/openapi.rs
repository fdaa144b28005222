//! `/api/openapi.json` documents what the handlers really do.

use serde_json::{Value, json};

use crate::vms::two_host_app;

/// Plausible values for the documented query parameters.
fn sample_value(parameter: &str) -> &'static str {
    match parameter {
        "vm" => "web",
        "host" => "alpha",
        "state" => "running",
        "name" => "web",
        "measurement" => "vm_metrics",
        "fields" => "memory_used_kb",
        "start" => "-1h",
        "end" => "now",
        "every" => "1m",
        "limit" => "10",
        "sort" => "name",
        "order" => "desc",
        "offset" => "1",
        other => panic!("a parameter this test does not know: {other}"),
    }
}

#[actix_web::test]
async fn the_document_lists_every_endpoint_and_its_parameters_are_the_handlers() {
    let (app, _alpha, _beta) = two_host_app(&[(
        "VMTELEMETRY_ADMIN_TOKEN",
        "openapi-t0ken-7c1e5a9f3b2d80e46a1f",
    )])
    .await;
    let (code, spec) = app.get("/api/openapi.json").await;
    assert_eq!(code, 200);
    assert!(spec["openapi"].as_str().unwrap().starts_with("3."));
    let paths = spec["paths"].as_object().unwrap();
    let mut documented: Vec<&str> = paths.keys().map(String::as_str).collect();
    documented.sort();
    assert_eq!(
        documented,
        [
            "/api/admin/actors",
            "/api/admin/actors/{name}/restart",
            "/api/admin/coordination/drain",
            "/api/admin/coordination/hand-over",
            "/api/admin/coordination/resume",
            "/api/telemetry/history",
            "/api/telemetry/insights",
            "/api/telemetry/insights/{vm_id}",
            "/api/telemetry/recommendations",
            "/api/telemetry/stats/{vm_id}",
            "/api/telemetry/status",
            "/api/telemetry/summary",
            "/api/telemetry/vms",
            "/health",
            "/metrics",
            "/ready",
        ]
    );
    for (path, operations) in paths {
        for (method, operation) in operations.as_object().unwrap() {
            let query: Vec<&str> = operation["parameters"]
                .as_array()
                .map(|p| p.as_slice())
                .unwrap_or_default()
                .iter()
                .filter(|p| p["in"] == json!("query"))
                .map(|p| p["name"].as_str().unwrap())
                .collect();
            if method != "get" || path.contains('{') || query.is_empty() {
                continue;
            }
            // Every documented parameter is accepted (an undocumented one is a 400)...
            let pairs: Vec<(&str, &str)> = query.iter().map(|p| (*p, sample_value(p))).collect();
            let encoded = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(&pairs)
                .finish();
            let answer = app.request("GET", &format!("{path}?{encoded}"), None).await;
            assert_ne!(
                answer.body["error"]["code"],
                json!("invalid_parameter"),
                "{path}: {}",
                answer.body
            );
            let documented: Vec<u16> = operation["responses"]
                .as_object()
                .unwrap()
                .keys()
                .map(|k| k.parse().unwrap())
                .collect();
            // ...and its status is one the document lists.
            assert!(
                documented.contains(&answer.status),
                "{path}: {} not in {documented:?}",
                answer.status
            );
            let answer = app
                .request("GET", &format!("{path}?{encoded}&undocumented=1"), None)
                .await;
            assert_eq!(answer.status, 400, "{path}");
        }
    }
    let schemas: &Value = &spec["components"]["schemas"];
    for schema in [
        "VmView",
        "VmDetail",
        "History",
        "ActorInfo",
        "TelemetryStatus",
        "ErrorBody",
        "FleetInsights",
        "VmInsightsDetail",
        "Summary",
    ] {
        assert!(schemas.get(schema).is_some(), "{schema} missing");
    }
}
