//! The `guest` group on real booted guests (tests/guest: qemu-ga on a virtio-serial channel, an
//! ext2 filesystem on the virtio disk): their filesystems and identity land in InfluxDB as the
//! guest sees them, each filesystem is forecast (`fs:<mountpoint>` in the API and in
//! `vm_forecasts`, and by `vmtelemetry replay` from that history), and an agent that stops answering costs only its own guest rows: its calls
//! run beside the host's cycles, which go on every poll.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{Influx, QEMU_SYSTEM, TestApp, spawn_collecting, wait_for};
use crate::support::guest::{Guest, only_guests, virsh};
use crate::support::prometheus::{scrape, value_of};
use crate::support::valgrind::{LeakSummary, assert_no_leak, example_binary, run_under_valgrind};

const MIB: u64 = 1 << 20;
/// A mountpoint with a comma, an equals sign and a non-ASCII letter, which tags must escape.
const MOUNT: &str = "/data,x=é";

/// The service on qemu:///system, `groups` (the guest agents too) every poll of `poll` seconds,
/// of the domains `names` only (other tests' guests come and go meanwhile).
async fn collect(
    influx: &Influx,
    poll: &str,
    groups: &str,
    names: &[&str],
    more: &[(&str, &str)],
) -> TestApp {
    let names = names.join(",");
    let mut env = only_guests(&names, poll, groups);
    env.push(("VMTELEMETRY_STATS_GROUP_INTERVALS__GUEST", poll));
    env.extend_from_slice(more);
    spawn_collecting(QEMU_SYSTEM, influx, &env).await
}

type Row = BTreeMap<String, Value>;

fn int(row: &Row, field: &str) -> u64 {
    row[field]
        .as_u64()
        .unwrap_or_else(|| panic!("{field} in {row:?}"))
}

/// Every field of a `vm_guest_fs` point read. InfluxDB 1.x stores a point's fields one after
/// another, so a query racing a write can read the newest point with some of them (seen in CI:
/// `total_bytes` alone); the points before it were whole when read.
fn whole(row: &Row) -> bool {
    row["total_bytes"].is_u64() && row["used_bytes"].is_u64() && row["used_percent"].is_f64()
}

/// The guest agent's own answer for the filesystem at `MOUNT`, through virsh (read-write).
fn agent_fs(guest: &Guest) -> BTreeMap<String, String> {
    let output = virsh(&["guestinfo", &guest.name, "--filesystem"]);
    let all: BTreeMap<String, String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let n = (0..8)
        .find(|n| all.get(&format!("fs.{n}.mountpoint")).map(String::as_str) == Some(MOUNT))
        .unwrap_or_else(|| panic!("no {MOUNT} in the agent's answer: {all:?}"));
    let prefix = format!("fs.{n}.");
    all.into_iter()
        .filter_map(|(k, v)| Some((k.strip_prefix(&prefix)?.to_owned(), v)))
        .collect()
}

