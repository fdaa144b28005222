//! `vmtelemetry replay`, the real binary, over history the real service wrote to the real
//! InfluxDB from a test-driver node: the same VMs as the live API, with what they have and the
//! same resources forecast, filtered by host and name, as JSON and as a table; bad arguments
//! exit 2. And a real guest's filesystems, from the `vm_guest_fs` its agent's answers became
//! (tests/api/guest_agent.rs' guest: no boot of its own).

use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{TestApp, TestDomain, collecting, wait_for};
use crate::support::DiesWithTest;
use crate::support::settings::influx_url;

/// The binary's exit code, standard output and standard error.
async fn replay(db: &str, api: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let (db, api) = (db.to_owned(), api.to_owned());
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    actix_web::rt::task::spawn_blocking(move || {
        let output = Command::new(env!("CARGO_BIN_EXE_vmtelemetry"))
            .arg("replay")
            .args(&args)
            .env("VMTELEMETRY_INFLUX_URL", influx_url())
            .env("VMTELEMETRY_INFLUX_API", api)
            .env("VMTELEMETRY_INFLUX_DB", db)
            .dies_with_test()
            .output()
            .expect("the binary runs");
        let text = |bytes: Vec<u8>| String::from_utf8_lossy(&bytes).into_owned();
        (
            output.status.code(),
            text(output.stdout),
            text(output.stderr),
        )
    })
    .await
    .expect("the replay's thread")
}

/// (name, cpu_count, memory_max_kb, resources forecast) of every VM, by name.
fn summary(body: &Value) -> Vec<(String, u64, u64, Vec<String>)> {
    let mut vms: Vec<_> = body["vms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|vm| {
            let resources = vm["forecasts"].as_array().unwrap().iter();
            let resources = resources.map(|f| f["resource"].as_str().unwrap().to_owned());
            (
                vm["name"].as_str().unwrap().to_owned(),
                vm["cpu_count"].as_u64().unwrap(),
                vm["memory_max_kb"].as_u64().unwrap(),
                resources.collect(),
            )
        })
        .collect();
    vms.sort();
    vms
}

#[actix_web::test]
async fn replay_reads_back_what_the_service_saw() {
    let mut domains: Vec<TestDomain> = [1, 2, 3]
        .into_iter()
        .map(|n| TestDomain::new(&format!("rp-{n}"), 1, n))
        .collect();
    domains.push(TestDomain::new("other", 1, 4));
    let settings = [
        ("VMTELEMETRY_INSIGHTS", "true"),
        ("VMTELEMETRY_POLL_INTERVAL", "1"),
    ];
    let (app, influx, _node) = collecting(&domains, &settings).await;
    let count = "SELECT COUNT(cputime_ns) FROM vm_metrics GROUP BY uuid";
    influx
        .rows_when(
            "three points of every VM",
            Duration::from_secs(20),
            count,
            |rows| rows.len() == 4 && rows.iter().all(|r| r["count"].as_u64() >= Some(3)),
        )
        .await;
    let live = wait_for("every VM live", Duration::from_secs(10), || async {
        let (_, body) = app.get("/api/telemetry/recommendations").await;
        (body["fleet"]["vms"] == json!(4)).then_some(body)
    })
    .await;

    let (code, stdout, stderr) = replay(&influx.db, "v1", &["--start", "-10m", "--json"]).await;
    assert_eq!(code, Some(0), "{stderr}");
    let replayed: Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(summary(&replayed), summary(&live), "{replayed}");
    assert_eq!(replayed["fleet"]["vms"], json!(4));

    let (_, stdout, _) = replay(
        &influx.db,
        "v1",
        &["--start", "-10m", "--json", "--name", "rp-*"],
    )
    .await;
    let names: Vec<String> = summary(&serde_json::from_str(&stdout).unwrap())
        .into_iter()
        .map(|vm| vm.0)
        .collect();
    assert_eq!(names, ["rp-1", "rp-2", "rp-3"]);
    let (_, stdout, _) = replay(
        &influx.db,
        "v1",
        &["--start", "-10m", "--json", "--host", "elsewhere"],
    )
    .await;
    assert_eq!(
        serde_json::from_str::<Value>(&stdout).unwrap()["fleet"]["vms"],
        json!(0)
    );
    let (code, table, _) = replay(&influx.db, "v1", &["--start", "-10m"]).await;
    assert_eq!(code, Some(0));
    assert!(table.starts_with("HOST"), "{table}");
    assert_eq!(
        table.lines().count(),
        6,
        "a header, four VMs, the fleet: {table}"
    );
    assert!(
        table.contains("rp-2") && table.contains("fleet: 4 VMs"),
        "{table}"
    );

    for (api, args, named) in [
        ("v1", ["--start", "yesterday"], "yesterday"),
        ("v1", ["--start", "now"], "not after the start"),
        ("v3", ["--start", "-1h"], "InfluxQL"),
    ] {
        let (code, _, stderr) = replay(&influx.db, api, &args).await;
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(named), "{args:?}: {stderr}");
    }
}

/// The replay of what the service `app` wrote to `db` forecasts the guest `name`'s filesystems
/// (`fs:<mountpoint>`) as the live service does: the same ones, at the same levels.
pub async fn forecasts_guest_filesystems_like_live(app: &TestApp, db: &str, name: &str) {
    let filesystems = |body: &Value| -> Vec<(String, f64, f64)> {
        let vm = body["vms"]
            .as_array()
            .unwrap()
            .iter()
            .find(|vm| vm["name"] == name);
        let forecasts = vm.map(|vm| vm["forecasts"].as_array().unwrap().clone());
        (forecasts.unwrap_or_default().iter())
            .filter(|f| f["resource"].as_str().unwrap().starts_with("fs:"))
            .map(|f| {
                let resource = f["resource"].as_str().unwrap().to_owned();
                (
                    resource,
                    f["used"].as_f64().unwrap(),
                    f["capacity"].as_f64().unwrap(),
                )
            })
            .collect()
    };
    let (_, live) = app.get("/api/telemetry/recommendations").await;
    let live = filesystems(&live);
    assert!(!live.is_empty(), "no filesystem forecast live");
    let args = ["--start", "-10m", "--json", "--name", name];
    let (code, stdout, stderr) = replay(db, "v1", &args).await;
    assert_eq!(code, Some(0), "{stderr}");
    let replayed: Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(filesystems(&replayed), live, "{replayed}");
}
