//! A real booted guest (Debian's cloud kernel and busybox, built by `tests/guest/build-guest.sh`)
//! through `qemu:///system`: its CPU, disk, network and balloon counters move for real, and
//! `virsh setmem` gives a known memory change to check `vm_features` against end to end.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::{Influx, spawn_app, wait_for};

const MEMORY_KIB: u64 = 160 * 1024;
const MARKER: &str = "VMT-GUEST-UP";
/// TCG boots this kernel in a few seconds; much slack for a loaded machine.
const BOOT_TIMEOUT: Duration = Duration::from_secs(60);

/// The kernel and initramfs, built once per test process (the script's fast path makes later
/// processes cheap) into `$VMT_TEST_STATE/guest`.
fn guest_files() -> &'static (PathBuf, PathBuf) {
    static FILES: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    FILES.get_or_init(|| {
        let state = std::env::var("VMT_TEST_STATE")
            .unwrap_or_else(|_| "/var/tmp/vmtelemetry-test".to_owned());
        let out = Path::new(&state).join("guest");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/guest/build-guest.sh");
        let output = Command::new("bash")
            .arg(script)
            .arg(&out)
            .output()
            .expect("bash runs build-guest.sh");
        assert!(
            output.status.success(),
            "{script} {} failed:\n{}",
            out.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        destroy_orphans();
        (out.join("vmlinuz"), out.join("initramfs.gz"))
    })
}

/// Guests of test processes that were killed before their Drop ran still run (they are
/// transient: destroying them removes them).
fn destroy_orphans() {
    let output = virsh(&["list", "--name"]);
    for name in String::from_utf8_lossy(&output.stdout).lines() {
        let Some(pid) = name
            .strip_prefix("vmt-real-guest-")
            .and_then(|rest| rest.split_once('-'))
            .map(|(pid, _)| pid)
        else {
            continue;
        };
        if !Path::new("/proc").join(pid).exists() {
            let _ = Command::new("timeout")
                .args(["30", "virsh", "-c", "qemu:///system", "destroy", name])
                .output();
        }
    }
}

/// A transient TCG guest running `vmt.work` workloads; destroyed, with its tap and disk, on drop.
pub(crate) struct Guest {
    pub(crate) name: String,
    tap: String,
    console: PathBuf,
    /// Disk, console log and domain XML; removed after the destroy.
    _dir: tempfile::TempDir,
}

impl Guest {
    /// Boots a guest and waits for its init's marker line.
    pub(crate) fn start(work: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let (kernel, initrd) = guest_files();
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let name = format!("vmt-real-guest-{pid}-{n}");
        // Interface names have at most 15 bytes.
        let tap = format!("vmtg{pid}x{n}");
        assert!(tap.len() <= 15, "{tap}");
        let dir = tempfile::Builder::new()
            .prefix("vmt-real-guest-")
            .tempdir()
            .expect("a temporary directory");
        let disk = dir.path().join("disk.img");
        run(Command::new("qemu-img")
            .args(["create", "-q", "-f", "raw"])
            .arg(&disk)
            .arg("8M"));
        let console = dir.path().join("console.log");
        // TCG ('qemu'): this kernel hangs at "Probing EDD" under nested KVM here. The tap is
        // created (and removed) by libvirt itself: no libvirt network, no iptables.
        let xml = format!(
            "<domain type='qemu'><name>{name}</name>\
             <memory unit='KiB'>{MEMORY_KIB}</memory>\
             <currentMemory unit='KiB'>{MEMORY_KIB}</currentMemory><vcpu>1</vcpu>\
             <os><type arch='x86_64' machine='pc'>hvm</type>\
             <kernel>{kernel}</kernel><initrd>{initrd}</initrd>\
             <cmdline>console=ttyS0 edd=off vmt.work={work}</cmdline></os>\
             <on_poweroff>destroy</on_poweroff><on_reboot>destroy</on_reboot>\
             <on_crash>destroy</on_crash>\
             <devices><controller type='usb' model='none'/>\
             <disk type='file' device='disk'><driver name='qemu' type='raw'/>\
             <source file='{disk}'/><target dev='vda' bus='virtio'/></disk>\
             <interface type='ethernet'><target dev='{tap}'/><model type='virtio'/></interface>\
             <serial type='file'><source path='{console}'/><target port='0'/></serial>\
             <memballoon model='virtio'><stats period='1'/></memballoon>\
             </devices></domain>",
            kernel = kernel.display(),
            initrd = initrd.display(),
            disk = disk.display(),
            console = console.display(),
        );
        let xml_path = dir.path().join("domain.xml");
        std::fs::write(&xml_path, xml).expect("domain XML written");
        virsh(&["create", xml_path.to_str().unwrap()]);
        // From here on Drop cleans up, whatever fails next.
        let guest = Guest {
            name,
            tap,
            console,
            _dir: dir,
        };
        guest.wait_up();
        guest
    }

