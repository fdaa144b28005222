//! The web dashboard in a real browser (Debian's headless Chromium) against the real application.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{TestApp, TestDomain, TestNode, collecting, spawn_app_with_file, wait_for};
use crate::support::browser::{
    PAGE_TIMEOUT, admin_status, click, host_row, js, on_page, rows_are, tile, wait_js,
    writer_status,
};

const ADMIN_TOKEN: &str = "dashboard-test-token-8d3f61c0b2a9e475";
/// Would become markup, or break out of an attribute, if the page inserted it as HTML.
const AWKWARD_NAME: &str = "vm \"<quoted>\" & ünï";
/// The cell of the page's actor table with the `features` actor's restarts.
const FEATURES_RESTARTS: &str =
    "document.querySelector('#actors-table tr[data-actor=\"features\"] td.restarts')";

#[actix_web::test]
async fn dashboard_lists_vms_charts_their_history_and_restarts_an_actor() {
    let domains = [
        TestDomain::new("web-1", 1, 1),
        TestDomain::new("db-2", 3, 2),
        TestDomain::new("old-3", 5, 3),
        TestDomain::new(AWKWARD_NAME, 1, 4),
    ];
    let (app, influx, node) =
        collecting(&domains, &[("VMTELEMETRY_ADMIN_TOKEN", ADMIN_TOKEN)]).await;
    // Features come from a VM's second sample on: then every chart has points.
    influx
        .rows_when(
            "features of every domain in InfluxDB",
            Duration::from_secs(20),
            "SELECT COUNT(memory_rate_kb_per_sec) FROM vm_features GROUP BY uuid",
            |per_vm| per_vm.len() == domains.len(),
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
    let (uri, domains_count) = (node.uri.clone(), domains.len());
    on_page(app.address.clone(), move |tab| {
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

        // Collection: the host's row, and the writer's state.
        let row = host_row(tab, &uri, "row.state === 'connected'");
        assert_eq!(row["name"], json!(host), "{row}");
        assert_eq!(row["connection"], json!("connected"), "{row}");
        assert_eq!(row["vms"], json!(domains_count.to_string()), "{row}");
        assert_eq!(row["failed"], json!("0"), "{row}");
        assert_eq!(row["error"], json!("—"), "{row}");
        // The stats groups are off in these tests.
        assert_eq!(row["stats"], json!("—"), "{row}");
        assert_eq!(
            js(
                tab,
                "document.querySelectorAll('#hosts-table tbody tr').length"
            ),
            json!(1)
        );
        assert_eq!(
            tile(tab, "tile-hosts", "ok"),
            ("1 of 1 connected".into(), "none failing".into())
        );
        assert_eq!(tile(tab, "tile-writer", "ok").0, "healthy");
        let writer = writer_status(tab, "ok");
        assert!(
            writer.starts_with("InfluxDB: ") && writer.contains(" lines written, the last at "),
            "{writer}"
        );

        // Nothing typed yet: the actor panel asks for the token.
        let status = admin_status(tab, "token-needed");
        assert!(status.contains("token needed"), "{status}");

        // The name filter goes to the API, which matches substrings.
        tab.find_element("#filter-name")
            .unwrap()
            .type_into("quoted")
            .unwrap();
        wait_js(
            tab,
            "only the awkward VM after filtering by name",
            &rows_are(
                "#vm-table tbody tr[data-uuid]",
                std::slice::from_ref(&awkward_uuid),
            ),
        );

        click(
            tab,
            &format!("#vm-table tbody tr[data-uuid='{awkward_uuid}']"),
        );
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
        click(tab, "button.restart[data-actor=\"features\"]");
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
async fn without_influxdb_a_host_or_an_admin_token_the_dashboard_says_so() {
    let domains = [TestDomain::new("alone", 1, 1)];
    let node = TestNode::new(&domains);
    let unreachable = "qemu+unix:///system?socket=/nonexistent/libvirt-sock";
    let file = format!(r#"hosts = ["{}", "{unreachable}"]"#, node.uri);
    let app = spawn_app_with_file(
        Some(&file),
        // Nothing listens on the discard port.
        &[("VMTELEMETRY_INFLUX_URL", "http://127.0.0.1:9")],
    )
    .await;
    let uuid = domains[0].uuid.clone();
    wait_for("two samples in memory", Duration::from_secs(20), || async {
        let (code, stats) = app.get(&format!("/api/telemetry/stats/{uuid}")).await;
        (code == 200 && stats["recent"].as_array().unwrap().len() >= 2).then_some(())
    })
    .await;
    let (host_error, writer_error) = wait_for(
        "the unreachable host's error and a failed write",
        Duration::from_secs(20),
        || async {
            let status = app.status().await;
            let host = status["hosts"]
                .as_array()?
                .iter()
                .find(|host| host["uri"] == unreachable)?;
            let writer = &status["writer"];
            (writer["consecutive_failures"].as_u64()? > 0).then_some(())?;
            Some((
                host["last_error"].as_str()?.to_owned(),
                writer["last_error"].as_str()?.to_owned(),
            ))
        },
    )
    .await;

    on_page(app.address.clone(), move |tab| {
        let row = host_row(tab, unreachable, "row.state === 'disconnected'");
        let connection = row["connection"].as_str().unwrap();
        assert!(
            connection.starts_with("disconnected · next attempt "),
            "{row}"
        );
        assert_eq!(row["error"], json!(host_error), "{row}");
        assert_eq!(row["vms"], json!("0"), "{row}");
        let writer = writer_status(tab, "failing");
        assert!(
            writer.starts_with("InfluxDB writes failing (") && writer.contains(&writer_error),
            "{writer}"
        );
        // The fleet's tiles say it too, at the top of the page.
        let hosts = tile(tab, "tile-hosts", "bad");
        assert_eq!(hosts, ("1 of 2 connected".into(), "1 failing".into()));
        let (state, trouble) = tile(tab, "tile-writer", "bad");
        assert_eq!(state, "failing");
        assert!(trouble.contains(&writer_error), "{trouble}");
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

        let status = admin_status(tab, "disabled");
        assert!(status.contains("Admin endpoints disabled"), "{status}");
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

/// Six running VMs; the test driver counts CPU time at the wall clock's pace, so the two with one
/// vCPU (domains 4 and 8: 1 + n % 4 vCPUs) run at 100 % of it and are CPU-saturated.
#[actix_web::test]
async fn what_needs_attention_is_listed_beside_the_table_with_its_evidence() {
    let domains = TestDomain::running("busy-", 4..10);
    let saturated: Vec<String> = domains
        .iter()
        .filter(|d| d.vcpus == 1)
        .map(|d| d.uuid.clone())
        .collect();
    assert_eq!(saturated.len(), 2);
    let env = [
        ("VMTELEMETRY_INSIGHTS", "true"),
        ("VMTELEMETRY_INSIGHTS_CONDITION_CYCLES", "2"),
        ("VMTELEMETRY_HOST_METRICS", "true"),
    ];
    let (app, _influx, _node) = collecting(&domains, &env).await;
    let fleet = wait_for("both conditions named", Duration::from_secs(20), || async {
        let (_, fleet) = app.get("/api/telemetry/insights?limit=1").await;
        (fleet["conditions"]["cpu_saturated"] == json!(2)).then_some(fleet)
    })
    .await;
    // The first VM only, the counts over all.
    assert_eq!(fleet["attention"].as_array().unwrap().len(), 1, "{fleet}");
    assert!(fleet["needs_attention"].as_u64().unwrap() >= 2, "{fleet}");
    let (code, refused) = app.get("/api/telemetry/insights?limit=0").await;
    assert_eq!(code, 400, "{refused}");

    on_page(app.address.clone(), move |tab| {
        let (value, detail) = tile(tab, "tile-attention", "warn");
        assert!(value.ends_with(" of 6 VMs"), "{value}");
        assert!(detail.contains("2 CPU saturated"), "{detail}");
        let listed = wait_js(
            tab,
            "the saturated VMs listed beside the table",
            "!document.querySelector('#attention-view').hidden &&
             [...document.querySelectorAll('#attention-table tbody tr')]
                 .filter(tr => tr.querySelector('td.conditions').textContent !== '—')
                 .map(tr => [tr.dataset.uuid, tr.querySelector('td.conditions').textContent])",
        );
        let listed: Vec<(String, String)> = serde_json::from_value(listed).unwrap();
        let mut uuids: Vec<&String> = listed.iter().map(|(uuid, _)| uuid).collect();
        uuids.sort();
        assert_eq!(uuids, saturated.iter().collect::<Vec<_>>(), "{listed:?}");
        for (_, evidence) in &listed {
            assert!(
                evidence.starts_with("CPU saturated: cpu_percent ")
                    && evidence.contains(" ≥ 90.0 for ")
                    && evidence.contains("(since "),
                "{evidence}"
            );
        }
        let uuid = &listed[0].0;
        click(tab, &format!("#attention-table tbody tr[data-uuid='{uuid}']"));
        let shown = wait_js(
            tab,
            "the VM's condition over its charts, and its insights",
            &format!(
                "location.hash.includes('vm={uuid}') &&
                 !document.querySelector('#vm-conditions').hidden &&
                 !document.querySelector('#vm-insights').hidden &&
                 [document.querySelector('#vm-conditions li[data-kind=\"cpu_saturated\"]').textContent,
                  document.querySelector('#vm-model').textContent]"
            ),
        );
        assert!(
            shown[0].as_str().unwrap().starts_with("CPU saturated: cpu_percent "),
            "{shown}"
        );
        assert!(shown[1].as_str().unwrap().contains("anomaly rate"), "{shown}");

        // Its host: the VMs per condition and the overcommit from host_metrics.
        click(tab, "#hosts-table button.open-host");
        let facts = wait_js(
            tab,
            "the host's insights",
            "!document.querySelector('#host-view').hidden &&
             (facts => facts['VMs in a condition'] !== '—' && facts)(Object.fromEntries(
                 [...document.querySelectorAll('#host-facts div')]
                     .map(d => [d.firstChild.textContent, d.lastChild.textContent])))",
        );
        assert_eq!(facts["VMs in a condition"], json!("2 CPU saturated"), "{facts}");
        let overcommit = facts["vCPU overcommit"].as_str().unwrap();
        assert!(overcommit.ends_with(" vCPUs per host CPU"), "{overcommit}");
    })
    .await;
}
