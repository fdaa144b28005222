//! A real booted guest (Debian's cloud kernel and busybox, built by `tests/guest/build-guest.sh`)
//! through `qemu:///system`: its CPU, disk, network and balloon counters move for real, and
//! `virsh setmem` gives a known memory change to check `vm_features` against end to end.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::{QEMU_SYSTEM, collecting_from, wait_for};
use crate::support::guest::{Guest, MEMORY_KIB, virsh};

fn counter(stats: &BTreeMap<String, String>, key: &str) -> u64 {
    stats
        .get(key)
        .unwrap_or_else(|| panic!("no {key} in {stats:?}"))
        .parse()
        .unwrap_or_else(|e| panic!("{key}: {e}"))
}

#[test]
fn the_guest_boots_and_every_counter_moves() {
    let guest = Guest::start("cpu,mem,disk,net");
    let first = guest.domstats();
    assert_eq!(first.get("block.0.name").map(String::as_str), Some("vda"));
    assert_eq!(
        first.get("net.0.name").map(String::as_str),
        Some(guest.tap())
    );
    assert_eq!(counter(&first, "balloon.current"), MEMORY_KIB);
    let moving = ["cpu.time", "block.0.wr.bytes", "net.0.tx.bytes"];
    // The workloads run every second or so: a few seconds show each counter grow.
    let deadline = Instant::now() + Duration::from_secs(30);
    let last = loop {
        std::thread::sleep(Duration::from_secs(1));
        let now = guest.domstats();
        let grew = |key: &str| counter(&now, key) > counter(&first, key);
        // The driver reports its statistics every `period` seconds, the first a little late.
        let balloon = ["balloon.rss", "balloon.available"]
            .iter()
            .all(|key| now.contains_key(*key));
        if moving.iter().all(|key| grew(key)) && balloon {
            break now;
        }
        assert!(
            Instant::now() < deadline,
            "counters did not all move in 30 s:\nfirst {first:?}\nnow {now:?}\nconsole:\n{}",
            guest.console_text()
        );
    };
    assert!(counter(&last, "balloon.rss") > 0, "{last:?}");
    assert!(counter(&last, "balloon.available") > 0, "{last:?}");
}

/// `(time_ns, field values)` of a vm_metrics or vm_features query, in time order.
fn series(rows: &[BTreeMap<String, Value>], fields: &[&str]) -> Vec<(i64, Vec<f64>)> {
    rows.iter()
        .map(|row| {
            let time = row["time"].as_i64().expect("epoch=ns times");
            let values = fields
                .iter()
                .map(|f| row[*f].as_f64().unwrap_or_else(|| panic!("{f} in {row:?}")))
                .collect();
            (time, values)
        })
        .collect()
}

fn close(actual: f64, expected: f64) -> bool {
    (actual - expected).abs() <= 1e-6 * expected.abs().max(actual.abs()) + 1e-12
}

#[actix_web::test]
async fn a_known_memory_change_shows_in_vm_features() {
    // Memory churn only: a busy emulated CPU would slow everyone else's tests.
    let guest = Guest::start("mem");
    let (_app, influx) = collecting_from(QEMU_SYSTEM, &[("VMTELEMETRY_POLL_INTERVAL", "1")]).await;
    let name = guest.name.clone();
    let metrics_query =
        format!("SELECT memory_used_kb FROM vm_metrics WHERE \"name\" = '{name}' ORDER BY time");
    let features_query = format!(
        "SELECT memory_rate_kb_per_sec, memory_angle_deg FROM vm_features \
         WHERE \"name\" = '{name}' ORDER BY time"
    );
    let old = MEMORY_KIB as f64;
    let new = 100.0 * 1024.0;
    wait_for(
        "two samples before the change",
        Duration::from_secs(20),
        || async {
            let metrics = series(&influx.rows(&metrics_query).await, &["memory_used_kb"]);
            (metrics.len() >= 2).then_some(())
        },
    )
    .await;

    let target = name.clone();
    actix_rt::task::spawn_blocking(move || virsh(&["setmem", &target, "100M", "--live"]))
        .await
        .expect("virsh setmem ran");

    // Done once a sample after the one that first shows the new size is in, with every
    // sample's features (both lines of a sample travel in one batch, but check anyway).
    let (metrics, features) = wait_for(
        "the new memory size and the features of every sample",
        Duration::from_secs(30),
        || async {
            let metrics = series(&influx.rows(&metrics_query).await, &["memory_used_kb"]);
            let features = series(
                &influx.rows(&features_query).await,
                &["memory_rate_kb_per_sec", "memory_angle_deg"],
            );
            let changed = metrics.iter().position(|(_, v)| v[0] == new)?;
            let covered = metrics[1..]
                .iter()
                .all(|(t, _)| features.iter().any(|(ft, _)| ft == t));
            (changed + 1 < metrics.len() && covered).then_some((metrics, features))
        },
    )
    .await;

    let used: Vec<f64> = metrics.iter().map(|(_, v)| v[0]).collect();
    assert_eq!(used[0], old, "{used:?}");
    assert_eq!(*used.last().unwrap(), new, "{used:?}");
    // The balloon may take a sample or two to get there, but only ever downwards.
    assert!(used.windows(2).all(|w| w[1] <= w[0]), "{used:?}");
    // The service started after the guest: its first sample has nothing to compare with.
    assert!(
        features.iter().all(|(t, _)| *t > metrics[0].0),
        "{features:?}"
    );

    let mut falls = 0;
    for pair in metrics.windows(2) {
        let ((t0, m0), (t1, m1)) = ((pair[0].0, pair[0].1[0]), (pair[1].0, pair[1].1[0]));
        let rate = (m1 - m0) / ((t1 - t0) as f64 / 1e9);
        let angle = (rate + 1e-12).atan().to_degrees();
        let (_, got) = features
            .iter()
            .find(|(t, _)| *t == t1)
            .unwrap_or_else(|| panic!("no vm_features at {t1}: {features:?}"));
        assert!(
            close(got[0], rate),
            "rate at {t1}: {} written, ({m1} - {m0}) / {} s = {rate} expected",
            got[0],
            (t1 - t0) as f64 / 1e9
        );
        assert!(
            close(got[1], angle),
            "angle at {t1}: {} written, {angle} expected",
            got[1]
        );
        if m1 < m0 {
            assert!(rate < 0.0 && got[1] < 0.0, "{rate} {got:?}");
            falls += 1;
        }
    }
    assert!(falls >= 1, "{used:?}");
}
