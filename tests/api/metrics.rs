//! `GET /metrics`: checked by promtool, compared with Debian's prometheus-libvirt-exporter on
//! the same node, and scraped by a real Prometheus.

use std::collections::BTreeSet;
use std::io::Read;
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{TestApp, TestDomain, TestNode, collecting, spawn_app, wait_for};
use crate::support::prometheus::{
    Sample, assert_promtool_clean, exporter, get_text, matching, parse, prometheus,
};

/// Names a label value must carry escaped: quotes, backslashes, unicode.
const NAMES: [&str; 3] = ["quo\"te", "back\\slash\\", "ünï ☃ 名前"];

fn domains() -> Vec<TestDomain> {
    let mut domains: Vec<_> = NAMES
        .iter()
        .enumerate()
        .map(|(n, name)| TestDomain::new(name, 1, n as u32 + 1))
        .collect();
    domains.push(TestDomain::new("paused", 3, 7));
    domains.push(TestDomain::new("off", 5, 8));
    domains
}

/// A scrape once every VM of `domains()` is in it, and every active one (all but the one shut
/// off) in the exporter's families, which show only hosts whose status says connected.
async fn scrape_when_complete(app: &TestApp) -> Vec<Sample> {
    let url = format!("{}/metrics", app.address);
    wait_for("every VM in /metrics", Duration::from_secs(20), || async {
        let samples = parse(&get_text(&app.client, &url, "text/plain").await.0);
        let count = |name: &str| samples.iter().filter(|s| s.name == name).count();
        let vms = count("vmtelemetry_vm_info");
        let active = count("libvirt_domain_info_virtual_cpus");
        (vms == domains().len() && active == domains().len() - 1).then_some(samples)
    })
    .await
}

#[actix_web::test]
async fn a_scrape_passes_promtool_with_quotes_backslashes_and_unicode_in_names() {
    let (app, _influx, _node) = collecting(&domains(), &[]).await;
    let samples = scrape_when_complete(&app).await;
    let url = format!("{}/metrics", app.address);
    let (text, kind) = get_text(&app.client, &url, "text/plain").await;
    assert!(kind.starts_with("text/plain; version=0.0.4"), "{kind}");
    assert_promtool_clean(&text);
    for name in NAMES {
        let named = |s: &&Sample| s.labels.get("domain").map(String::as_str) == Some(name);
        let found = samples
            .iter()
            .find(|s| s.name == "libvirt_domain_info_virtual_cpus" && named(s));
        assert!(
            found.is_some(),
            "{name} is not read back from the exposition"
        );
    }
    let (open, kind) = get_text(
        &app.client,
        &url,
        "application/openmetrics-text; version=1.0.0",
    )
    .await;
    assert!(kind.starts_with("application/openmetrics-text"), "{kind}");
    assert!(open.ends_with("# EOF\n"), "OpenMetrics ends with # EOF");
}

#[actix_web::test]
async fn every_family_and_label_set_of_the_exporter_is_given_with_its_value() {
    let (app, _influx, node) = collecting(&domains(), &[]).await;
    let exporter = exporter(&node.uri);
    let url = format!("{}/metrics", exporter.url);
    wait_for("the exporter", Duration::from_secs(10), || async {
        let response = app.client.get(&url).send().await.ok()?;
        response.status().is_success().then_some(())
    })
    .await;
    let theirs = parse(&get_text(&app.client, &url, "text/plain").await.0);
    let ours = scrape_when_complete(&app).await;
    let compared: Vec<&Sample> = theirs
        .iter()
        .filter(|s| s.name.starts_with("libvirt_domain"))
        .collect();
    // Every running and paused domain: the exporter shows only active ones.
    assert_eq!(
        compared
            .iter()
            .filter(|s| s.name == "libvirt_domain_state_code")
            .count(),
        4
    );
    for sample in theirs.iter().filter(|s| s.name.starts_with("libvirt_")) {
        let same = matching(&ours, sample);
        let same = same.unwrap_or_else(|| panic!("not given by the service: {sample:?}"));
        // The test driver's CPU time is the clock: equal within the seconds between the reads.
        let within = if sample.name.contains("cpu_time") {
            30.0
        } else {
            0.0
        };
        assert!(
            (same.value - sample.value).abs() <= within,
            "{}: the exporter gives {}, the service {}",
            sample.name,
            sample.value,
            same.value
        );
    }
}

