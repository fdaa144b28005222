//! Secrets never shown (the password of `influx_url`, a token in a query string), weak admin
//! tokens refused at start, the `Bearer` scheme in any case, and logs that a flood of refused
//! requests or unencodable VMs cannot swell: the real binary, its log read back.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::cli::start_with;
use crate::helpers::{Influx, TestDomain, TestNode, spawn_app, spawn_collecting, wait_for};
use crate::support::influxd::OwnInfluxd;
use crate::support::service::ServiceProcess;

const TOKEN: &str = "secrets-t0ken-9b7e2c4f10a86d3e5f21";

/// Status and body of a GET to the service, with `authorization` if given.
async fn get(address: &str, path: &str, authorization: Option<&str>) -> (u16, String) {
    let mut request = awc::Client::default().get(format!("{address}{path}"));
    if let Some(value) = authorization {
        request = request.insert_header(("Authorization", value));
    }
    let mut response = request.send().await.expect("the service answers");
    let body = response.body().await.expect("a body");
    (
        response.status().as_u16(),
        String::from_utf8_lossy(&body).into_owned(),
    )
}

#[actix_web::test]
async fn the_userinfo_of_influx_url_shows_nowhere() {
    // A closed port: every write fails, and is logged with what InfluxDB's client said.
    let service = ServiceProcess::start(&[
        (
            "VMTELEMETRY_INFLUX_URL",
            "http://vmt-user:pw-s3cret@127.0.0.1:9",
        ),
        ("VMTELEMETRY_LIBVIRT_URI", "test:///default"),
        ("VMTELEMETRY_POLL_INTERVAL", "0.2"),
        ("VMTELEMETRY_BATCH_MAX_SEC", "0.1"),
        ("VMTELEMETRY_RETRY_MAX_DELAY", "0.1"),
        ("RUST_LOG", "debug"),
    ]);
    let status = wait_for("failed writes", Duration::from_secs(20), || async {
        let status = service.status()?;
        status["writer"]["last_error"].as_str()?;
        Some(status)
    })
    .await;
    let (_, history) = get(&service.address, "/api/telemetry/history?vm=test", None).await;
    let url = status["writer"]["url"].as_str().unwrap();
    assert!(url.starts_with("http://***@127.0.0.1:9/write?"), "{url}");
    let logs = serde_json::to_string(&service.logged()).unwrap();
    assert!(logs.contains("InfluxDB unreachable"), "{logs}");
    for (what, text) in [
        ("status", status.to_string()),
        ("history", history),
        ("log", logs),
    ] {
        assert!(
            !text.contains("pw-s3cret") && !text.contains("vmt-user"),
            "the userinfo in the {what}: {text}"
        );
    }

    // A URL refused at start is shown without it too.
    let (code, stderr) = start_with(
        &[(
            "VMTELEMETRY_INFLUX_URL",
            "http://vmt-user:pw-s3cret@127.0.0.1:99999",
        )],
        &[],
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("influx_url") && stderr.contains("***@"),
        "{stderr}"
    );
    assert!(!stderr.contains("pw-s3cret"), "{stderr}");
}

/// InfluxDB 1.x's user, and `influx_url` carrying it (the password percent-encoded).
const INFLUX_USER: &str = "vmt";
const INFLUX_PASSWORD: &str = "p@ss:wörd";

fn with_userinfo(url: &str, password: &str) -> String {
    let mut url = url::Url::parse(url).unwrap();
    url.set_username(INFLUX_USER).unwrap();
    url.set_password(Some(password)).unwrap();
    url.to_string()
}

