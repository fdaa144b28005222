use crate::helpers::{TestApp, assert_error, collecting_from, spawn_app};
use serde_json::json;

const UNREACHABLE_HOST: &str = "qemu+unix:///system?socket=/nonexistent/libvirt-sock";

/// The service with its one host unreachable.
async fn unconnected_app() -> TestApp {
    spawn_app(&[("VMTELEMETRY_LIBVIRT_URI", UNREACHABLE_HOST)]).await
}

#[actix_web::test]
async fn health_answers_while_nothing_is_connected() {
    let app = unconnected_app().await;
    let (code, body) = app.get("/health").await;
    assert_eq!(code, 200);
    assert_eq!(body, json!({"status": "ok"}));
}

#[actix_web::test]
async fn not_ready_without_a_connected_host_and_unknown_paths_are_a_json_404() {
    let app = unconnected_app().await;
    for (path, status, code, named) in [
        ("/ready", 503, "not_ready", "0 of 1 hosts connected"),
        ("/api/nothing-here", 404, "not_found", "/api/nothing-here"),
    ] {
        assert_error(&app.get(path).await, status, code, named);
    }
}

#[actix_web::test]
async fn not_ready_while_writes_fail() {
    // Nothing listens on the discard port: every write fails.
    let app = spawn_app(&[
        ("VMTELEMETRY_LIBVIRT_URI", "test:///default"),
        ("VMTELEMETRY_INFLUX_URL", "http://127.0.0.1:9"),
    ])
    .await;
    let body = crate::helpers::wait_for(
        "a failed write",
        std::time::Duration::from_secs(10),
        || async {
            let (code, body) = app.get("/ready").await;
            (code == 503
                && body["error"]["message"]
                    .as_str()?
                    .contains("writer failing"))
            .then_some(body)
        },
    )
    .await;
    assert_eq!(body["error"]["code"], json!("not_ready"));
}

#[actix_web::test]
async fn ready_when_a_host_is_connected_and_writes_succeed() {
    let (app, _influx) = collecting_from("test:///default", &[]).await;
    crate::helpers::wait_for("readiness", std::time::Duration::from_secs(10), || async {
        let status = app.status().await;
        let written = status["total_metrics_written"].as_u64()? > 0;
        let (code, _) = app.get("/ready").await;
        (written && code == 200).then_some(())
    })
    .await;
}

#[actix_web::test]
async fn head_answers_as_get_without_a_body_and_other_methods_get_405() {
    let app = unconnected_app().await;
    for path in ["/", "/health", "/ready", "/api/telemetry/status"] {
        let url = format!("{}{path}", app.address);
        let get = app.client.get(&url).send().await.expect("GET answers");
        // Gzipped like the GET, so no body to decompress: awc would fail on the empty one.
        let head = app.client.head(&url).no_decompress();
        let mut head = head.send().await.expect("HEAD answers");
        assert_eq!(head.status(), get.status(), "{path}");
        assert_eq!(
            head.headers().get("content-type"),
            get.headers().get("content-type"),
            "{path}"
        );
        assert!(head.body().await.unwrap().is_empty(), "{path}");
    }
    for (method, path, allowed) in [
        ("POST", "/health", "GET, HEAD"),
        ("DELETE", "/api/telemetry/vms", "GET, HEAD"),
        ("GET", "/api/admin/actors/writer/restart", "POST"),
    ] {
        let answer = app.request(method, path, None).await;
        assert_eq!(answer.status, 405, "{method} {path}: {}", answer.body);
        assert_eq!(answer.body["error"]["code"], json!("method_not_allowed"));
        let message = answer.body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(method) && message.contains(path),
            "{message}"
        );
        assert_eq!(
            answer.headers.get("allow").unwrap(),
            allowed,
            "{method} {path}"
        );
    }
    let answer = app.request("POST", "/no/such/path", None).await;
    assert_eq!(answer.status, 404);
    assert_eq!(answer.body["error"]["code"], json!("not_found"));
}
