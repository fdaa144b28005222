//! The writer against InfluxDB replies that are wrong in every way: it never crashes, keeps its
//! lines through what is transient, and still delivers everything once InfluxDB behaves.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::helpers::{TestApp, TestDomain, TestNode, serve_every_request, spawn_writing_to};

/// `spawn_writing_to`, collecting once: the first cycle, then none for an hour.
async fn one_cycle_to(node: &TestNode, url: &str, api: &str, extra: &[(&str, &str)]) -> TestApp {
    let once = [("VMTELEMETRY_POLL_INTERVAL", "3600")];
    spawn_writing_to(&node.uri, url, api, &[&once, extra].concat()).await
}

/// Waits until the service has written `lines` lines in all.
async fn until_written(app: &TestApp, lines: u64, what: &str, within: Duration) {
    app.status_when(what, within, |status| {
        Some(status["total_metrics_written"] == json!(lines))
    })
    .await;
}

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
    let stored_lines = stored.clone();
    let url = serve_every_request(move |body: web::Bytes| {
        let (requests, stored) = (requests.clone(), stored_lines.clone());
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
    });
    (url, stored)
}

#[actix_web::test]
async fn garbage_truncated_and_slow_replies_never_crash_the_writer_nor_lose_lines() {
    let (url, stored) = fake_influxdb().await;
    let node = TestNode::new(&[TestDomain::new("a", 1, 1), TestDomain::new("b", 1, 2)]);
    let app = spawn_writing_to(
        &node.uri,
        &url,
        "v3",
        &[
            ("VMTELEMETRY_INFLUX_TIMEOUT", "0.5"),
            ("VMTELEMETRY_RETRY_MAX_DELAY", "0.5"),
            ("VMTELEMETRY_POLL_INTERVAL", "0.5"),
        ],
    )
    .await;
    let status = app
        .status_when_settled(
            "every line delivered",
            Duration::from_secs(30),
            |produced, _| {
                let delivered = stored.load(Ordering::SeqCst) as u64;
                Some(produced > 4 && delivered >= produced)
            },
        )
        .await;
    assert!(status["write_retries"].as_u64().unwrap() >= 8, "{status}");
    assert_eq!(status["dropped_lines"], json!(0));
    assert_eq!(status["writer"]["rejected_lines"], json!(0), "{status}");
    assert_eq!(status["writer"]["restarts"], json!(0));
    let (code, _) = app.get("/ready").await;
    assert_eq!(code, 200);
}

/// What a scripted InfluxDB saw: when, where, and the lines of each request.
type Seen = Arc<std::sync::Mutex<Vec<(std::time::Instant, String, Vec<String>)>>>;

/// An InfluxDB whose every reply `answer` decides from the request path and its lines.
async fn scripted<F>(answer: F) -> (String, Seen)
where
    F: Fn(&str, &[String], usize) -> HttpResponse + Clone + Send + 'static,
{
    let seen: Seen = Arc::default();
    let log = seen.clone();
    let url = serve_every_request(move |request: actix_web::HttpRequest, body: web::Bytes| {
        let (answer, log) = (answer.clone(), log.clone());
        async move {
            let lines: Vec<String> = String::from_utf8_lossy(&body)
                .lines()
                .map(str::to_owned)
                .collect();
            let path = request.path().to_owned();
            let mut log = log.lock().unwrap();
            log.push((std::time::Instant::now(), path.clone(), lines.clone()));
            answer(&path, &lines, log.len())
        }
    });
    (url, seen)
}

fn stored_lines(seen: &Seen, accepted: impl Fn(&[String]) -> bool) -> usize {
    seen.lock()
        .unwrap()
        .iter()
        .filter(|(_, path, lines)| path.contains("write") && accepted(lines))
        .map(|(_, _, lines)| lines.len())
        .sum()
}

#[actix_web::test]
async fn a_413_halves_the_batch_until_influxdb_takes_it() {
    // Takes at most 3 lines per request, like a server with a small body limit.
    let (url, seen) = scripted(|_, lines, _| {
        if lines.len() > 3 {
            HttpResponse::PayloadTooLarge().finish()
        } else {
            HttpResponse::NoContent().finish()
        }
    })
    .await;
    let node = TestNode::new(&TestDomain::running("vm", 0..10));
    let app = one_cycle_to(&node, &url, "v3", &[("VMTELEMETRY_INFLUX_GZIP", "false")]).await;
    let within = Duration::from_secs(15);
    until_written(&app, 10, "the cycle written in small batches", within).await;
    assert_eq!(stored_lines(&seen, |lines| lines.len() <= 3), 10);
    assert_eq!(app.status().await["writer"]["rejected_lines"], json!(0));
}