#[actix_web::test]
async fn a_guests_filesystem_lands_with_its_real_size_and_a_known_fill_moves_it() {
    let fill_mib = 3;
    let guest = Guest::options("")
        .guest_agent()
        .arg("vmt.fs", 1)
        .arg("vmt.mount", MOUNT)
        .arg("vmt.fill", fill_mib)
        .arg("vmt.after", 20)
        .arg("vmt.hostname", "vmt-agent,guest")
        .start();
    let influx = Influx::new_database().await;
    let outlook = [
        ("VMTELEMETRY_INSIGHTS", "true"),
        ("VMTELEMETRY_INSIGHTS_FORECAST_EVERY", "60"),
    ];
    let app = collect(&influx, "1", "guest", &[&guest.name], &outlook).await;
    let name = guest.name.clone();
    let before = influx
        .rows_when(
            "the guest's filesystem in vm_guest_fs",
            Duration::from_secs(30),
            &format!("SELECT * FROM vm_guest_fs WHERE \"name\" = '{name}'"),
            |rows| rows.first().is_some_and(whole),
        )
        .await;
    let first = &before[0];
    let truth = agent_fs(&guest);
    assert_eq!(first["mountpoint"], json!(MOUNT), "{first:?}");
    assert_eq!(first["fstype"], json!("ext2"));
    assert_eq!(first["device"], json!("vda"));
    let total = int(first, "total_bytes");
    assert_eq!(total.to_string(), truth["total-bytes"], "{truth:?}");
    // The 8 MiB disk less ext2's own metadata.
    assert!((7 * MIB..8 * MIB).contains(&total), "{total}");
    let used_before = int(first, "used_bytes");
    assert!(used_before < MIB, "an empty filesystem: {first:?}");
    let percent = first["used_percent"].as_f64().unwrap();
    assert!((percent - used_before as f64 / total as f64 * 100.0).abs() < 1e-9);

    let filled = wait_for(
        "the fill in used_bytes",
        Duration::from_secs(60),
        || async {
            let rows = influx.rows_of("vm_guest_fs", &name).await;
            let last = rows.iter().rev().find(|row| whole(row))?.clone();
            (int(&last, "used_bytes") >= used_before + fill_mib * MIB).then_some(last)
        },
    )
    .await;
    let grown = int(&filled, "used_bytes") - used_before;
    // ext2 adds a few indirect blocks (1 KiB each) for a 3 MiB file.
    assert!(grown < fill_mib * MIB + 64 * 1024, "grew by {grown}");
    assert_eq!(
        int(&filled, "used_bytes").to_string(),
        agent_fs(&guest)["used-bytes"]
    );
    // Its forecast follows it, against its size.
    let resource = format!("fs:{MOUNT}");
    let forecast = wait_for(
        "the fill in the forecast",
        Duration::from_secs(10),
        || async {
            let (_, body) = app.get("/api/telemetry/recommendations").await;
            let vm = body["vms"]
                .as_array()?
                .iter()
                .find(|vm| vm["name"] == *name)?;
            let forecasts = vm["forecasts"].as_array()?;
            let forecast = forecasts.iter().find(|f| f["resource"] == *resource)?;
            (forecast["used"].as_f64()? >= (used_before + fill_mib * MIB) as f64)
                .then(|| forecast.clone())
        },
    )
    .await;
    assert_eq!(
        forecast["capacity"].as_f64(),
        Some(total as f64),
        "{forecast}"
    );
    crate::replay::forecasts_guest_filesystems_like_live(&app, &influx.db, &name).await;

    let types = influx.field_types("vm_guest_fs").await;
    let expected = [
        ("total_bytes", "integer"),
        ("used_bytes", "integer"),
        ("used_percent", "float"),
    ];
    assert_eq!(
        types,
        expected.map(|(f, t)| (f.to_owned(), t.to_owned())).into()
    );

    // Once, however many cycles asked: it has not changed.
    let info = influx.rows_of("vm_guest_info", &name).await;
    let points = influx.rows_of("vm_guest_fs", &name).await;
    assert!(points.len() >= 5, "{} vm_guest_fs points", points.len());
    let filled_at = filled["time"].as_i64();
    let mut written = points
        .iter()
        .filter(|row| row["time"].as_i64() <= filled_at);
    assert!(written.all(whole), "{points:?}");
    assert_eq!(info.len(), 1, "{info:?}");
    let info = &info[0];
    assert_eq!(info["os_id"], json!("vmt-test-guest"));
    assert_eq!(info["os_version"], json!("1"));
    assert_eq!(info["hostname"], json!("vmt-agent,guest"));
    assert_eq!(info["users"], json!(0));
    let release = info["kernel_release"].as_str().unwrap();
    assert!(release.ends_with("-cloud-amd64"), "{release}");
    let types = influx.field_types("vm_guest_info").await;
    assert_eq!(types["users"], "integer");
    assert_eq!(types["hostname"], "string");

    let status = app.status().await;
    let agents = &status["hosts"][0]["guest_agents"];
    assert_eq!(agents["answering"], json!(1), "{status}");
    assert_eq!(agents["silent"], json!(0), "{status}");
    assert_eq!(agents["absent"], json!(0), "{status}");
    the_scrape_has_the_agents_answer(&app, &guest, total).await;

    // While a guest with an agent is up: the calls' wrapper frees everything libvirt allocates.
    let example = example_binary("guest_info_cycles");
    let few = agent_calls_under_valgrind(&example, &guest.name, 10);
    let many = agent_calls_under_valgrind(&example, &guest.name, 60);
    assert_no_leak(&few, &many, 50);

    // A minute after the first write (before the agent answered): the filesystem's `vm_forecasts`.
    let q = format!("SELECT * FROM vm_forecasts WHERE \"resource\" = '{resource}'");
    let rows = first_rows(&influx, "its vm_forecasts line", 70, &q).await;
    assert_eq!(rows[0]["capacity"].as_f64(), Some(total as f64), "{rows:?}");
    assert_eq!(rows[0]["name"], json!(name), "{rows:?}");
}

