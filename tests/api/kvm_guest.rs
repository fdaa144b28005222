//! A real QEMU guest through `qemu:///system`: its CPU time grows in what lands in InfluxDB, it
//! disappears cleanly when destroyed, one whose QEMU stops answering does not stop its host, and
//! its disk is read even when the service can start no thread for the stats calls.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{QEMU_SYSTEM, collecting_from, wait_for};
use crate::support::browser::{host_row, on_page};
use crate::support::guest::{Guest, only_guests};
use crate::support::task_limit::{ShortHanded, assert_short_handed, lift_and_see_threads_again};

#[actix_web::test]
async fn a_real_guest_s_cpu_time_grows_and_it_vanishes_cleanly_when_destroyed() {
    let name = format!("vmt-test-guest-{}", std::process::id());
    let guest = Guest::firmware(&name);
    let (app, influx) = collecting_from(QEMU_SYSTEM, &[("VMTELEMETRY_POLL_INTERVAL", "0.5")]).await;
    let query = format!(
        "SELECT cputime_ns, state, cpu_count, memory_max_kb FROM vm_metrics WHERE \"name\" = '{name}'"
    );
    let rows = wait_for(
        "the guest's CPU time to grow",
        Duration::from_secs(30),
        || async {
            let rows = influx.rows(&query).await;
            let first = rows.first()?["cputime_ns"].as_u64()?;
            let last = rows.last()?["cputime_ns"].as_u64()?;
            (rows.len() >= 3 && last > first).then_some(rows)
        },
    )
    .await;
    for row in &rows {
        assert_eq!(row["state"], json!("running"));
        assert_eq!(row["cpu_count"], json!(1));
        assert_eq!(row["memory_max_kb"], json!(48 * 1024));
    }
    let cputimes: Vec<u64> = rows
        .iter()
        .map(|r| r["cputime_ns"].as_u64().unwrap())
        .collect();
    assert!(cputimes.windows(2).all(|w| w[0] <= w[1]), "{cputimes:?}");

    let collections = |status: &serde_json::Value| status["total_collections"].as_u64().unwrap();
    let before = collections(&app.status().await);
    guest.destroy();
    // Two more cycles and an empty queue later, whatever was read before the destroy is written.
    wait_for(
        "two cycles after the destroy",
        Duration::from_secs(10),
        || async {
            let status = app.status().await;
            (collections(&status) >= before + 2 && status["queue_depth"] == json!(0)).then_some(())
        },
    )
    .await;
    let count_after_destroy = influx.rows(&query).await.len();
    actix_rt::time::sleep(Duration::from_millis(1500)).await;
    // A transient guest is gone once destroyed: no more points, and that is not an error.
    assert_eq!(influx.rows(&query).await.len(), count_after_destroy);
    let status = app.status().await;
    assert_eq!(status["hosts"][0]["total_errors"], json!(0), "{status}");
}

