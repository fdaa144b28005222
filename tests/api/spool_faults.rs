//! The spool under a full disk and a damaged file: a real tmpfs under `spool_dir`, the test's own
//! InfluxDB stopped and started, the service as its own process. Every accepted line is written
//! once or counted as dropped, and nothing needs a restart.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{Influx, TestNode, wait_for};
use crate::reliability::{domains, one_cycle_env};
use crate::support::browser::dashboard_panel;
use crate::support::influxd::OwnInfluxd;
use crate::support::service::ServiceProcess;

const MIB: u64 = 1 << 20;

/// A tmpfs of the test's own, unmounted when dropped, even when the test fails.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Self {
        let dir = tempfile::tempdir().expect("a mount point");
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("mount runs");
        assert!(mounted.success(), "mounting a tmpfs needs root: {mounted}");
        Tmpfs { dir }
    }

    fn path(&self) -> &str {
        self.dir.path().to_str().unwrap()
    }

    fn resize(&self, size: &str) {
        let resized = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(self.dir.path())
            .status()
            .expect("mount runs");
        assert!(resized.success(), "{resized}");
    }

    fn free_bytes(&self) -> u64 {
        let output = Command::new("stat")
            .args(["-f", "--format=%a %S"])
            .arg(self.dir.path())
            .output()
            .expect("stat runs");
        let text = String::from_utf8(output.stdout).unwrap();
        let (blocks, size) = text.trim().split_once(' ').unwrap();
        blocks.parse::<u64>().unwrap() * size.parse::<u64>().unwrap()
    }

    /// Fills what is left of it with a file of its own.
    fn fill(&self) -> PathBuf {
        let path = self.dir.path().join("filler");
        let mut file = std::fs::File::create(&path).unwrap();
        let block = vec![1u8; 4096];
        while file
            .write_all(&block)
            .and_then(|()| file.sync_data())
            .is_ok()
        {}
        assert_eq!(self.free_bytes(), 0);
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazy: a service still holding its spool open cannot keep the mount behind.
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Fast cycles of the seed's lines only, written to `influxd` as soon as they come.
fn fast_env<'a>(
    node: &'a TestNode,
    influxd: &'a OwnInfluxd,
    db: &'a str,
    spool: &'a str,
) -> Vec<(&'a str, &'a str)> {
    let mut env = one_cycle_env(node, influxd, db, spool);
    // Later settings win.
    env.extend([
        ("VMTELEMETRY_POLL_INTERVAL", "0.2"),
        ("VMTELEMETRY_BATCH_MAX_SEC", "0.05"),
    ]);
    env
}

/// The service spooling onto `tmpfs` the fast cycles of `vms` VMs, for the test's own InfluxDB,
/// down until resumed (`env` over that). Keep the node: dropping it removes its file.
async fn spooling_while_down(
    tmpfs: &Tmpfs,
    vms: u32,
    env: &[(&str, &str)],
) -> (ServiceProcess, OwnInfluxd, Influx, TestNode) {
    let (influxd, influx) = OwnInfluxd::down_with_database().await;
    let node = TestNode::new(&domains(vms));
    let mut settings = fast_env(&node, &influxd, &influx.db, tmpfs.path());
    settings.extend_from_slice(env);
    (ServiceProcess::start(&settings), influxd, influx, node)
}

/// Distinct points InfluxDB holds (a point written twice is one point).
async fn stored_points(influx: &Influx) -> u64 {
    let mut points = 0;
    for (field, measurement) in [
        ("cpu_count", "vm_metrics"),
        ("memory_angle_deg", "vm_features"),
    ] {
        let rows = influx
            .rows(&format!("SELECT COUNT({field}) FROM {measurement}"))
            .await;
        points += rows
            .first()
            .and_then(|row| row["count"].as_u64())
            .unwrap_or(0);
    }
    points
}

/// Waits until everything collected is accounted for: written once (as many points in InfluxDB
/// as lines written: none sent twice) or dropped, none waiting.
async fn every_line_written_once_or_dropped(service: &ServiceProcess, influx: &Influx) -> Value {
    wait_for(
        "every line written once or dropped",
        Duration::from_secs(40),
        || async {
            let status = service.status()?;
            let produced = status["features"]["lines_produced"].as_u64()?;
            let written = status["total_metrics_written"].as_u64()?;
            let dropped = status["dropped_lines"].as_u64()?;
            (status["queue_depth"] == json!(0)
                && produced == written + dropped
                && stored_points(influx).await == written)
                .then_some(status)
        },
    )
    .await
}

