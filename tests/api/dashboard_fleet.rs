//! The dashboard over a fleet of 10,000 test-driver domains in headless Chromium: the table
//! sorted, paged and filtered by the API, the VM view beside it in sight, the address keeping
//! the view (and bad values in it ignored), polls answered `304`, the host's panel, and a VM the
//! address names that no host lists.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{TestApp, TestDomain, TestNode, spawn_app_with_file, wait_for};
use crate::support::browser::{
    Tab, click, in_browser, js, open, rows_are, wait_js, wait_js_showing,
};

const VMS: u32 = 10_000;
const PAGE: usize = 100;

/// Names in another order than the UUIDs (7919 is prime to 10,000): `vm-00000` … `vm-09999`.
fn fleet() -> Vec<TestDomain> {
    (0..VMS)
        .map(|n| {
            TestDomain::new(
                &format!("vm-{:05}", (n * 7919) % VMS),
                [1, 3, 5][n as usize % 3],
                n,
            )
        })
        .collect()
}

/// UUIDs of `domains` sorted by name, descending if asked.
fn by_name(domains: &[&TestDomain], descending: bool) -> Vec<String> {
    let mut sorted: Vec<_> = domains.iter().map(|d| (&d.name, &d.uuid)).collect();
    sorted.sort();
    if descending {
        sorted.reverse();
    }
    sorted.into_iter().map(|(_, uuid)| uuid.clone()).collect()
}

async fn uuids(app: &TestApp, query: &str) -> Vec<String> {
    let (code, body) = app.get(&format!("/api/telemetry/vms?{query}")).await;
    assert_eq!(code, 200, "{body}");
    let vms = body["vms"].as_array().unwrap();
    vms.iter()
        .map(|vm| vm["uuid"].as_str().unwrap().to_owned())
        .collect()
}

/// `n` as the page writes it, e.g. `3,333`.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// Waits until the table shows exactly `expected` (UUIDs, in order) and the pager `range`.
#[track_caller]
fn wait_rows(tab: &Tab, what: &str, expected: &[String], range: &str) {
    let rows = rows_are("#vm-table tbody tr[data-uuid]", expected);
    let range = serde_json::to_string(range).unwrap();
    wait_js_showing(
        tab,
        what,
        &format!("{rows} && document.querySelector('#page-range').textContent === {range}"),
        TABLE_SHOWN,
    );
}

/// What the table shows, for a timeout's message.
const TABLE_SHOWN: &str = "{
    hash: location.hash,
    range: document.querySelector('#page-range').textContent,
    status: document.querySelector('#vms-status').textContent,
    rows: (rows => [rows.length, rows.slice(0, 2), rows.slice(-1)])(
        [...document.querySelectorAll('#vm-table tbody tr[data-uuid]')].map(tr => tr.dataset.uuid)),
    asked: performance.getEntriesByType('resource').filter(e => e.name.includes('/vms?'))
        .slice(-3).map(e => [e.name.split('?')[1], e.responseStatus, Math.round(e.duration)]),
}";

/// Waits for the first page of `domains` (UUID: vCPUs) by CPU %, highest first. A test domain's CPU time is
/// the wall clock, so its CPU % is 100 over its vCPUs: the page holds the domains with the
/// fewest vCPUs, in that order (within one count, the order of a cycle's jitter).
fn wait_by_cpu(tab: &Tab, what: &str, domains: &Value, range: &str) {
    let vcpus = domains.as_object().unwrap();
    let mut classes: Vec<u64> = vcpus.values().filter_map(Value::as_u64).collect();
    classes.sort_unstable();
    classes.truncate(PAGE);
    let set = js(tab, &format!("(window.vcpusOf = {domains}, true)"));
    assert_eq!(set, json!(true), "{what}");
    let range = serde_json::to_string(range).unwrap();
    wait_js_showing(
        tab,
        what,
        &format!(
            "JSON.stringify([...document.querySelectorAll('#vm-table tbody tr[data-uuid]')]
                 .map(tr => window.vcpusOf[tr.dataset.uuid] ?? null)) === '{}'
             && document.querySelector('#page-range').textContent === {range}",
            json!(classes)
        ),
        TABLE_SHOWN,
    );
}

fn sort_state(tab: &Tab) -> Value {
    js(
        tab,
        "[...document.querySelectorAll('#vm-table th[aria-sort]')]
             .map(th => [th.dataset.sort, th.getAttribute('aria-sort')])",
    )
}

/// Sets a filter's control as a user would, and tells the page.
fn filter(tab: &Tab, id: &str, value: &str, event: &str) {
    let value = serde_json::to_string(value).unwrap();
    js(
        tab,
        &format!(
            "(() => {{ const c = document.querySelector('#{id}'); c.value = {value};
                 c.dispatchEvent(new Event('{event}')); return true; }})()"
        ),
    );
}

