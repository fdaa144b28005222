//! libvirt failing under the service: a daemon that restarts or freezes, a host that stays down, a
//! call that never returns, domains that vanish mid-cycle. Each test that stops or freezes a
//! daemon runs a libvirtd of its own (the shared one serves the other tests meanwhile).

use std::collections::VecDeque;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use vmtelemetry::libvirt::event_loop;

use crate::helpers::{Influx, TestApp, TestDomain, TestNode, collecting_from, spawn_app, wait_for};
use crate::support::browser::{host_row, on_page};
use crate::support::libvirtd::PrivateLibvirtd;
use crate::support::service::ServiceProcess;
use crate::support::task_limit::{ShortHanded, assert_short_handed, lift_and_see_threads_again};

fn host<'a>(status: &'a Value, uri: &str) -> &'a Value {
    status["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["uri"] == json!(uri))
        .unwrap_or_else(|| panic!("{uri} in {status}"))
}

fn count(value: &Value) -> u64 {
    value
        .as_u64()
        .unwrap_or_else(|| panic!("{value} is a count"))
}

async fn host_status(app: &TestApp, uri: &str) -> Value {
    host(&app.status().await, uri).clone()
}

/// The host's status once `ready` holds of it; fails the test after `within` with `what`.
async fn host_when(
    app: &TestApp,
    uri: &str,
    what: &str,
    within: Duration,
    ready: impl Fn(&Value) -> bool,
) -> Value {
    wait_for(what, within, || async {
        let host = host_status(app, uri).await;
        ready(&host).then_some(host)
    })
    .await
}

/// Waits until the host's connection is `state` ("connected", "disconnected"): its status then.
async fn host_in_state(app: &TestApp, uri: &str, state: &str, within: Duration) -> Value {
    let what = format!("the host {state}");
    host_when(app, uri, &what, within, |host| {
        host["connection"] == json!(state)
    })
    .await
}

/// Waits until the host is connected and has completed two cycles.
async fn connected_and_collecting(app: &TestApp, uri: &str) {
    let what = "the host connected and collecting";
    host_when(app, uri, what, Duration::from_secs(20), |host| {
        host["connection"] == json!("connected") && count(&host["total_collections"]) >= 2
    })
    .await;
}

#[actix_web::test]
async fn collection_resumes_by_itself_after_libvirtd_restarts() {
    let mut daemon = PrivateLibvirtd::start(false);
    let node = TestNode::new(&[TestDomain::new("restart-a", 1, 1)]);
    let uri = format!("{}?socket={}", node.uri, daemon.socket().display());
    let (app, _influx) = collecting_from(&uri, &[]).await;
    connected_and_collecting(&app, &uri).await;

    daemon.stop();
    let down = host_in_state(&app, &uri, "disconnected", Duration::from_secs(20)).await;
    assert!(down["next_attempt_time"].is_string(), "{down}");
    assert!(
        down["reconnect_backoff_sec"].as_f64().unwrap() > 0.0,
        "{down}"
    );
    // Down for a while: the attempts back off.
    actix_rt::time::sleep(Duration::from_secs(3)).await;

    daemon.run();
    let back = host_in_state(&app, &uri, "connected", Duration::from_secs(30)).await;
    // A success resets the backoff.
    assert_eq!(back["next_attempt_time"], Value::Null, "{back}");
    assert_eq!(back["reconnect_backoff_sec"], Value::Null, "{back}");
    let collected = count(&back["total_collections"]);
    let what = "collections after the restart";
    host_when(&app, &uri, what, Duration::from_secs(10), |host| {
        count(&host["total_collections"]) >= collected + 5
            && host["connection"] == json!("connected")
    })
    .await;
    assert_eq!(host_status(&app, &uri).await["vms_monitored"], json!(1));
    assert_eq!(
        host_status(&app, &uri).await["restarts"],
        json!(0),
        "no actor restart was needed"
    );
}

