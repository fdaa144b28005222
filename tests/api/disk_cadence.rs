//! A real guest's disk: its counters every block cycle, disk by disk, and its sizes only at their
//! own cadence (`block_sizes`), with the bulk call; the fields written are the same set as the
//! bulk call's, and `/metrics` keeps the last sizes read in between.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::json;

use crate::helpers::{Influx, TestApp, spawn_collecting, wait_for};
use crate::support::guest::{Guest, only_guests};
use crate::support::prometheus::{get_text, parse};

const SIZES: [&str; 3] = ["capacity_bytes", "allocation_bytes", "physical_bytes"];
/// Derived from the sample before: none on the first.
const RATES: [&str; 4] = [
    "read_bytes_per_sec",
    "write_bytes_per_sec",
    "read_iops",
    "write_iops",
];

/// A firmware guest with a disk, and the service reading only it every 0.5 s: `groups`, one of
/// them (or the disks' sizes) at its own `(setting, interval)`.
pub async fn disk_guest_read(
    name: &str,
    groups: &str,
    own: (&str, &str),
) -> (Guest, Influx, TestApp) {
    let guest = Guest::firmware_with_disk(name);
    let influx = Influx::new_database().await;
    let mut env = only_guests(name, "0.5", groups);
    env.push(own);
    let app = spawn_collecting("qemu:///system", &influx, &env).await;
    (guest, influx, app)
}

#[actix_web::test]
async fn a_disks_counters_come_every_cycle_and_its_sizes_at_their_own_cadence() {
    let name = format!("vmt-disk-cadence-{}", std::process::id());
    // Polls of 0.5 s, the block group every poll, its sizes every 4.
    let sizes = ("VMTELEMETRY_STATS_GROUP_INTERVALS__BLOCK_SIZES", "2");
    let (_guest, influx, app) = disk_guest_read(&name, "block", sizes).await;
    let times = |and: &'static str| {
        let (influx, name) = (&influx, &name);
        async move {
            let q = format!("SELECT * FROM vm_metrics WHERE \"name\" = '{name}' {and}");
            let rows = influx.rows(&q).await;
            rows.iter()
                .map(|r| r["time"].as_i64().unwrap())
                .collect::<Vec<_>>()
        }
    };
    let cycles = wait_for("14 cycles", Duration::from_secs(60), || async {
        let cycles = times("").await;
        (cycles.len() >= 14).then_some(cycles)
    })
    .await;
    // Cycles 0 to n - 1 wrote their lines before cycle n read its seed's (one batch a cycle).
    let n = cycles.len() - 1;
    let q = format!(
        "SELECT * FROM vm_disk WHERE \"name\" = '{name}' AND time < {} ORDER BY time",
        cycles[n]
    );
    let rows = influx.rows(&q).await;
    assert_eq!(rows.len(), n, "the counters every cycle: {rows:?}");
    // The counters libvirt gives, the sizes at their cadence.
    let written = |row: &std::collections::BTreeMap<String, serde_json::Value>| {
        let not = ["time", "VMID", "host", "name", "uuid", "device"];
        row.iter()
            .filter(|(key, value)| !value.is_null() && !not.contains(&key.as_str()))
            .filter(|(key, _)| !RATES.contains(&key.as_str()))
            .map(|(key, _)| key.clone())
            .collect::<BTreeSet<String>>()
    };
    let sized: Vec<usize> = (0..n)
        .filter(|&i| rows[i]["capacity_bytes"].is_number())
        .collect();
    // Cycles 0, 4, 8, …: the first (its disks not known yet) and each the sizes are due in.
    let expected: Vec<usize> = (0..n).step_by(4).collect();
    assert_eq!(sized, expected, "{rows:?}");
    let with_sizes = written(&rows[0]);
    assert!(
        SIZES.iter().all(|f| with_sizes.contains(*f)),
        "{with_sizes:?}"
    );
    let counters: BTreeSet<String> = with_sizes
        .iter()
        .filter(|f| !SIZES.contains(&f.as_str()))
        .cloned()
        .collect();
    assert!(counters.contains("read_time_ns") && counters.contains("write_requests"));
    // Between: the same counters, disk by disk, and no size.
    for (i, row) in rows.iter().enumerate() {
        let expected = if sized.contains(&i) {
            &with_sizes
        } else {
            &counters
        };
        assert_eq!(&written(row), expected, "cycle {i}: {row:?}");
        let rates = RATES.iter().all(|r| row[*r].is_number());
        assert_eq!(rates, i > 0, "cycle {i}: {row:?}");
    }
    let reads: Vec<u64> = rows
        .iter()
        .map(|r| r["read_requests"].as_u64().unwrap())
        .collect();
    assert!(reads.windows(2).all(|w| w[0] <= w[1]), "{reads:?}");

    // /metrics keeps the last sizes read between their cycles.
    for _ in 0..4 {
        let url = format!("{}/metrics", app.address);
        let (text, _) = get_text(&app.client, &url, "text/plain").await;
        let capacity = parse(&text)
            .into_iter()
            .find(|s| s.name.ends_with("capacity_bytes") && s.labels.get("name") == Some(&name));
        assert!(capacity.is_some_and(|s| s.value > 0.0), "no capacity");
        actix_rt::time::sleep(Duration::from_millis(250)).await;
    }
    let status = app.status().await;
    let host = &status["hosts"][0];
    assert_eq!(host["stats_errors"], json!(0), "{host}");
    assert_eq!(host["total_errors"], json!(0), "{host}");
}
