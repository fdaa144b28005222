//! Right-sizing on two real guests booted together, each with 4 vCPUs: one busy half of every
//! second on one vCPU (tests/guest's `burst` at a 50 % duty cycle from boot: half a core), one
//! idle with 1 GiB. VPA's minute is shortened to a second (`insights_recommend_sample_interval`:
//! its day, half-life and confidence follow), so 60 samples weigh what an hour does for a VPA:
//! the busy one gets 1 vCPU, the idle one is over-provisioned by 3 vCPUs, in the API, in
//! `/metrics` and in InfluxDB's `vm_recommendations`; the fleet's summary and the dashboard's
//! right-sizing tile (headless Chromium) count those vCPUs reclaimable and the busy one short.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{Influx, QEMU_SYSTEM, TestApp, spawn_collecting, wait_for};
use crate::support::browser::{on_page, tile};
use crate::support::guest::{Guest, only_guests};
use crate::support::prometheus::{scrape, value_of};

/// VPA's minute, in seconds: a poll's.
const SAMPLE_INTERVAL: &str = "1";
/// VPA's confidence behind the recommendations checked: 60 of its minutes. Its upper bound is
/// then the 95th percentile × 25: an idle guest's under 3 vCPUs while its p95 stays under 120
/// millicores (a TCG guest's idle reads 60–95 on a loaded host; at 40 minutes, × 37, 93 was
/// already too much).
const CONFIDENCE_DAYS: f64 = 60.0 / 1440.0;
/// How often the recommendations are written: the line checked is the first written on that
/// confidence.
const RECOMMEND_EVERY: &str = "5";

/// The guest `name`'s entry in `/api/telemetry/recommendations`.
fn vm<'a>(body: &'a Value, name: &str) -> Option<&'a Value> {
    body["vms"].as_array()?.iter().find(|vm| vm["name"] == name)
}

/// Its recommendation once it rests on `CONFIDENCE_DAYS`.
fn settled<'a>(body: &'a Value, name: &str) -> Option<&'a Value> {
    let r = &vm(body, name)?["recommendation"];
    (r["confidence_days"].as_f64()? >= CONFIDENCE_DAYS).then_some(r)
}