/// `/metrics` gives the agent's last answer: the filesystem's sizes as the agent tells them now
/// (the fill done, they no longer move), its identity as an info gauge's labels, a fresh age.
async fn the_scrape_has_the_agents_answer(app: &TestApp, guest: &Guest, total: u64) {
    let name = guest.name.as_str();
    let fs = [
        ("name", name),
        ("mountpoint", MOUNT),
        ("fstype", "ext2"),
        ("device", "vda"),
    ];
    let samples = scrape(&app.client, &app.address).await;
    let value = |family: &str, labels: &[(&str, &str)]| {
        value_of(&samples, family, labels).unwrap_or_else(|| panic!("{family} {labels:?}"))
    };
    let truth = agent_fs(guest);
    let total_bytes = value("vmtelemetry_vm_guest_fs_total_bytes", &fs);
    assert_eq!(total_bytes, total as f64);
    let used = value("vmtelemetry_vm_guest_fs_used_bytes", &fs);
    assert_eq!(used.to_string(), truth["used-bytes"], "{truth:?}");
    let percent = value("vmtelemetry_vm_guest_fs_used_percent", &fs);
    assert!(
        (percent - used / total_bytes * 100.0).abs() < 1e-9,
        "{percent}"
    );
    let info = [
        ("name", name),
        ("os_id", "vmt-test-guest"),
        ("os_version", "1"),
        ("hostname", "vmt-agent,guest"),
    ];
    assert_eq!(value("vmtelemetry_vm_guest_info", &info), 1.0);
    assert_eq!(
        value("vmtelemetry_vm_guest_info_users", &[("name", name)]),
        0.0
    );
    let age = value("vmtelemetry_vm_guest_sample_age_seconds", &[("name", name)]);
    // The group runs every second.
    assert!((0.0..10.0).contains(&age), "{age}");
}

fn agent_calls_under_valgrind(example: &Path, name: &str, cycles: u64) -> LeakSummary {
    let args = ["qemu:///system", name, &cycles.to_string()];
    let (stdout, summary) = run_under_valgrind(example, &args);
    // Proves the calls answered: a filesystem's and the OS's parameters every time.
    let params: u64 = stdout
        .split_once(" cycles, ")
        .and_then(|(_, rest)| rest.split_once(' '))
        .and_then(|(n, _)| n.parse().ok())
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(params >= cycles * 10, "{stdout}");
    assert!(stdout.ends_with("unknown type refused: true\n"), "{stdout}");
    summary
}

/// The rows of `q` once there are any, within `seconds`.
async fn first_rows(influx: &Influx, what: &str, seconds: u64, q: &str) -> Vec<Row> {
    let timeout = Duration::from_secs(seconds);
    influx.rows_when(what, timeout, q, |r| !r.is_empty()).await
}

/// Points of `measurement` of `vm` stamped after `since` (ns).
async fn count_since(influx: &Influx, measurement: &str, vm: &str, since: i64) -> usize {
    times_since(influx, measurement, vm, since).await.len()
}

/// The times of the points of `measurement` of `vm` stamped after `since` (ns), in order.
async fn times_since(influx: &Influx, measurement: &str, vm: &str, since: i64) -> Vec<i64> {
    let q = format!(
        "SELECT * FROM \"{measurement}\" WHERE \"name\" = '{vm}' AND time > {since} ORDER BY time"
    );
    let rows = influx.rows(&q).await;
    rows.iter().map(|r| r["time"].as_i64().unwrap()).collect()
}

