//! `GET /api/telemetry/vms` sorted, filtered and paged, its extended values, gzip and `ETag`
//! validation, `GET /api/telemetry/summary`, and every bad parameter, on test-driver nodes.

use std::collections::BTreeMap;
use std::io::Read;
use std::time::Duration;

use awc::http::header::HeaderMap;
use futures_util::future::join_all;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestDomain, TestNode, assert_error, wait_for};
use crate::support::prometheus::{scrape, value_of};
use crate::vms::hosts_app;

/// alpha: vm-19 … vm-11 (domains 1 to 9: running, shut off, paused in turn; the higher the
/// domain, the more memory and the earlier the name); beta: db-10 … db-12, running.
async fn fleet(unreachable: &[&str], env: &[(&str, &str)]) -> (TestApp, Vec<TestNode>) {
    let state = |n: u32| [3, 1, 5][n as usize % 3];
    let alpha = (1..=9)
        .map(|n| TestDomain::new(&format!("vm-{}", 20 - n), state(n), n))
        .collect();
    let beta = TestDomain::running("db-", 10..=12);
    hosts_app(vec![("alpha", alpha), ("beta", beta)], unreachable, env).await
}

fn column(body: &Value, field: &str) -> Vec<Value> {
    let vms = body["vms"].as_array().unwrap_or_else(|| panic!("{body}"));
    vms.iter().map(|vm| vm[field].clone()).collect()
}

async fn list(app: &TestApp, query: &str) -> Value {
    let (code, body) = app.get(&format!("/api/telemetry/vms?{query}")).await;
    assert_eq!(code, 200, "{query}: {body}");
    body
}

