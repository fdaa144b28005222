//! `GET /api/telemetry/vms`: every monitored VM, live from the actors.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{TestApp, TestDomain, TestNode, assert_error, spawn_app_with_file, wait_for};

/// Two hosts: alpha has web (running), db (paused) and old (shut off); beta has another web.
pub async fn two_host_app(extra_env: &[(&str, &str)]) -> (TestApp, TestNode, TestNode) {
    let alpha = vec![
        TestDomain::new("web", 1, 1),
        TestDomain::new("db", 3, 2),
        TestDomain::new("old", 5, 3),
    ];
    let beta = vec![TestDomain::new("web", 1, 4)];
    let hosts = vec![("alpha", alpha), ("beta", beta)];
    let (app, mut nodes) = hosts_app(hosts, &[], extra_env).await;
    let beta = nodes.pop().unwrap();
    (app, nodes.pop().unwrap(), beta)
}

/// One test-driver node per named host, and `unreachable` URIs, collected until every VM shows
/// features (two cycles).
pub async fn hosts_app(
    hosts: Vec<(&str, Vec<TestDomain>)>,
    unreachable: &[&str],
    extra_env: &[(&str, &str)],
) -> (TestApp, Vec<TestNode>) {
    let total: usize = hosts.iter().map(|(_, domains)| domains.len()).sum();
    let nodes: Vec<_> = hosts.iter().map(|(_, d)| TestNode::new(d)).collect();
    let mut entries: Vec<_> = hosts
        .iter()
        .zip(&nodes)
        .map(|((name, _), node)| format!(r#"{{ uri = "{}", name = "{name}" }}"#, node.uri))
        .collect();
    entries.extend(unreachable.iter().map(|uri| format!("{uri:?}")));
    let file = format!("hosts = [{}]", entries.join(", "));
    // Writes go nowhere: these tests read the live view only.
    let mut env = vec![("VMTELEMETRY_INFLUX_URL", "http://127.0.0.1:9")];
    env.extend_from_slice(extra_env);
    let app = spawn_app_with_file(Some(&file), &env).await;
    wait_for(
        "two cycles of every VM",
        Duration::from_secs(15),
        || async {
            let (_, body) = app.get("/api/telemetry/vms").await;
            let vms = body["vms"].as_array()?;
            (vms.len() == total && vms.iter().all(|vm| !vm["memory_rate_kb_per_sec"].is_null()))
                .then_some(())
        },
    )
    .await;
    (app, nodes)
}

fn names(body: &Value) -> Vec<(String, String)> {
    body["vms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|vm| {
            (
                vm["host"].as_str().unwrap().to_owned(),
                vm["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[actix_web::test]
async fn lists_every_vm_in_a_stable_order_with_its_latest_sample() {
    let (app, alpha, _beta) = two_host_app(&[]).await;
    let (code, body) = app.get("/api/telemetry/vms").await;
    assert_eq!(code, 200);
    assert_eq!(body["count"], json!(4));
    assert_eq!(
        names(&body),
        [
            ("alpha", "db"),
            ("alpha", "old"),
            ("alpha", "web"),
            ("beta", "web")
        ]
        .map(|(h, n)| (h.to_owned(), n.to_owned()))
    );
    let db = &body["vms"][0];
    let expected = TestDomain::new("db", 3, 2);
    assert_eq!(db["uri"], json!(alpha.uri));
    assert_eq!(db["uuid"], json!(expected.uuid));
    assert_eq!(db["state"], json!("paused"));
    assert_eq!(db["cpu_count"], json!(expected.vcpus));
    assert_eq!(db["memory_max_kb"], json!(expected.memory_kib));
    assert_eq!(db["memory_used_kb"], json!(expected.current_memory_kib));
    assert_eq!(db["memory_rate_kb_per_sec"], json!(0.0));
    assert!(db["vmid"].as_str().unwrap().parse::<u32>().is_ok());
    assert!(db["timestamp"].as_str().unwrap().ends_with('Z'));
    assert_eq!(body["vms"][1]["vmid"], json!("-"));
}

#[actix_web::test]
async fn filters_by_host_state_and_name() {
    let (app, _alpha, _beta) = two_host_app(&[]).await;
    let (_, body) = app.get("/api/telemetry/vms?host=beta").await;
    assert_eq!(names(&body), [("beta".to_owned(), "web".to_owned())]);
    let (_, body) = app.get("/api/telemetry/vms?state=stopped").await;
    assert_eq!(names(&body), [("alpha".to_owned(), "old".to_owned())]);
    let (_, body) = app.get("/api/telemetry/vms?name=we&host=alpha").await;
    assert_eq!(names(&body), [("alpha".to_owned(), "web".to_owned())]);
    let (_, body) = app.get("/api/telemetry/vms?name=nothing-like-this").await;
    assert_eq!(body, json!({"vms": [], "count": 0}));
}

#[actix_web::test]
async fn an_unknown_parameter_is_a_400_naming_it() {
    let (app, _alpha, _beta) = two_host_app(&[]).await;
    let answer = app
        .request("GET", "/api/telemetry/vms?colour=red", None)
        .await;
    assert_error(
        &(answer.status, answer.body.clone()),
        400,
        "invalid_parameter",
        "colour",
    );
    assert!(answer.headers.contains_key("x-request-id"));
}
