//! The extended measurements (`vm_cpu`, `vm_memory`, `vm_disk`, `vm_net`, `host_metrics`), the
//! stats groups and the domain filters, through the whole pipeline into the real InfluxDB.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{
    Influx, QEMU_SYSTEM, TestDomain, TestNode, collecting, collecting_from, spawn_collecting,
    wait_for,
};
use crate::support::guest::{Guest, only_guests};

const ALL_GROUPS: &str = "cpu_total,balloon,vcpu,interface,block";
const RATES: [&str; 9] = [
    "read_bytes_per_sec",
    "write_bytes_per_sec",
    "read_iops",
    "write_iops",
    "rx_bytes_per_sec",
    "tx_bytes_per_sec",
    "rx_packets_per_sec",
    "tx_packets_per_sec",
    "cpu_usage_percent",
];

fn num(row: &BTreeMap<String, Value>, field: &str) -> Option<f64> {
    row.get(field).and_then(Value::as_f64)
}

async fn measurements(influx: &Influx) -> BTreeSet<String> {
    influx
        .rows("SHOW MEASUREMENTS")
        .await
        .into_iter()
        .filter_map(|row| row.get("name").and_then(Value::as_str).map(str::to_owned))
        .collect()
}

fn no_negative_rate(rows: &[BTreeMap<String, Value>]) {
    for row in rows {
        for rate in RATES {
            if let Some(value) = num(row, rate) {
                assert!(value >= 0.0, "{rate} = {value} in {row:?}");
            }
        }
    }
}

#[actix_web::test]
async fn a_real_guests_disk_and_network_land_with_growing_counters_and_sane_rates() {
    let guest = Guest::start("disk,net");
    let mut env = only_guests(&guest.name, "1", ALL_GROUPS);
    env.push(("VMTELEMETRY_HOST_METRICS", "true"));
    let (app, influx) = collecting_from(QEMU_SYSTEM, &env).await;
    let name = guest.name.clone();
    let (disk, net) = wait_for(
        "growing disk and network counters with rates",
        Duration::from_secs(60),
        || async {
            let disk = influx.rows_of("vm_disk", &name).await;
            let net = influx.rows_of("vm_net", &name).await;
            let grew = |rows: &[BTreeMap<String, Value>], counter: &str, rate: &str| {
                let first = rows.first().and_then(|r| num(r, counter))?;
                let last = rows.last().and_then(|r| num(r, counter))?;
                let positive = rows.iter().any(|r| num(r, rate).is_some_and(|v| v > 0.0));
                Some(last > first && positive)
            };
            (grew(&disk, "write_bytes", "write_bytes_per_sec")?
                && grew(&net, "tx_bytes", "tx_bytes_per_sec")?)
            .then_some((disk, net))
        },
    )
    .await;
    for row in &disk {
        assert_eq!(row["device"], json!("vda"), "{row:?}");
        assert_eq!(row["name"], json!(name));
        assert!(
            row["uuid"].as_str().is_some_and(|u| u.len() == 36),
            "{row:?}"
        );
        assert!(
            row["VMID"].as_str().unwrap().parse::<u32>().is_ok(),
            "{row:?}"
        );
        // The sizes come at their own cadence (`block_sizes`), the first cycle's among them.
        let capacity = num(row, "capacity_bytes");
        assert!(
            capacity.is_none_or(|c| c >= 8.0 * 1024.0 * 1024.0),
            "{row:?}"
        );
    }
    assert!(num(&disk[0], "capacity_bytes").is_some(), "{:?}", disk[0]);
    for row in &net {
        assert_eq!(row["interface"], json!(guest.tap()), "{row:?}");
    }
    // Counters never go back while the guest runs; rates are never negative.
    for (rows, counter) in [(&disk, "write_bytes"), (&net, "tx_bytes")] {
        let values: Vec<f64> = rows.iter().filter_map(|r| num(r, counter)).collect();
        assert!(
            values.windows(2).all(|w| w[1] >= w[0]),
            "{counter}: {values:?}"
        );
        no_negative_rate(rows);
    }

    // CPU and memory come along, with the same tags as vm_metrics.
    let (cpu, memory) = wait_for("vm_cpu and vm_memory", Duration::from_secs(30), || async {
        let cpu = influx.rows_of("vm_cpu", &name).await;
        let memory = influx.rows_of("vm_memory", &name).await;
        let usage = cpu.iter().any(|r| num(r, "cpu_usage_percent").is_some());
        let used = memory.iter().any(|r| num(r, "used_percent").is_some());
        (usage && used).then_some((cpu, memory))
    })
    .await;
    no_negative_rate(&cpu);
    assert!(
        cpu.iter()
            .any(|r| r["vcpu"] == json!("0") && num(r, "vcpu_time_ns").is_some())
    );
    for row in &memory {
        if let Some(used) = num(row, "used_percent") {
            assert!((0.0..=100.0).contains(&used), "{row:?}");
        }
        assert_eq!(
            num(row, "balloon_maximum_kb"),
            Some(160.0 * 1024.0),
            "{row:?}"
        );
    }
    let metrics = influx.rows_of("vm_metrics", &name).await;
    assert_eq!(metrics[0]["uuid"], disk[0]["uuid"]);
    assert_eq!(metrics[0]["host"], disk[0]["host"]);

    // Field types: counters integers, everything derived floats.
    let types = influx.field_types("vm_disk").await;
    assert_eq!(types["write_bytes"], "integer");
    assert_eq!(types["read_requests"], "integer");
    assert_eq!(types["write_bytes_per_sec"], "float");
    assert_eq!(types["write_iops"], "float");
    let types = influx.field_types("vm_net").await;
    assert_eq!(types["tx_bytes"], "integer");
    assert_eq!(types["tx_bytes_per_sec"], "float");
    let types = influx.field_types("vm_cpu").await;
    assert_eq!(types["cpu_time_ns"], "integer");
    assert_eq!(types["cpu_usage_percent"], "float");

    // host_metrics: one row per cycle, the one (filtered) domain, running.
    let hosts = influx.rows("SELECT * FROM host_metrics").await;
    assert!(!hosts.is_empty());
    for row in &hosts {
        assert_eq!(row["domains"], json!(1), "{row:?}");
        assert_eq!(row["domains_running"], json!(1), "{row:?}");
        assert!(row["cpus"].as_u64().unwrap() >= 1, "{row:?}");
        assert!(row["memory_total_kb"].as_u64().unwrap() > 0, "{row:?}");
        assert!(num(row, "collection_duration_sec").unwrap() >= 0.0);
    }
    let status = app.status().await;
    assert_eq!(status["total_errors"], json!(0), "{status}");
}

