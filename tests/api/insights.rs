//! Insights through the whole pipeline: the API learning then trained for every VM of a
//! test-driver node, the three measurements in the real InfluxDB with their field types, CPU
//! saturation named from the driver's own CPU time, every signal of a real guest read from its
//! extended samples, and the actor restarted like the others; in `snapshots`, the models kept
//! across restarts.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{
    Influx, TestApp, TestDomain, assert_error, collecting, each_str, spawn_app, spawn_collecting,
    wait_for,
};
use crate::support::guest::Guest;

mod snapshots;

const TOKEN: &str = "insights-adm1n-t0ken-8c1f0e6b2d7a9354";

/// Six running VMs. The test driver counts CPU time at the wall clock's pace, so a VM with one
/// vCPU runs at 100 % of it: domains 4 and 8 (1 + n % 4 vCPUs) are saturated, the others not.
fn domains() -> Vec<TestDomain> {
    TestDomain::running("ins-", 4..=9)
}

pub(crate) const SETTINGS: [(&str, &str); 6] = [
    ("VMTELEMETRY_INSIGHTS", "true"),
    ("VMTELEMETRY_INSIGHTS_LEARNING_SAMPLES", "15"),
    ("VMTELEMETRY_INSIGHTS_MAX_GAP", "10"),
    ("VMTELEMETRY_INSIGHTS_CONDITION_CYCLES", "2"),
    ("VMTELEMETRY_HOST_METRICS", "true"),
    ("VMTELEMETRY_ADMIN_TOKEN", TOKEN),
];

async fn fleet(app: &TestApp, query: &str) -> Value {
    let (status, body) = app.get(&format!("/api/telemetry/insights{query}")).await;
    assert_eq!(status, 200, "{body}");
    body
}

fn names(vms: &Value) -> Vec<&str> {
    let mut names = each_str(vms, "name");
    names.sort();
    names
}

fn types(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[actix_web::test]
async fn every_vm_learns_then_is_scored_and_cpu_saturation_is_named_with_its_evidence() {
    let (app, influx, _node) = collecting(&domains(), &SETTINGS).await;
    let first = wait_for(
        "every VM in the insights",
        Duration::from_secs(10),
        || async {
            let body = fleet(&app, "").await;
            (body["vms"] == json!(6)).then_some(body)
        },
    )
    .await;
    // A cold start says learning, for every VM.
    assert_eq!(first["vms_learning"], json!(6), "{first}");
    assert_eq!(
        names(&first["attention"]),
        ["ins-4", "ins-5", "ins-6", "ins-7", "ins-8", "ins-9"]
    );
    assert!(
        first["attention"]
            .as_array()
            .unwrap()
            .iter()
            .all(|vm| vm["model"] == "learning")
    );
    let (status, vm) = app.get("/api/telemetry/insights/ins-5").await;
    assert_eq!(status, 200, "{vm}");
    assert_eq!(vm["model"], json!("learning"), "{vm}");
    let signals = vm["signals"].as_array().unwrap();
    assert_eq!(signals.len(), 16);
    assert!(signals.iter().all(|s| s["score"].is_null()), "{vm}");

    let trained = wait_for("every VM trained", Duration::from_secs(20), || async {
        let body = fleet(&app, "").await;
        (body["vms_trained"] == json!(6) && body["conditions"]["cpu_saturated"] == json!(2))
            .then_some(body)
    })
    .await;
    // What needs attention first: the two saturated VMs, with their evidence.
    let attention = trained["attention"].as_array().unwrap();
    let mut saturated: Vec<&str> = attention[..2]
        .iter()
        .map(|vm| vm["name"].as_str().unwrap())
        .collect();
    saturated.sort();
    assert_eq!(saturated, ["ins-4", "ins-8"], "{trained}");
    let condition = &attention[0]["conditions"][0];
    assert_eq!(condition["kind"], json!("cpu_saturated"));
    assert_eq!(condition["evidence"]["signal"], json!("cpu_percent"));
    assert_eq!(condition["evidence"]["threshold"], json!(90.0));
    let value = condition["evidence"]["value"].as_f64().unwrap();
    assert!((95.0..=105.0).contains(&value), "{condition}");
    assert!(
        attention[2..]
            .iter()
            .all(|vm| vm["conditions"] == json!([]))
    );
    let host = &trained["hosts"][0];
    assert_eq!(host["vms"], json!(6));
    assert_eq!(host["conditions"]["cpu_saturated"], json!(2));
    assert!(host["vcpu_overcommit"].as_f64().unwrap() > 0.0, "{host}");

    // CPU use needs two samples, so it is scored a cycle after memory.
    let vm = wait_for("ins-5's CPU scored", Duration::from_secs(5), || async {
        let (_, vm) = app.get("/api/telemetry/insights/ins-5").await;
        vm["signals"][0]["score"].is_number().then_some(vm)
    })
    .await;
    assert_eq!(vm["model"], json!("trained"), "{vm}");
    let cpu = &vm["signals"][0];
    assert_eq!(cpu["signal"], json!("cpu_percent"));
    let score = cpu["score"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&score), "{cpu}");
    assert!(vm["anomaly_rate"].is_number(), "{vm}");

    // The three measurements, with the types they keep forever.
    influx
        .rows_when(
            "a vm_anomalies point of every VM",
            Duration::from_secs(15),
            "SELECT COUNT(anomalous_signals) FROM vm_anomalies GROUP BY uuid",
            |rows| rows.len() == 6,
        )
        .await;
    let scored = wait_for(
        "every score in InfluxDB",
        Duration::from_secs(10),
        || async {
            let fields = influx.field_types("vm_anomalies").await;
            (fields.len() >= 6).then_some(fields)
        },
    )
    .await;
    assert_eq!(
        scored,
        types(&[
            ("anomalous_signals", "integer"),
            ("anomaly_rate", "float"),
            ("cpu_percent_score", "float"),
            ("memory_rate_kb_per_sec_score", "float"),
            ("memory_used_percent_score", "float"),
            ("peer_outlier_signals", "integer"),
        ])
    );
    let bottlenecks = influx
        .rows("SELECT * FROM vm_bottlenecks GROUP BY \"kind\", \"name\"")
        .await;
    let mut named: Vec<(&str, &str)> = bottlenecks
        .iter()
        .map(|r| (r["kind"].as_str().unwrap(), r["name"].as_str().unwrap()))
        .collect();
    named.dedup();
    assert_eq!(
        named,
        [("cpu_saturated", "ins-4"), ("cpu_saturated", "ins-8")]
    );
    assert_eq!(
        influx.field_types("vm_bottlenecks").await,
        types(&[
            ("held_sec", "float"),
            ("signal", "string"),
            ("threshold", "float"),
            ("value", "float"),
        ])
    );
    let host_fields = [
        ("anomaly_rate", "float"),
        ("memory_overcommit", "float"),
        ("vcpu_overcommit", "float"),
        ("vms", "integer"),
        ("vms_anomalous", "integer"),
        ("vms_cpu_contention", "integer"),
        ("vms_cpu_saturated", "integer"),
        ("vms_disk_errors", "integer"),
        ("vms_disk_latency", "integer"),
        ("vms_memory_pressure", "integer"),
        ("vms_network_drops", "integer"),
        ("vms_trained", "integer"),
    ];
    assert_eq!(
        influx.field_types("host_insights").await,
        types(&host_fields)
    );
}