/// An answer as sent: status, headers and the body's bytes, not decompressed.
struct Raw {
    status: u16,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Raw {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

async fn raw(app: &TestApp, path: &str, headers: &[(&str, &str)]) -> Raw {
    let mut request = app
        .client
        .get(format!("{}{path}", app.address))
        .no_decompress();
    for (name, value) in headers {
        request = request.insert_header((*name, *value));
    }
    let mut response = request.send().await.expect("the service answers");
    let body = response.body().limit(64 << 20).await.expect("a body");
    Raw {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        body: body.to_vec(),
    }
}

#[actix_web::test]
async fn sorts_by_name_and_by_a_number_both_ways_with_the_extended_values() {
    // Cycles a second apart: the CPU % below is Δ CPU time over the service's own Δt.
    let (app, _nodes) = fleet(&[], &[("VMTELEMETRY_POLL_INTERVAL", "1")]).await;
    let body = list(&app, "sort=name").await;
    let names = column(&body, "name");
    let mut sorted = names.clone();
    sorted.sort_by_key(|n| n.as_str().unwrap().to_owned());
    assert_eq!(names, sorted);
    assert_eq!((names.len(), &body["count"]), (12, &json!(12)));
    let body = list(&app, "sort=name&order=desc").await;
    sorted.reverse();
    assert_eq!(column(&body, "name"), sorted);

    for (order, expected) in [("asc", 1..=12), ("desc", 1..=12)] {
        let body = list(&app, &format!("sort=memory_used_kb&order={order}")).await;
        let mut expected: Vec<_> = expected
            .map(|n| json!(TestDomain::new("", 1, n).current_memory_kib))
            .collect();
        if order == "desc" {
            expected.reverse();
        }
        assert_eq!(column(&body, "memory_used_kb"), expected);
    }
    // Ties keep the default order (host, name).
    let body = list(&app, "sort=cpu_count&order=desc").await;
    let keys: Vec<_> = body["vms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|vm| {
            let cpus = vm["cpu_count"].as_u64().unwrap();
            (
                u64::MAX - cpus,
                vm["host"].to_string(),
                vm["name"].to_string(),
            )
        })
        .collect();
    assert!(keys.is_sorted(), "{keys:?}");
    // The test driver has no extended counters: every VM has the fields, none a value but CPU %,
    // which the seed's CPU time gives, the wall clock on this driver: 100 % over the vCPUs, but
    // for the moments between libvirtd's clock and the service's (milliseconds, more on a busy
    // host; the classes 100, 50, 33 and 25 % stay apart).
    let body = list(&app, "sort=cpu_usage_percent&order=desc").await;
    let extended = [
        "disk_read_bytes_per_sec",
        "disk_write_bytes_per_sec",
        "net_rx_bytes_per_sec",
        "net_tx_bytes_per_sec",
    ];
    let mut percents = Vec::new();
    for vm in body["vms"].as_array().unwrap() {
        for field in extended {
            assert_eq!(vm.get(field), Some(&Value::Null), "{vm}");
        }
        let percent = vm["cpu_usage_percent"]
            .as_f64()
            .unwrap_or_else(|| panic!("{vm}"));
        let vcpus = vm["cpu_count"].as_f64().unwrap();
        assert!((percent * vcpus / 100.0 - 1.0).abs() < 0.1, "{vm}");
        percents.push(-percent);
    }
    assert!(percents.is_sorted(), "{percents:?}");
    let body = list(&app, "sort=cpu_usage_percent").await;
    let vcpus: Vec<_> = column(&body, "cpu_count")
        .iter()
        .map(|v| v.as_u64())
        .collect();
    assert!(vcpus.iter().rev().is_sorted(), "{vcpus:?}");
}

#[actix_web::test]
async fn pages_cover_every_matching_vm_once_and_count_them_all() {
    let (app, _nodes) = fleet(&[], &[]).await;
    for filter in ["", "&state=running", "&host=alpha&name=vm-1"] {
        for order in ["asc", "desc"] {
            let query = format!("sort=memory_max_kb&order={order}{filter}");
            let whole = list(&app, &query).await;
            let count = whole["count"].as_u64().unwrap();
            assert_eq!(count as usize, whole["vms"].as_array().unwrap().len());
            let mut paged = Vec::new();
            for offset in (0..count + 2).step_by(2) {
                let page = list(&app, &format!("{query}&limit=2&offset={offset}")).await;
                assert_eq!(page["count"], json!(count), "{query}");
                paged.extend(column(&page, "uuid"));
            }
            assert_eq!(paged, column(&whole, "uuid"), "{query}");
        }
    }
    // Filters as they were: alpha's running VMs are domains 1, 4 and 7.
    let body = list(&app, "state=running&host=alpha").await;
    assert_eq!(column(&body, "name"), ["vm-13", "vm-16", "vm-19"]);
    let body = list(&app, "name=db-1&sort=name&order=desc&limit=2").await;
    assert_eq!(column(&body, "name"), ["db-12", "db-11"]);
    assert_eq!(body["count"], json!(3));
    let body = list(&app, "host=nowhere&limit=5").await;
    assert_eq!(body, json!({"vms": [], "count": 0}));
}

#[actix_web::test]
async fn answers_are_gzipped_when_the_client_accepts_it() {
    let (app, _nodes) = fleet(&[], &[("VMTELEMETRY_POLL_INTERVAL", "1")]).await;
    for path in ["/api/telemetry/vms", "/api/telemetry/vms?sort=name&limit=5"] {
        // Both of one cycle: the same version.
        let (gzip, plain) = wait_for(
            "two answers of one cycle",
            Duration::from_secs(10),
            || async {
                let gzip = raw(&app, path, &[("accept-encoding", "gzip")]).await;
                let plain = raw(&app, path, &[("accept-encoding", "identity")]).await;
                (gzip.header("etag") == plain.header("etag")).then_some((gzip, plain))
            },
        )
        .await;
        assert_eq!((gzip.status, plain.status), (200, 200));
        assert_eq!(gzip.header("content-encoding"), Some("gzip"), "{path}");
        assert_eq!(plain.header("content-encoding"), None, "{path}");
        assert!(gzip.header("vary").unwrap().contains("accept-encoding"));
        let mut json = Vec::new();
        flate2::read::GzDecoder::new(gzip.body.as_slice())
            .read_to_end(&mut json)
            .expect("valid gzip");
        assert_eq!(json, plain.body, "{path}");
        assert!(gzip.body.len() < plain.body.len());
    }
}

/// The VM list's answers so far whose body was serialised for them, and those reused
/// (`/metrics`).
async fn answer_bodies(app: &TestApp) -> (f64, f64) {
    let samples = scrape(&app.client, &app.address).await;
    let count = |body| {
        let labels = [("route", "/api/telemetry/vms"), ("body", body)];
        value_of(&samples, "vmtelemetry_http_answer_bodies_total", &labels).unwrap_or(0.0)
    };
    (count("serialised"), count("reused"))
}

#[actix_web::test]
async fn requests_of_one_cycle_share_one_serialised_answer() {
    let (app, _nodes) = fleet(&[], &[("VMTELEMETRY_POLL_INTERVAL", "1")]).await;
    let mut attempt = 0;
    let (before, answers, after) =
        wait_for("six answers of one cycle", Duration::from_secs(20), || {
            attempt += 1;
            let app = &app;
            async move {
                // A page not asked for before: its first answer in each encoding is serialised.
                let path = format!("/api/telemetry/vms?sort=name&limit=2&offset={attempt}");
                let before = answer_bodies(app).await;
                let mut answers = Vec::new();
                for encoding in ["identity", "gzip"] {
                    let header = [("accept-encoding", encoding)];
                    answers.push(raw(app, &path, &header).await);
                    // Then two at once.
                    answers.extend(join_all((0..2).map(|_| raw(app, &path, &header))).await);
                }
                let after = answer_bodies(app).await;
                let etag = answers[0].header("etag");
                let one_cycle = answers
                    .iter()
                    .all(|a| a.status == 200 && a.header("etag") == etag);
                one_cycle.then_some((before, answers, after))
            }
        })
        .await;
    let (plain, gzip) = answers.split_at(3);
    assert!(plain.iter().all(|a| a.body == plain[0].body));
    assert!(gzip.iter().all(|a| a.body == gzip[0].body));
    assert_ne!(plain[0].body, gzip[0].body);
    // One body serialised per encoding; the four other answers reused it.
    assert_eq!((after.0 - before.0, after.1 - before.1), (2.0, 4.0));
}

#[actix_web::test]
async fn an_unchanged_answer_is_a_304_until_the_next_cycle() {
    let (app, _nodes) = fleet(&[], &[("VMTELEMETRY_POLL_INTERVAL", "1")]).await;
    for path in [
        "/api/telemetry/vms?sort=name&limit=3",
        "/api/telemetry/summary",
    ] {
        let (etag, unchanged) = wait_for("a 304 in one cycle", Duration::from_secs(10), || async {
            let first = raw(&app, path, &[]).await;
            let etag = first.header("etag").unwrap().to_owned();
            let again = raw(&app, path, &[("if-none-match", &etag)]).await;
            (again.status == 304).then_some((etag, again))
        })
        .await;
        assert!(etag.starts_with("W/\""), "{etag}");
        assert!(unchanged.body.is_empty());
        assert_eq!(unchanged.header("etag"), Some(etag.as_str()));
        // Stale, another process's, or not an entity tag at all: the whole answer.
        for stale in ["W/\"vms-0000000000000000-0\"", "\"x\"", "not a tag"] {
            let answer = raw(&app, path, &[("if-none-match", stale)]).await;
            assert_eq!(answer.status, 200, "{path} {stale}");
            serde_json::from_slice::<Value>(&answer.body).expect("JSON");
        }
    }
    // The VM list changes with every cycle (the test driver's CPU time is the clock).
    let path = "/api/telemetry/vms?sort=name&limit=3";
    let etag = raw(&app, path, &[])
        .await
        .header("etag")
        .unwrap()
        .to_owned();
    let changed = wait_for("the next cycle", Duration::from_secs(10), || async {
        let answer = raw(&app, path, &[("if-none-match", &etag)]).await;
        (answer.status == 200).then_some(answer)
    })
    .await;
    assert_ne!(changed.header("etag"), Some(etag.as_str()));
    let body: Value = serde_json::from_slice(&changed.body).unwrap();
    assert_eq!(column(&body, "name"), ["db-10", "db-11", "db-12"]);
}

#[actix_web::test]
async fn the_summary_says_what_the_status_and_the_list_say() {
    let unreachable = "qemu+unix:///system?socket=/nonexistent/libvirt-sock";
    let env = [("VMTELEMETRY_HOST_METRICS", "true")];
    let (app, _nodes) = fleet(&[unreachable], &env).await;
    let status = app
        .status_when("a failed host and write", Duration::from_secs(20), |s| {
            let failed_host = s["hosts"]
                .as_array()?
                .iter()
                .any(|h| !h["last_error"].is_null());
            Some(failed_host && s["writer"]["consecutive_failures"].as_u64()? > 0)
        })
        .await;
    let (code, summary) = app.get("/api/telemetry/summary").await;
    assert_eq!(code, 200, "{summary}");
    let hosts = status["hosts"].as_array().unwrap();
    let connected = hosts.iter().filter(|h| h["connection"] == "connected");
    assert_eq!(
        summary["hosts"],
        json!({"total": hosts.len(), "connected": connected.count(), "failing": 1})
    );
    assert_eq!(summary["hosts"]["total"], json!(3));
    let vms = list(&app, "").await;
    let mut by_state = BTreeMap::<String, u64>::new();
    for state in column(&vms, "state") {
        *by_state
            .entry(state.as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    let sum = |field| {
        column(&vms, field)
            .iter()
            .map(|v| v.as_u64().unwrap())
            .sum::<u64>()
    };
    assert_eq!(
        summary["vms"],
        json!({
            "vms": status["vms_monitored"],
            "by_state": by_state,
            "vcpus": sum("cpu_count"),
            "memory_max_kb": sum("memory_max_kb"),
            "memory_used_kb": sum("memory_used_kb"),
        })
    );
    assert_eq!(summary["vms"]["vms"], vms["count"]);
    // host_metrics of the two test-driver hosts (16 CPUs and 3 GiB each, whatever their
    // domains); not the unreachable one's.
    let capacity = &summary["capacity"];
    assert_eq!(capacity["hosts_reporting"], json!(2));
    assert_eq!(capacity["cpus"], json!(2 * 16));
    assert_eq!(capacity["memory_total_kb"], json!(2 * 3 * 1024 * 1024));
    let writer = &summary["writer"];
    assert_eq!(writer["healthy"], json!(false));
    let error = status["writer"]["last_error"].as_str().unwrap();
    assert!(
        writer["trouble"].as_str().unwrap().contains(error),
        "{writer}"
    );
}

#[actix_web::test]
async fn bad_parameters_are_400s_naming_them_and_a_page_past_the_end_is_empty() {
    let (app, _nodes) = fleet(&[], &[]).await;
    let cases = [
        ("sort=colour", "sort"),
        ("sort=", "sort"),
        ("order=sideways", "order"),
        ("sort=name&order=DESC", "order"),
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=1000000000", "limit"),
        ("limit=ten", "limit"),
        ("limit=-1", "limit"),
        ("limit=2.5", "limit"),
        ("offset=ten", "offset"),
        ("offset=-1", "offset"),
        ("offset=99999999999999999999999", "offset"),
    ];
    for (query, parameter) in cases {
        let answer = app.get(&format!("/api/telemetry/vms?{query}")).await;
        assert_error(&answer, 400, "invalid_parameter", parameter);
    }
    // An unknown column's error lists the known ones.
    let (_, body) = app.get("/api/telemetry/vms?sort=colour").await;
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("cpu_usage_percent") && message.contains("net_tx_bytes_per_sec"));
    for offset in ["12", "13", "1000000000"] {
        let body = list(&app, &format!("sort=name&offset={offset}&limit=5")).await;
        assert_eq!(body, json!({"vms": [], "count": 12}), "{offset}");
    }
    assert_eq!(column(&list(&app, "limit=1000").await, "uuid").len(), 12);
    assert_eq!(column(&list(&app, "offset=10").await, "uuid").len(), 2);
}

#[actix_web::test]
async fn the_openapi_document_has_the_parameters_the_summary_and_the_304() {
    let app = crate::helpers::spawn_app(&[]).await;
    let (_, spec) = app.get("/api/openapi.json").await;
    for path in ["/api/telemetry/vms", "/api/telemetry/summary"] {
        let get = &spec["paths"][path]["get"];
        let parameters: Vec<_> = get["parameters"]
            .as_array()
            .unwrap_or_else(|| panic!("{path}: {get}"))
            .iter()
            .map(|p| (p["name"].as_str().unwrap(), p["in"].as_str().unwrap()))
            .collect();
        assert!(parameters.contains(&("If-None-Match", "header")), "{path}");
        if path.ends_with("vms") {
            for name in ["sort", "order", "limit", "offset", "host", "state", "name"] {
                assert!(parameters.contains(&(name, "query")), "{path}: {name}");
            }
        }
        let responses = &get["responses"];
        assert!(responses["304"].is_object(), "{path}: {responses}");
        assert!(responses["200"]["headers"]["ETag"].is_object(), "{path}");
    }
}