#[actix_web::test]
async fn a_guest_power_cycled_between_cycles_gives_no_negative_rate() {
    let guest = Guest::start("disk,net");
    let name = guest.name.clone();
    // Longer than the power cycle takes, so that cycles likely see the guest on both sides.
    let env = only_guests(&name, "2", "cpu_total,block,interface");
    let (_app, influx) = collecting_from(QEMU_SYSTEM, &env).await;
    let written_before = wait_for("disk counters grow", Duration::from_secs(60), || async {
        let disk = influx.rows_of("vm_disk", &name).await;
        let last = disk.last().and_then(|r| num(r, "write_bytes"))?;
        (disk.len() >= 3 && last > 0.0).then_some(last)
    })
    .await;
    // Blocking (virsh, and the boot): off the runtime the service runs on.
    let guest = actix_rt::task::spawn_blocking(move || {
        guest.power_cycle();
        guest
    })
    .await
    .expect("the guest power-cycled");
    // After the restart the counters begin again from zero: some cycle sees them lower.
    let (disk, net, cpu) = wait_for(
        "samples after the power cycle",
        Duration::from_secs(90),
        || async {
            let disk = influx.rows_of("vm_disk", &name).await;
            let reset = disk
                .iter()
                .position(|r| num(r, "write_bytes").is_some_and(|w| w < written_before))?;
            (disk.len() >= reset + 3).then_some(())?;
            let net = influx.rows_of("vm_net", &name).await;
            let cpu = influx.rows_of("vm_cpu", &name).await;
            Some((disk, net, cpu))
        },
    )
    .await;
    let reset = disk
        .iter()
        .position(|r| num(r, "write_bytes").is_some_and(|w| w < written_before))
        .unwrap();
    // The pair across the reset gives no rate at all, and no rate anywhere is negative.
    assert_eq!(
        num(&disk[reset], "write_bytes_per_sec"),
        None,
        "{:?}",
        disk[reset]
    );
    no_negative_rate(&disk);
    no_negative_rate(&net);
    no_negative_rate(&cpu);
    drop(guest);
    // Rates resume after the reset.
    assert!(
        disk[reset + 1..]
            .iter()
            .any(|r| num(r, "write_bytes_per_sec").is_some()),
        "{disk:?}"
    );
}