/// Waits for the chosen VM's charts, and returns how they sit in the window.
fn charts_in_sight(tab: &Tab, uuid: &str) -> Value {
    wait_js(
        tab,
        "the VM's charts drawn",
        &format!(
            "location.hash.includes('vm={uuid}') &&
             !document.querySelector('#charts').hidden &&
             !document.querySelector('#vm-facts').hidden &&
             document.querySelectorAll('#charts .chart canvas').length === 3 &&
             {{
                 inner: window.innerHeight,
                 scrolled: window.scrollY + document.querySelector('#vms .table-wrap').scrollTop,
                 charts: [...document.querySelectorAll('#charts .chart')].map(c => {{
                     const r = c.getBoundingClientRect();
                     return [r.top, r.bottom, r.height];
                 }}),
             }}"
        ),
    )
}

#[track_caller]
fn assert_in_sight(shown: &Value) {
    let inner = shown["inner"].as_f64().unwrap();
    for chart in shown["charts"].as_array().unwrap() {
        let (top, bottom, height) = (
            chart[0].as_f64().unwrap(),
            chart[1].as_f64().unwrap(),
            chart[2].as_f64().unwrap(),
        );
        assert!(height > 100.0 && top >= 0.0 && bottom <= inner, "{shown}");
    }
}

#[actix_web::test]
async fn ten_thousand_vms_sort_page_filter_and_open_beside_the_table() {
    let domains = fleet();
    let node = TestNode::new(&domains);
    let file = format!(r#"hosts = [{{ uri = "{}", name = "big" }}]"#, node.uri);
    // Cycles every 5 s: between them every poll of the page is a 304.
    let env = [
        ("VMTELEMETRY_INFLUX_URL", "http://127.0.0.1:9"),
        ("VMTELEMETRY_POLL_INTERVAL", "5"),
    ];
    let app = spawn_app_with_file(Some(&file), &env).await;
    wait_for("every VM listed", Duration::from_secs(60), || async {
        let (_, body) = app.get("/api/telemetry/vms?limit=1").await;
        (body["count"] == json!(VMS)).then_some(())
    })
    .await;

    let all: Vec<&TestDomain> = domains.iter().collect();
    let default = uuids(&app, "limit=100").await;
    let name_asc = by_name(&all, false);
    let name_desc = by_name(&all, true);
    let paused: Vec<&TestDomain> = domains.iter().filter(|d| d.runstate == 3).collect();
    let vcpus = |domains: &mut dyn Iterator<Item = &TestDomain>| -> Value {
        domains.map(|d| (d.uuid.clone(), json!(d.vcpus))).collect()
    };
    let paused_01 = vcpus(&mut paused.iter().copied().filter(|d| d.name.contains("vm-01")));
    let every_vm = vcpus(&mut domains.iter());
    let paused_desc = by_name(&paused, true);
    let unknown = "6f1a3c2e-0000-4000-8000-ffffffffffff";
    let address = app.address.clone();
    in_browser(move |tab| {
        open(tab, &address);
        wait_rows(tab, "the first page", &default, "1–100 of 10,000");
        assert_eq!(sort_state(tab), json!([["host", "ascending"]]));
        assert_eq!(js(tab, "document.querySelector('#page-prev').disabled"), json!(true));
        wait_js(tab, "the VMs tile", "document.querySelector('#tile-vms .value').textContent === '10,000'");

        click(tab, "#vm-table th[data-sort='name'] button");
        wait_rows(tab, "sorted by name", &name_asc[..PAGE], "1–100 of 10,000");
        click(tab, "#vm-table th[data-sort='name'] button");
        wait_rows(tab, "sorted by name, descending", &name_desc[..PAGE], "1–100 of 10,000");
        assert_eq!(sort_state(tab), json!([["name", "descending"]]));
        click(tab, "#page-next");
        wait_rows(tab, "the second page", &name_desc[PAGE..2 * PAGE], "101–200 of 10,000");

        click(tab, "#vm-table th[data-sort='cpu_usage_percent'] button");
        wait_by_cpu(tab, "sorted by CPU %, from the first page", &every_vm, "1–100 of 10,000");
        assert_eq!(sort_state(tab), json!([["cpu_usage_percent", "descending"]]));
        let asked = js(tab, "performance.getEntriesByType('resource').some(e =>
            e.name.includes('sort=cpu_usage_percent&order=desc&limit=100&offset=0'))");
        assert_eq!(asked, json!(true), "the table asks the API for the order");

        filter(tab, "filter-state", "paused", "change");
        filter(tab, "filter-name", "vm-01", "input");
        let range = format!("1–100 of {}", thousands(paused_01.as_object().unwrap().len()));
        wait_by_cpu(tab, "paused VMs named vm-01…", &paused_01, &range);

        // The view to keep: paused VMs by name, descending, second page, one VM chosen.
        filter(tab, "filter-name", "", "input");
        click(tab, "#vm-table th[data-sort='name'] button");
        click(tab, "#vm-table th[data-sort='name'] button");
        let range = format!("1–100 of {}", thousands(paused_desc.len()));
        wait_rows(tab, "paused VMs by name, descending", &paused_desc[..PAGE], &range);
        click(tab, "#page-next");
        let page = &paused_desc[PAGE..2 * PAGE];
        let range = format!("101–200 of {}", thousands(paused_desc.len()));
        wait_rows(tab, "their second page", page, &range);
        let chosen = page.last().unwrap();
        let row = format!("#vm-table tbody tr[data-uuid='{chosen}']");
        let below = js(
            tab,
            &format!(
                "document.querySelector(\"{row}\").getBoundingClientRect().top >
                 Math.min(innerHeight, document.querySelector('#vms .table-wrap').getBoundingClientRect().bottom)"
            ),
        );
        assert_eq!(below, json!(true), "the last row starts out of sight");
        click(tab, &row);
        let shown = charts_in_sight(tab, chosen);
        assert!(shown["scrolled"].as_f64().unwrap() > 0.0, "{shown}");
        assert_in_sight(&shown);

        let view = "[location.hash, document.querySelector('#filter-state').value,
                     document.querySelector('#vm-title').textContent]";
        let before = js(tab, view);
        let hash = before[0].as_str().unwrap();
        for part in ["sort=name", "order=desc", "offset=100", "filter-state=paused", "host=big"] {
            assert!(hash.contains(part), "{hash}");
        }
        // The address, shared: opened afresh, it shows the same view.
        open(tab, "about:blank");
        open(tab, &format!("{address}/{hash}"));
        wait_rows(tab, "the same page from its address", page, &range);
        assert_eq!(sort_state(tab), json!([["name", "descending"]]));
        assert_in_sight(&charts_in_sight(tab, chosen));
        let before = serde_json::to_string(&before.to_string()).unwrap();
        wait_js(tab, "the same view", &format!("JSON.stringify({view}) === {before}"));

        // Polls between two cycles cost a 304 each, for the table and the tiles alike.
        wait_js(
            tab,
            "304 answers to the polls",
            "['/api/telemetry/vms?', '/api/telemetry/summary'].every(path =>
                 performance.getEntriesByType('resource')
                     .some(e => e.name.includes(path) && e.responseStatus === 304))",
        );

        host_panel(tab);
        bad_addresses_are_ignored(tab, &address, &default);

        open(tab, "about:blank");
        open(tab, &format!("{address}/#vm={unknown}&host=big"));
        let gone = wait_js(tab, "the gone notice", "!document.querySelector('#vm-gone').hidden &&
            document.querySelector('#charts').hidden && document.querySelector('#vm-gone').textContent");
        assert_eq!(
            gone,
            json!(format!("This VM is gone: big no longer lists {unknown}. Choose another VM in the table."))
        );
        wait_rows(tab, "the table beside the notice", &default, "1–100 of 10,000");
    })
    .await;
}