#[actix_web::test]
async fn half_a_vcpu_of_four_gets_one_and_an_idle_guest_is_over_provisioned() {
    let (busy, idle) = std::thread::scope(|s| {
        let busy = s.spawn(|| {
            let options = Guest::options("burst").vcpus(4);
            options.arg("vmt.duty", 50).arg("vmt.after", 0).start()
        });
        let idle = s.spawn(|| Guest::options("").vcpus(4).memory_mib(1024).start());
        (busy.join().unwrap(), idle.join().unwrap())
    });
    let influx = Influx::new_database().await;
    let names = format!("{},{}", busy.name, idle.name);
    let mut env = only_guests(&names, "1", "cpu_total,balloon");
    env.extend([
        ("VMTELEMETRY_INSIGHTS", "true"),
        (
            "VMTELEMETRY_INSIGHTS_RECOMMEND_SAMPLE_INTERVAL",
            SAMPLE_INTERVAL,
        ),
        ("VMTELEMETRY_INSIGHTS_RECOMMEND_EVERY", RECOMMEND_EVERY),
    ]);
    let app = spawn_collecting(QEMU_SYSTEM, &influx, &env).await;
    let body = wait_for("60 samples", Duration::from_secs(150), || async {
        let (_, body) = app.get("/api/telemetry/recommendations").await;
        (settled(&body, &busy.name).is_some() && settled(&body, &idle.name).is_some())
            .then_some(body)
    })
    .await;
    let (half, still) = (settled(&body, &busy.name), settled(&body, &idle.name));
    let (half, still) = (half.unwrap(), still.unwrap());
    eprintln!("busy: {half}\nidle: {still}");
    // Half a core, less what a loaded host does not give it; p90 + 15 % below one core.
    let millicores = half["cpu_millicores"]["target"].as_i64().unwrap();
    assert!((300..=1000).contains(&millicores), "{half}");
    assert_eq!(half["cpu"]["target"], json!(1), "{half}");
    assert_eq!(half["cpu"]["current"], json!(4), "{half}");
    assert_eq!(still["class"], json!("over_provisioned"), "{still}");
    assert_eq!(still["cpu"]["class"], json!("over_provisioned"), "{still}");
    assert_eq!(still["cpu"]["target"], json!(1), "{still}");
    assert_eq!(still["cpu"]["reclaimable"], json!(3), "{still}");
    assert_eq!(still["memory"]["current"], json!(1024), "{still}");
    let totals = &body["hosts"][0]["totals"];
    assert!(totals["reclaimable_vcpus"].as_u64() >= Some(3), "{totals}");
    assert!(totals["over_provisioned"].as_u64() >= Some(1), "{totals}");
    reclaimable_in_the_summary_and_its_tile(&app).await;

    // The same in /metrics, computed as the scrape comes.
    let samples = scrape(&app.client, &app.address).await;
    let family = |field| format!("vmtelemetry_vm_recommendations_{field}");
    let of = |name: &str| [("name", name.to_owned())];
    for (guest, field, expected) in [
        (&busy, "cpu_target", 1.0),
        (&busy, "cpu_current", 4.0),
        (&idle, "cpu_target", 1.0),
        (&idle, "reclaimable_vcpus", 3.0),
    ] {
        let labels = of(&guest.name);
        let labels: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let value = value_of(&samples, &family(field), &labels);
        assert_eq!(value, Some(expected), "{} {field}", guest.name);
    }
    let over = [("name", idle.name.as_str()), ("class", "over_provisioned")];
    assert_eq!(value_of(&samples, &family("class"), &over), Some(1.0));

    // The same in InfluxDB: the first line written on the same confidence.
    let confident =
        |row: &&BTreeMap<String, Value>| row["confidence_days"].as_f64() >= Some(CONFIDENCE_DAYS);
    for (guest, class) in [(&busy, None), (&idle, Some("over_provisioned"))] {
        let q = format!(
            "SELECT * FROM vm_recommendations WHERE \"name\" = '{}'",
            guest.name
        );
        let rows = influx
            .rows_when("vm_recommendations", Duration::from_secs(30), &q, |rows| {
                rows.iter().any(|row| confident(&row))
            })
            .await;
        let row = rows.iter().find(confident).unwrap();
        assert_eq!(row["cpu_target"], json!(1), "{row:?}");
        assert_eq!(row["cpu_current"], json!(4), "{row:?}");
        if let Some(class) = class {
            assert_eq!(row["class"], json!(class), "{row:?}");
            assert_eq!(row["reclaimable_vcpus"], json!(3), "{row:?}");
            assert_eq!(row["memory_current_mib"], json!(1024), "{row:?}");
        }
    }
}

/// `GET /api/telemetry/summary`'s `rightsizing` and the dashboard's tile of it: the idle
/// guest's 3 vCPUs (at least) reclaimable, and the busy guest's 160 MiB short of VPA's minimum
/// (250 MB): it needs more, so the tile warns.
async fn reclaimable_in_the_summary_and_its_tile(app: &TestApp) {
    let (code, summary) = app.get("/api/telemetry/summary").await;
    assert_eq!(code, 200, "{summary}");
    let totals = &summary["rightsizing"];
    assert!(totals["reclaimable_vcpus"].as_u64() >= Some(3), "{summary}");
    assert!(totals["over_provisioned"].as_u64() >= Some(1), "{summary}");
    assert_eq!(totals["under_provisioned"], json!(1), "{summary}");
    assert!(
        totals["memory_needed_gib"].as_f64() > Some(0.0),
        "{summary}"
    );
    assert_eq!(totals["vms_recommended"], json!(2), "{summary}");
    let shown = on_page(app.address.clone(), |tab| {
        tile(tab, "tile-rightsizing", "warn")
    });
    let (value, detail) = shown.await;
    // "3 vCPUs · 0.0 GiB", "1 over-provisioned · 1 VMs need more (0 vCPUs, 0.1 GiB)"
    let vcpus: u64 = value.split(' ').next().unwrap().parse().expect(&value);
    assert!(vcpus >= 3, "{value}");
    assert!(!detail.starts_with("0 over"), "{detail}");
    assert!(detail.contains("1 VMs need more"), "{detail}");
}