#[actix_web::test]
async fn every_one_of_a_thousand_domains_is_reported_every_cycle() {
    const N: u32 = 1000;
    let domains: Vec<TestDomain> = (0..N)
        .map(|i| TestDomain::new(&format!("vm-{i:04}"), if i % 10 == 0 { 5 } else { 1 }, i))
        .collect();
    let (app, influx, _node) = collecting(
        &domains,
        &[
            ("VMTELEMETRY_POLL_INTERVAL", "2"),
            ("VMTELEMETRY_STATS_INTERVAL", "1"),
            ("VMTELEMETRY_STATS_GROUPS", ALL_GROUPS),
            ("VMTELEMETRY_HOST_METRICS", "true"),
            ("VMTELEMETRY_BATCH_MAX_LINES", "5000"),
        ],
    )
    .await;
    let cycles = wait_for("four complete cycles", Duration::from_secs(90), || {
        influx.complete_cycles(N as usize, 4)
    })
    .await;
    for row in &cycles {
        assert_eq!(row["domains"], json!(N), "{row:?}");
        assert_eq!(row["domains_stopped"], json!(N / 10), "{row:?}");
        assert_eq!(row["domains_running"], json!(N - N / 10), "{row:?}");
    }
    // The stats calls, side by side over the one connection, all succeeded meanwhile.
    let status = app.status().await;
    let host = &status["hosts"][0];
    assert!(host["stats_collections"].as_u64().unwrap() >= 2, "{status}");
    assert_eq!(host["stats_errors"], json!(0), "{status}");
    assert_eq!(host["total_errors"], json!(0), "{status}");
}

#[actix_web::test]
async fn filters_change_which_domains_and_nothing_else() {
    let domains = vec![
        TestDomain::new("web-1", 1, 1),
        TestDomain::new("web-2", 3, 2),
        TestDomain::new("web-test", 1, 3),
        TestDomain::new("db-1", 1, 4),
    ];
    let node = TestNode::new(&domains);
    let all = Influx::new_database().await;
    let some = Influx::new_database().await;
    let host_metrics = ("VMTELEMETRY_HOST_METRICS", "true");
    let _everything = spawn_collecting(&node.uri, &all, &[host_metrics]).await;
    let filters = [
        host_metrics,
        ("VMTELEMETRY_DOMAIN_INCLUDE", "web-*"),
        ("VMTELEMETRY_DOMAIN_EXCLUDE", "*-test"),
    ];
    let _filtered = spawn_collecting(&node.uri, &some, &filters).await;
    let names = |rows: &[BTreeMap<String, Value>]| -> BTreeSet<String> {
        rows.iter()
            .map(|r| r["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let full = wait_for("two cycles in each", Duration::from_secs(20), || async {
        let a = all.rows("SELECT * FROM vm_features").await;
        let b = some.rows("SELECT * FROM vm_features").await;
        (names(&a).len() == 4 && names(&b).len() == 2).then_some(a)
    })
    .await;
    let filtered_metrics = some.rows("SELECT * FROM vm_metrics").await;
    assert_eq!(
        names(&filtered_metrics),
        BTreeSet::from(["web-1".to_owned(), "web-2".to_owned()])
    );
    assert_eq!(names(&full).len(), 4);
    // The same fields, the same types, the same values for what both report.
    assert_eq!(
        all.field_types("vm_metrics").await,
        some.field_types("vm_metrics").await
    );
    let all_metrics = all.rows("SELECT * FROM vm_metrics").await;
    for row in &filtered_metrics {
        let other = all_metrics
            .iter()
            .find(|r| r["uuid"] == row["uuid"])
            .unwrap();
        for field in [
            "VMID",
            "host",
            "state",
            "cpu_count",
            "memory_max_kb",
            "memory_used_kb",
        ] {
            assert_eq!(row[field], other[field], "{field}");
        }
    }
    let hosts = some.rows("SELECT * FROM host_metrics").await;
    assert!(
        hosts
            .iter()
            .all(|r| r["domains"] == json!(2) && r["domains_paused"] == json!(1))
    );
    assert_eq!(
        measurements(&some).await,
        measurements(&all).await,
        "the test driver has no extended counters: same measurements either way"
    );
}

#[actix_web::test]
async fn stats_groups_choose_the_extended_measurements_and_nothing_else() {
    let guest = Guest::start("disk,net");
    let net_only = Influx::new_database().await;
    let none = Influx::new_database().await;
    let net = only_guests(&guest.name, "1", "interface");
    let _a = spawn_collecting(QEMU_SYSTEM, &net_only, &net).await;
    let _b = spawn_collecting(QEMU_SYSTEM, &none, &only_guests(&guest.name, "1", "")).await;
    let name = guest.name.clone();
    wait_for("vm_net rows", Duration::from_secs(60), || async {
        let net = net_only.rows_of("vm_net", &name).await;
        let metrics = none.rows_of("vm_metrics", &name).await;
        (net.len() >= 3 && metrics.len() >= 3).then_some(())
    })
    .await;
    assert_eq!(
        measurements(&net_only).await,
        BTreeSet::from(["vm_features", "vm_metrics", "vm_net"].map(str::to_owned))
    );
    assert_eq!(
        measurements(&none).await,
        BTreeSet::from(["vm_features", "vm_metrics"].map(str::to_owned))
    );
    assert_eq!(
        net_only.field_types("vm_metrics").await,
        none.field_types("vm_metrics").await
    );
}