#[actix_web::test]
async fn the_user_and_password_of_influx_url_reach_influxdb() {
    let influxd = OwnInfluxd::start_with_auth();
    let q = format!(
        "CREATE USER \"{INFLUX_USER}\" WITH PASSWORD '{INFLUX_PASSWORD}' WITH ALL PRIVILEGES"
    );
    let created = awc::Client::default()
        .post(format!("{}/query", influxd.url))
        .send_form(&[("q", q.as_str())])
        .await
        .expect("influxd answers");
    assert!(created.status().is_success(), "{:?}", created.status());
    let influx = Influx::new_database_as(&influxd.url, INFLUX_USER, INFLUX_PASSWORD).await;
    let node = TestNode::new(&[TestDomain::new("guarded", 1, 1)]);
    let url = with_userinfo(&influxd.url, INFLUX_PASSWORD);
    let app = spawn_collecting(&node.uri, &influx, &[("VMTELEMETRY_INFLUX_URL", &url)]).await;

    // Written, and read back by the history, as that user.
    influx.features_stored(2).await;
    let (code, history) = app.get("/api/telemetry/history?vm=guarded").await;
    assert_eq!(code, 200, "{history}");
    assert!(
        !history["points"].as_array().unwrap().is_empty(),
        "{history}"
    );

    // A wrong password is InfluxDB's refusal, said as such.
    let wrong = with_userinfo(&influxd.url, "not-it");
    let refused = spawn_collecting(&node.uri, &influx, &[("VMTELEMETRY_INFLUX_URL", &wrong)]).await;
    refused
        .status_when(
            "the writer's refused credentials",
            Duration::from_secs(20),
            |status| status["writer"]["auth_failing"].as_bool(),
        )
        .await;
}

/// The Kubernetes Secret's admin token, as shipped.
fn shipped_placeholder() -> String {
    let secret = include_str!("../../deploy/kubernetes/common/secret.yaml");
    let line = secret
        .lines()
        .find_map(|line| line.trim().strip_prefix("VMTELEMETRY_ADMIN_TOKEN:"))
        .expect("the Secret has an admin token");
    line.trim().to_owned()
}

#[test]
fn weak_or_placeholder_admin_tokens_stop_start_up() {
    let placeholder = shipped_placeholder();
    let spaced = format!("{} {}", &TOKEN[..16], &TOKEN[16..]);
    let with_newline = format!("{TOKEN}\n");
    let non_ascii = format!("{TOKEN}é");
    for token in [
        "a",
        "1234",
        &TOKEN[..31],
        &placeholder,
        &spaced,
        &with_newline,
        &non_ascii,
    ] {
        let (code, stderr) = start_with(&[("VMTELEMETRY_ADMIN_TOKEN", token)], &[]);
        assert_eq!(code, Some(2), "{token:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{token:?}: {stderr}");
        assert!(stderr.contains("`admin_token`"), "{token:?}: {stderr}");
        if token.len() > 4 {
            assert!(!stderr.contains(&token[..8]), "the token shown: {stderr}");
        }
    }
}

#[actix_web::test]
async fn the_bearer_scheme_is_taken_in_any_case() {
    let node = TestNode::new(&[TestDomain::new("a", 1, 1)]);
    let app = spawn_app(&[
        ("VMTELEMETRY_LIBVIRT_URI", &node.uri),
        ("VMTELEMETRY_ADMIN_TOKEN", TOKEN),
    ])
    .await;
    for scheme in ["Bearer ", "bearer ", "BEARER ", "beAReR \t "] {
        let header = format!("{scheme}{TOKEN}");
        let (code, body) = get(&app.address, "/api/admin/actors", Some(&header)).await;
        assert_eq!(code, 200, "{header:?}: {body}");
    }
    for header in [
        format!("Basic {TOKEN}"),
        format!("Bearer{TOKEN}"),
        format!("Bearer {}", &TOKEN[1..]),
        format!("Bearer {TOKEN}{TOKEN}"),
        "Bearer".to_owned(),
    ] {
        let (code, body) = get(&app.address, "/api/admin/actors", Some(&header)).await;
        assert_eq!(code, 401, "{header:?}: {body}");
    }
}