#[actix_web::test]
async fn a_small_hosts_second_connection_dropped_by_libvirtd_costs_no_domain_and_is_replaced() {
    const N: usize = 6;
    let daemon = PrivateLibvirtd::start(false);
    let domains = TestDomain::running("spread-", 0..N as u32);
    let node = TestNode::new(&domains);
    let uri = format!("{}?socket={}", node.uri, daemon.socket().display());
    let (app, influx) = collecting_from(
        &uri,
        &[
            ("VMTELEMETRY_POLL_INTERVAL", "0.2"),
            ("VMTELEMETRY_HOST_METRICS", "true"),
            ("VMTELEMETRY_SEED_CONNECTIONS", "2"),
        ],
    )
    .await;
    // Six domains: from its second cycle on, the seed cycle runs over two connections.
    let mut held = wait_for("two connections", Duration::from_secs(20), || async {
        let clients = daemon.clients();
        (clients.len() == 2).then_some(clients)
    })
    .await;
    for _ in 0..3 {
        // Ids grow: the newer connection is the helper.
        let helper = *held.iter().max().unwrap();
        daemon.disconnect(helper);
        held = wait_for("the helper replaced", Duration::from_secs(20), || async {
            let clients = daemon.clients();
            (clients.len() == 2 && !clients.contains(&helper)).then_some(clients)
        })
        .await;
    }
    // Every cycle read every domain, and none failed.
    let cycles = wait_for("every cycle stored", Duration::from_secs(20), || {
        influx.complete_cycles(N, 8)
    })
    .await;
    assert!(
        cycles.iter().all(|row| row["domains"] == json!(N)),
        "{cycles:?}"
    );
    let host = host_status(&app, &uri).await;
    assert_eq!(host["total_errors"], json!(0), "{host}");
    assert_eq!(host["domains_vanished"], json!(0), "{host}");
    assert_eq!(host["restarts"], json!(0), "{host}");
}

#[actix_web::test]
async fn a_host_that_stays_down_is_retried_ever_less_often() {
    let uri = "qemu+unix:///system?socket=/nonexistent/vmt-backoff/libvirt-sock";
    let app = spawn_app(&[
        ("VMTELEMETRY_LIBVIRT_URI", uri),
        ("VMTELEMETRY_POLL_INTERVAL", "0.1"),
    ])
    .await;
    actix_rt::time::sleep(Duration::from_millis(500)).await;
    let early = host_status(&app, uri).await;
    actix_rt::time::sleep(Duration::from_millis(5500)).await;
    let late = host_status(&app, uri).await;

    assert_eq!(late["connection"], json!("disconnected"), "{late}");
    assert!(
        late["last_error"]
            .as_str()
            .unwrap()
            .contains("cannot connect"),
        "{late}"
    );
    // 60 cycles in 6 s; attempts spaced 0.1, 0.2, 0.4 … 3.2 s (each jittered to half to full).
    let attempts = count(&late["total_errors"]);
    assert!((3..=10).contains(&attempts), "{attempts} attempts: {late}");
    let backoff = |h: &Value| h["reconnect_backoff_sec"].as_f64().unwrap();
    assert!(backoff(&early) <= 0.8, "{early}");
    assert!(backoff(&late) >= 1.6, "{late}");
    let next = late["next_attempt_time"].as_str().unwrap();
    let last_error = late["last_error_time"].as_str().unwrap();
    assert!(parse_time(next) > parse_time(last_error), "{late}");
}

fn parse_time(text: &str) -> chrono::DateTime<chrono::Utc> {
    text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
}

