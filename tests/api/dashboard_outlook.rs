//! The dashboard's right-sizing and trends in headless Chromium, over test-driver domains (whose
//! CPU time is the wall clock: each uses one whole vCPU): every VM's CPU trend as tiny bars in
//! the table, the right-sizing tile from the summary, the right-sizing table from its tile, sorted
//! by the API by what can be reclaimed and by name, restored by the address, and a row opening
//! its VM with its right-sizing in its insights panel; the keyboard and the two themes. The
//! forecast drawn on a leaking guest's memory chart: `forecast_line_is_drawn`, called by
//! `forecast_guest.rs` on its guest.

use std::time::Duration;

use serde_json::{Value, json};

use headless_chrome::protocol::cdp::Emulation::{MediaFeature, SetEmulatedMedia};

use crate::helpers::{TestApp, TestDomain, collecting, wait_for};
use crate::support::browser::{Tab, js, on_page, rows_are, tile, wait_js};

/// Names in another order than their UUIDs; 2, 3, 4 and 1 vCPUs.
fn domains() -> Vec<TestDomain> {
    ["zeta", "alpha", "mid", "beta"]
        .into_iter()
        .zip(1..)
        .map(|(name, n)| TestDomain::new(name, 1, n))
        .collect()
}

/// The UUIDs of `/api/telemetry/recommendations` sorted by `sort`.
async fn recommended(app: &TestApp, sort: &str) -> Vec<String> {
    let (code, body) = app
        .get(&format!("/api/telemetry/recommendations?sort={sort}"))
        .await;
    assert_eq!(code, 200, "{body}");
    let vms = body["vms"].as_array().unwrap();
    vms.iter()
        .map(|vm| vm["uuid"].as_str().unwrap().to_owned())
        .collect()
}

/// Waits until the right-sizing table shows exactly `expected` (UUIDs, in order), its header
/// `sorted` marked as the order.
#[track_caller]
fn wait_table(tab: &Tab, what: &str, expected: &[String], sorted: &str) {
    let rows = rows_are("#rightsizing-table tbody tr", expected);
    wait_js(
        tab,
        what,
        &format!(
            "{rows} &&
             document.querySelector('#rightsizing-table th[aria-sort]').dataset.sort === '{sorted}'"
        ),
    );
}

