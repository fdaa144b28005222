//! A real QEMU guest through `qemu:///system`: its CPU time grows in what lands in InfluxDB, and
//! it disappears cleanly when destroyed.

use std::process::Command;
use std::time::Duration;

use serde_json::json;

use crate::helpers::{Influx, spawn_app, wait_for};

/// A transient guest that boots nothing: firmware only, so it needs no disk or kernel.
struct Guest {
    name: String,
}

impl Guest {
    fn start(name: &str) -> Self {
        // KVM where the machine offers it, else QEMU's TCG emulation.
        let domain_type = if std::path::Path::new("/dev/kvm").exists() {
            "kvm"
        } else {
            "qemu"
        };
        let xml = format!(
            "<domain type='{domain_type}'><name>{name}</name>\
             <memory unit='MiB'>48</memory><vcpu>1</vcpu>\
             <os><type arch='x86_64' machine='pc'>hvm</type></os>\
             <devices><controller type='usb' model='none'/><memballoon model='none'/></devices>\
             </domain>"
        );
        let file = tempfile::Builder::new().suffix(".xml").tempfile().unwrap();
        std::fs::write(file.path(), xml).unwrap();
        virsh(&["create", file.path().to_str().unwrap()]);
        Guest {
            name: name.to_owned(),
        }
    }

    fn destroy(&self) {
        virsh(&["destroy", &self.name]);
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        // Best effort after a failed assertion; `destroy` already ran on the happy path.
        let _ = Command::new("virsh")
            .args(["-c", "qemu:///system", "destroy", &self.name])
            .output();
    }
}

fn virsh(args: &[&str]) {
    let output = Command::new("virsh")
        .args(["-c", "qemu:///system"])
        .args(args)
        .output()
        .expect("virsh runs");
    assert!(
        output.status.success(),
        "virsh {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[actix_web::test]
async fn a_real_guest_s_cpu_time_grows_and_it_vanishes_cleanly_when_destroyed() {
    let name = format!("vmt-test-guest-{}", std::process::id());
    let guest = Guest::start(&name);
    let influx = Influx::new_database().await;
    let app = spawn_app(&[
        ("VMTELEMETRY_LIBVIRT_URI", "qemu:///system"),
        ("VMTELEMETRY_INFLUX_DB", &influx.db),
        ("VMTELEMETRY_POLL_INTERVAL", "0.5"),
    ])
    .await;
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
