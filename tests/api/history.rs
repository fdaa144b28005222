//! `GET /api/telemetry/history` against the real InfluxDB (InfluxQL on `/query`), and what the
//! API says when InfluxDB fails.

use std::time::Duration;

use actix_web::HttpResponse;
use serde_json::{Value, json};

use crate::helpers::{
    Influx, TestApp, TestDomain, TestNode, collecting, serve_every_request, spawn_writing_to,
};

const INJECTION: &str = "x' OR '1'='1";

/// The VMs of every test here: one named like an injection next to an ordinary one.
fn domains() -> [TestDomain; 2] {
    [TestDomain::new(INJECTION, 1, 1), victim()]
}

fn victim() -> TestDomain {
    TestDomain::new("victim", 1, 2)
}

/// The node of `domains()`, collected into InfluxDB.
async fn collected() -> (TestApp, Influx, TestNode) {
    let (app, influx, node) = collecting(&domains(), &[]).await;
    // A few cycles.
    influx.features_stored(6).await;
    (app, influx, node)
}

pub(crate) fn path(params: &[(&str, &str)]) -> String {
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    format!("/api/telemetry/history?{query}")
}

/// The history that `params` ask for, asserting a 200.
pub(crate) async fn history(app: &TestApp, params: &[(&str, &str)]) -> Value {
    let path = path(params);
    let (code, body) = app.get(&path).await;
    assert_eq!(code, 200, "{path}: {body}");
    body
}

/// The victim's history of `fields` (its memory and state among them), and its points: at least
/// three, each with the victim's memory, its state and a time in UTC.
async fn victims_points(app: &TestApp, fields: &str) -> (Value, Vec<Value>) {
    let body = history(app, &[("vm", "victim"), ("fields", fields)]).await;
    let points = body["points"].as_array().unwrap().clone();
    assert!(points.len() >= 3, "{body}");
    for point in &points {
        assert_eq!(point["memory_used_kb"], json!(victim().current_memory_kib));
        assert_eq!(point["state"], json!("running"));
        assert!(point["time"].as_str().unwrap().ends_with("+00:00"));
    }
    (body, points)
}

/// The points of the victim's history in hour buckets, with `param` (its fields or its
/// measurement): the last hour falls in one or two of them, whatever the number of samples.
async fn hourly(app: &TestApp, param: (&str, &str)) -> Vec<Value> {
    let body = history(app, &[("vm", "victim"), param, ("every", "1h")]).await;
    assert_eq!(body["every"], json!(3600));
    let points = body["points"].as_array().unwrap();
    assert!((1..=2).contains(&points.len()), "{body}");
    points.clone()
}

/// Asserts that the VM named `INJECTION` gets its own history, and that names no VM has, each
/// shaped to match every row if spliced into InfluxQL or SQL, get none: such a name goes to
/// InfluxDB as the `name` tag, bound as a parameter.
async fn assert_own_history_only(app: &TestApp) {
    let own = TestDomain::new(INJECTION, 1, 1);
    let body = history(app, &[("vm", INJECTION)]).await;
    assert_eq!(body["vm"], json!(own.uuid));
    let points = body["points"].as_array().unwrap();
    assert!(!points.is_empty(), "{body}");
    for point in points {
        assert_eq!(point["memory_used_kb"], json!(own.current_memory_kib));
    }
    for name in [
        "nobody' OR '1'='1",
        "nobody\" OR \"1\"=\"1",
        "nobody' OR 1=1 --",
        "x') OR 1=1 --",
    ] {
        let body = history(app, &[("vm", name)]).await;
        assert_eq!(body["points"], json!([]), "{name}: {body}");
    }
}