/// The host's panel: its collection state beside the table, which shows its VMs; without
/// InfluxDB its charts say why they are empty.
fn host_panel(tab: &Tab) {
    click(tab, "#hosts-table button.open-host[data-host='big']");
    let facts = wait_js(
        tab,
        "the host's panel",
        "!document.querySelector('#host-view').hidden &&
         location.hash.includes('hostview=big') &&
         document.querySelector('#filter-host').value === 'big' &&
         !document.querySelector('#host-facts').hidden &&
         !document.querySelector('#host-notice').hidden &&
         document.querySelector('#host-notice').dataset.state === 'error' &&
         Object.fromEntries([...document.querySelectorAll('#host-facts div')]
             .map(d => [d.firstChild.textContent, d.lastChild.textContent]))",
    );
    assert_eq!(facts["Connection"], json!("connected"), "{facts}");
    assert_eq!(facts["VMs"], json!("10,000"), "{facts}");
    let rows = js(
        tab,
        "[...document.querySelectorAll('#vm-table tbody tr[data-uuid]')].every(tr => tr.dataset.host === 'big')",
    );
    assert_eq!(rows, json!(true));
    let notice = js(tab, "document.querySelector('#host-notice').textContent");
    assert!(
        notice.as_str().unwrap().starts_with("No host history: "),
        "{notice}"
    );
    // The address keeps the panel.
    tab.reload(false, None)
        .unwrap()
        .wait_until_navigated()
        .unwrap();
    wait_js(
        tab,
        "the host's panel after reloading",
        "!document.querySelector('#host-view').hidden &&
         document.querySelector('#vm-title').textContent === '— big' &&
         !document.querySelector('#host-facts').hidden",
    );
}

/// Nonsense in every parameter of the address: the page stands, with its defaults.
fn bad_addresses_are_ignored(tab: &Tab, address: &str, default: &[String]) {
    open(tab, "about:blank");
    open(
        tab,
        &format!(
            "{address}/#sort=password&order=sideways&offset=-7&range=1y&filter-state=%3Cb%3E\
             &filter-name=&vm=&hostview=&limit=0&%E0%A4%A"
        ),
    );
    wait_rows(
        tab,
        "the first page, as by default",
        default,
        "1–100 of 10,000",
    );
    assert_eq!(sort_state(tab), json!([["host", "ascending"]]));
    let controls = js(
        tab,
        "[document.querySelector('#range').value, document.querySelector('#filter-state').value,
          document.querySelector('#attention-view').hidden]",
    );
    assert_eq!(controls, json!(["15m", "", false]));
}
