//! Several libvirt hosts at once: each lands under its own `host` tag, and one that cannot be
//! reached delays none of the others.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{Influx, TestDomain, TestNode, spawn_app_with_file, wait_for};

#[actix_web::test]
async fn two_hosts_land_tagged_apart_and_an_unreachable_one_stops_neither() {
    // The same UUID on both hosts: the host tag and the per-host feature state keep them apart.
    let alpha = TestNode::new(&[TestDomain::new("a1", 1, 1), TestDomain::new("shared", 1, 9)]);
    let beta = TestNode::new(&[TestDomain::new("b1", 1, 2), TestDomain::new("shared", 1, 9)]);
    let unreachable = "qemu+unix:///system?socket=/nonexistent/libvirt-sock";
    let influx = Influx::new_database().await;
    let file = format!(
        r#"hosts = [
             {{ uri = "{}", name = "alpha" }},
             "{unreachable}",
             {{ uri = "{}", name = "beta" }},
           ]"#,
        alpha.uri, beta.uri
    );
    let app = spawn_app_with_file(Some(&file), &[("VMTELEMETRY_INFLUX_DB", &influx.db)]).await;

    let rows = wait_for(
        "both hosts' VMs with features",
        Duration::from_secs(20),
        || async {
            let rows = influx.rows("SELECT * FROM vm_features").await;
            let seen: BTreeSet<(String, String)> = rows.iter().map(host_and_name).collect();
            (seen.len() == 4).then_some(seen)
        },
    )
    .await;
    let expected: BTreeSet<(String, String)> = [
        ("alpha", "a1"),
        ("alpha", "shared"),
        ("beta", "b1"),
        ("beta", "shared"),
    ]
    .iter()
    .map(|(h, n)| (h.to_string(), n.to_string()))
    .collect();
    assert_eq!(rows, expected);

    let status = app.status().await;
    let hosts = status["hosts"].as_array().unwrap();
    let state_of = |uri: &str| {
        hosts
            .iter()
            .find(|h| h["uri"] == json!(uri))
            .unwrap_or_else(|| panic!("{uri} in {status}"))
            .clone()
    };
    assert_eq!(state_of(&alpha.uri)["connection"], json!("connected"));
    assert_eq!(state_of(&beta.uri)["connection"], json!("connected"));
    let dead = state_of(unreachable);
    assert_eq!(dead["connection"], json!("disconnected"));
    assert!(dead["total_errors"].as_u64().unwrap() >= 1);
    assert!(
        dead["last_error"]
            .as_str()
            .unwrap()
            .contains("cannot connect"),
        "{dead}"
    );
    assert_eq!(status["vms_monitored"], json!(4));
    // Ready: one connected host is enough.
    let (code, _) = app.get("/ready").await;
    assert_eq!(code, 200);
}

fn host_and_name(row: &std::collections::BTreeMap<String, Value>) -> (String, String) {
    (
        row["host"].as_str().unwrap().to_owned(),
        row["name"].as_str().unwrap().to_owned(),
    )
}