#[actix_web::test]
async fn history_of_a_vm_by_name_or_uuid_with_chosen_fields() {
    let (app, influx, _node) = collected().await;
    let victim = victim();
    let (by_name, points) = victims_points(&app, "memory_used_kb,cputime_ns,state").await;
    assert_eq!(by_name["vm"], json!(victim.uuid));
    assert_eq!(by_name["measurement"], json!("vm_metrics"));
    assert_eq!(
        by_name["fields"],
        json!(["memory_used_kb", "cputime_ns", "state"])
    );
    let stored = influx
        .rows(&format!(
            "SELECT * FROM vm_metrics WHERE \"uuid\" = '{}'",
            victim.uuid
        ))
        .await;
    assert!(
        points.len() >= 3 && points.len() <= stored.len() + 2,
        "{} vs {}",
        points.len(),
        stored.len()
    );
    for point in &points {
        assert!(point["cputime_ns"].is_u64());
        assert!(
            point.get("cpu_count").is_none(),
            "only the fields asked for"
        );
    }
    let by_uuid = history(&app, &[("vm", &victim.uuid), ("limit", "2")]).await;
    assert_eq!(by_uuid["points"].as_array().unwrap().len(), 2);
    assert_eq!(by_uuid["limit"], json!(2));
    let features = history(&app, &[("vm", "victim"), ("measurement", "vm_features")]).await;
    let first = &features["points"][0];
    // InfluxDB 1.x writes a whole float without its fraction: compare numbers.
    assert_eq!(first["memory_rate_kb_per_sec"].as_f64(), Some(0.0));
    assert_eq!(
        first["memory_angle_deg"].as_f64(),
        Some(1e-12_f64.atan().to_degrees())
    );
}

#[actix_web::test]
async fn every_averages_per_bucket_and_keeps_the_counters_last_value() {
    let (app, influx, _node) = collected().await;
    let victim = victim();
    let stored = influx
        .rows(&format!(
            "SELECT max(cputime_ns) FROM vm_metrics WHERE \"uuid\" = '{}'",
            victim.uuid
        ))
        .await;
    let latest_cputime = stored[0]["max"].as_u64().unwrap();
    let points = hourly(&app, ("fields", "memory_used_kb,cputime_ns")).await;
    for point in &points {
        assert_eq!(
            point["memory_used_kb"].as_f64(),
            Some(victim.current_memory_kib as f64)
        );
    }
    // A counter's bucket is its last value, not a mean of several samples.
    let last = points.last().unwrap()["cputime_ns"].as_u64().unwrap();
    assert!(last >= latest_cputime, "{last} < {latest_cputime}");
}

#[actix_web::test]
async fn a_vm_named_like_an_injection_gets_its_own_history_and_nothing_else() {
    let (app, influx, _node) = collected().await;
    assert_own_history_only(&app).await;
    assert!(!influx.rows("SELECT * FROM vm_metrics").await.is_empty());
}

#[actix_web::test]
async fn bad_parameters_are_400s_naming_them() {
    let (app, _influx, _node) = collected().await;
    for (params, named) in [
        (vec![], "vm"),
        (
            vec![("vm", "victim"), ("measurement", "cpu")],
            "measurement",
        ),
        (
            vec![("vm", "victim"), ("fields", "memory_used_kb,password")],
            "fields",
        ),
        (
            vec![("vm", "victim"), ("fields", "state"), ("every", "1m")],
            "fields",
        ),
        (vec![("vm", "victim"), ("start", "yesterday")], "start"),
        (vec![("vm", "victim"), ("end", "-1x")], "end"),
        (
            vec![("vm", "victim"), ("start", "-1m"), ("end", "-2m")],
            "start",
        ),
        (vec![("vm", "victim"), ("every", "1.5s")], "every"),
        (vec![("vm", "victim"), ("limit", "0")], "limit"),
        (vec![("vm", "victim"), ("limit", "many")], "limit"),
        (vec![("vm", "victim"), ("colour", "red")], "colour"),
    ] {
        let (code, body) = app.get(&path(&params)).await;
        assert_eq!(code, 400, "{params:?}: {body}");
        assert_eq!(body["error"]["code"], json!("invalid_parameter"));
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(named), "{params:?}: {message}");
    }
}

#[actix_web::test]
async fn the_limit_is_capped() {
    let (app, _influx, _node) = collected().await;
    let body = history(&app, &[("vm", "victim"), ("limit", "99999999")]).await;
    assert_eq!(body["limit"], json!(10000));
}

/// An InfluxDB that answers every query with `body` after `delay`.
async fn fake_influx(status: u16, body: &'static str, delay: Duration) -> String {
    serve_every_request(move || async move {
        actix_rt::time::sleep(delay).await;
        HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap())
            .content_type("application/json")
            .body(body)
    })
}