    pub(crate) fn tap(&self) -> &str {
        &self.tap
    }

    /// Powers the guest off and boots it again as the same domain (same UUID, name, disk and
    /// tap): a new QEMU process, so every counter starts again from zero.
    pub(crate) fn power_cycle(&self) {
        let xml = virsh(&["dumpxml", &self.name]);
        let xml_path = self._dir.path().join("domain-again.xml");
        std::fs::write(&xml_path, &xml.stdout).expect("domain XML written");
        virsh(&["destroy", &self.name]);
        let _ = std::fs::remove_file(&self.console);
        virsh(&["create", xml_path.to_str().unwrap()]);
        self.wait_up();
    }

    fn console_text(&self) -> String {
        std::fs::read(&self.console)
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
    }

    fn wait_up(&self) {
        let deadline = Instant::now() + BOOT_TIMEOUT;
        loop {
            let text = self.console_text();
            if let Some(line) = text.lines().find(|l| l.starts_with(MARKER)) {
                assert!(!text.contains("VMT-GUEST-ERROR"), "{text}");
                assert!(
                    line.contains("disk=yes"),
                    "no /dev/vda in the guest:\n{text}"
                );
                return;
            }
            let tail: Vec<&str> = text.lines().rev().take(30).collect();
            assert!(
                Instant::now() < deadline,
                "{} printed no {MARKER} within {BOOT_TIMEOUT:?}; console ends:\n{}",
                self.name,
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// `virsh domstats` of the groups the issue names, as `key -> value`.
    fn domstats(&self) -> BTreeMap<String, String> {
        let output = virsh(&[
            "domstats",
            &self.name,
            "--cpu-total",
            "--balloon",
            "--block",
            "--interface",
        ]);
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| line.trim().split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        // Best effort, also after a failed assertion. libvirt removes the tap on destroy; this
        // covers a libvirt that did not.
        let _ = Command::new("timeout")
            .args(["30", "virsh", "-c", "qemu:///system", "destroy", &self.name])
            .output();
        if Path::new("/sys/class/net").join(&self.tap).exists() {
            let _ = Command::new("ip")
                .args(["link", "delete", &self.tap])
                .output();
        }
    }
}

fn run(command: &mut Command) -> Output {
    let output = command.output().expect("the command runs");
    assert!(
        output.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// A `virsh` command on qemu:///system that must succeed; bounded, so a stuck libvirtd fails the
/// test instead of hanging it.
fn virsh(args: &[&str]) -> Output {
    run(Command::new("timeout")
        .args(["60", "virsh", "-c", "qemu:///system"])
        .args(args))
}

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
    assert_eq!(first.get("net.0.name"), Some(&guest.tap));
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
    let influx = Influx::new_database().await;
    let _app = spawn_app(&[
        ("VMTELEMETRY_LIBVIRT_URI", "qemu:///system"),
        ("VMTELEMETRY_INFLUX_DB", &influx.db),
        ("VMTELEMETRY_POLL_INTERVAL", "1"),
    ])
    .await;
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