#[actix_web::test]
async fn prometheus_scrapes_the_service_and_promql_returns_every_vm() {
    let (app, _influx, _node) = collecting(&domains(), &[]).await;
    scrape_when_complete(&app).await;
    let server = prometheus(app.address.trim_start_matches("http://"));
    let query = |promql: &'static str| {
        let url = format!("{}/api/v1/query", server.url);
        let client = &app.client;
        async move {
            let mut response = client
                .get(&url)
                .query(&[("query", promql)])
                .ok()?
                .send()
                .await
                .ok()?;
            let body: Value = response.json().await.ok()?;
            body["data"]["result"].as_array().cloned()
        }
    };
    let rate = "rate(libvirt_domain_info_cpu_time_seconds_total[1m])";
    let running = wait_for(
        "a rate of every active VM from Prometheus",
        Duration::from_secs(60),
        || async { query(rate).await.filter(|r| r.len() == 4) },
    )
    .await;
    // Prometheus's own parser read every awkward name back as it is.
    let mut names: Vec<&str> = running
        .iter()
        .filter_map(|r| r["metric"]["domain"].as_str())
        .collect();
    names.sort_unstable();
    let mut active = [NAMES[0], NAMES[1], NAMES[2], "paused"];
    active.sort_unstable();
    assert_eq!(names, active);
    let all = query("vmtelemetry_vm_sample_age_seconds").await;
    assert_eq!(all.map(|r| r.len()), Some(domains().len()));
}

#[actix_web::test]
async fn a_scrape_is_gzipped_when_the_client_accepts_it() {
    let (app, _influx, _node) = collecting(&domains(), &[]).await;
    let plain = scrape_when_complete(&app).await;
    let mut response = app
        .client
        .get(format!("{}/metrics", app.address))
        .no_decompress()
        .insert_header(("Accept-Encoding", "gzip"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let encoding = response.headers().get("content-encoding");
    assert_eq!(encoding.and_then(|e| e.to_str().ok()), Some("gzip"));
    let gzipped = response.body().limit(64 << 20).await.unwrap();
    let mut text = String::new();
    flate2::read::GzDecoder::new(&gzipped[..])
        .read_to_string(&mut text)
        .expect("a gzip body");
    assert!(
        gzipped.len() * 4 < text.len(),
        "{} bytes gzipped from {}",
        gzipped.len(),
        text.len()
    );
    // Every VM's sample of a plain scrape is in it.
    let unzipped = parse(&text);
    let vms = plain
        .iter()
        .filter(|s| s.name.starts_with("libvirt_domain"));
    for sample in vms {
        assert!(matching(&unzipped, sample).is_some(), "{sample:?}");
    }
}

#[actix_web::test]
async fn a_scrape_of_10000_vms_has_every_vm_once_and_passes_promtool() {
    let domains: Vec<TestDomain> = (0..10_000)
        .map(|n| TestDomain::new(&format!("vm-{n:05}"), 1, n))
        .collect();
    let node = TestNode::new(&domains);
    let env = [
        ("VMTELEMETRY_LIBVIRT_URI", node.uri.as_str()),
        ("VMTELEMETRY_INFLUX_URL", ""),
        ("VMTELEMETRY_POLL_INTERVAL", "5"),
    ];
    let app = spawn_app(&env).await;
    // Scraped once every VM is read: a scrape of 10,000 VMs is seconds in a debug build. Generous:
    // a loaded 2-core machine takes minutes over a debug build's first cycle of 10,000.
    wait_for("10,000 VMs read", Duration::from_secs(240), || async {
        let (_, body) = app.get("/api/telemetry/vms?limit=1").await;
        (body["count"] == json!(domains.len())).then_some(())
    })
    .await;
    let url = format!("{}/metrics", app.address);
    let text = get_text(&app.client, &url, "text/plain").await.0;
    assert_promtool_clean(&text);
    let all: BTreeSet<&str> = domains.iter().map(|d| d.uuid.as_str()).collect();
    for name in [
        "libvirt_domain_info_virtual_cpus",
        "vmtelemetry_vm_sample_age_seconds",
    ] {
        let prefix = format!("{name}{{");
        let lines: Vec<&str> = text.lines().filter(|l| l.starts_with(&prefix)).collect();
        let samples = parse(&lines.join("\n"));
        let uuids: Vec<&str> = samples.iter().map(|s| s.labels["uuid"].as_str()).collect();
        assert_eq!(uuids.len(), all.len(), "{name}");
        assert_eq!(uuids.into_iter().collect::<BTreeSet<_>>(), all, "{name}");
    }
}

/// `metrics_enabled = false`: `/metrics` is an unknown path (404, the API's error body), and the
/// rest of the service answers as before.
#[actix_web::test]
async fn with_metrics_off_the_endpoint_is_not_served_and_the_rest_is() {
    let off = spawn_app(&[("VMTELEMETRY_METRICS_ENABLED", "false")]).await;
    let (status, body) = off.get("/metrics").await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], json!("not_found"), "{body}");
    assert_eq!(off.get("/health").await.0, 200);
    let (status, _) = off.get("/api/telemetry/status").await;
    assert_eq!(status, 200);
}