#[actix_web::test]
async fn an_all_or_nothing_refusal_costs_only_the_bad_line() {
    // InfluxDB 1.x/v2 style: one bad line refuses the whole request.
    let (url, seen) = scripted(|_, lines, _| {
        if lines.iter().any(|l| l.contains("name=poison")) {
            HttpResponse::BadRequest().body(r#"{"error":"unable to parse: poison"}"#)
        } else {
            HttpResponse::NoContent().finish()
        }
    })
    .await;
    let mut domains = TestDomain::running("vm", 0..7);
    domains.push(TestDomain::new("poison", 1, 99));
    let node = TestNode::new(&domains);
    let app = one_cycle_to(&node, &url, "v1", &[("VMTELEMETRY_INFLUX_GZIP", "false")]).await;
    let status = app
        .status_when(
            "the good lines written, the bad one dropped",
            Duration::from_secs(15),
            |status| {
                Some(
                    status["queue_depth"] == json!(0)
                        && status["total_metrics_written"] == json!(7),
                )
            },
        )
        .await;
    assert_eq!(status["writer"]["rejected_lines"], json!(1));
    assert_eq!(status["dropped_lines"], json!(0));
    let accepted = stored_lines(&seen, |lines| {
        !lines.iter().any(|l| l.contains("name=poison"))
    });
    assert_eq!(accepted, 7);
}

#[actix_web::test]
async fn a_missing_database_is_created_when_allowed() {
    let created = Arc::new(AtomicUsize::new(0));
    let made = created.clone();
    let (url, seen) = scripted(move |path, _, _| {
        if path == "/api/v3/configure/database" {
            made.fetch_add(1, Ordering::SeqCst);
            HttpResponse::Ok().finish()
        } else if made.load(Ordering::SeqCst) == 0 {
            HttpResponse::NotFound().body(r#"{"error":"database not found: vmstats"}"#)
        } else {
            HttpResponse::NoContent().finish()
        }
    })
    .await;
    let node = TestNode::new(&[TestDomain::new("a", 1, 1), TestDomain::new("b", 1, 2)]);
    let app = one_cycle_to(
        &node,
        &url,
        "v3",
        &[("VMTELEMETRY_CREATE_DATABASE", "true")],
    )
    .await;
    let within = Duration::from_secs(15);
    until_written(
        &app,
        2,
        "the lines written after creating the database",
        within,
    )
    .await;
    assert_eq!(created.load(Ordering::SeqCst), 1);
    let paths: Vec<String> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|(_, p, _)| p.clone())
        .collect();
    assert_eq!(
        paths,
        [
            "/api/v3/write_lp",
            "/api/v3/configure/database",
            "/api/v3/write_lp"
        ]
    );
}

#[actix_web::test]
async fn a_refused_token_keeps_the_lines_and_makes_the_service_unready() {
    let (url, _seen) = scripted(|_, _, _| HttpResponse::Unauthorized().finish()).await;
    let node = TestNode::new(&[TestDomain::new("a", 1, 1)]);
    let app = spawn_writing_to(&node.uri, &url, "v3", &[("INFLUX_TOKEN", "expired-t0ken")]).await;
    let status = app
        .status_when("an auth failure", Duration::from_secs(10), |status| {
            Some(status["writer"]["auth_failing"] == json!(true))
        })
        .await;
    assert_eq!(status["dropped_lines"], json!(0));
    assert!(status["queue_depth"].as_u64().unwrap() >= 1);
    let (code, body) = app.get("/ready").await;
    assert_eq!(code, 503);
    assert!(!body.to_string().contains("expired-t0ken"));
    assert!(!status.to_string().contains("expired-t0ken"));
}

#[actix_web::test]
async fn retry_after_is_honoured() {
    let (url, seen) = scripted(|_, _, n| {
        if n == 1 {
            HttpResponse::ServiceUnavailable()
                .insert_header(("Retry-After", "2"))
                .finish()
        } else {
            HttpResponse::NoContent().finish()
        }
    })
    .await;
    let node = TestNode::new(&[TestDomain::new("a", 1, 1)]);
    let app = one_cycle_to(&node, &url, "v3", &[("VMTELEMETRY_RETRY_MAX_DELAY", "0.1")]).await;
    until_written(&app, 1, "the retry", Duration::from_secs(10)).await;
    let times: Vec<std::time::Instant> = seen.lock().unwrap().iter().map(|(t, _, _)| *t).collect();
    let waited = times[1] - times[0];
    assert!(
        waited >= Duration::from_millis(1900),
        "retried after {waited:?}"
    );
}
