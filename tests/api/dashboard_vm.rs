//! A real guest's page in headless Chromium: its disks and interfaces, its disk, network and
//! steal charts from the extended measurements in the real InfluxDB, its CPU burst marked as an
//! anomaly on the CPU chart, its disk's fill with its forecast, its host's panel with
//! `host_metrics` charts, and the "gone" notice when the guest is destroyed while its page is
//! open.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{Influx, spawn_collecting, wait_for};
use crate::support::browser::{on_page, open, wait_js, wait_js_showing};
use crate::support::guest::Guest;

/// The burst's onset, seconds after the guest's boot: the CPU model has learnt the idle level.
const AFTER: u32 = 25;

#[actix_web::test]
async fn a_real_guests_page_shows_its_devices_io_charts_anomalies_host_and_its_end() {
    let guest = Guest::options("burst").arg("vmt.after", AFTER).start();
    let influx = Influx::new_database().await;
    let env = [
        ("VMTELEMETRY_DOMAIN_INCLUDE", guest.name.as_str()),
        ("VMTELEMETRY_POLL_INTERVAL", "1"),
        ("VMTELEMETRY_STATS_INTERVAL", "1"),
        ("VMTELEMETRY_STATS_GROUPS", "cpu_total,vcpu,interface,block"),
        // The disk's fill chart and forecast need a few readings of its sizes within the run.
        ("VMTELEMETRY_STATS_GROUP_INTERVALS__BLOCK_SIZES", "3"),
        ("VMTELEMETRY_HOST_METRICS", "true"),
        ("VMTELEMETRY_INSIGHTS", "true"),
        ("VMTELEMETRY_INSIGHTS_LEARNING_SAMPLES", "5"),
    ];
    let app = spawn_collecting("qemu:///system", &influx, &env).await;
    let path = format!("/api/telemetry/stats/{}", guest.name);
    let detail = wait_for(
        "the guest's disk and interface with rates",
        Duration::from_secs(30),
        || async {
            let (code, detail) = app.get(&path).await;
            let rated = |devices: &Value| {
                devices.as_array().is_some_and(|d| {
                    d.iter()
                        .any(|d| d["rates"].as_object().is_some_and(|r| !r.is_empty()))
                })
            };
            (code == 200 && rated(&detail["disks"]) && rated(&detail["interfaces"]))
                .then_some(detail)
        },
    )
    .await;
    let names = |devices: &Value| -> Vec<String> {
        devices
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let (disks, interfaces) = (names(&detail["disks"]), names(&detail["interfaces"]));
    let (uuid, host) = (
        detail["vm"]["uuid"].as_str().unwrap().to_owned(),
        detail["vm"]["host"].as_str().unwrap().to_owned(),
    );
    // The burst, scored anomalous against the guest's idle past: its time, in seconds.
    let q = format!(
        "SELECT cpu_percent_score FROM vm_anomalies WHERE uuid = '{uuid}' AND cpu_percent_score >= 0.5"
    );
    let what = "the burst scored anomalous in InfluxDB";
    let rows = influx
        .rows_when(what, Duration::from_secs(90), &q, |rows| !rows.is_empty())
        .await;
    let anomalous = rows[0]["time"].as_i64().unwrap() as f64 / 1e9;

    // Its disk's forecast (a sparse image: not growing), which its page draws.
    let (_, insights) = app.get(&format!("/api/telemetry/insights/{uuid}")).await;
    let forecasts = insights["forecasts"].as_array().expect("forecasts");
    assert!(
        forecasts
            .iter()
            .any(|f| f["resource"] == json!(format!("disk:{}", disks[0]))),
        "{insights}"
    );

    let address = app.address.clone();
    on_page(format!("{address}/#hostview={host}"), move |tab| {
        let host_charts = wait_js(
            tab,
            "the host's host_metrics charts",
            "window.vmtHostCharts &&
             document.querySelector('#host-notice').hidden &&
             vmtHostCharts['host-memory'].data[1].some(v => v > 0) &&
             [vmtHostCharts['host-memory'].data[2].at(-1), vmtHostCharts['host-domains'].data[1].at(-1)]",
        );
        assert!(host_charts[0].as_f64().unwrap() > 0.0, "{host_charts}");
        assert!(host_charts[1].as_f64().unwrap() >= 1.0, "{host_charts}");

        open(tab, "about:blank");
        open(tab, &format!("{address}/#vm={uuid}&host={host}"));
        let devices = wait_js_showing(
            tab,
            "its disks, interfaces and extended charts",
            "!document.querySelector('#vm-devices').hidden &&
             !document.querySelector('#io-charts').hidden &&
             ['disk', 'net'].every(c => vmtCharts[c].data[1].some(v => v !== null)) &&
             vmtCharts.steal.data[0].length > 0 &&
             [[...document.querySelectorAll('#disks-table tbody tr')].map(tr => tr.cells[0].textContent),
              [...document.querySelectorAll('#interfaces-table tbody tr')].map(tr => tr.cells[0].textContent),
              vmtCharts.steal.data[1].every(v => v >= 0)]",
            "({
                hash: location.hash,
                title: document.querySelector('#vm-title').textContent,
                notice: document.querySelector('#history-notice').textContent,
                gone: !document.querySelector('#vm-gone').hidden,
                hidden: ['#vm-devices', '#io-charts'].map(id => document.querySelector(id).hidden),
                points: window.vmtCharts && Object.fromEntries(Object.entries(vmtCharts)
                    .map(([k, c]) => [k, c.data[0].length])),
                asked: performance.getEntriesByType('resource').filter(e => e.name.includes('/api/'))
                    .slice(-8).map(e => [e.name.split('/api/telemetry/')[1], e.responseStatus, Math.round(e.duration)]),
            })",
        );
        assert_eq!(devices, json!([disks, interfaces, true]));

        let marks = wait_js(
            tab,
            "the burst marked on the CPU chart",
            &format!(
                "vmtCharts.cpu.anomalies.some(t => Math.abs(t - {anomalous}) < 0.001) &&
                 vmtCharts.cpu.anomalies.length"
            ),
        );
        assert!(marks.as_u64().unwrap() >= 1, "{marks}");
        // Waited for: a refresh whose insights request failed says so until the next one.
        wait_js_showing(
            tab,
            "its model trained",
            "document.querySelector('#vm-model').dataset.state === 'trained'",
            "document.querySelector('#vm-model').textContent",
        );
        // Its disk's allocation against its capacity, and its forecast from now on.
        let fill = wait_js(
            tab,
            "the disk's fill chart with its forecast",
            "!document.querySelector('#fill-figure').hidden &&
             vmtCharts.fill.data[2].some(v => v > 0) && vmtCharts.fill.data[3].some(v => v !== null) &&
             document.querySelector('#forecast-disk').textContent",
        );
        assert!(fill.as_str().unwrap().contains(" · disk:"), "{fill}");

        drop(guest);
        let gone = wait_js(
            tab,
            "the gone notice",
            "!document.querySelector('#vm-gone').hidden && document.querySelector('#charts').hidden &&
             document.querySelector('#vm-devices').hidden && document.querySelector('#fill-figure').hidden &&
             document.querySelector('#vm-gone').textContent",
        );
        assert_eq!(
            gone,
            json!(format!("This VM is gone: {host} no longer lists {uuid}. Choose another VM in the table."))
        );
    })
    .await;
}
