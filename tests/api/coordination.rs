//! `coordination = "etcd"` with the real etcd and the real binary as separate processes: 30
//! test-driver hosts shared by three replicas, each collected by exactly one of them every cycle
//! (checked in InfluxDB); a replica killed with SIGKILL has its hosts resumed by the others
//! within TTL + one poll; restarted, the hosts rebalance without a cycle collected twice; drained
//! by the admin API, it hands its hosts over, and one host handed over by hand moves alone; etcd
//! down at start, or for longer than the TTL.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::helpers::{Influx, TestDomain, TestNode, assert_error, spawn_app, wait_for};
use crate::support::browser::dashboard_panel;
use crate::support::etcd::{OwnEtcd, shared_etcd_url};
use crate::support::service::ServiceProcess;
use vmtelemetry::coordination::rendezvous::owner;

const POLL_SEC: f64 = 1.0;
const ADMIN_TOKEN: &str = "coordination-test-token-0123456789abcdef";

/// Test-driver hosts of a few running domains each, every domain's UUID its own.
pub struct Fleet {
    nodes: Vec<TestNode>,
    /// The UUIDs of each host's domains, by URI.
    vms: BTreeMap<String, Vec<String>>,
}

impl Fleet {
    pub fn new(hosts: u32, per_host: u32, first: u32) -> Self {
        let mut vms = BTreeMap::new();
        let nodes = (0..hosts)
            .map(|h| {
                let domains: Vec<TestDomain> = (0..per_host)
                    .map(|d| TestDomain::new(&format!("vm-{h}-{d}"), 1, first + h * per_host + d))
                    .collect();
                let node = TestNode::new(&domains);
                vms.insert(
                    node.uri.clone(),
                    domains.iter().map(|d| d.uuid.clone()).collect(),
                );
                node
            })
            .collect();
        Fleet { nodes, vms }
    }

    /// `hosts` hosts that the rendezvous spreads over replicas `replica-0..members`, each given
    /// at least one: over random addresses (temporary files) it gives all of 6 hosts to one of
    /// 2 members once in 32 fleets, by design.
    pub fn spread(hosts: u32, per_host: u32, first: u32, members: usize) -> Self {
        let names: Vec<String> = (0..members).map(|i| format!("replica-{i}")).collect();
        let spread = |fleet: &Fleet| {
            let owners: BTreeSet<&str> = (fleet.nodes.iter())
                .filter_map(|node| owner(&node.uri, &names))
                .collect();
            owners.len() == members
        };
        std::iter::repeat_with(|| Fleet::new(hosts, per_host, first))
            .find(spread)
            .expect("an endless supply of fleets")
    }

    pub fn uris(&self) -> String {
        let uris: Vec<&str> = self.nodes.iter().map(|n| n.uri.as_str()).collect();
        uris.join(",")
    }
}

/// What every replica of a test is started with; `ttl` in whole seconds.
pub struct Replicas {
    pub env: Vec<(String, String)>,
}

impl Replicas {
    pub fn new(etcd: &str, test: &str, fleet: &Fleet, influx: &Influx, ttl: u32) -> Self {
        let prefix = format!("/vmt-test-{}-{}-{test}/", std::process::id(), now_ns());
        let env = [
            ("VMTELEMETRY_HOSTS", fleet.uris()),
            ("VMTELEMETRY_INFLUX_DB", influx.db.clone()),
            ("VMTELEMETRY_POLL_INTERVAL", POLL_SEC.to_string()),
            ("VMTELEMETRY_BATCH_MAX_SEC", "0.2".into()),
            ("VMTELEMETRY_STATS_GROUPS", String::new()),
            ("VMTELEMETRY_HOST_METRICS", "false".into()),
            ("VMTELEMETRY_SEED_CONNECTIONS", "1".into()),
            ("VMTELEMETRY_COORDINATION", "etcd".into()),
            ("VMTELEMETRY_ETCD_ENDPOINTS", etcd.to_owned()),
            ("VMTELEMETRY_ETCD_PREFIX", prefix),
            ("VMTELEMETRY_ETCD_MEMBER_TTL", ttl.to_string()),
            ("VMTELEMETRY_ADMIN_TOKEN", ADMIN_TOKEN.into()),
        ];
        let env = env.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        Replicas { env }
    }

