//! `/metrics` against Debian's prometheus-libvirt-exporter on a real booted guest with a virtio
//! disk and NIC: the families the test driver cannot give (`libvirt_domain_block_stats_*`,
//! `libvirt_domain_interface_stats_*`), with their labels and values.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::helpers::{TestApp, spawn_app, wait_for};
use crate::support::guest::Guest;
use crate::support::prometheus::{
    Sample, assert_promtool_clean, exporter, get_text, matching, parse, scrape,
};
use crate::support::run;

/// A Linux bridge of the test's own, for a guest's NIC (the exporter's `source_bridge`).
struct HostBridge(String);

impl HostBridge {
    fn new() -> Self {
        let name = format!("vmtbr{}", std::process::id());
        // One left by a killed run of a process with this pid goes first.
        let _ = Command::new("ip")
            .args(["link", "delete", name.as_str()])
            .output();
        let add = ["link", "add", "name", name.as_str(), "type", "bridge"];
        run(Command::new("ip").args(add));
        let bridge = HostBridge(name);
        run(Command::new("ip").args(["link", "set", bridge.0.as_str(), "up"]));
        bridge
    }
}

impl Drop for HostBridge {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "delete", self.0.as_str()])
            .output();
    }
}

/// How many families named `prefix…` `samples` has for the domain `name`.
fn families(samples: &[Sample], prefix: &str, name: &str) -> usize {
    let of_domain = samples.iter().filter(|s| {
        s.name.starts_with(prefix) && s.labels.get("domain").map(String::as_str) == Some(name)
    });
    of_domain.map(|s| &s.name).collect::<BTreeSet<_>>().len()
}

/// Every family Debian's exporter gives for a disk, and for a NIC.
fn whole(samples: &[Sample], name: &str) -> bool {
    families(samples, "libvirt_domain_block_stats_", name) == 4
        && families(samples, "libvirt_domain_interface_stats_", name) == 8
}

/// A scrape of the service with every family of the guest `name`, its samples all read after
/// `since` (their age below the time since).
async fn scrape_read_after(app: &TestApp, name: &str, since: Instant) -> Vec<Sample> {
    let ages = [
        "vmtelemetry_vm_sample_age_seconds",
        "vmtelemetry_vm_stats_sample_age_seconds",
    ];
    wait_for(
        "the guest's fresh samples in /metrics",
        Duration::from_secs(30),
        || async {
            let asked = since.elapsed().as_secs_f64();
            let ours = scrape(&app.client, &app.address).await;
            let age = |family: &str| Some(ours.iter().find(|s| s.name == family)?.value);
            let fresh = ages
                .into_iter()
                .all(|family| age(family).is_some_and(|a| a < asked));
            (fresh && whole(&ours, name)).then_some(ours)
        },
    )
    .await
}

#[actix_web::test]
async fn on_a_real_guest_every_family_label_set_and_value_of_the_exporter_is_given() {
    let bridge = HostBridge::new();
    let guest = Guest::options("disk,net").bridge(&bridge.0).start();
    let name = guest.name.as_str();
    // Prometheus only (no InfluxDB), this guest only (other tests' guests come and go).
    let app = spawn_app(&[
        ("VMTELEMETRY_LIBVIRT_URI", "qemu:///system"),
        ("VMTELEMETRY_INFLUX_URL", ""),
        ("VMTELEMETRY_DOMAIN_INCLUDE", name),
        ("VMTELEMETRY_POLL_INTERVAL", "1"),
        ("VMTELEMETRY_STATS_INTERVAL", "1"),
        ("VMTELEMETRY_STATS_GROUPS", "cpu_total,interface,block"),
    ])
    .await;
    let exporter = exporter("qemu:///system");
    let url = format!("{}/metrics", exporter.url);
    let before = scrape_read_after(&app, name, Instant::now()).await;
    // The exporter reads every active domain of the host and stops at the first that fails (a
    // guest of another test going away): until a scrape has all of this guest's.
    let (theirs, read) = wait_for(
        "the exporter's families of the guest",
        Duration::from_secs(30),
        || async {
            let mut response = app.client.get(&url).send().await.ok()?;
            let body = response.body().limit(64 << 20).await.ok()?;
            let theirs = parse(std::str::from_utf8(&body).ok()?);
            whole(&theirs, name).then(|| (theirs, Instant::now()))
        },
    )
    .await;
    let after = scrape_read_after(&app, name, read).await;
    let ours = format!("{}/metrics", app.address);
    assert_promtool_clean(&get_text(&app.client, &ours, "text/plain").await.0);
    let theirs: Vec<&Sample> = theirs
        .iter()
        .filter(|s| s.labels.get("domain").map(String::as_str) == Some(name))
        .collect();
    let disk = theirs
        .iter()
        .find(|s| s.name == "libvirt_domain_block_stats_write_bytes_total")
        .unwrap();
    assert!(
        disk.labels["source_file"].ends_with("/disk.img"),
        "{disk:?}"
    );
    assert_eq!(disk.labels["target_device"], "vda");
    let nic = theirs
        .iter()
        .find(|s| s.name == "libvirt_domain_interface_stats_transmit_bytes_total")
        .unwrap();
    assert_eq!(
        (
            nic.labels["source_bridge"].as_str(),
            nic.labels["target_device"].as_str()
        ),
        (bridge.0.as_str(), guest.tap())
    );
    // Ours read before the exporter's read and after it bracket its value: equal where nothing
    // changed between the reads.
    for sample in theirs {
        let first = matching(&before, sample).unwrap_or_else(|| panic!("not given: {sample:?}"));
        let last = matching(&after, sample).unwrap().value;
        let (low, high) = (first.value.min(last), first.value.max(last));
        assert!(
            low <= sample.value && sample.value <= high,
            "{sample:?}: the service gave {} before and {last} after",
            first.value
        );
    }
}
