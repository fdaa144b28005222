//! `/api/admin/actors`: listing and restarting actors, behind the admin token.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{TestApp, TestDomain, TestNode, spawn_app, wait_for};

const TOKEN: &str = "adm1n-t0ken-5f0c9e2a7b4d8136aa02e9f1";

async fn app_with_token(node: &TestNode, influx_url: &str) -> TestApp {
    spawn_app(&[
        ("VMTELEMETRY_LIBVIRT_URI", &node.uri),
        ("VMTELEMETRY_INFLUX_URL", influx_url),
        ("VMTELEMETRY_ADMIN_TOKEN", TOKEN),
    ])
    .await
}

async fn actor(app: &TestApp, name: &str) -> Value {
    let answer = app.request("GET", "/api/admin/actors", Some(TOKEN)).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.body["actors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == json!(name))
        .unwrap_or_else(|| panic!("no actor {name} in {}", answer.body))
        .clone()
}

async fn restart(app: &TestApp, name: &str) {
    let encoded: String = url::form_urlencoded::byte_serialize(name.as_bytes()).collect();
    let answer = app
        .request(
            "POST",
            &format!("/api/admin/actors/{encoded}/restart"),
            Some(TOKEN),
        )
        .await;
    assert_eq!(answer.status, 202, "{}", answer.body);
    assert_eq!(answer.body, json!({"actor": name, "status": "restarting"}));
}

#[actix_web::test]
async fn without_a_configured_token_the_admin_endpoints_are_disabled() {
    let node = TestNode::new(&[TestDomain::new("a", 1, 1)]);
    let app = spawn_app(&[("VMTELEMETRY_LIBVIRT_URI", &node.uri)]).await;
    for (method, path) in [
        ("GET", "/api/admin/actors"),
        ("POST", "/api/admin/actors/writer/restart"),
    ] {
        let answer = app.request(method, path, Some("anything")).await;
        assert_eq!(answer.status, 403, "{path}");
        assert_eq!(answer.body["error"]["code"], json!("admin_disabled"));
    }
}

#[actix_web::test]
async fn a_missing_or_wrong_token_is_a_401() {
    let node = TestNode::new(&[TestDomain::new("a", 1, 1)]);
    let app = app_with_token(&node, "http://127.0.0.1:9").await;
    let longer = format!("{TOKEN}2");
    for token in [
        None,
        Some("wrong"),
        Some(&TOKEN[..TOKEN.len() - 1]),
        Some(longer.as_str()),
    ] {
        let answer = app.request("GET", "/api/admin/actors", token).await;
        assert_eq!(answer.status, 401, "{token:?}");
        assert_eq!(answer.body["error"]["code"], json!("unauthorized"));
        assert_eq!(answer.headers.get("www-authenticate").unwrap(), "Bearer");
        let answer = app
            .request("POST", "/api/admin/actors/writer/restart", token)
            .await;
        assert_eq!(answer.status, 401, "{token:?}");
    }
}

#[actix_web::test]
async fn lists_every_actor_with_its_state() {
    let node = TestNode::new(&[TestDomain::new("a", 1, 1)]);
    let app = app_with_token(&node, "http://127.0.0.1:9").await;
    wait_for("a failed write", Duration::from_secs(10), || async {
        let writer = actor(&app, "writer").await;
        (writer["state"] == json!("failed")).then_some(())
    })
    .await;
    let answer = app.request("GET", "/api/admin/actors", Some(TOKEN)).await;
    let actors = answer.body["actors"].as_array().unwrap();
    let summary: Vec<(&str, &str)> = actors
        .iter()
        .map(|a| (a["name"].as_str().unwrap(), a["kind"].as_str().unwrap()))
        .collect();
    let host = format!("host:{}", node.uri);
    assert_eq!(
        summary,
        [
            (host.as_str(), "host"),
            ("features", "features"),
            ("writer", "writer")
        ]
    );
    let host = &actors[0];
    assert_eq!(host["state"], json!("running"));
    assert_eq!(host["restarts"], json!(0));
    let writer = &actors[2];
    assert!(
        writer["last_error"]
            .as_str()
            .unwrap()
            .contains("unreachable")
    );
    assert!(writer["queue_depth"].as_u64().is_some());
}

#[actix_web::test]
async fn restarting_the_writer_loses_no_queued_line() {
    let node = TestNode::new(&TestDomain::running("vm", 0..5));
    let app = app_with_token(&node, "http://127.0.0.1:9").await;
    let status = wait_for("a queue", Duration::from_secs(10), || async {
        let status = app.status().await;
        (status["queue_depth"].as_u64()? >= 10).then_some(status)
    })
    .await;
    let produced_before = status["features"]["lines_produced"].as_u64().unwrap();
    restart(&app, "writer").await;
    let writer = wait_for("the writer's restart", Duration::from_secs(10), || async {
        let writer = actor(&app, "writer").await;
        (writer["restarts"] == json!(1)).then_some(writer)
    })
    .await;
    assert_ne!(writer["state"], json!("restarting"));
    let status = app.status().await;
    assert_eq!(status["dropped_lines"], json!(0));
    assert_eq!(status["total_metrics_written"], json!(0));
    // Every line produced is still queued: those from before the restart and any since.
    assert!(status["queue_depth"].as_u64().unwrap() >= produced_before);
}

#[actix_web::test]
async fn restarting_a_host_actor_reconnects_and_the_others_keep_running() {
    let node = TestNode::new(&[TestDomain::new("a", 1, 1)]);
    let app = app_with_token(&node, "http://127.0.0.1:9").await;
    let name = format!("host:{}", node.uri);
    let collections = |status: &Value| status["total_collections"].as_u64().unwrap();
    let before = collections(&app.status().await);
    restart(&app, &name).await;
    wait_for(
        "collections after the restart",
        Duration::from_secs(10),
        || async {
            let host = actor(&app, &name).await;
            let status = app.status().await;
            (host["restarts"] == json!(1)
                && status["hosts"][0]["connection"] == json!("connected")
                && collections(&status) >= before + 2)
                .then_some(())
        },
    )
    .await;
    assert_eq!(actor(&app, "writer").await["restarts"], json!(0));
    assert_eq!(actor(&app, "features").await["restarts"], json!(0));
}

#[actix_web::test]
async fn restarting_the_feature_actor_loses_only_the_previous_samples() {
    let node = TestNode::new(&[TestDomain::new("a", 1, 1), TestDomain::new("b", 1, 2)]);
    let app = app_with_token(&node, "http://127.0.0.1:9").await;
    wait_for("features", Duration::from_secs(10), || async {
        let status = app.status().await;
        (status["features"]["lines_produced"].as_u64()? >= 6).then_some(())
    })
    .await;
    restart(&app, "features").await;
    wait_for("the restart", Duration::from_secs(10), || async {
        (actor(&app, "features").await["restarts"] == json!(1)).then_some(())
    })
    .await;
    // The live view stays: both VMs are still listed.
    let (_, body) = app.get("/api/telemetry/vms").await;
    assert_eq!(body["count"], json!(2));
    assert_eq!(
        app.status().await["features"]["unencodable_lines"],
        json!(0)
    );
    // Without features: the VM's very first sample and the first one after the restart, and
    // nothing else: features resume with the second sample after the restart.
    wait_for(
        "features after the restart",
        Duration::from_secs(10),
        || async {
            let (_, stats) = app.get("/api/telemetry/stats/a").await;
            let recent = stats["recent"].as_array()?.clone();
            let without_features = recent
                .iter()
                .filter(|s| s["memory_rate_kb_per_sec"].is_null())
                .count();
            (without_features == 2 && !recent.last()?["memory_rate_kb_per_sec"].is_null())
                .then_some(())
        },
    )
    .await;
}

#[actix_web::test]
async fn an_unknown_actor_is_a_404() {
    let node = TestNode::new(&[TestDomain::new("a", 1, 1)]);
    let app = app_with_token(&node, "http://127.0.0.1:9").await;
    let answer = app
        .request(
            "POST",
            "/api/admin/actors/host%3Atest%3A%2F%2F%2Fnowhere/restart",
            Some(TOKEN),
        )
        .await;
    assert_eq!(answer.status, 404);
    assert_eq!(answer.body["error"]["code"], json!("unknown_actor"));
    assert!(
        answer.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("host:test:///nowhere")
    );
}
