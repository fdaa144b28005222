//! Each stats group at its own interval, on a real KVM guest through the whole pipeline: over a
//! run, InfluxDB holds exactly the rows each group's cadence gives, and the newer groups (`vm`,
//! `perf`, `dirtyrate`) land as libvirt gives them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{Influx, spawn_collecting, wait_for};
use crate::support::guest::{Guest, virsh};

/// Software perf events: this machine's own CPU gives no hardware ones to a guest.
const PERF: [&str; 3] = ["context_switches", "cpu_clock", "task_clock"];

async fn times_of(influx: &Influx, measurement: &str, vm: &str, and: &str) -> Vec<i64> {
    let q = format!("SELECT * FROM \"{measurement}\" WHERE \"name\" = '{vm}' {and} ORDER BY time");
    let rows = influx.rows(&q).await;
    rows.iter().map(|r| r["time"].as_i64().unwrap()).collect()
}

/// The names of `virsh domstats` keys `prefix<name>.<sum|cur|max>` with an integer value.
fn kvm_names(stats: &BTreeMap<String, String>, prefix: &str) -> BTreeSet<String> {
    stats
        .iter()
        .filter(|(_, value)| value.parse::<u64>().is_ok())
        .filter_map(|(key, _)| {
            let (name, kind) = key.strip_prefix(prefix)?.rsplit_once('.')?;
            matches!(kind, "sum" | "cur" | "max").then(|| name.to_owned())
        })
        .collect()
}

fn fields(types: &BTreeMap<String, String>) -> BTreeSet<String> {
    assert!(types.values().all(|t| t == "integer"), "{types:?}");
    types.keys().cloned().collect()
}

#[actix_web::test]
async fn each_group_comes_exactly_at_its_own_interval_with_the_newer_groups_as_libvirt_gives_them()
{
    assert!(
        Path::new("/dev/kvm").exists(),
        "the vm group needs a KVM guest: no /dev/kvm"
    );
    let name = format!("vmt-cadence-{}", std::process::id());
    let guest = Guest::firmware_with_disk(&name);
    virsh(&["perf", &name, "--enable", &PERF.join(","), "--live"]);
    let influx = Influx::new_database().await;
    // Polls of 0.5 s: the disk every poll, the balloon every 4, KVM's statistics every 2, the
    // dirty rate started every 6 and read 4 polls (2 s) later.
    let app = spawn_collecting(
        "qemu:///system",
        &influx,
        &[
            ("VMTELEMETRY_POLL_INTERVAL", "0.5"),
            ("VMTELEMETRY_STATS_INTERVAL", "0.5"),
            (
                "VMTELEMETRY_STATS_GROUPS",
                "block,balloon,vm,perf,dirtyrate",
            ),
            ("VMTELEMETRY_STATS_GROUP_INTERVALS__BALLOON", "2"),
            ("VMTELEMETRY_STATS_GROUP_INTERVALS__VM", "1"),
            ("VMTELEMETRY_STATS_GROUP_INTERVALS__DIRTYRATE", "3"),
            ("VMTELEMETRY_DOMAIN_INCLUDE", &name),
        ],
    )
    .await;
    let cycles = wait_for("21 cycles", Duration::from_secs(60), || async {
        let times = times_of(&influx, "vm_metrics", &name, "").await;
        (times.len() >= 21).then_some(times)
    })
    .await;
    // Cycles 0 to n - 1 wrote their lines before cycle n read its seed's (one batch a cycle).
    let n = cycles.len() - 1;
    let before = format!("AND time < {}", cycles[n]);
    let count = |measurement: &'static str, and: &'static str| {
        let (influx, name, before) = (&influx, &name, &before);
        async move {
            let and = format!("{and} {before}");
            times_of(influx, measurement, name, &and).await.len()
        }
    };
    assert_eq!(count("vm_disk", "").await, n, "the disk every poll");
    assert_eq!(count("vm_memory", "").await, n.div_ceil(4), "{n} cycles");
    assert_eq!(count("vm_kvm", "AND \"vcpu\" = ''").await, n.div_ceil(2));
    assert_eq!(count("vm_kvm", "AND \"vcpu\" = '0'").await, n.div_ceil(2));
    assert_eq!(count("vm_perf", "").await, n);
    // Read by cycles 4, 10, 16, …
    assert_eq!(count("vm_dirtyrate", "").await, (n + 1) / 6, "{n} cycles");
    // No vm_cpu: the vcpu group was asked for KVM's per-vCPU statistics only.
    assert_eq!(count("vm_cpu", "").await, 0);

    let stats = guest.domstats_of(&["--vm", "--vcpu"]);
    let kvm = kvm_names(&stats, "vm.");
    assert!(kvm.contains("mmu_cache_miss"), "{stats:?}");
    let q = format!("SELECT * FROM vm_kvm WHERE \"vcpu\" = '' AND \"name\" = '{name}' LIMIT 1");
    let row = &influx.rows(&q).await[0];
    let tags = ["time", "VMID", "host", "name", "uuid", "vcpu"];
    let written: BTreeSet<String> = row
        .iter()
        .filter(|(key, value)| !value.is_null() && !tags.contains(&key.as_str()))
        .map(|(key, _)| key.clone())
        .collect();
    assert_eq!(written, kvm, "{row:?}");
    let per_vcpu = kvm_names(&stats, "vcpu.0.");
    assert!(per_vcpu.contains("exits") && per_vcpu.contains("halt_wait_ns"));
    let all_kvm = fields(&influx.field_types("vm_kvm").await);
    assert_eq!(all_kvm, &kvm | &per_vcpu);
    let perf: BTreeSet<String> = PERF.iter().map(|e| e.to_string()).collect();
    assert_eq!(fields(&influx.field_types("vm_perf").await), perf);
    let dirty = fields(&influx.field_types("vm_dirtyrate").await);
    assert_eq!(
        dirty,
        ["calc_period_sec", "dirty_rate_mib_per_sec"]
            .map(String::from)
            .into()
    );
    let q = format!("SELECT * FROM vm_dirtyrate WHERE \"name\" = '{name}'");
    for row in influx.rows(&q).await {
        assert_eq!(row["calc_period_sec"], json!(1), "{row:?}");
        assert!(row["dirty_rate_mib_per_sec"].as_u64().is_some(), "{row:?}");
    }
    let status = app.status().await;
    let host: &Value = &status["hosts"][0];
    assert_eq!(host["stats_errors"], json!(0), "{host}");
    assert_eq!(host["total_errors"], json!(0), "{host}");
}
