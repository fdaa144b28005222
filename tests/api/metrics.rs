//! `GET /metrics`: checked by promtool, compared with Debian's prometheus-libvirt-exporter on
//! the same node, and scraped by a real Prometheus.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::helpers::{TestApp, TestDomain, collecting, wait_for};
use crate::support::prometheus::{Sample, exporter, get_text, parse, prometheus};

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

/// A scrape once every VM of `domains()` is in it.
async fn scrape_when_complete(app: &TestApp) -> Vec<Sample> {
    let url = format!("{}/metrics", app.address);
    wait_for("every VM in /metrics", Duration::from_secs(20), || async {
        let samples = parse(&get_text(&app.client, &url, "text/plain").await.0);
        let vms = samples
            .iter()
            .filter(|s| s.name == "vmtelemetry_vm_info")
            .count();
        (vms == domains().len()).then_some(samples)
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
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs (scripts/install-deps.sh installs it)");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let checked = promtool.wait_with_output().unwrap();
    let lint = String::from_utf8_lossy(&checked.stdout) + String::from_utf8_lossy(&checked.stderr);
    assert!(
        checked.status.success() && lint.trim().is_empty(),
        "promtool: {lint}"
    );
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
        let same = ours.iter().find(|o| {
            o.name == sample.name
                && sample
                    .labels
                    .iter()
                    .all(|(k, v)| o.labels.get(k) == Some(v))
        });
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
            Some(body["data"]["result"].as_array()?.len())
        }
    };
    let rate = "rate(libvirt_domain_info_cpu_time_seconds_total[1m])";
    let running = wait_for(
        "a rate of every active VM from Prometheus",
        Duration::from_secs(60),
        || async { query(rate).await.filter(|n| *n == 4) },
    )
    .await;
    assert_eq!(running, 4);
    let all = query("vmtelemetry_vm_sample_age_seconds").await;
    assert_eq!(all, Some(domains().len()));
}