/// A unix socket that accepts every connection and never answers, until dropped.
struct SilentSocket {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl SilentSocket {
    fn bind(path: &Path) -> Self {
        let listener = UnixListener::bind(path).unwrap();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut held = Vec::new();
            while !stopped.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => held.push(stream),
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        SilentSocket {
            path: path.to_owned(),
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for SilentSocket {
    /// Closes every connection it held (a call blocked on one then fails) and the socket.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// What only these tests ask of the service's process.
impl ServiceProcess {
    /// Restarts one actor through the admin API.
    async fn restart(&self, actor: &str, token: &str) {
        let encoded: String = url::form_urlencoded::byte_serialize(actor.as_bytes()).collect();
        let response = awc::Client::default()
            .post(format!(
                "{}/api/admin/actors/{encoded}/restart",
                self.address
            ))
            .bearer_auth(token)
            .send()
            .await
            .expect("the service answers");
        assert_eq!(response.status().as_u16(), 202, "restarting {actor}");
    }

    /// Waits until the host's stuck call has ended and new connections are tried (and fail):
    /// its status then.
    async fn connecting_again(&self, uri: &str) -> Value {
        wait_for("the stuck call to end", Duration::from_secs(20), || async {
            let status = self.status().expect("the service answers");
            let host = host(&status, uri).clone();
            let last_error = host["last_error"].as_str().unwrap_or_default();
            (host["stuck_call_since"].is_null() && last_error.contains("cannot connect"))
                .then_some(host)
        })
        .await
    }

    /// CPU time a thread has used, in clock ticks (user + system).
    fn cpu_ticks(&self, tid: &str) -> u64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/task/{tid}/stat", self.pid())).unwrap();
        // Fields after the parenthesised name: state is the first, utime the 12th, stime the 13th.
        let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 1..]
            .split_whitespace()
            .collect();
        fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
    }
}

#[actix_web::test]
async fn a_call_that_never_returns_costs_only_its_host_and_one_thread() {
    let dir = tempfile::tempdir().unwrap();
    let silent = SilentSocket::bind(&dir.path().join("sock"));
    let hung = format!("qemu+unix:///system?socket={}", silent.path.display());
    let healthy = "test:///default";
    let influx = Influx::new_database().await;
    let service = ServiceProcess::start(&[
        ("VMTELEMETRY_HOSTS", &format!("{hung},{healthy}")),
        ("VMTELEMETRY_POLL_INTERVAL", "0.2"),
        ("VMTELEMETRY_LIBVIRT_TIMEOUT", "1"),
        ("VMTELEMETRY_INFLUX_DB", &influx.db),
    ]);
    // Thread names are cut to 15 bytes: "libvirt qemu+un" is the hung host's worker.
    let hung_thread = "libvirt qemu+un";

    let timed_out = wait_for(
        "the hung host's timeout",
        Duration::from_secs(20),
        || async {
            let status = service.status().expect("the service answers");
            let hung = host(&status, &hung).clone();
            hung["stuck_call_since"].is_string().then_some(hung)
        },
    )
    .await;
    assert!(
        timed_out["last_error"]
            .as_str()
            .unwrap()
            .contains("within 1s"),
        "{timed_out}"
    );
    let threads_before = service.threads().len();
    let status = service.status().expect("the service answers");
    let (errors_before, collections_before) = (
        count(&host(&status, &hung)["total_errors"]),
        count(&host(&status, healthy)["total_collections"]),
    );
    let started = Instant::now();

    // Several timeouts' worth of cycles.
    for _ in 0..12 {
        actix_rt::time::sleep(Duration::from_millis(500)).await;
        let stuck = service.threads_named(hung_thread);
        assert_eq!(stuck.len(), 1, "{:?}", service.threads());
    }
    let elapsed = started.elapsed().as_secs_f64();
    let status = service.status().expect("the service answers");
    let hung_host = host(&status, &hung);
    let healthy_host = host(&status, healthy);
    assert_eq!(
        hung_host["connection"],
        json!("disconnected"),
        "{hung_host}"
    );
    assert_eq!(
        hung_host["stuck_call_since"], timed_out["stuck_call_since"],
        "{hung_host}"
    );
    let last_error = hung_host["last_error"].as_str().unwrap();
    assert!(
        last_error.contains("has not returned yet") && last_error.contains("within 1s"),
        "{hung_host}"
    );
    // Each cycle counts: the host is not quietly forgotten.
    assert!(
        count(&hung_host["total_errors"]) >= errors_before + 10,
        "{hung_host}"
    );
    // The other host kept its pace: a collection every 0.2 s (with slack for a loaded machine).
    let collected = count(&healthy_host["total_collections"]) - collections_before;
    let expected = elapsed / 0.2;
    assert!(
        collected as f64 >= expected * 0.6,
        "{collected} collections in {elapsed:.1} s: {healthy_host}"
    );
    assert_eq!(healthy_host["total_errors"], json!(0), "{healthy_host}");
    assert_eq!(healthy_host["connection"], json!("connected"));
    let threads_after = service.threads().len();
    assert!(
        threads_after <= threads_before + 1,
        "{threads_before} threads, then {threads_after}: {:?}",
        service.threads()
    );
    // Local sockets only: no keepalive, so no event loop either.
    assert_eq!(
        service.threads_named(event_loop::THREAD_NAME),
        Vec::<String>::new()
    );
    // The dashboard shows the stuck host apart from the healthy one.
    let uri = hung.clone();
    on_page(service.address.clone(), move |tab| {
        let row = host_row(tab, &uri, "row.state === 'stuck'");
        let connection = row["connection"].as_str().unwrap();
        assert!(
            connection.starts_with("stuck in a libvirt call since "),
            "{row}"
        );
        let healthy = host_row(tab, healthy, "true");
        assert_eq!(healthy["state"], json!("connected"), "{healthy}");
    })
    .await;

    // Once the blocked call fails, the thread ends and new connections are tried again.
    drop(silent);
    let freed = service.connecting_again(&hung).await;
    assert_eq!(freed["connection"], json!("disconnected"));
    assert!(service.threads_named(hung_thread).len() <= 1);
}

#[actix_web::test]
async fn with_no_thread_to_spare_a_host_backs_off_then_reads_every_domain_over_one_connection() {
    // The node appears once the service can start no thread but a host's own: until then, the
    // host cannot connect.
    let dir = tempfile::tempdir().unwrap();
    let node_path = dir.path().join("node.xml");
    let uri = format!("test+unix://{}", node_path.display());
    // Not even the host's own thread: it backs off as from a failed connection.
    let limited = ShortHanded::collecting(&uri, 0, &[("VMTELEMETRY_POLL_INTERVAL", "0.2")]).await;
    let (service, cgroup, influx) = (&limited.service, &limited.cgroup, &limited.influx);
    let refused = wait_for(
        "the host's thread to be refused",
        Duration::from_secs(20),
        || async {
            let status = service.status()?;
            let host = host(&status, &uri).clone();
            host["last_error"]
                .as_str()?
                .starts_with("cannot start a libvirt thread")
                .then_some(host)
        },
    )
    .await;
    actix_rt::time::sleep(Duration::from_secs(3)).await;
    let status = service.status().expect("the service answers");
    let backing_off = host(&status, &uri);
    assert_eq!(
        backing_off["connection"],
        json!("disconnected"),
        "{backing_off}"
    );
    assert!(
        backing_off["reconnect_backoff_sec"].is_f64(),
        "{backing_off}"
    );
    // Polled every 0.2 s, 15 attempts in 3 s; backing off from 0.2 s doubling, at most 5.
    let attempts = count(&backing_off["total_errors"]) - count(&refused["total_errors"]);
    assert!(attempts <= 5, "{attempts} attempts in 3 s: {backing_off}");
    // One thread more: the one a host's connection attempt starts to own the connection.
    cgroup.allow_more(1);
    // Enough domains for a seed cycle over two connections side by side (`seed_connections`).
    let domains = TestDomain::running("spare-", 1..=12);
    let node = TestNode::new(&domains);
    std::fs::copy(node.uri.strip_prefix("test+unix://").unwrap(), &node_path).unwrap();

    let connected = wait_for(
        "the host to connect and read its domains",
        Duration::from_secs(30),
        || async {
            let status = service.status()?;
            let host = host(&status, &uri).clone();
            (host["vms_monitored"] == json!(12)).then_some(host)
        },
    )
    .await;
    // Cycles on: every domain each cycle (the helper connection's share read over the main
    // one), with no error.
    let read_on = wait_for("more cycles", Duration::from_secs(30), || async {
        let status = service.status()?;
        let host = host(&status, &uri).clone();
        (count(&host["total_collections"]) >= count(&connected["total_collections"]) + 8)
            .then_some(host)
    })
    .await;
    assert_eq!(read_on["vms_monitored"], json!(12), "{read_on}");
    assert_eq!(
        read_on["total_errors"], connected["total_errors"],
        "{read_on}"
    );
    assert_eq!(read_on["connection"], json!("connected"), "{read_on}");
    let rows = influx
        .rows("SELECT COUNT(cputime_ns) FROM vm_metrics GROUP BY uuid")
        .await;
    assert_eq!(rows.len(), 12, "{rows:?}");
    // All of it on the host's own thread: no helper thread could be started.
    assert_short_handed(service, &uri);

    // Threads again once they can be started.
    lift_and_see_threads_again(cgroup, service, &uri).await;
    let status = service.status().expect("the service answers");
    let host = host(&status, &uri);
    assert_eq!(host["vms_monitored"], json!(12), "{host}");
    assert_eq!(host["total_errors"], connected["total_errors"], "{host}");
}

/// Collections a host of `status` has made, by URI.
fn collections(status: &Value, uri: &str) -> u64 {
    count(&host(status, uri)["total_collections"])
}

#[actix_web::test]
async fn libvirts_event_loop_runs_only_for_remote_hosts_and_idles_in_poll() {
    let local = "test:///default";
    let influx = Influx::new_database().await;
    let service = ServiceProcess::start(&[
        ("VMTELEMETRY_LIBVIRT_URI", local),
        ("VMTELEMETRY_POLL_INTERVAL", "0.2"),
        ("VMTELEMETRY_INFLUX_DB", &influx.db),
    ]);
    wait_for("local collections", Duration::from_secs(20), || async {
        (collections(&service.status().expect("the service answers"), local) >= 5).then_some(())
    })
    .await;
    assert_eq!(
        service.threads_named(event_loop::THREAD_NAME),
        Vec::<String>::new(),
        "a local host needs no event loop"
    );
    drop(service);

    let daemon = PrivateLibvirtd::start(true);
    let remote = format!("test+tcp://127.0.0.1:{}/default", daemon.tcp_port.unwrap());
    let service = ServiceProcess::start(&[
        ("VMTELEMETRY_HOSTS", &format!("{remote},{local}")),
        ("VMTELEMETRY_POLL_INTERVAL", "0.2"),
        ("VMTELEMETRY_INFLUX_DB", &influx.db),
    ]);
    let both =
        |status: &Value| collections(status, &remote) >= 2 && collections(status, local) >= 2;
    wait_for("both hosts collecting", Duration::from_secs(20), || async {
        both(&service.status().expect("the service answers")).then_some(())
    })
    .await;
    let events = service.threads_named(event_loop::THREAD_NAME);
    assert_eq!(events.len(), 1, "one event loop: {:?}", service.threads());
    let event_ticks = service.cpu_ticks(&events[0]);
    let started = Instant::now();
    actix_rt::time::sleep(Duration::from_secs(4)).await;
    let elapsed = started.elapsed().as_secs_f64();
    // It waits in poll(): well under 5 % of one CPU while both hosts are collected every 0.2 s.
    let used = (service.cpu_ticks(&events[0]) - event_ticks) as f64 / 100.0;
    assert!(used < elapsed * 0.05, "event loop used {used} s of CPU");
    let status = service.status().expect("the service answers");
    assert!(collections(&status, &remote) >= 10, "{status}");
    assert_eq!(host(&status, &remote)["total_errors"], json!(0), "{status}");
}

#[actix_web::test]
async fn keepalive_frees_a_call_stuck_on_a_frozen_remote_daemon() {
    let daemon = PrivateLibvirtd::start(true);
    let uri = format!("test+tcp://127.0.0.1:{}/default", daemon.tcp_port.unwrap());
    // Pings 1 s apart, 3 unanswered: the call ends ≈ 4 s into the freeze, not 25 s or more as
    // with the defaults (5 s × 5).
    let (app, _influx) = collecting_from(
        &uri,
        &[
            ("VMTELEMETRY_LIBVIRT_TIMEOUT", "1"),
            ("VMTELEMETRY_LIBVIRT_KEEPALIVE_INTERVAL", "1"),
            ("VMTELEMETRY_LIBVIRT_KEEPALIVE_COUNT", "3"),
        ],
    )
    .await;
    connected_and_collecting(&app, &uri).await;

    daemon.freeze();
    let frozen = Instant::now();
    let stuck = wait_for("a stuck call", Duration::from_secs(20), || async {
        let host = host_status(&app, &uri).await;
        host["stuck_call_since"].as_str().map(str::to_owned)
    })
    .await;
    // Nothing but keepalive can end that call while the daemon is frozen: its socket stays open.
    let what = "keepalive to end the stuck call";
    host_when(&app, &uri, what, Duration::from_secs(20), |host| {
        host["stuck_call_since"].as_str() != Some(stuck.as_str())
    })
    .await;
    let freed = frozen.elapsed();
    assert!(
        freed >= Duration::from_secs(2) && freed < Duration::from_secs(15),
        "freed after {freed:?}: not the configured keepalive"
    );

    daemon.thaw();
    let back = host_in_state(&app, &uri, "connected", Duration::from_secs(60)).await;
    let collected = count(&back["total_collections"]);
    let what = "collections after the thaw";
    host_when(&app, &uri, what, Duration::from_secs(10), |host| {
        count(&host["total_collections"]) >= collected + 3
    })
    .await;
}

/// Creates and destroys transient test domains on a daemon's shared `test:///default` as fast as
/// it can, keeping about 20 alive, until dropped.
struct Churn {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<u64>>,
}

impl Churn {
    fn start(uri: String) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let connect =
                virt::connect::Connect::open(Some(&uri)).expect("a read-write connection");
            let mut alive = VecDeque::new();
            let mut created = 0u64;
            while !stopped.load(Ordering::Relaxed) {
                let xml = format!(
                    "<domain type='test'><name>churn-{created}</name><memory>1024</memory>\
                     <os><type>hvm</type></os></domain>"
                );
                alive.push_back(connect.create_domain_xml(&xml, 0).expect("a domain"));
                created += 1;
                if alive.len() > 20 {
                    alive.pop_front().unwrap().destroy().expect("destroyed");
                }
            }
            created
        });
        Churn {
            stop,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .unwrap()
            .join()
            .expect("the churn thread")
    }
}

impl Drop for Churn {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[actix_web::test]
async fn domains_that_vanish_between_listing_and_reading_are_no_error() {
    let daemon = PrivateLibvirtd::start(false);
    let uri = format!("test+unix:///default?socket={}", daemon.socket().display());
    let churn = Churn::start(uri.clone());
    let (app, _influx) = collecting_from(&uri, &[("VMTELEMETRY_POLL_INTERVAL", "0.02")]).await;
    let what = "domains vanishing mid-cycle";
    let host = host_when(&app, &uri, what, Duration::from_secs(30), |host| {
        count(&host["domains_vanished"]) >= 3
    })
    .await;
    assert!(churn.finish() > 0);
    assert!(count(&host["total_collections"]) > 0, "{host}");
    assert_eq!(host["total_errors"], json!(0), "{host}");
    assert_eq!(host["last_error"], Value::Null, "{host}");
    assert_eq!(host["connection"], json!("connected"), "{host}");
}

#[actix_web::test]
async fn restarting_a_host_blocked_in_a_call_starts_no_second_blocked_thread() {
    const TOKEN: &str = "faults-t0ken-a4c2e8f06b1d3957c8e0";
    let dir = tempfile::tempdir().unwrap();
    let silent = SilentSocket::bind(&dir.path().join("sock"));
    let hung = format!("qemu+unix:///system?socket={}", silent.path.display());
    let influx = Influx::new_database().await;
    let service = ServiceProcess::start(&[
        ("VMTELEMETRY_LIBVIRT_URI", &hung),
        ("VMTELEMETRY_POLL_INTERVAL", "0.2"),
        // The watchdog stays out of it: only the restart gives the blocked call up.
        ("VMTELEMETRY_LIBVIRT_TIMEOUT", "60"),
        ("VMTELEMETRY_ADMIN_TOKEN", TOKEN),
        ("VMTELEMETRY_INFLUX_DB", &influx.db),
    ]);
    let hung_thread = "libvirt qemu+un";
    wait_for("a blocked call", Duration::from_secs(10), || async {
        (service.threads_named(hung_thread).len() == 1).then_some(())
    })
    .await;

    service.restart(&format!("host:{hung}"), TOKEN).await;
    wait_for("the restart", Duration::from_secs(10), || async {
        let status = service.status().expect("the service answers");
        (host(&status, &hung)["restarts"] == json!(1)).then_some(())
    })
    .await;
    for _ in 0..10 {
        actix_rt::time::sleep(Duration::from_millis(300)).await;
        let blocked = service.threads_named(hung_thread);
        assert_eq!(blocked.len(), 1, "{:?}", service.threads());
    }
    let status = service.status().expect("the service answers");
    let restarted = host(&status, &hung);
    assert!(restarted["stuck_call_since"].is_string(), "{restarted}");
    // Still within its `libvirt_timeout`: not an error yet.
    assert_eq!(restarted["total_errors"], json!(0), "{restarted}");

    drop(silent);
    service.connecting_again(&hung).await;
}