#[actix_web::test]
async fn the_cpu_trend_the_rightsizing_tile_and_its_table_sorted_and_restored() {
    let domains = domains();
    let settings = [
        ("VMTELEMETRY_INSIGHTS", "true"),
        ("VMTELEMETRY_POLL_INTERVAL", "1"),
    ];
    let (app, _influx, _node) = collecting(&domains, &settings).await;
    // Whole vCPUs busy: 100 % of one, 50 % of two, …, over at least three pairs of samples.
    let vms = wait_for("three samples' trend", Duration::from_secs(20), || async {
        let (_, body) = app.get("/api/telemetry/vms").await;
        let trends = body["vms"]
            .as_array()?
            .iter()
            .map(|vm| vm["cpu_trend"].as_array().map(Vec::len));
        (body["count"] == json!(4) && trends.clone().all(|n| n >= Some(3))).then_some(body)
    })
    .await;
    for vm in vms["vms"].as_array().unwrap() {
        let share = 100.0 / vm["cpu_count"].as_f64().unwrap();
        for percent in vm["cpu_trend"].as_array().unwrap() {
            let percent = percent.as_f64().expect("a rate between every two samples");
            assert!((percent - share).abs() <= 3.0, "{vm}");
        }
    }
    // The tile's figures are the recommendations' fleet totals; insights per VM carry them too.
    let (_, summary) = app.get("/api/telemetry/summary").await;
    let (_, all) = app.get("/api/telemetry/recommendations").await;
    assert_eq!(summary["rightsizing"], all["fleet"], "{summary}");
    assert_eq!(summary["rightsizing"]["vms"], json!(4), "{summary}");
    let uuid = &domains[2].uuid;
    let (code, insights) = app.get(&format!("/api/telemetry/insights/{uuid}")).await;
    assert_eq!(code, 200, "{insights}");
    // Learning (VPA's first minute), and nothing bounded to forecast on a test domain.
    assert_eq!(
        (&insights["recommendation"], &insights["forecasts"]),
        (&Value::Null, &json!([])),
        "{insights}"
    );
    // Each documented.
    let (_, openapi) = app.get("/api/openapi.json").await;
    let schemas = &openapi["components"]["schemas"];
    assert!(schemas["Summary"]["properties"]["rightsizing"].is_object());
    assert!(schemas["VmView"]["properties"]["cpu_trend"].is_object());
    let answer = schemas["VmInsightsAnswer"].to_string();
    assert!(
        answer.contains("\"recommendation\"") && answer.contains("\"forecasts\""),
        "{answer}"
    );
    let by_reclaim = recommended(&app, "reclaimable_vcpus").await;
    let by_name = recommended(&app, "name").await;
    assert_ne!(
        by_reclaim, by_name,
        "the two orders must tell the sort apart"
    );
    let mid = domains[2].uuid.clone();
    let zeta = domains[0].uuid.clone();
    on_page(app.address.clone(), move |tab| {
        // mid has 4 vCPUs: bars of 25 % (4 of 16 units), the figures in the cell's title.
        let bars = wait_js(
            tab,
            "mid's trend bars",
            &format!(
                "(() => {{
                     const td = document.querySelector('#vm-table tr[data-uuid=\"{mid}\"] td.cpu');
                     const d = td && td.querySelector('path').getAttribute('d');
                     return d && d.split('M').length > 3 && [d, td.title];
                 }})()"
            ),
        );
        let (d, title) = (bars[0].as_str().unwrap(), bars[1].as_str().unwrap());
        assert!(d.contains("v-4") && title.contains("25 %"), "{bars}");

        let (value, detail) = tile(tab, "tile-rightsizing", "ok");
        assert_eq!(value, "—");
        assert_eq!(detail, "no recommendation yet: 4 VMs learning");
        // By keyboard: the tile is focusable and Enter opens the table.
        js(
            tab,
            "(() => { const t = document.querySelector('#tile-rightsizing'); t.focus(); \
             t.dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter', bubbles: true})); \
             return document.activeElement === t; })()",
        );
        wait_table(
            tab,
            "the table by what can be reclaimed",
            &by_reclaim,
            "reclaimable_vcpus",
        );
        let summary = js(
            tab,
            "document.querySelector('#rightsizing-summary').textContent",
        );
        assert!(
            summary
                .as_str()
                .unwrap()
                .starts_with("Fleet: 0 vCPUs and 0.0 GiB reclaimable"),
            "{summary}"
        );
        let class = js(
            tab,
            "document.querySelector('#rightsizing-table tbody td.class').textContent",
        );
        assert_eq!(class, json!("learning"));
        tab.find_element("#rightsizing-table th[data-sort='name'] button")
            .unwrap()
            .click()
            .unwrap();
        wait_table(tab, "the table by name", &by_name, "name");
        assert!(
            js(tab, "location.hash")
                .as_str()
                .unwrap()
                .contains("view=rightsizing")
        );

        // The address brings the table back.
        js(tab, "location.reload()");
        wait_table(
            tab,
            "the table from the address",
            &by_reclaim,
            "reclaimable_vcpus",
        );
        // A row opens its VM, its right-sizing in its insights.
        tab.find_element(&format!("#rightsizing-table tr[data-uuid='{mid}']"))
            .unwrap()
            .click()
            .unwrap();
        wait_js(
            tab,
            "mid's right-sizing in its insights",
            "!document.querySelector('#vm-view').hidden && \
             document.querySelector('#vm-outlook li')?.textContent === \
             'Right-sizing: learning (VPA needs CPU samples a minute apart)'",
        );
        keyboard_and_themes(tab, &zeta);
    })
    .await;
}