    /// Replica `n`, named `replica-<n>` (a restart takes the same name, as a StatefulSet's pod).
    pub fn start(&self, n: usize) -> ServiceProcess {
        let name = format!("replica-{n}");
        let mut env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        env.push(("VMTELEMETRY_MEMBER_NAME", &name));
        ServiceProcess::start(&env)
    }
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

fn secs(ns: i64) -> f64 {
    ns as f64 / 1e9
}

/// The hosts a replica collects, once it is a member.
fn collecting(replica: &ServiceProcess) -> Option<BTreeSet<String>> {
    let status = replica.status()?;
    let coordination = &status["coordination"];
    (coordination["state"] == json!("member")).then(|| {
        (coordination["collecting"].as_array().into_iter().flatten())
            .filter_map(|h| h.as_str().map(str::to_owned))
            .collect()
    })
}

/// Each replica's hosts, once every host is collected by exactly one of them and each of the
/// first `busy` has some.
fn shared_out(
    replicas: &[&ServiceProcess],
    hosts: usize,
    busy: usize,
) -> Option<Vec<BTreeSet<String>>> {
    let shares: Vec<BTreeSet<String>> = replicas
        .iter()
        .map(|r| collecting(r))
        .collect::<Option<_>>()?;
    let total: usize = shares.iter().map(BTreeSet::len).sum();
    let all: BTreeSet<&String> = shares.iter().flatten().collect();
    let busy_ok = shares.iter().take(busy).all(|share| !share.is_empty());
    (total == hosts && all.len() == hosts && busy_ok).then_some(shares)
}

pub async fn wait_shared(
    what: &str,
    replicas: &[&ServiceProcess],
    hosts: usize,
    busy: usize,
) -> Vec<BTreeSet<String>> {
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        if let Some(shares) = shared_out(replicas, hosts, busy) {
            return shares;
        }
        if Instant::now() >= deadline {
            let states: Vec<Value> = replicas
                .iter()
                .map(|r| {
                    r.status()
                        .map_or(Value::Null, |s| s["coordination"].clone())
                })
                .collect();
            panic!("timed out waiting for {what}; the replicas' coordination: {states:?}");
        }
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every VM's `vm_metrics` timestamps (ns), in order, by UUID.
async fn rows_by_vm(influx: &Influx) -> BTreeMap<String, Vec<i64>> {
    let mut times: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for row in influx
        .rows("SELECT cpu_count FROM vm_metrics GROUP BY uuid")
        .await
    {
        let uuid = row["uuid"].as_str().unwrap().to_owned();
        times
            .entry(uuid)
            .or_default()
            .push(row["time"].as_i64().unwrap());
    }
    times.values_mut().for_each(|t| t.sort_unstable());
    times
}

/// No VM collected more often than its cycles allow, in any `WINDOW_SEC` window: two replicas
/// collecting one host at once would double its rows. A host actor's ticks catch up after a
/// delay (under load), never exceeding one a poll interval over a window.
fn assert_no_cycle_twice(rows: &BTreeMap<String, Vec<i64>>) {
    const WINDOW_SEC: f64 = 6.0;
    let most = (WINDOW_SEC / POLL_SEC) as usize + 2;
    for (uuid, times) in rows {
        for (i, start) in times.iter().enumerate() {
            let within = times[i..]
                .iter()
                .take_while(|t| secs(**t - start) < WINDOW_SEC);
            let count = within.count();
            assert!(
                count <= most,
                "{uuid}: {count} rows in {WINDOW_SEC} s from {start}: collected twice"
            );
        }
    }
}

/// Each replica's holds on hosts, from its log: `(host URI, from, to)` in ns, from "collecting"
/// to its host actor's "host handed over"; a hold still open ends at `until`.
fn holds(log: &[Value], until: i64) -> Vec<(String, i64, i64)> {
    let at = |line: &Value| {
        let text = line["timestamp"].as_str().unwrap_or_default();
        let time = chrono::DateTime::parse_from_rfc3339(text).expect("an RFC 3339 timestamp");
        time.timestamp_nanos_opt().unwrap()
    };
    let mut open: BTreeMap<String, i64> = BTreeMap::new();
    let mut holds = Vec::new();
    for line in log {
        let fields = &line["fields"];
        if fields["message"] == json!("collecting") {
            let hosts: Vec<String> =
                serde_json::from_str(fields["hosts"].as_str().unwrap()).unwrap();
            for host in hosts {
                open.insert(host, at(line));
            }
        } else if fields["message"] == json!("host handed over: its actor stops") {
            let host = fields["uri"].as_str().unwrap().to_owned();
            let from = open.remove(&host).expect("handed over a host it had taken");
            holds.push((host, from, at(line)));
        }
    }
    holds.extend(open.into_iter().map(|(host, from)| (host, from, until)));
    holds
}

/// No host held by two replicas at once.
fn assert_held_by_one_at_a_time(mut holds: Vec<(String, i64, i64)>) {
    holds.sort();
    for pair in holds.windows(2) {
        let ((host, _, end), (next, start, _)) = (&pair[0], &pair[1]);
        assert!(
            host != next || start >= end,
            "{host} taken at {start} before its previous holder let it go at {end}"
        );
    }
}

/// The cycles of each host so far, by URI, each from the one replica collecting it.
fn cycles(replicas: &[&ServiceProcess]) -> BTreeMap<String, u64> {
    let mut cycles = BTreeMap::new();
    for replica in replicas {
        let status = replica.status().expect("the status");
        for host in status["hosts"].as_array().unwrap() {
            let uri = host["uri"].as_str().unwrap().to_owned();
            let count = host["total_collections"].as_u64().unwrap();
            assert!(
                cycles.insert(uri, count).is_none(),
                "a host on two replicas"
            );
        }
    }
    cycles
}

#[actix_web::test]
async fn three_replicas_collect_thirty_hosts_once_each_cycle_and_survive_a_kill() {
    let fleet = Fleet::new(30, 3, 1);
    let influx = Influx::new_database().await;
    let ttl = 3;
    let settings = Replicas::new(&shared_etcd_url(), "three", &fleet, &influx, ttl);
    let mut replicas: Vec<ServiceProcess> = (0..3).map(|n| settings.start(n)).collect();
    let all: Vec<&ServiceProcess> = replicas.iter().collect();
    let shares = wait_shared("30 hosts shared by 3 replicas", &all, 30, 3).await;
    wait_for("every host connected", Duration::from_secs(30), || async {
        cycles(&all).values().all(|n| *n > 0).then_some(())
    })
    .await;

    // Steady state: one row per VM for each cycle of its host's one replica.
    let (before, from) = (cycles(&all), now_ns());
    actix_rt::time::sleep(Duration::from_secs(5)).await;
    let (after, to) = (cycles(&all), now_ns());
    assert_eq!(
        shared_out(&all, 30, 3),
        Some(shares.clone()),
        "no host moved"
    );
    actix_rt::time::sleep(Duration::from_secs(1)).await;
    let rows = rows_by_vm(&influx).await;
    assert_eq!(rows.len(), 90, "every VM of every host is written");
    for (uri, uuids) in &fleet.vms {
        let ran = after[uri] - before[uri];
        assert!(ran >= 2, "{uri}: {ran} cycles in 5 s");
        for uuid in uuids {
            let written = rows[uuid]
                .iter()
                .filter(|t| (from..to).contains(*t))
                .count() as u64;
            assert!(
                written.abs_diff(ran) <= 1,
                "{uuid}: {written} rows for {ran} cycles of its host"
            );
        }
    }

    // kill -9: its hosts resume on the others within TTL + one poll (+ etcd's expiry sweep, 0.5 s).
    let victim_log = replicas[0].logged();
    let killed_at = now_ns();
    replicas.remove(0).kill_9();
    let survivors: Vec<&ServiceProcess> = replicas.iter().collect();
    wait_shared("the killed replica's hosts taken over", &survivors, 30, 2).await;
    let taken_over = secs(now_ns() - killed_at);
    actix_rt::time::sleep(Duration::from_secs(2)).await;
    let rows = rows_by_vm(&influx).await;
    let mut gaps = Vec::new();
    for uuid in shares[0].iter().flat_map(|uri| &fleet.vms[uri]) {
        let times = &rows[uuid];
        let last = times.iter().rev().find(|t| **t <= killed_at);
        let first = times.iter().find(|t| **t > killed_at);
        let (last, first) = (last.expect("a row before"), first.expect("a row after"));
        let resumed = secs(first - killed_at);
        assert!(
            resumed <= f64::from(ttl) + POLL_SEC + 1.5,
            "{uuid} resumed {resumed:.2} s after the kill (TTL {ttl} s + one poll)"
        );
        gaps.push(secs(first - last));
    }
    gaps.sort_by(f64::total_cmp);
    println!(
        "takeover seen in the status {taken_over:.2} s after the kill; gap per VM: median \
         {:.2} s, max {:.2} s",
        gaps[gaps.len() / 2],
        gaps[gaps.len() - 1]
    );

    // Restarted under the same name: the hosts rebalance, none collected twice.
    replicas.insert(0, settings.start(0));
    let all: Vec<&ServiceProcess> = replicas.iter().collect();
    wait_shared("30 hosts rebalanced over 3 replicas", &all, 30, 3).await;
    actix_rt::time::sleep(Duration::from_secs(2)).await;
    assert_no_cycle_twice(&rows_by_vm(&influx).await);
    let now = now_ns();
    let mut all_holds = holds(&victim_log, killed_at);
    for replica in &replicas {
        all_holds.extend(holds(&replica.logged(), now));
    }
    assert_held_by_one_at_a_time(all_holds);
    let restarted = replicas[0].status().unwrap();
    let coordination = &restarted["coordination"];
    assert!(
        coordination["assignment_changed_at"].is_string(),
        "{restarted}"
    );
    assert_eq!(
        coordination["members"].as_array().unwrap().len(),
        3,
        "{restarted}"
    );
    // Members and owners are watched, not read every tick: one full read at joining (a second
    // if a watch broke), however many ticks and moves.
    for replica in &replicas {
        let status = replica.status().unwrap();
        let full_reads = status["coordination"]["full_reads"].as_u64().unwrap();
        assert!((1..=2).contains(&full_reads), "{status}");
    }
}

#[actix_web::test]
async fn a_drained_replica_hands_over_and_an_etcd_outage_stops_collection_before_the_lease_ends() {
    let mut etcd = OwnEtcd::start();
    let fleet = Fleet::spread(6, 2, 1000, 2);
    let influx = Influx::new_database().await;
    let ttl = 6;
    let settings = Replicas::new(&etcd.url, "outage", &fleet, &influx, ttl);
    let replicas = [settings.start(0), settings.start(1)];
    let both = [&replicas[0], &replicas[1]];
    wait_shared("6 hosts shared by 2 replicas", &both, 6, 2).await;

    // Drained by hand: replica 0 hands every host over, and takes its share again when resumed.
    let (code, _) = replicas[0].request("POST", "/api/admin/coordination/drain", None);
    assert_eq!(code, 401);
    let (code, body) =
        replicas[0].request("POST", "/api/admin/coordination/drain", Some(ADMIN_TOKEN));
    assert_eq!((code, &body["draining"]), (200, &json!(true)), "{body}");
    wait_for(
        "every host on the replica not drained",
        Duration::from_secs(30),
        || async {
            let shares = shared_out(&[&replicas[1], &replicas[0]], 6, 1)?;
            shares[1].is_empty().then_some(())
        },
    )
    .await;
    // Its VMs leave its API (and /metrics): the other replica shows them.
    let vms = |replica: &ServiceProcess| replica.request("GET", "/api/telemetry/vms", None).1;
    wait_for(
        "the drained replica's VMs listed only by the other",
        Duration::from_secs(10),
        || async {
            (vms(&replicas[0])["count"] == json!(0) && vms(&replicas[1])["count"] == json!(12))
                .then_some(())
        },
    )
    .await;
    let (code, _) =
        replicas[0].request("POST", "/api/admin/coordination/resume", Some(ADMIN_TOKEN));
    assert_eq!(code, 200);
    wait_shared("6 hosts shared again", &both, 6, 2).await;

    // etcd gone for longer than the TTL: collection goes on until shortly before the lease would
    // expire, then stops, and /ready says why.
    let down_at = now_ns();
    etcd.kill();
    for replica in &replicas {
        wait_for(
            "the lease given up",
            Duration::from_secs(f64::from(ttl) as u64 + 5),
            || async {
                let status = replica.status()?;
                (status["coordination"]["state"] == json!("lost")).then_some(())
            },
        )
        .await;
        let (code, body) = replica.request("GET", "/ready", None);
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            code == 503 && message.contains("lease lost"),
            "{code} {body}"
        );
    }
    actix_rt::time::sleep(Duration::from_secs(2)).await;
    let rows = rows_by_vm(&influx).await;
    for (uuid, times) in &rows {
        assert!(
            times.iter().any(|t| *t > down_at + 1_000_000_000),
            "{uuid}: collection stopped at once, not at the lease's end"
        );
        assert!(
            !times
                .iter()
                .any(|t| *t > down_at + i64::from(ttl) * 1_000_000_000),
            "{uuid}: collected after the lease would have expired"
        );
    }

    // etcd back: both join again (their old leases revoked), every host collected once more.
    let up_at = now_ns();
    etcd.resume();
    wait_shared("6 hosts shared after etcd came back", &both, 6, 2).await;
    for replica in &replicas {
        wait_for("ready again", Duration::from_secs(15), || async {
            (replica.request("GET", "/ready", None).0 == 200).then_some(())
        })
        .await;
    }
    actix_rt::time::sleep(Duration::from_secs(2)).await;
    let rows = rows_by_vm(&influx).await;
    assert!(
        rows.values().all(|times| times.iter().any(|t| *t > up_at)),
        "{rows:?}"
    );
    assert_no_cycle_twice(&rows);
    let now = now_ns();
    let every_hold = replicas
        .iter()
        .flat_map(|r| holds(&r.logged(), now))
        .collect();
    assert_held_by_one_at_a_time(every_hold);
}

#[actix_web::test]
async fn a_replica_started_while_etcd_is_down_collects_nothing_until_it_joins() {
    let mut etcd = OwnEtcd::not_started();
    let fleet = Fleet::new(2, 2, 2000);
    let influx = Influx::new_database().await;
    let settings = Replicas::new(&etcd.url, "late", &fleet, &influx, 3);
    let replica = settings.start(0);
    let started = Instant::now();
    let status = wait_for("etcd seen unreachable", Duration::from_secs(15), || async {
        let status = replica.status()?;
        status["coordination"]["etcd_unreachable_since"]
            .is_string()
            .then_some(status)
    })
    .await;
    let coordination = &status["coordination"];
    assert_eq!(coordination["state"], json!("joining"), "{status}");
    assert_eq!(coordination["collecting"], json!([]), "{status}");
    assert_eq!(status["hosts"], json!([]), "no host actor runs: {status}");
    let (code, body) = replica.request("GET", "/ready", None);
    assert_eq!(code, 503, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not a member yet"),
        "{body}"
    );
    // The dashboard says so too.
    let shown = dashboard_panel(&replica.address, "coordination-status", "joining").await;
    assert!(
        shown.starts_with("Coordination: not a member yet") && shown.contains("collecting 0 of 2"),
        "{shown}"
    );
    // A few ticks more: still nothing collected.
    actix_rt::time::sleep(Duration::from_secs(2).saturating_sub(started.elapsed())).await;
    assert!(rows_by_vm(&influx).await.is_empty());

    etcd.resume();
    wait_shared("both hosts collected once etcd is up", &[&replica], 2, 1).await;
    influx
        .rows_when(
            "both hosts' VMs written",
            Duration::from_secs(15),
            "SELECT * FROM vm_metrics",
            |rows| {
                let uuids: BTreeSet<&str> =
                    rows.iter().filter_map(|r| r["uuid"].as_str()).collect();
                uuids.len() == 4
            },
        )
        .await;
    wait_for("ready once a member", Duration::from_secs(15), || async {
        (replica.request("GET", "/ready", None).0 == 200).then_some(())
    })
    .await;
}

/// The replica's status once it has recorded `why` as its error (etcd refused it).
pub async fn refused_status(replica: &ServiceProcess, why: &str) -> Value {
    // Under load etcd's answer may come after the client's timeout first: wait for the refusal.
    wait_for(
        &format!("the refusal `{why}` in the status"),
        Duration::from_secs(30),
        || async {
            let status = replica.status()?;
            let error = status["coordination"]["last_error"].as_str()?;
            error.contains(why).then_some(status)
        },
    )
    .await
}

/// `POST /api/admin/coordination/hand-over?host=<uri>` on `replica`.
fn hand_over(replica: &ServiceProcess, host: &str, token: Option<&str>) -> (u16, Value) {
    let encoded: String = url::form_urlencoded::byte_serialize(host.as_bytes()).collect();
    let path = format!("/api/admin/coordination/hand-over?host={encoded}");
    replica.request("POST", &path, token)
}

#[actix_web::test]
async fn one_host_handed_over_by_hand_moves_to_the_other_replica_until_resumed() {
    let fleet = Fleet::new(4, 1, 2000);
    let influx = Influx::new_database().await;
    let ttl = 6;
    let settings = Replicas::new(&shared_etcd_url(), "hand-over", &fleet, &influx, ttl);
    let replicas = [settings.start(0), settings.start(1)];
    let both = [&replicas[0], &replicas[1]];
    let shares = wait_shared("4 hosts shared by 2 replicas", &both, 4, 0).await;
    let (from, to) = match shares[0].is_empty() {
        true => (1, 0),
        false => (0, 1),
    };
    let host = shares[from].first().unwrap().clone();

    let (code, _) = hand_over(&replicas[from], &host, None);
    assert_eq!(code, 401);
    for (replica, uri) in [(from, "test:///nowhere.xml"), (to, host.as_str())] {
        let answer = hand_over(&replicas[replica], uri, Some(ADMIN_TOKEN));
        assert_error(&answer, 404, "host_not_here", uri);
    }
    let path = "/api/admin/coordination/hand-over";
    let answer = replicas[from].request("POST", path, Some(ADMIN_TOKEN));
    assert_error(&answer, 400, "invalid_parameter", "host");

    // Handed over: the other replica collects it within TTL + one poll, the first does not.
    let (code, body) = hand_over(&replicas[from], &host, Some(ADMIN_TOKEN));
    assert_eq!((code, &body["declined"]), (200, &json!([host])), "{body}");
    let moved = wait_for(
        "the host collected by the other replica only",
        Duration::from_secs(u64::from(ttl) + POLL_SEC as u64),
        || async {
            let shares = shared_out(&both, 4, 0)?;
            (shares[to].contains(&host) && !shares[from].contains(&host)).then_some(shares)
        },
    )
    .await;
    let (moved_at, uuid) = (now_ns(), &fleet.vms[&host][0]);
    wait_for("its VM written again", Duration::from_secs(10), || async {
        let rows = rows_by_vm(&influx).await;
        rows.get(uuid)?.iter().any(|t| *t > moved_at).then_some(())
    })
    .await;
    for (n, share) in moved.iter().enumerate() {
        let expected: BTreeSet<String> = match n == to {
            true => shares[to].iter().chain([&host]).cloned().collect(),
            false => shares[from]
                .iter()
                .filter(|h| **h != host)
                .cloned()
                .collect(),
        };
        assert_eq!(share, &expected, "only the host handed over moved");
    }
    let status = replicas[to].status().unwrap();
    let members = status["coordination"]["members"]
        .as_array()
        .unwrap()
        .clone();
    let declining = members.iter().find(|m| m["declined"] == json!([host]));
    assert_eq!(
        declining.map(|m| &m["name"]),
        Some(&json!(format!("replica-{from}")))
    );

    // Resumed: the declined host comes back, the assignment is the rendezvous's again.
    let (code, body) =
        replicas[from].request("POST", "/api/admin/coordination/resume", Some(ADMIN_TOKEN));
    assert_eq!((code, &body["declined"]), (200, &json!([])), "{body}");
    wait_for(
        "the rendezvous assignment back",
        Duration::from_secs(20),
        || async { (shared_out(&both, 4, 0)? == shares).then_some(()) },
    )
    .await;
    actix_rt::time::sleep(Duration::from_secs(2)).await;
    let rows = rows_by_vm(&influx).await;
    assert_eq!(rows.len(), 4, "every VM written");
    assert_no_cycle_twice(&rows);
    let now = now_ns();
    let every_hold = both.iter().flat_map(|r| holds(&r.logged(), now)).collect();
    assert_held_by_one_at_a_time(every_hold);
}

#[actix_web::test]
async fn static_shards_have_no_coordination_to_drain() {
    let app = spawn_app(&[
        ("VMTELEMETRY_LIBVIRT_URI", "test:///default"),
        ("VMTELEMETRY_ADMIN_TOKEN", ADMIN_TOKEN),
    ])
    .await;
    assert_eq!(app.status().await["coordination"], Value::Null);
    for path in [
        "/api/admin/coordination/drain",
        "/api/admin/coordination/resume",
        "/api/admin/coordination/hand-over",
    ] {
        let answer = app.request("POST", path, Some(ADMIN_TOKEN)).await;
        let answer = (answer.status, answer.body);
        assert_error(
            &answer,
            404,
            "coordination_static",
            "coordination = \"etcd\"",
        );
        let answer = app.request("GET", path, Some(ADMIN_TOKEN)).await;
        assert_eq!(answer.status, 405);
    }
}

#[actix_web::test]
async fn a_replica_authenticates_to_etcd_with_its_user_and_says_when_it_cannot() {
    let etcd = OwnEtcd::start();
    etcd.enable_auth("s3cret-pw");
    let fleet = Fleet::new(1, 1, 3000);
    let influx = Influx::new_database().await;
    let mut settings = Replicas::new(&etcd.url, "auth", &fleet, &influx, 3);
    settings
        .env
        .push(("VMTELEMETRY_ETCD_USER".into(), "root".into()));
    settings
        .env
        .push(("VMTELEMETRY_ETCD_PASSWORD".into(), "s3cret-pw".into()));
    let member = settings.start(0);
    wait_shared(
        "the host collected by the authenticated replica",
        &[&member],
        1,
        1,
    )
    .await;

    settings.env.pop();
    settings
        .env
        .push(("VMTELEMETRY_ETCD_PASSWORD".into(), "wrong".into()));
    let refused = settings.start(1);
    let status = refused_status(&refused, "authentication failed").await;
    let coordination = &status["coordination"];
    assert_eq!(coordination["state"], json!("joining"), "{status}");
    let error = coordination["last_error"].as_str().unwrap();
    assert!(error.contains("authentication failed"), "{error}");
    assert!(
        coordination["etcd_unreachable_since"].is_null(),
        "etcd answered: {status}"
    );
    assert!(
        !status.to_string().contains("wrong"),
        "the password shows: {status}"
    );
    let (code, body) = refused.request("GET", "/ready", None);
    assert_eq!(code, 503, "{body}");
}
