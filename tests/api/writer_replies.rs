//! The writer against InfluxDB replies that are wrong in every way: it never crashes, keeps its
//! lines through what is transient, and still delivers everything once InfluxDB behaves.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{App, HttpResponse, HttpServer, web};
use serde_json::json;

use crate::helpers::{TestDomain, TestNode, spawn_app, wait_for};

/// One misbehaving reply per request, in order; after them, 204s.
#[derive(Clone, Copy)]
enum Reply {
    Status(u16, &'static str),
    Slow(Duration),
    /// An error whose body is shorter than its announced length.
    Truncated,
}

const MISBEHAVIOUR: [Reply; 9] = [
    Reply::Status(400, r#"{"error":"partial write","data":[{"line_number":"#),
    Reply::Status(400, "<html>bad gateway page</html>"),
    Reply::Status(500, "\u{0}\u{1}binary garbage"),
    Reply::Status(503, ""),
    Reply::Status(429, "slow down"),
    Reply::Slow(Duration::from_secs(3)),
    Reply::Truncated,
    Reply::Status(401, r#"{"error":"unauthorized"}"#),
    Reply::Status(502, r#"{"error": 5}"#),
];

/// Counts the lines of the writes it accepts.
async fn fake_influxdb() -> (String, Arc<AtomicUsize>) {
    let requests = Arc::new(AtomicUsize::new(0));
    let stored = Arc::new(AtomicUsize::new(0));
    let (requests_seen, stored_lines) = (requests.clone(), stored.clone());
    let server = HttpServer::new(move || {
        let (requests, stored) = (requests_seen.clone(), stored_lines.clone());
        App::new().default_service(web::to(move |body: web::Bytes| {
            let (requests, stored) = (requests.clone(), stored.clone());
            async move {
                let n = requests.fetch_add(1, Ordering::SeqCst);
                match MISBEHAVIOUR.get(n).copied() {
                    Some(Reply::Status(status, text)) => {
                        HttpResponse::build(StatusCode::from_u16(status).unwrap()).body(text)
                    }
                    Some(Reply::Slow(delay)) => {
                        actix_rt::time::sleep(delay).await;
                        HttpResponse::NoContent().finish()
                    }
                    Some(Reply::Truncated) => HttpResponse::InternalServerError()
                        .insert_header(("content-length", "1000"))
                        .body("{\"error\":\"trunc"),
                    None => {
                        stored.fetch_add(
                            body.iter().filter(|b| **b == b'\n').count(),
                            Ordering::SeqCst,
                        );
                        HttpResponse::NoContent().finish()
                    }
                }
            }
        }))
    })
    .workers(1)
    .disable_signals()
    .bind("127.0.0.1:0")
    .unwrap();
    let url = format!("http://{}", server.addrs()[0]);
    actix_rt::spawn(server.run());
    (url, stored)
}

#[actix_web::test]
async fn garbage_truncated_and_slow_replies_never_crash_the_writer_nor_lose_lines() {
    let (url, stored) = fake_influxdb().await;
    let node = TestNode::new(&[TestDomain::new("a", 1, 1), TestDomain::new("b", 1, 2)]);
    let app = spawn_app(&[
        ("VMTELEMETRY_LIBVIRT_URI", &node.uri),
        ("VMTELEMETRY_INFLUX_URL", &url),
        ("VMTELEMETRY_INFLUX_API", "v3"),
        ("VMTELEMETRY_INFLUX_TIMEOUT", "0.5"),
        ("VMTELEMETRY_RETRY_MAX_DELAY", "0.5"),
        ("VMTELEMETRY_POLL_INTERVAL", "0.5"),
    ])
    .await;
    let status = wait_for("every line delivered", Duration::from_secs(30), || async {
        let status = app.status().await;
        let produced = status["features"]["lines_produced"].as_u64()?;
        let delivered = stored.load(Ordering::SeqCst) as u64;
        (status["queue_depth"] == json!(0) && produced > 4 && delivered >= produced)
            .then_some(status)
    })
    .await;
    assert!(status["write_retries"].as_u64().unwrap() >= 8, "{status}");
    assert_eq!(status["dropped_lines"], json!(0));
    assert_eq!(status["writer"]["rejected_lines"], json!(0), "{status}");
    assert_eq!(status["writer"]["restarts"], json!(0));
    let (code, _) = app.get("/ready").await;
    assert_eq!(code, 200);
}