async fn history_via(influx_url: &str, extra: &[(&str, &str)]) -> (u16, Value) {
    let node = TestNode::new(&[TestDomain::new("vm", 1, 1)]);
    let app = spawn_writing_to(&node.uri, influx_url, "v1", extra).await;
    app.get(&path(&[("vm", "vm")])).await
}

#[actix_web::test]
async fn influxdb_unreachable_is_a_503() {
    let (code, body) = history_via("http://127.0.0.1:9", &[]).await;
    assert_eq!(code, 503, "{body}");
    assert_eq!(body["error"]["code"], json!("influx_unavailable"));
}

#[actix_web::test]
async fn influxdb_failing_or_answering_garbage_is_a_502() {
    for (status, reply, code) in [
        (500, r#"{"error":"engine on fire"}"#, "influx_error"),
        (200, "<html>not json", "influx_bad_reply"),
        (
            200,
            r#"{"results":[{"series":[{"columns":["time"],"values":[["x"]]}]}]}"#,
            "influx_bad_reply",
        ),
        (
            200,
            r#"{"results":[{"statement_id":0,"error":"database not found"}]}"#,
            "influx_error",
        ),
    ] {
        let url = fake_influx(status, reply, Duration::ZERO).await;
        let (answer, body) = history_via(&url, &[]).await;
        assert_eq!(answer, 502, "{reply}: {body}");
        assert_eq!(body["error"]["code"], json!(code), "{reply}");
    }
}

#[actix_web::test]
async fn a_slow_influxdb_is_a_504_not_a_hang() {
    let url = fake_influx(
        200,
        r#"{"results":[{"statement_id":0}]}"#,
        Duration::from_secs(5),
    )
    .await;
    let started = std::time::Instant::now();
    let (code, body) = history_via(&url, &[("VMTELEMETRY_INFLUX_TIMEOUT", "0.5")]).await;
    assert_eq!(code, 504, "{body}");
    assert_eq!(body["error"]["code"], json!("influx_timeout"));
    assert!(started.elapsed() < Duration::from_secs(4));
}

/// InfluxDB 3: SQL through `/api/v3/query_sql`, run by the stand-in on Apache DataFusion (InfluxDB
/// 3's engine) with the parameters bound by DataFusion, so the SQL is proven in its dialect.
mod influxdb3 {
    use super::*;
    use crate::helpers::wait_for;
    use crate::support::influxdb3_standin::InfluxDb3StandIn;

    async fn collected_v3() -> (TestApp, InfluxDb3StandIn, TestNode) {
        let standin = InfluxDb3StandIn::start(Some("t0ken")).await;
        let node = TestNode::new(&domains());
        let token = [("INFLUX_TOKEN", "t0ken")];
        let app = spawn_writing_to(&node.uri, &standin.url, "v3", &token).await;
        wait_for("a few cycles stored", Duration::from_secs(15), || async {
            (standin.rows("vmstats", "vm_features").len() >= 6).then_some(())
        })
        .await;
        (app, standin, node)
    }

    #[actix_web::test]
    async fn history_runs_as_sql_with_bound_parameters() {
        let (app, standin, _node) = collected_v3().await;
        let victim = victim();
        victims_points(&app, "memory_used_kb,state").await;
        let queries = standin.queries();
        let query = queries.last().unwrap();
        assert_eq!(query.path, "/api/v3/query_sql");
        assert_eq!(query.status, 200, "{}", query.body);
        assert_eq!(query.headers["authorization"], "Bearer t0ken");
        let sent: Value = serde_json::from_str(&query.body).unwrap();
        assert_eq!(sent["db"], json!("vmstats"));
        assert_eq!(sent["params"]["vm"], json!(victim.uuid));
        assert!(!sent["q"].as_str().unwrap().contains(&victim.uuid));
    }

    #[actix_web::test]
    async fn every_downsamples_with_date_bin() {
        let (app, _standin, _node) = collected_v3().await;
        let points = hourly(&app, ("measurement", "vm_features")).await;
        assert_eq!(points[0]["memory_rate_kb_per_sec"].as_f64(), Some(0.0));
    }

    #[actix_web::test]
    async fn an_injection_gets_its_own_history_and_nothing_else() {
        let (app, _standin, _node) = collected_v3().await;
        assert_own_history_only(&app).await;
    }
}
