//! The InfluxDB 3 write APIs (`/api/v3/write_lp`, `/api/v2/write`), against the stand-in built on
//! InfluxDB 3's own line-protocol parser: InfluxDB 3 itself cannot be installed here.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;

use crate::helpers::{TestApp, TestDomain, TestNode, spawn_writing_to, wait_for};
use crate::support::influxdb3_standin::{FieldValue, InfluxDb3StandIn, Row};

/// Every awkward name, backslashes included: InfluxDB 3 reads escapes as the builder writes them.
const NAMES: [&str; 7] = [
    "plain",
    "with space, comma=equals",
    "quote\"d 'vm'",
    r"back\slash \\twice",
    "ünïcødé € 日本 🚀",
    "x' OR '1'='1",
    r"esc\,aped\ already",
];

fn node() -> (TestNode, Vec<TestDomain>) {
    let domains: Vec<_> = NAMES
        .iter()
        .enumerate()
        .map(|(n, name)| TestDomain::new(name, 1, n as u32))
        .collect();
    (TestNode::new(&domains), domains)
}

async fn app_writing_to(standin: &InfluxDb3StandIn, api: &str, node: &TestNode) -> TestApp {
    let env = [
        ("VMTELEMETRY_INFLUX_DB", "vmstats"),
        ("INFLUX_TOKEN", "t0ken-v3"),
    ];
    spawn_writing_to(&node.uri, &standin.url, api, &env).await
}

/// Waits until every domain has metrics and features in the stand-in.
async fn rows_of_every_domain(
    standin: &InfluxDb3StandIn,
    domains: &[TestDomain],
) -> (Vec<Row>, Vec<Row>) {
    wait_for(
        "metrics and features of every domain",
        Duration::from_secs(20),
        || async {
            let metrics = standin.rows("vmstats", "vm_metrics");
            let features = standin.rows("vmstats", "vm_features");
            let covers = |rows: &[Row]| {
                domains
                    .iter()
                    .all(|d| rows.iter().any(|r| r.tags.get("uuid") == Some(&d.uuid)))
            };
            (covers(&metrics) && covers(&features)).then_some((metrics, features))
        },
    )
    .await
}

#[actix_web::test]
async fn v3_writes_every_domain_with_exact_names_and_fixed_types() {
    let standin = InfluxDb3StandIn::start(Some("t0ken-v3")).await;
    let (node, domains) = node();
    let _app = app_writing_to(&standin, "v3", &node).await;
    let (metrics, features) = rows_of_every_domain(&standin, &domains).await;

    let requests = standin.requests();
    assert!(!requests.is_empty());
    for request in &requests {
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, "/api/v3/write_lp");
        let query: BTreeMap<&str, &str> = request
            .query
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            query,
            BTreeMap::from([("db", "vmstats"), ("precision", "nanosecond")])
        );
        assert_eq!(request.headers["authorization"], "Bearer t0ken-v3");
        assert!(request.headers["content-type"].starts_with("text/plain"));
        assert_eq!(request.headers["content-encoding"], "gzip");
        assert_eq!(request.status, 204, "{}", request.body);
    }

    for domain in &domains {
        let row = metrics
            .iter()
            .find(|r| r.tags["uuid"] == domain.uuid)
            .unwrap();
        assert_eq!(row.tags["name"], domain.name);
        assert!(row.tags["VMID"].parse::<u32>().is_ok());
        assert_eq!(row.fields["state"], FieldValue::String("running".into()));
        assert_eq!(
            row.fields["cpu_count"],
            FieldValue::I64(domain.vcpus.into())
        );
        assert_eq!(
            row.fields["memory_max_kb"],
            FieldValue::I64(domain.memory_kib as i64)
        );
        assert_eq!(
            row.fields["memory_used_kb"],
            FieldValue::I64(domain.current_memory_kib as i64)
        );
        assert!(matches!(row.fields["cputime_ns"], FieldValue::I64(_)));
    }
    let tiny_angle = 1e-12_f64.atan().to_degrees();
    for row in &features {
        assert_eq!(row.fields["memory_rate_kb_per_sec"], FieldValue::F64(0.0));
        assert_eq!(row.fields["memory_angle_deg"], FieldValue::F64(tiny_angle));
    }
}