#[actix_web::test]
async fn a_silent_or_absent_agent_costs_only_its_own_guest_rows_within_the_timeout() {
    let answering = Guest::options("").guest_agent().arg("vmt.fs", 1).start();
    let silent = Guest::options("")
        .guest_agent()
        .arg("vmt.fs", 1)
        .arg("vmt.agentstop", 15)
        .start();
    let absent = Guest::firmware(&format!("vmt-agent-absent-{}", std::process::id()));
    let influx = Influx::new_database().await;
    let include = [&answering.name, &silent.name, &absent.name].map(|n| n.as_str());
    let timeout = [("VMTELEMETRY_GUEST_AGENT_TIMEOUT", "1")];
    // Polls far shorter than the agent's timeout: were its calls on the cycle, a silent agent
    // would cost every cycle a second, and half the polls.
    let app = collect(&influx, "0.5", "guest,cpu_total", &include, &timeout).await;
    // Both agents answer at first; then the second is stopped inside its guest.
    let q = format!(
        "SELECT * FROM vm_guest_fs WHERE \"name\" = '{}'",
        silent.name
    );
    first_rows(&influx, "the second agent's rows", 30, &q).await;
    let deadline = Instant::now() + Duration::from_secs(40);
    while !silent.console_text().contains("VMT-GUEST-AGENT-STOPPED") {
        assert!(Instant::now() < deadline, "{}", silent.console_text());
        std::thread::sleep(Duration::from_millis(200));
    }
    let status = app
        .status_when("a silent agent counted", Duration::from_secs(20), |s| {
            let agents = &s["hosts"][0]["guest_agents"];
            Some(agents["silent"] == json!(1))
        })
        .await;
    let agents = &status["hosts"][0]["guest_agents"];
    assert_eq!(agents["answering"], json!(1), "{status}");
    assert_eq!(agents["absent"], json!(1), "{status}");
    // The silent agent is given up on after its timeout (1 s), not libvirt's own: once for the
    // first call after it fell silent (its sync, then its command), then once a cycle.
    let duration = agents["duration_sec"].as_f64().unwrap();
    assert!(duration < 2.5, "{status}");

    // From now on, 16 cycles of every domain: each cycle every domain's other rows, on time
    // (half a second apart but for a few cycles a loaded machine delays: were the agents' calls
    // on the cycle, each would take the silent agent's second); the answering agent's rows in
    // each round (one a second or so), none of the silent one's.
    let since = chrono::Utc::now().timestamp_nanos_opt().unwrap();
    let names = [&answering.name, &silent.name, &absent.name];
    wait_for("16 cycles", Duration::from_secs(60), || async {
        for vm in names {
            if times_since(&influx, "vm_metrics", vm, since).await.len() < 16 {
                return None;
            }
        }
        Some(())
    })
    .await;
    for vm in names {
        let metrics = times_since(&influx, "vm_metrics", vm, since).await;
        let cpu = times_since(&influx, "vm_cpu", vm, since).await;
        // The last cycle's vm_cpu may not be written yet.
        assert!(cpu.len() + 1 >= metrics.len(), "{vm}: {metrics:?} {cpu:?}");
        let mut gaps: Vec<i64> = metrics.windows(2).map(|w| w[1] - w[0]).collect();
        gaps.sort_unstable();
        let median = gaps[gaps.len() / 2];
        assert!(median < 900_000_000, "{vm}: vm_metrics {gaps:?} ns apart");
    }
    let answered = count_since(&influx, "vm_guest_fs", &answering.name, since).await;
    assert!(answered >= 3, "{answered} rows of the answering agent");
    assert_eq!(
        count_since(&influx, "vm_guest_fs", &silent.name, since).await,
        0
    );
    assert_eq!(
        count_since(&influx, "vm_guest_fs", &absent.name, since).await,
        0
    );
    let status = app.status().await;
    assert_eq!(status["hosts"][0]["stats_errors"], json!(0), "{status}");
    assert_eq!(status["hosts"][0]["total_errors"], json!(0), "{status}");
    // Rounds due every poll while one asks for a second: skipped, and counted.
    let skipped = status["hosts"][0]["guest_agents"]["rounds_skipped"].as_u64();
    assert!(skipped.is_some_and(|n| n >= 4), "{status}");
}