/// Every header cell of the page's tables (not the charts' legends) scoped to its column and
/// every sort a button; a row of the VM table takes the focus and Enter opens its VM; text at
/// 4.5:1 contrast or more in the light theme and in the dark one, which follows the system's
/// preference.
fn keyboard_and_themes(tab: &Tab, uuid: &str) {
    let headers = js(
        tab,
        "[...document.querySelectorAll('table:not(.u-legend) th')].every(th => th.scope === 'col') &&
         [...document.querySelectorAll('th[data-sort]')].every(th => th.querySelector('button'))",
    );
    assert_eq!(headers, json!(true));
    js(
        tab,
        &format!(
            "(() => {{ const tr = document.querySelector('#vm-table tr[data-uuid=\"{uuid}\"]');
                 tr.focus();
                 tr.dispatchEvent(new KeyboardEvent('keydown', {{key: 'Enter', bubbles: true}})); }})()"
        ),
    );
    wait_js(
        tab,
        "zeta's view opened by Enter",
        "document.querySelector('#vm-title').textContent.startsWith('— zeta on ')",
    );
    // The contrast of the theme's text (WCAG's relative luminance) and its background colour.
    let theme = "(() => {
        const style = getComputedStyle(document.documentElement);
        const rgb = (v) => [1, 3, 5].map(i => parseInt(style.getPropertyValue(v).trim().slice(i, i + 2), 16) / 255);
        const lum = (v) => rgb(v).map(c => c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4)
            .reduce((sum, c, i) => sum + c * [0.2126, 0.7152, 0.0722][i], 0);
        const ratio = (a, b) => (Math.max(lum(a), lum(b)) + 0.05) / (Math.min(lum(a), lum(b)) + 0.05);
        return [getComputedStyle(document.documentElement).backgroundColor,
                Math.min(ratio('--text', '--bg'), ratio('--muted', '--panel'), ratio('--muted', '--bg'),
                         ratio('--accent', '--panel'), ratio('--bad', '--panel'))];
    })()";
    let light = js(tab, theme);
    assert_eq!(light[0], json!("rgb(246, 247, 249)"), "{light}");
    assert!(light[1].as_f64().unwrap() >= 4.5, "{light}");
    let dark = MediaFeature {
        name: "prefers-color-scheme".into(),
        value: "dark".into(),
    };
    tab.call_method(SetEmulatedMedia {
        media: None,
        features: Some(vec![dark]),
    })
    .unwrap();
    let dark = js(tab, theme);
    assert_eq!(dark[0], json!("rgb(11, 18, 32)"), "{dark}");
    assert!(dark[1].as_f64().unwrap() >= 4.5, "{dark}");
}

/// On the page of VM `name` (growing toward full memory now), its memory forecast: in its
/// insights with a time to full, drawn on the memory chart from now (the dashed line and the
/// 80 % band's two bounds) and said in the chart's caption.
pub async fn forecast_line_is_drawn(app: &TestApp, name: &str) {
    let (code, detail) = app.get(&format!("/api/telemetry/stats/{name}")).await;
    assert_eq!(code, 200, "{detail}");
    let (uuid, host) = (&detail["vm"]["uuid"], &detail["vm"]["host"]);
    let (uuid, host) = (uuid.as_str().unwrap(), host.as_str().unwrap());
    let (_, insights) = app.get(&format!("/api/telemetry/insights/{uuid}")).await;
    let forecasts = insights["forecasts"].as_array().expect("forecasts");
    let memory = forecasts.iter().find(|f| f["resource"] == "memory");
    assert!(
        memory.is_some_and(|f| f["seconds_to_full"].is_f64()),
        "{insights}"
    );
    let address = format!("{}/#vm={uuid}&host={host}", app.address);
    on_page(address, move |tab| {
        // Series 3 to 5 of the memory chart: the forecast and its interval's bounds, from now on.
        let drawn = wait_js(
            tab,
            "the memory forecast drawn",
            "(() => {
                 const chart = window.vmtCharts && window.vmtCharts.memory;
                 if (!chart) return null;
                 const now = Date.now() / 1000;
                 const future = chart.data[0].map((t, i) => [t, i]).filter(([t]) => t >= now - 5);
                 const drawn = [3, 4, 5].map(s => future.filter(([, i]) => chart.data[s][i] !== null).length);
                 const caption = document.querySelector('#forecast-memory').textContent;
                 return drawn.every(n => n >= 2) && caption.includes('full in') && [drawn, caption];
             })()",
        );
        eprintln!("forecast drawn: {drawn}");
    })
    .await;
}
