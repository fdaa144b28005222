//! The web dashboard in a real browser (Debian's headless Chromium) against the real application.
//!
//! The application's actors run on the test's own actix thread, so every blocking browser call
//! runs in `spawn_blocking`; the API is only called from the async side.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::Path;
use std::time::{Duration, Instant};

use headless_chrome::{Browser, LaunchOptions, Tab};
use serde_json::{Value, json};

use crate::helpers::{Influx, TestApp, TestDomain, TestNode, spawn_app, wait_for};

const CHROMIUM: &str = "/usr/bin/chromium";
const ADMIN_TOKEN: &str = "dashboard-test-token";
/// Would become markup, or break out of an attribute, if the page inserted it as HTML.
const AWKWARD_NAME: &str = "vm \"<quoted>\" & ünï";
/// The cell of the page's actor table with the `features` actor's restarts.
const FEATURES_RESTARTS: &str =
    "document.querySelector('#actors-table tr[data-actor=\"features\"] td.restarts')";
/// Generous: two Chromiums and the other tests share two cores.
const PAGE_TIMEOUT: Duration = Duration::from_secs(30);

#[actix_web::test]
async fn dashboard_lists_vms_charts_their_history_and_restarts_an_actor() {
    let domains = [
        TestDomain::new("web-1", 1, 1),
        TestDomain::new("db-2", 3, 2),
        TestDomain::new("old-3", 5, 3),
        TestDomain::new(AWKWARD_NAME, 1, 4),
    ];
    let node = TestNode::new(&domains);
    let influx = Influx::new_database().await;
    let app = spawn_app(&[
        ("VMTELEMETRY_LIBVIRT_URI", &node.uri),
        ("VMTELEMETRY_INFLUX_DB", &influx.db),
        ("VMTELEMETRY_ADMIN_TOKEN", ADMIN_TOKEN),
    ])
    .await;
    // Features come from a VM's second sample on: then every chart has points.
    wait_for(
        "features of every domain in InfluxDB",
        Duration::from_secs(20),
        || async {
            let per_vm = influx
                .rows("SELECT COUNT(memory_rate_kb_per_sec) FROM vm_features GROUP BY uuid")
                .await;
            (per_vm.len() == domains.len()).then_some(())
        },
    )
    .await;
    let restarts_before = actor(&app, "features").await["restarts"]
        .as_u64()
        .expect("restarts is a number");

    let expected_rows: BTreeMap<String, String> = domains
        .iter()
        .map(|d| (d.uuid.clone(), d.name.clone()))
        .collect();
    let awkward = domains.iter().find(|d| d.name == AWKWARD_NAME).unwrap();
    let (awkward_uuid, awkward_memory) = (awkward.uuid.clone(), awkward.current_memory_kib);
    assert_eq!(awkward.vcpus, 1, "the CPU check below expects one vCPU");
    let (code, vms) = app.get("/api/telemetry/vms").await;
    assert_eq!(code, 200, "{vms}");
    let host = vms["vms"][0]["host"].as_str().unwrap().to_owned();
    let address = app.address.clone();
    in_browser(move |tab| {
        tab.navigate_to(&address)
            .unwrap()
            .wait_until_navigated()
            .unwrap();

        let rows = wait_js(
            tab,
            "a row per domain",
            &format!(
                "document.querySelectorAll('#vm-table tbody tr[data-uuid]').length === {} && \
                 [...document.querySelectorAll('#vm-table tbody tr[data-uuid]')]
                   .map(tr => [tr.dataset.uuid, tr.querySelector('td.name').textContent])",
                expected_rows.len()
            ),
        );
        let shown: BTreeMap<String, String> = serde_json::from_value::<Vec<(String, String)>>(rows)
            .unwrap()
            .into_iter()
            .collect();
        assert_eq!(shown, expected_rows, "names are shown exactly");
        assert_eq!(
            js(tab, "document.querySelector('quoted') === null"),
            json!(true),
            "a VM name became markup"
        );

        // Nothing typed yet: the actor panel asks for the token.
        let status = wait_js(
            tab,
            "the actor panel to ask for a token",
            "document.querySelector('#admin-status').dataset.state === 'token-needed' && \
             document.querySelector('#admin-status').textContent",
        );
        assert!(
            status.as_str().unwrap().contains("token needed"),
            "{status}"
        );

        // The name filter goes to the API, which matches substrings.
        tab.find_element("#filter-name")
            .unwrap()
            .type_into("quoted")
            .unwrap();
        wait_js(
            tab,
            "only the awkward VM after filtering by name",
            &format!(
                "[...document.querySelectorAll('#vm-table tbody tr[data-uuid]')]
                   .map(tr => tr.dataset.uuid).join() === '{awkward_uuid}'"
            ),
        );

        tab.find_element(&format!("#vm-table tbody tr[data-uuid='{awkward_uuid}']"))
            .unwrap()
            .click()
            .unwrap();
        let title = wait_js(
            tab,
            "the VM title",
            "document.querySelector('#vm-title').textContent",
        );
        assert_eq!(title, json!(format!("— {AWKWARD_NAME} on {host}")));
        let charts = wait_js(
            tab,
            "the three charts with points from InfluxDB",
            "window.vmtCharts && ['memory', 'cpu', 'rate'].every(name =>
                 vmtCharts[name].data[0].length > 0 &&
                 vmtCharts[name].data[1].some(v => v !== null)) &&
             document.querySelector('#history-notice').hidden &&
             {
                 memory: vmtCharts.memory.data[1],
                 cpu: vmtCharts.cpu.data[1].filter(v => v !== null),
                 canvas: document.querySelector('#chart-memory canvas').width,
             }",
        );
        let memory = charts["memory"].as_array().unwrap();
        assert_eq!(memory.last(), Some(&json!(awkward_memory)), "{charts}");
        assert!(charts["canvas"].as_u64().unwrap() > 0, "{charts}");
        // The test driver's cputime follows the wall clock: one busy vCPU, about 100 %.
        let mut cpu: Vec<f64> = serde_json::from_value(charts["cpu"].clone()).unwrap();
        cpu.sort_by(f64::total_cmp);
        let median = cpu[cpu.len() / 2];
        assert!((50.0..150.0).contains(&median), "CPU % {cpu:?}");

        tab.find_element("#admin-token")
            .unwrap()
            .type_into(ADMIN_TOKEN)
            .unwrap();
        let before = wait_js(
            tab,
            "the features actor's row",
            &format!(
                "document.querySelector('#admin-status').dataset.state === 'ok' && \
                 {FEATURES_RESTARTS}?.textContent"
            ),
        );
        assert_eq!(before, json!(restarts_before.to_string()));
        tab.find_element("button.restart[data-actor=\"features\"]")
            .unwrap()
            .click()
            .unwrap();
        let message = wait_js(
            tab,
            "the restart to be accepted",
            "document.querySelector('#admin-message').dataset.state === 'ok' && \
             document.querySelector('#admin-message').textContent",
        );
        assert_eq!(message, json!("features: restarting"));
        wait_js(
            tab,
            "the panel to show one more restart",
            &format!(
                "{FEATURES_RESTARTS}.textContent === '{}'",
                restarts_before + 1
            ),
        );
    })
    .await;

    let restarts = wait_for(
        "the features actor to be restarted",
        Duration::from_secs(10),
        || async {
            let restarts = actor(&app, "features").await["restarts"].as_u64().unwrap();
            (restarts > restarts_before).then_some(restarts)
        },
    )
    .await;
    assert_eq!(restarts, restarts_before + 1);
}