#[actix_web::test]
async fn tokens_in_query_strings_are_not_logged_and_refusals_are_sampled() {
    let service = ServiceProcess::start(&[
        ("VMTELEMETRY_ADMIN_TOKEN", TOKEN),
        ("VMTELEMETRY_LIBVIRT_URI", "test:///default"),
    ]);
    let wrong = format!("Bearer {}", TOKEN.to_uppercase());
    let mut answers = Vec::new();
    for _ in 0..30 {
        answers.push(
            get(
                &service.address,
                "/api/admin/actors?token=query-s3cret",
                Some(&wrong),
            )
            .await,
        );
    }
    let first = answers[0].clone();
    assert_eq!(first.0, 401, "{}", first.1);
    assert!(answers.iter().all(|answer| *answer == first), "{answers:?}");
    // A refused request of another kind is logged each time, with its path alone.
    let path = "/api/telemetry/history";
    let (code, _) = get(
        &service.address,
        &format!("{path}?vm=x&token=query-s3cret"),
        None,
    )
    .await;
    assert_eq!(code, 400);
    let refused = wait_for("the refusals logged", Duration::from_secs(10), || async {
        let refused = service.logged_starting("request refused");
        (!refused.is_empty()).then_some(refused)
    })
    .await;
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(
        refused[0]["span"]["http.target"],
        json!(path),
        "{}",
        refused[0]
    );
    let sampled = service.logged_starting("admin requests refused");
    assert_eq!(sampled.len(), 1, "30 refusals, one line: {sampled:?}");
    assert_eq!(sampled[0]["fields"]["refused"], json!(1));
    assert_eq!(
        sampled[0]["span"]["http.target"],
        json!("/api/admin/actors")
    );
    let logs = serde_json::to_string(&service.logged()).unwrap();
    assert!(!logs.contains("query-s3cret"), "{logs}");
}

#[actix_web::test]
async fn an_unencodable_vm_is_logged_once_and_counted_every_cycle() {
    // A name ending in a backslash cannot be a tag value.
    let mut domains: Vec<TestDomain> = (1..=3)
        .map(|n| TestDomain::new(&format!("bad-{n}\\"), 1, n))
        .collect();
    domains.push(TestDomain::new("good", 1, 9));
    let node = TestNode::new(&domains);
    let service = ServiceProcess::start(&[
        ("VMTELEMETRY_LIBVIRT_URI", &node.uri),
        ("VMTELEMETRY_POLL_INTERVAL", "0.2"),
        ("VMTELEMETRY_STATS_GROUPS", ""),
        ("VMTELEMETRY_HOST_METRICS", "false"),
    ]);
    // Each cycle the good VM gives as many lines as each bad one loses: 1, then 2 a cycle.
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while seen.last().is_none_or(|(produced, _)| *produced < 15) {
        assert!(Instant::now() < deadline, "no eight cycles: {seen:?}");
        actix_rt::time::sleep(Duration::from_millis(100)).await;
        let Some(status) = service.status() else {
            continue;
        };
        let features = &status["features"];
        let produced = features["lines_produced"].as_u64().unwrap();
        let skipped = features["unencodable_lines"].as_u64().unwrap();
        assert_eq!(skipped, 3 * produced, "{features}");
        seen.push((produced, skipped));
    }
    seen.dedup();
    assert!(seen.len() >= 3, "the count grows cycle by cycle: {seen:?}");
    let errors = service.logged_starting("lines not written");
    let vms: Vec<&str> = errors
        .iter()
        .map(|line| line["fields"]["error"].as_str().unwrap())
        .collect();
    assert_eq!(vms.len(), 3, "one line per VM over eight cycles: {vms:#?}");
    for bad in &domains[..3] {
        let uuid = bad.uuid.as_str();
        assert_eq!(
            vms.iter().filter(|e| e.contains(uuid)).count(),
            1,
            "{vms:#?}"
        );
    }
    let summaries = service.logged_starting("unencodable lines not written");
    assert_eq!(summaries.len(), 1, "{summaries:?}");
}