#[actix_web::test]
async fn a_guest_whose_qemu_stops_answering_does_not_stop_its_host() {
    let pid = std::process::id();
    let (stopped_name, live_name) = (
        format!("vmt-test-stopped-{pid}"),
        format!("vmt-test-live-{pid}"),
    );
    let stopped_guest = Guest::firmware_with_disk(&stopped_name);
    let _live_guest = Guest::firmware_with_disk(&live_name);
    let include = format!("{stopped_name},{live_name}");
    let mut env = only_guests(&include, "0.5", "block");
    env.push(("VMTELEMETRY_LIBVIRT_TIMEOUT", "3"));
    let (app, influx) = collecting_from(QEMU_SYSTEM, &env).await;
    let count = |measurement: &'static str, field: &'static str, name: String| {
        let influx = &influx;
        async move {
            let query = format!("SELECT {field} FROM {measurement} WHERE \"name\" = '{name}'");
            influx.rows(&query).await.len()
        }
    };
    let disk_rows = |name: &str| count("vm_disk", "read_bytes", name.to_owned());
    let metric_rows = |name: &str| count("vm_metrics", "cputime_ns", name.to_owned());
    wait_for("both guests' disks", Duration::from_secs(30), || async {
        (disk_rows(&stopped_name).await > 0 && disk_rows(&live_name).await > 0).then_some(())
    })
    .await;

    let stopped = stopped_guest.stop_qemu();
    let host = wait_for(
        "the stats call reading the stopped guest to be left behind",
        Duration::from_secs(30),
        || async {
            let host = app.status().await["hosts"][0].clone();
            (host["stats_errors"] == json!(1)).then_some(host)
        },
    )
    .await;
    let error = host["last_stats_error"].as_str().unwrap();
    assert!(error.contains("left behind"), "{host}");
    assert_eq!(host["stats_calls_left_behind"], json!(1), "{host}");
    let collections = host["total_collections"].as_u64().unwrap();
    let (metrics_before, live_disk_before) = (
        metric_rows(&stopped_name).await,
        disk_rows(&live_name).await,
    );
    // The host goes on: every cycle, the seed's fields of both, and the other guest's disk.
    wait_for("collection to go on", Duration::from_secs(30), || async {
        let host = app.status().await["hosts"][0].clone();
        (host["total_collections"].as_u64()? >= collections + 6
            && metric_rows(&stopped_name).await >= metrics_before + 4
            && disk_rows(&live_name).await >= live_disk_before + 4)
            .then_some(())
    })
    .await;
    let host = app.status().await["hosts"][0].clone();
    assert_eq!(host["connection"], json!("connected"), "{host}");
    assert_eq!(host["total_errors"], json!(0), "{host}");
    assert!(host["stuck_call_since"].is_null(), "{host}");
    // Later calls skip its monitor (NOWAIT: the call left behind holds its job).
    assert_eq!(host["stats_errors"], json!(1), "{host}");
    assert_eq!(host["stats_calls_left_behind"], json!(1), "{host}");
    // The dashboard shows it on the host's row.
    let error = host["last_stats_error"].as_str().unwrap().to_owned();
    on_page(app.address.clone(), move |tab| {
        let row = host_row(
            tab,
            "qemu:///system",
            "row.stats.endsWith(' · 1 left behind')",
        );
        assert!(row["stats"].as_str().unwrap().starts_with("1 of "), "{row}");
        assert_eq!(row["stats-error"], json!(error), "{row}");
        assert_eq!(row["state"], json!("connected"), "{row}");
        assert_eq!(row["vms"], json!("2"), "{row}");
    })
    .await;

    // Once it answers again, so does the call left behind, and its disk is read again.
    drop(stopped);
    let stopped_disk_before = disk_rows(&stopped_name).await;
    wait_for(
        "the resumed guest's disk",
        Duration::from_secs(30),
        || async { (disk_rows(&stopped_name).await >= stopped_disk_before + 3).then_some(()) },
    )
    .await;
    wait_for(
        "the call left behind to return",
        Duration::from_secs(30),
        || async {
            let host = app.status().await["hosts"][0].clone();
            (host["stats_calls_left_behind"] == json!(0)).then_some(())
        },
    )
    .await;
    let host = app.status().await["hosts"][0].clone();
    assert_eq!(host["stats_errors"], json!(1), "{host}");
    assert_eq!(host["total_errors"], json!(0), "{host}");
}

#[actix_web::test]
async fn with_no_thread_to_spare_a_guests_disk_is_read_on_its_hosts_own_thread() {
    let name = format!("vmt-test-spare-{}", std::process::id());
    let _guest = Guest::firmware_with_disk(&name);
    // libvirtd's socket by a path that appears once the service can start no thread but a
    // host's own: until then, the host cannot connect.
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("sock");
    let uri = format!("qemu+unix:///system?socket={}", socket.display());
    // One thread more: the one a host's connection attempt starts to own the connection.
    let limited = ShortHanded::collecting(&uri, 1, &only_guests(&name, "0.5", "block")).await;
    let (service, influx) = (&limited.service, &limited.influx);
    std::os::unix::fs::symlink("/run/libvirt/libvirt-sock-ro", &socket).unwrap();

    let query = format!("SELECT read_bytes FROM vm_disk WHERE \"name\" = '{name}'");
    let disk_rows = || async { influx.rows(&query).await.len() };
    wait_for(
        "the guest's disk, read",
        Duration::from_secs(30),
        || async { (disk_rows().await >= 3).then_some(()) },
    )
    .await;
    let status = service.status().expect("the service answers");
    let host = &status["hosts"][0];
    assert_eq!(host["stats_errors"], json!(0), "{host}");
    assert_eq!(host["stats_calls_left_behind"], json!(0), "{host}");
    // Read on the host's own thread: the crew could start none.
    assert_short_handed(service, &uri);

    // Threads again once they can be started, and the disk still read.
    lift_and_see_threads_again(&limited.cgroup, service, &uri).await;
    let before = disk_rows().await;
    wait_for("more of the disk", Duration::from_secs(30), || async {
        (disk_rows().await >= before + 2).then_some(())
    })
    .await;
    let status = service.status().expect("the service answers");
    assert_eq!(status["hosts"][0]["stats_errors"], json!(0), "{status}");
}