#[actix_web::test]
async fn filters_unknown_vms_a_restart_and_insights_off_answer_as_documented() {
    let (app, _influx, _node) = collecting(&domains()[..1], &SETTINGS).await;
    wait_for(
        "the VM in the insights",
        Duration::from_secs(10),
        || async { (fleet(&app, "").await["vms"] == json!(1)).then_some(()) },
    )
    .await;
    let elsewhere = fleet(&app, "?host=no-such-host").await;
    assert_eq!(
        (&elsewhere["vms"], &elsewhere["hosts"]),
        (&json!(0), &json!([]))
    );
    assert_error(
        &app.get("/api/telemetry/insights?hots=x").await,
        400,
        "invalid_parameter",
        "hots",
    );
    assert_error(
        &app.get("/api/telemetry/insights/nope").await,
        404,
        "vm_not_found",
        "nope",
    );

    // Listed and restartable like every actor; a restart before the first snapshot (saved every
    // `insights_snapshot_interval`, 5 minutes) starts every VM learning again.
    wait_for("a trained model", Duration::from_secs(20), || async {
        let status = app.status().await;
        (status["insights"]["vms_trained"] == json!(1)).then_some(())
    })
    .await;
    let actors = app
        .request("GET", "/api/admin/actors", Some(TOKEN))
        .await
        .body;
    let insights = actors["actors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "insights");
    assert_eq!(
        insights.map(|a| &a["kind"]),
        Some(&json!("insights")),
        "{actors}"
    );
    let answer = app
        .request("POST", "/api/admin/actors/insights/restart", Some(TOKEN))
        .await;
    assert_eq!(answer.status, 202, "{}", answer.body);
    let status = app
        .status_when(
            "the insights actor restarted",
            Duration::from_secs(10),
            |s| Some(s["insights"]["restarts"].as_u64()? == 1),
        )
        .await;
    assert!(status["insights"]["vms_trained"] == json!(0), "{status}");
    let vm = wait_for(
        "ins-4 back in the insights",
        Duration::from_secs(5),
        || async {
            let (status, vm) = app.get("/api/telemetry/insights/ins-4").await;
            (status == 200).then_some(vm)
        },
    )
    .await;
    assert_eq!(vm["model"], json!("learning"), "{vm}");

    let off = spawn_app(&[("VMTELEMETRY_INSIGHTS", "false")]).await;
    for path in ["/api/telemetry/insights", "/api/telemetry/insights/x"] {
        assert_error(
            &off.get(path).await,
            404,
            "insights_disabled",
            "insights = true",
        );
    }
    assert!(off.status().await["insights"].is_null());
}

#[actix_web::test]
async fn a_real_guests_signals_come_from_its_extended_samples_and_are_scored() {
    let guest = Guest::start("cpu,disk,net");
    let influx = Influx::new_database().await;
    let settings = [
        ("VMTELEMETRY_DOMAIN_INCLUDE", guest.name.as_str()),
        ("VMTELEMETRY_POLL_INTERVAL", "1"),
        ("VMTELEMETRY_STATS_INTERVAL", "1"),
        (
            "VMTELEMETRY_STATS_GROUPS",
            "cpu_total,balloon,vcpu,interface,block",
        ),
        ("VMTELEMETRY_INSIGHTS_LEARNING_SAMPLES", "5"),
    ];
    let app = spawn_collecting(
        "qemu:///system",
        &influx,
        &[&SETTINGS[..], &settings].concat(),
    )
    .await;
    let path = format!("/api/telemetry/insights/{}", guest.name);
    // The CPU and disk workloads' own signals are moving (the network's ARP requests are too
    // sparse for every interval); a workload rests between bursts, so a cycle may catch it idle.
    let moving = ["cpu_percent", "disk_write_bytes_per_sec", "disk_write_iops"];
    let vm = wait_for(
        "the guest's CPU scored, and its CPU and disk moving",
        Duration::from_secs(60),
        || async {
            let (_, vm) = app.get(&path).await;
            let signals = vm["signals"].as_array()?;
            let is_moving = |name: &str| {
                signals
                    .iter()
                    .any(|s| s["signal"] == name && s["value"].as_f64().is_some_and(|v| v > 0.0))
            };
            (signals.first()?["score"].is_number() && moving.iter().all(|m| is_moving(m)))
                .then_some(vm)
        },
    )
    .await;
    // Every signal, from real counters.
    let signals = vm["signals"].as_array().unwrap();
    let value = |name: &str| {
        let signal = signals.iter().find(|s| s["signal"] == name).unwrap();
        signal["value"]
            .as_f64()
            .unwrap_or_else(|| panic!("{name} absent: {vm}"))
    };
    for signal in signals {
        let name = signal["signal"].as_str().unwrap();
        assert!(value(name) >= 0.0, "{name}: {vm}");
        if let Some(score) = signal["score"].as_f64() {
            assert!((0.0..=1.0).contains(&score), "{name}: {vm}");
        }
    }
    for moving in moving {
        assert!(value(moving) > 0.0, "{moving}: {vm}");
    }
    let fields = wait_for(
        "every score in InfluxDB",
        Duration::from_secs(15),
        || async {
            let fields = influx.field_types("vm_anomalies").await;
            (fields.len() == 16 + 3).then_some(fields)
        },
    )
    .await;
    assert!(
        fields.values().all(|t| t == "float" || t == "integer"),
        "{fields:?}"
    );
    balloon_at_its_own_cadence(&guest, &influx, &settings).await;
}

/// The same guest, its balloon read every third cycle: its memory signals come from those reads
/// only, the rates over their own span, and between them the guest's memory in use is absent,
/// never the seed's measure (the balloon's size: 100 % of this guest).
async fn balloon_at_its_own_cadence(guest: &Guest, influx: &Influx, settings: &[(&str, &str)]) {
    let slow = [("VMTELEMETRY_STATS_GROUP_INTERVALS__BALLOON", "3")];
    let app = spawn_collecting(
        "qemu:///system",
        influx,
        &[&SETTINGS[..], settings, &slow].concat(),
    )
    .await;
    let path = format!("/api/telemetry/insights/{}", guest.name);
    let (mut memory, mut swap_rates) = (Vec::new(), 0);
    // 30 s: ten balloon reads.
    for polls in 0.. {
        if memory.len() >= 4 && swap_rates >= 2 {
            break;
        }
        let (_, vm) = app.get(&path).await;
        let value = |name: &str| {
            let signals = vm["signals"].as_array()?;
            let signal = signals.iter().find(|s| s["signal"] == name)?;
            signal["value"].as_f64()
        };
        memory.extend(value("memory_used_percent"));
        swap_rates += usize::from(value("swap_in_kb_per_sec").is_some());
        assert!(
            polls < 100,
            "memory {memory:?}, swap rates {swap_rates}: {vm}"
        );
        actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(memory.iter().all(|m| *m < 99.0), "{memory:?}");
}