#[actix_web::test]
async fn v2_writes_to_the_bucket_with_ns_precision() {
    let standin = InfluxDb3StandIn::start(Some("t0ken-v3")).await;
    let (node, domains) = node();
    let _app = app_writing_to(&standin, "v2", &node).await;
    rows_of_every_domain(&standin, &domains).await;
    for request in standin.requests() {
        assert_eq!(request.path, "/api/v2/write");
        assert_eq!(request.query["bucket"], "vmstats");
        assert_eq!(request.query["precision"], "ns");
        assert_eq!(request.headers["authorization"], "Bearer t0ken-v3");
        assert_eq!(request.status, 204, "{}", request.body);
    }
}

#[actix_web::test]
async fn batches_are_cut_at_batch_max_lines() {
    let standin = InfluxDb3StandIn::start(None).await;
    let domains = TestDomain::running("vm", 0..3);
    let node = TestNode::new(&domains);
    // Time never triggers a flush here: only size does.
    let size_only = [
        ("VMTELEMETRY_BATCH_MAX_LINES", "3"),
        ("VMTELEMETRY_BATCH_MAX_SEC", "3600"),
    ];
    let _app = spawn_writing_to(&node.uri, &standin.url, "v3", &size_only).await;
    let requests = wait_for("four batches", Duration::from_secs(15), || async {
        let requests = standin.requests();
        (requests.len() >= 4).then_some(requests)
    })
    .await;
    for request in requests {
        assert_eq!(request.body.lines().count(), 3, "{}", request.body);
    }
}

#[actix_web::test]
async fn a_failed_write_is_retried_and_nothing_is_lost() {
    let standin = InfluxDb3StandIn::start(None).await;
    standin.set_next_responses(vec![
        (500, r#"{"error":"write buffer error"}"#.into()),
        (503, "proxy says no".into()),
    ]);
    let (node, domains) = node();
    let app = spawn_writing_to(
        &node.uri,
        &standin.url,
        "v3",
        &[("VMTELEMETRY_POLL_INTERVAL", "0.5")],
    )
    .await;
    // Every line produced ends up stored, once each, after the server recovers.
    let status = app
        .status_when("every line stored", Duration::from_secs(20), |status| {
            let produced = status["features"]["lines_produced"].as_u64()?;
            let stored = standin.rows("vmstats", "vm_metrics").len()
                + standin.rows("vmstats", "vm_features").len();
            Some(
                produced > domains.len() as u64
                    && status["total_metrics_written"].as_u64()? == produced
                    && stored as u64 == produced,
            )
        })
        .await;
    assert_eq!(status["write_retries"], json!(2));
    assert_eq!(status["dropped_lines"], json!(0));
    let statuses: Vec<u16> = standin.requests().iter().map(|r| r.status).collect();
    assert_eq!(&statuses[..2], &[500, 503]);
}

#[actix_web::test]
async fn a_partial_write_drops_only_the_rejected_lines() {
    let standin = InfluxDb3StandIn::start(None).await;
    // A column typed before the service writes: its vm_metrics lines now conflict.
    let client = awc::Client::default();
    let response = client
        .post(format!("{}/api/v3/write_lp?db=vmstats", standin.url))
        .send_body("vm_metrics,uuid=seed cpu_count=1.5 1")
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 204);
    let (node, domains) = node();
    let app = spawn_writing_to(&node.uri, &standin.url, "v3", &[]).await;
    let vms = domains.len() as u64;
    let status = app
        .status_when_settled(
            "features stored, metrics rejected",
            Duration::from_secs(20),
            |produced, status| {
                let rejected = status["writer"]["rejected_lines"].as_u64()?;
                let written = status["total_metrics_written"].as_u64()?;
                Some(written >= vms && rejected + written == produced)
            },
        )
        .await;
    // Only the conflicting lines were refused, and none was sent twice.
    let rejected = status["writer"]["rejected_lines"].as_u64().unwrap();
    assert_eq!(
        standin.rows("vmstats", "vm_metrics").len(),
        1,
        "only the seed row"
    );
    assert_eq!(
        standin.rows("vmstats", "vm_features").len() as u64,
        status["total_metrics_written"].as_u64().unwrap()
    );
    assert!(rejected >= vms);
    assert_eq!(status["write_retries"], json!(0));
}