#[actix_web::test]
async fn without_influxdb_or_admin_token_the_dashboard_says_so() {
    let domains = [TestDomain::new("alone", 1, 1)];
    let node = TestNode::new(&domains);
    let app = spawn_app(&[
        ("VMTELEMETRY_LIBVIRT_URI", &node.uri),
        // Nothing listens on the discard port.
        ("VMTELEMETRY_INFLUX_URL", "http://127.0.0.1:9"),
    ])
    .await;
    let uuid = domains[0].uuid.clone();
    wait_for("two samples in memory", Duration::from_secs(20), || async {
        let (code, stats) = app.get(&format!("/api/telemetry/stats/{uuid}")).await;
        (code == 200 && stats["recent"].as_array().unwrap().len() >= 2).then_some(())
    })
    .await;

    let address = app.address.clone();
    in_browser(move |tab| {
        tab.navigate_to(&address)
            .unwrap()
            .wait_until_navigated()
            .unwrap();
        tab.wait_for_element_with_custom_timeout(
            &format!("#vm-table tbody tr[data-uuid='{uuid}']"),
            PAGE_TIMEOUT,
        )
        .unwrap()
        .click()
        .unwrap();
        let shown = wait_js(
            tab,
            "the in-memory fallback",
            "document.querySelector('#history-notice').dataset.state === 'fallback' && {
                 notice: document.querySelector('#history-notice').textContent,
                 points: vmtCharts.memory.data[0].length,
             }",
        );
        let points = shown["points"].as_u64().unwrap();
        assert!(points >= 2, "{shown}");
        assert_eq!(
            shown["notice"],
            json!(format!(
                "InfluxDB unavailable — showing the last {points} samples held in memory"
            ))
        );

        let status = wait_js(
            tab,
            "the actor panel to say it is disabled",
            "document.querySelector('#admin-status').dataset.state === 'disabled' && \
             document.querySelector('#admin-status').textContent",
        );
        assert!(
            status
                .as_str()
                .unwrap()
                .contains("Admin endpoints disabled"),
            "{status}"
        );
        assert_eq!(
            js(tab, "document.querySelectorAll('button.restart').length"),
            json!(0)
        );
    })
    .await;
}

