//! The models survive a restart, through the real binary: trained on the test driver and saved
//! on SIGTERM, they are found trained at the next start (a VM gone meanwhile dropped), and again
//! when the insights actor is restarted; a damaged snapshot is ignored, said so, and replaced.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{SETTINGS, TOKEN, domains};
use crate::helpers::{Influx, TestNode, wait_for};
use crate::support::service::ServiceProcess;
use crate::support::test_node::node_xml;

/// Cycles (of 0.2 s) before a signal is scored: a VM trained sooner was restored.
const LEARNING: u64 = 30;

struct Run {
    node: TestNode,
    influx: Influx,
    spool: tempfile::TempDir,
}

impl Run {
    async fn new(vms: usize) -> Self {
        Run {
            node: TestNode::new(&domains()[..vms]),
            influx: Influx::new_database().await,
            spool: tempfile::tempdir().expect("a spool directory"),
        }
    }

    /// Starts the binary on this run's node and spool, saving the models on SIGTERM only.
    fn start(&self) -> ServiceProcess {
        let learning = LEARNING.to_string();
        let spool = self.spool.path().to_str().unwrap();
        let env = [
            ("VMTELEMETRY_LIBVIRT_URI", self.node.uri.as_str()),
            ("VMTELEMETRY_INFLUX_DB", self.influx.db.as_str()),
            ("VMTELEMETRY_SPOOL_DIR", spool),
            ("VMTELEMETRY_POLL_INTERVAL", "0.2"),
            ("VMTELEMETRY_STATS_GROUPS", ""),
            ("VMTELEMETRY_INSIGHTS_LEARNING_SAMPLES", learning.as_str()),
            ("VMTELEMETRY_INSIGHTS_MAX_GAP", "1"),
            ("VMTELEMETRY_INSIGHTS_SNAPSHOT_INTERVAL", "3600"),
        ];
        ServiceProcess::start(&[&SETTINGS[..], &env].concat())
    }

    /// Leaves only the first `vms` domains on the node.
    fn keep(&self, vms: usize) {
        let path = self.node.uri.strip_prefix("test+unix://").unwrap();
        std::fs::write(path, node_xml(&domains()[..vms])).expect("node file written");
    }
}

/// The insights' status once its actor has seen `vms` VMs (after a start or a restart).
async fn insights_with(service: &ServiceProcess, vms: usize, restarts: u64) -> Value {
    let what = format!("{vms} VMs in the insights");
    wait_for(&what, Duration::from_secs(20), || async {
        let insights = service.status()?["insights"].clone();
        (insights["vms_tracked"] == json!(vms) && insights["restarts"] == json!(restarts))
            .then_some(insights)
    })
    .await
}

async fn trained_then_stopped(service: ServiceProcess, vms: usize) {
    wait_for("every VM trained", Duration::from_secs(60), || async {
        (service.status()?["insights"]["vms_trained"] == json!(vms)).then_some(())
    })
    .await;
    let exit = service
        .terminate(Duration::from_secs(10))
        .expect("it exits");
    assert!(exit.success(), "{exit:?}");
}

/// `curl <args>` on `path` of the service: its JSON answer.
fn curl(service: &ServiceProcess, args: &[&str], path: &str) -> Value {
    let output = Command::new("curl")
        .arg("-s")
        .args(args)
        .arg(format!("{}{path}", service.address))
        .output()
        .expect("curl runs");
    serde_json::from_slice(&output.stdout).unwrap_or(Value::Null)
}

fn counts(insights: &Value) -> [&Value; 3] {
    let snapshot = &insights["snapshot"];
    ["vms_loaded", "vms_restored", "vms_dropped"].map(|key| &snapshot[key])
}

/// The insights say `trained` VMs have a trained model, and `damaged` snapshots were found.
#[track_caller]
fn assert_models(insights: &Value, trained: usize, damaged: u64) {
    let found = (
        &insights["vms_trained"],
        &insights["snapshot"]["damaged_files"],
    );
    assert_eq!(found, (&json!(trained), &json!(damaged)), "{insights}");
}

#[actix_web::test]
async fn trained_models_survive_sigterm_and_a_restart_of_the_insights_actor() {
    let run = Run::new(3).await;
    trained_then_stopped(run.start(), 3).await;

    // Started again, one VM gone meanwhile: the two left are trained from their first cycle.
    run.keep(2);
    let service = run.start();
    let insights = insights_with(&service, 2, 0).await;
    assert!(
        insights["cycles"].as_u64().unwrap() < LEARNING,
        "too late to tell restored from learned again: {insights}"
    );
    assert_models(&insights, 2, 0);
    assert_eq!(counts(&insights), [&json!(3), &json!(2), &json!(1)]);
    let vm = curl(&service, &[], "/api/telemetry/insights/ins-4");
    assert_eq!(vm["model"], json!("trained"), "{vm}");

    // The insights actor restarted through the admin API: from the snapshot again.
    let asked = Instant::now();
    let bearer = format!("Authorization: Bearer {TOKEN}");
    let restart = ["-X", "POST", "-H", bearer.as_str()];
    curl(&service, &restart, "/api/admin/actors/insights/restart");
    let insights = insights_with(&service, 2, 1).await;
    assert!(
        asked.elapsed() < Duration::from_millis(200 * LEARNING),
        "too late to tell restored from learned again: {insights}"
    );
    assert_models(&insights, 2, 0);
    assert_eq!(counts(&insights), [&json!(3), &json!(2), &json!(1)]);
}

#[actix_web::test]
async fn a_damaged_snapshot_is_ignored_said_so_and_replaced() {
    let run = Run::new(2).await;
    let file = run.spool.path().join("insights.redb");
    std::fs::write(&file, b"damaged ".repeat(512)).unwrap();
    let service = run.start();
    let insights = insights_with(&service, 2, 0).await;
    assert_eq!(insights["vms_learning"], json!(2), "{insights}");
    assert_models(&insights, 0, 1);
    let error = insights["snapshot"]["last_error"]
        .as_str()
        .unwrap_or_default();
    assert!(error.contains("unreadable snapshot"), "{insights}");
    let logged = service.logged_starting("the insights' snapshot is unreadable");
    assert_eq!(logged.len(), 1, "{:?}", service.logged());
    let vm = curl(&service, &[], "/api/telemetry/insights/ins-5");
    assert_eq!(vm["model"], json!("learning"), "{vm}");

    // It learns, and its stop leaves a sound snapshot for the next start.
    trained_then_stopped(service, 2).await;
    let service = run.start();
    assert_models(&insights_with(&service, 2, 0).await, 2, 0);
}
