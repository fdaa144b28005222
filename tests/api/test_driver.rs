//! A libvirtd test-driver node through the whole pipeline into the real InfluxDB.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};
use vmtelemetry::influx::schema::{vm_features, vm_metrics};

use crate::helpers::{TestDomain, collecting};

/// Names that need escaping in line protocol and still mean the same to InfluxDB 1.x (backslashes
/// are checked in tests/api/line_protocol.rs, and on the stand-in).
const AWKWARD_NAMES: [&str; 6] = [
    "vm with spaces",
    "comma,vm",
    "eq=vm",
    "quote\"d 'vm'",
    "ünïcødé € 日本",
    "x' OR '1'='1",
];

#[actix_web::test]
async fn every_domain_lands_with_its_tags_state_and_field_types() {
    let mut domains = vec![
        TestDomain::new("running-1", 1, 1),
        TestDomain::new("running-2", 1, 2),
        TestDomain::new("paused", 3, 3),
        TestDomain::new("shut-off", 5, 4),
    ];
    for (i, name) in AWKWARD_NAMES.iter().enumerate() {
        domains.push(TestDomain::new(name, 1, 10 + i as u32));
    }
    let (app, influx, _node) = collecting(&domains, &[]).await;

    // Two cycles of every domain, so every VM also has features.
    let metrics = influx
        .rows_when(
            "two cycles of every domain",
            Duration::from_secs(20),
            "SELECT * FROM vm_metrics",
            |rows| {
                let per_vm = count_by(rows, "uuid");
                per_vm.len() == domains.len() && per_vm.values().all(|n| *n >= 2)
            },
        )
        .await;
    let features = influx
        .rows_when(
            "features of every domain",
            Duration::from_secs(10),
            "SELECT * FROM vm_features",
            |rows| count_by(rows, "uuid").len() == domains.len(),
        )
        .await;

    let host = metrics[0]["host"].clone();
    assert!(host.as_str().is_some_and(|h| !h.is_empty()), "{host}");
    for (n, domain) in domains.iter().enumerate() {
        let row = metrics
            .iter()
            .find(|row| row["uuid"] == json!(domain.uuid))
            .unwrap_or_else(|| panic!("no row for {}", domain.name));
        let (state, vmid_is_numeric) = match domain.runstate {
            1 => ("running", true),
            3 => ("paused", true),
            _ => ("stopped", false),
        };
        assert_eq!(row["name"], json!(domain.name), "name of domain {n}");
        assert_eq!(row["host"], host);
        assert_eq!(row["state"], json!(state), "{}", domain.name);
        let vmid = row["VMID"].as_str().unwrap();
        assert_eq!(vmid.parse::<u32>().is_ok(), vmid_is_numeric, "VMID {vmid}");
        if !vmid_is_numeric {
            assert_eq!(vmid, "-");
        }
        assert_eq!(row["cpu_count"], json!(domain.vcpus));
        assert_eq!(row["memory_max_kb"], json!(domain.memory_kib));
        // A shut-off test domain reports its current memory too.
        assert_eq!(row["memory_used_kb"], json!(domain.current_memory_kib));
        assert!(row["cputime_ns"].is_u64(), "{}", row["cputime_ns"]);
    }

    let integer = |fields: &[&str]| -> BTreeMap<String, String> {
        fields
            .iter()
            .map(|f| (f.to_string(), "integer".to_string()))
            .collect()
    };
    let mut expected = integer(&vm_metrics::INTEGERS);
    expected.insert(vm_metrics::STATE.into(), "string".into());
    assert_eq!(influx.field_types(vm_metrics::MEASUREMENT).await, expected);
    let floats: BTreeMap<String, String> = vm_features::FIELDS
        .iter()
        .map(|f| (f.to_string(), "float".to_string()))
        .collect();
    assert_eq!(influx.field_types(vm_features::MEASUREMENT).await, floats);

    // The test driver's memory never changes: rate exactly 0, angle exactly degrees(atan(1e-12)).
    let tiny_angle = 1e-12_f64.atan().to_degrees();
    for row in &features {
        assert_eq!(row["memory_rate_kb_per_sec"].as_f64(), Some(0.0), "{row:?}");
        assert_eq!(
            row["memory_angle_deg"].as_f64(),
            Some(tiny_angle),
            "{row:?}"
        );
    }

    let status = app.status().await;
    assert_eq!(status["vms_monitored"], json!(domains.len()));
    assert!(status["total_metrics_written"].as_u64().unwrap() >= 2 * domains.len() as u64);
    assert_eq!(status["total_errors"], json!(0), "{status}");
}

fn count_by(rows: &[BTreeMap<String, Value>], tag: &str) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for row in rows {
        *counts.entry(row[tag].to_string()).or_default() += 1;
    }
    counts
}