/// `(status code, JSON body)` of a GET on the service.
fn get(service: &ServiceProcess, path: &str) -> (u16, Value) {
    let output = Command::new("curl")
        .args([
            "-s",
            "-w",
            "\n%{http_code}",
            &format!("{}{path}", service.address),
        ])
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&output.stdout);
    let (body, code) = text.rsplit_once('\n').expect("a status code");
    (code.parse().unwrap(), serde_json::from_str(body).unwrap())
}

#[actix_web::test]
async fn a_spool_filling_its_disk_drops_its_oldest_lines_and_takes_more_once_it_grows() {
    let tmpfs = Tmpfs::mount("4m");
    // Its own cap far above the disk's: only the disk bounds it.
    let cap = [
        ("VMTELEMETRY_SPOOL_MAX_BYTES", "1073741824"),
        ("VMTELEMETRY_SPOOL_MIN_FREE_BYTES", "1048576"),
    ];
    let (service, mut influxd, influx, _node) = spooling_while_down(&tmpfs, 300, &cap).await;

    let full = wait_for("the spool full", Duration::from_secs(30), || async {
        let status = service.status()?;
        (status["dropped_lines"].as_u64()? > 0).then_some(status)
    })
    .await;
    // Room is made from the oldest lines before the disk is full: no write ever failed.
    assert!(tmpfs.free_bytes() >= MIB / 2, "{full}");
    let spool = &full["writer"]["spool"];
    assert_eq!(spool["errors"], json!(0), "{full}");
    assert_eq!(spool["evicted_lines"], full["dropped_lines"], "{full}");
    let (_, unready) = get(&service, "/ready");
    let why = unready["error"]["message"].as_str().unwrap();
    assert!(!why.contains("spool"), "a full spool works as told: {why}");

    // More room: it holds more, without a restart.
    tmpfs.resize("64m");
    let held = spool["lines"].as_u64().unwrap();
    wait_for("more lines held", Duration::from_secs(20), || async {
        let status = service.status()?;
        let spool = &status["writer"]["spool"];
        (spool["state"] == json!("ok") && spool["lines"].as_u64()? > 2 * held).then_some(())
    })
    .await;

    influxd.resume();
    let status = every_line_written_once_or_dropped(&service, &influx).await;
    assert!(status["dropped_lines"].as_u64().unwrap() > 0, "{status}");
    assert_eq!(status["writer"]["spool"]["errors"], json!(0), "{status}");
}

#[actix_web::test]
async fn a_disk_full_from_the_start_holds_lines_in_memory_until_there_is_room() {
    let tmpfs = Tmpfs::mount("1m");
    let filler = tmpfs.fill();
    let memory = [
        ("VMTELEMETRY_MAX_QUEUE", "500"),
        ("VMTELEMETRY_BATCH_MAX_LINES", "500"),
        ("VMTELEMETRY_SPOOL_MIN_FREE_BYTES", "0"),
    ];
    // It starts: the directory is fine, only its disk is full.
    let (service, mut influxd, influx, _node) = spooling_while_down(&tmpfs, 50, &memory).await;

    let failing = wait_for("memory full", Duration::from_secs(20), || async {
        let status = service.status()?;
        let spool = &status["writer"]["spool"];
        (spool["state"] == json!("failing") && status["dropped_lines"].as_u64()? > 0)
            .then_some(status)
    })
    .await;
    let spool = &failing["writer"]["spool"];
    assert!(
        spool["lines_in_memory"].as_u64().unwrap() <= 500,
        "{failing}"
    );
    let (code, body) = get(&service, "/ready");
    assert_eq!(code, 503, "{body}");
    let why = body["error"]["message"].as_str().unwrap();
    assert!(
        why.contains("spool failing (") && why.contains("lines held in memory"),
        "{why}"
    );

    // The dashboard says so too.
    let shown = dashboard_panel(&service.address, "spool-status", "failing").await;
    assert!(
        shown.starts_with("Spool failing: ") && shown.contains("lines held in memory"),
        "{shown}"
    );

    std::fs::remove_file(filler).unwrap();
    wait_for("the spool open again", Duration::from_secs(40), || async {
        let status = service.status()?;
        let spool = &status["writer"]["spool"];
        (spool["state"] != json!("failing")
            && spool["reopens"].as_u64()? >= 1
            && spool["lines_in_memory"] == json!(0)
            && spool["lines"].as_u64()? > 0)
            .then_some(())
    })
    .await;
    assert_eq!(get(&service, "/ready").0, 503, "InfluxDB is still down");

    influxd.resume();
    every_line_written_once_or_dropped(&service, &influx).await;
    assert_eq!(get(&service, "/ready").0, 200);
}

