//! A slower stats group's rates stay in the VM list between its reads: a real guest's
//! `cpu_total` group read every poll and its `block` group every fourth, its disk rates are in
//! the list on every poll in between, as the last read gave them, never blank.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::disk_cadence::disk_guest_read;
use crate::helpers::{TestApp, wait_for};

const RATES: [&str; 2] = ["disk_read_bytes_per_sec", "disk_write_bytes_per_sec"];

/// The guest's row in the VM list: its sample's time and its disk rates.
async fn listed(app: &TestApp, name: &str) -> Option<(String, Vec<Value>)> {
    let (_, body) = app.get(&format!("/api/telemetry/vms?name={name}")).await;
    let vm = body["vms"].as_array()?.first()?.clone();
    let time = vm["timestamp"].as_str()?.to_owned();
    Some((time, RATES.iter().map(|r| vm[*r].clone()).collect()))
}

#[actix_web::test]
async fn a_slower_groups_rates_stay_in_the_vm_list_between_its_reads() {
    let name = format!("vmt-carried-{}", std::process::id());
    // Polls of 0.5 s, the CPU every poll, the disks every 4.
    let block = ("VMTELEMETRY_STATS_GROUP_INTERVALS__BLOCK", "2");
    let (_guest, influx, app) = disk_guest_read(&name, "cpu_total,block", block).await;
    wait_for(
        "the disk's first rates",
        Duration::from_secs(30),
        || async {
            let (_, rates) = listed(&app, &name).await?;
            rates.iter().all(Value::is_number).then_some(())
        },
    )
    .await;
    // Every sample of the next 6 s (12 polls, 3 block reads) as the list shows it.
    let mut seen: Vec<(String, Vec<Value>)> = Vec::new();
    let end = Instant::now() + Duration::from_secs(6);
    while Instant::now() < end {
        let row = listed(&app, &name).await.expect("the guest listed");
        if seen.last().is_none_or(|(time, _)| *time != row.0) {
            seen.push(row);
        }
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(seen.len() >= 8, "samples of 6 s at 0.5 s: {seen:?}");
    for (time, rates) in &seen {
        assert!(rates.iter().all(Value::is_number), "at {time}: {rates:?}");
    }
    // The block group really came every fourth poll only: a row of vm_disk a read.
    let count = |measurement: &'static str| {
        let (influx, name) = (&influx, &name);
        async move {
            let q = format!("SELECT * FROM \"{measurement}\" WHERE \"name\" = '{name}'");
            influx.rows(&q).await.len()
        }
    };
    let (cycles, reads) = (count("vm_metrics").await, count("vm_disk").await);
    assert!(
        reads >= 3 && reads * 3 <= cycles,
        "{reads} block reads in {cycles} cycles"
    );
}