/// One actor as `/api/admin/actors` lists it.
async fn actor(app: &TestApp, name: &str) -> Value {
    let answer = app
        .request("GET", "/api/admin/actors", Some(ADMIN_TOKEN))
        .await;
    let body = answer.body;
    assert_eq!(answer.status, 200, "{body}");
    body["actors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|actor| actor["name"] == name)
        .unwrap_or_else(|| panic!("no actor {name} in {body}"))
        .clone()
}

/// Runs `steps` against a fresh Chromium, off the actix thread; a failed step fails the test
/// with its own message.
async fn in_browser(steps: impl FnOnce(&Tab) + Send + 'static) {
    let outcome = actix_web::rt::task::spawn_blocking(move || {
        assert!(
            Path::new(CHROMIUM).exists(),
            "{CHROMIUM} is missing: scripts/install-deps.sh installs it"
        );
        // Chromium writes its profile until it exits: declared first, the profile goes last.
        let profile = tempfile::tempdir().expect("a temporary directory");
        let browser = Browser::new(LaunchOptions {
            path: Some(CHROMIUM.into()),
            headless: true,
            // Root in a container: Chromium's sandbox cannot start.
            sandbox: false,
            user_data_dir: Some(profile.path().to_owned()),
            window_size: Some((1400, 1000)),
            idle_browser_timeout: Duration::from_secs(120),
            // Nothing but the application: no updates, no sync, no QUIC probing.
            args: [
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--disable-quic",
            ]
            .map(OsStr::new)
            .to_vec(),
            ..LaunchOptions::default()
        })
        .expect("Chromium starts");
        let tab = browser.new_tab().expect("a tab");
        tab.set_default_timeout(PAGE_TIMEOUT);
        steps(&tab);
    })
    .await;
    if let Err(error) = outcome {
        std::panic::resume_unwind(error.into_panic());
    }
}

/// `expression`'s value, through JSON: `undefined` is null, an exception a string
/// `exception: …`.
fn js(tab: &Tab, expression: &str) -> Value {
    let wrapped = format!(
        "(() => {{ try {{ return JSON.stringify({expression}); }} \
         catch (e) {{ return JSON.stringify('exception: ' + e); }} }})()"
    );
    match tab.evaluate(&wrapped, false) {
        Ok(object) => match object.value {
            Some(Value::String(text)) => serde_json::from_str(&text).unwrap_or(Value::Null),
            _ => Value::Null,
        },
        Err(error) => json!(format!("evaluation failed: {error}")),
    }
}

/// Polls `expression` until it is neither `false`, `null` nor an exception, and returns it.
#[track_caller]
fn wait_js(tab: &Tab, what: &str, expression: &str) -> Value {
    let deadline = Instant::now() + PAGE_TIMEOUT;
    loop {
        let value = js(tab, expression);
        let failed = value
            .as_str()
            .is_some_and(|s| s.starts_with("exception: ") || s.starts_with("evaluation failed"));
        if !(value.is_null() || value == json!(false) || failed) {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: last value {value}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