/// A spool file in `dir` holding one cycle of `n` lines, closed as after SIGTERM.
fn spool_of_one_cycle(dir: &str, n: u32) {
    let node = TestNode::new(&domains(n));
    let service = ServiceProcess::start(&[
        ("VMTELEMETRY_LIBVIRT_URI", node.uri.as_str()),
        ("VMTELEMETRY_INFLUX_URL", "http://127.0.0.1:9"),
        ("VMTELEMETRY_SPOOL_DIR", dir),
        ("VMTELEMETRY_POLL_INTERVAL", "3600"),
        ("VMTELEMETRY_SHUTDOWN_TIMEOUT", "0.1"),
        ("VMTELEMETRY_STATS_GROUPS", ""),
        ("VMTELEMETRY_HOST_METRICS", "false"),
    ]);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while service
        .status()
        .is_none_or(|s| s["queue_depth"] != json!(n))
    {
        assert!(std::time::Instant::now() < deadline, "the cycle spooled");
        std::thread::sleep(Duration::from_millis(50));
    }
    let exit = service.terminate(Duration::from_secs(10));
    assert!(exit.is_some_and(|e| e.success()), "{exit:?}");
}

/// The files moved aside in `dir`, with their sizes.
fn kept_aside(dir: &Path) -> Vec<u64> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(Result::unwrap)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("spool.redb.corrupt-")
        })
        .map(|e| e.metadata().unwrap().len())
        .collect()
}

/// What is done to a spool file's bytes, and its name.
type Damage<'a> = (&'a str, &'a dyn Fn(&mut Vec<u8>));

#[actix_web::test]
async fn a_damaged_or_empty_spool_file_never_keeps_the_service_down() {
    let zero_header = |bytes: &mut Vec<u8>| bytes[..4096].fill(0);
    let half = |bytes: &mut Vec<u8>| bytes.truncate(bytes.len() / 2);
    let empty = |bytes: &mut Vec<u8>| bytes.clear();
    let damages: [Damage; 3] = [
        ("zeroed header", &zero_header),
        ("half", &half),
        ("empty", &empty),
    ];
    for (what, damage) in damages {
        let spool = tempfile::tempdir().unwrap();
        let dir = spool.path().to_str().unwrap();
        spool_of_one_cycle(dir, 20);
        let file = spool.path().join("spool.redb");
        let mut bytes = std::fs::read(&file).unwrap();
        damage(&mut bytes);
        std::fs::write(&file, &bytes).unwrap();

        let node = TestNode::new(&[]);
        let service = ServiceProcess::start(&[
            ("VMTELEMETRY_LIBVIRT_URI", node.uri.as_str()),
            ("VMTELEMETRY_SPOOL_DIR", dir),
        ]);
        let status = service.status().expect("it answers");
        let counts = &status["writer"]["spool"];
        let logged = service.logged();
        let said = |message: &str| {
            logged
                .iter()
                .filter(|line| line["fields"]["message"].as_str() == Some(message))
                .cloned()
                .collect::<Vec<_>>()
        };
        if bytes.is_empty() {
            assert_eq!(
                (
                    counts["empty_files"].clone(),
                    counts["damaged_files"].clone()
                ),
                (json!(1), json!(0)),
                "{what}: {status}"
            );
            let lost = "the spool file was empty: the lines it held, if any, are lost, and how many is unknown";
            assert_eq!(said(lost).len(), 1, "{what}: {logged:?}");
            assert!(kept_aside(spool.path()).is_empty(), "{what}");
        } else {
            assert_eq!(counts["damaged_files"], json!(1), "{what}: {status}");
            let moved = said(
                "the spool file is damaged: moved aside, its readable lines replayed, a fresh one started",
            );
            assert_eq!(moved.len(), 1, "{what}: {logged:?}");
            assert_eq!(moved[0]["fields"]["bytes"], json!(bytes.len()), "{what}");
            assert_eq!(
                kept_aside(spool.path()),
                [bytes.len() as u64],
                "{what}: kept as it was"
            );
        }
        assert_eq!(counts["state"], json!("ok"), "{what}: {status}");
    }
}
