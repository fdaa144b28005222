//! `coordination = "etcd"`: a replica whose every thread stalls (SIGSTOP, as a starved machine)
//! while etcd is silent too, past its lease, starts no cycle once it runs again: its host actors
//! check the lease's deadline on a monotonic clock before each cycle, whatever the coordinator's
//! late tick has yet to find out. Then etcd comes back and it joins again.

use std::time::Duration;

use serde_json::json;

use crate::coordination::{Fleet, Replicas, wait_shared};
use crate::helpers::Influx;
use crate::support::etcd::OwnEtcd;
use crate::support::signal;

#[actix_web::test]
async fn a_replica_stalled_past_its_lease_starts_no_cycle_when_it_runs_again() {
    let etcd = OwnEtcd::start();
    let fleet = Fleet::new(1, 1, 5000);
    let influx = Influx::new_database().await;
    let ttl = 3;
    let replica = Replicas::new(&etcd.url, "stall", &fleet, &influx, ttl).start(0);
    wait_shared("the host collected", &[&replica], 1, 1).await;
    let query = "SELECT cpu_count FROM vm_metrics";
    influx
        .rows_when("a row", Duration::from_secs(15), query, |rows| {
            !rows.is_empty()
        })
        .await;

    // Stalled past the lease: its last renewal was before `stalled`, the lease ends by
    // `stalled + ttl`. etcd silent: the coordinator learns nothing for a request timeout.
    signal(replica.pid(), "STOP");
    etcd.freeze();
    let stalled = chrono::Utc::now();
    actix_rt::time::sleep(Duration::from_secs(u64::from(ttl) + 1)).await;
    signal(replica.pid(), "CONT");
    actix_rt::time::sleep(Duration::from_secs(3)).await;
    let late = influx.rows(query).await;
    let after: Vec<_> = (late.iter())
        .filter(|row| row["time"].as_i64().unwrap() > stalled.timestamp_nanos_opt().unwrap())
        .collect();
    assert!(after.is_empty(), "cycles after the lease ended: {after:?}");
    let status = replica.status().unwrap();
    assert_eq!(status["coordination"]["state"], json!("lost"), "{status}");

    // etcd back: it joins again and collects.
    etcd.thaw();
    let back = chrono::Utc::now().timestamp_nanos_opt().unwrap();
    influx
        .rows_when(
            "a row once joined",
            Duration::from_secs(20),
            query,
            |rows| rows.iter().any(|row| row["time"].as_i64().unwrap() > back),
        )
        .await;
}
