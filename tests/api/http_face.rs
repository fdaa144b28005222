//! The HTTP face: security headers on every answer, the Host check against DNS rebinding, and
//! the real binary under a burst of connections.

use std::os::unix::process::CommandExt;
use std::time::Duration;

use actix_rt::net::TcpStream;
use actix_rt::time::timeout;
use futures_util::future::join_all;
use serde_json::Value;

use crate::helpers::{TestApp, spawn_app};
use crate::support::service::ServiceProcess;

/// What systemd gives a service by default.
const SYSTEMD_SOFT_NOFILE: libc::rlim_t = 1024;
/// Simultaneous connections of the burst: more than that soft limit and the old backlog (128).
const BURST: usize = 3000;
/// Hang guards, far above what loopback takes.
const GUARD: Duration = Duration::from_secs(10);

/// `(status, headers, body)` of GET `path` with `Host: host`.
async fn get_as(
    app: &TestApp,
    path: &str,
    host: &str,
) -> (u16, awc::http::header::HeaderMap, Vec<u8>) {
    let mut response = app
        .client
        .get(format!("{}{path}", app.address))
        .insert_header(("Host", host))
        .send()
        .await
        .expect("the service answers");
    let body = response.body().await.expect("a body").to_vec();
    (response.status().as_u16(), response.headers().clone(), body)
}

#[actix_web::test]
async fn every_answer_carries_nosniff_and_no_referrer() {
    let app = spawn_app(&[("VMTELEMETRY_HOSTS", "test:///default")]).await;
    for (path, status) in [
        ("/api/telemetry/status", 200),
        ("/api/no-such-thing", 404),
        ("/static/main.js", 200),
        ("/", 200),
    ] {
        let (code, headers, _) = get_as(&app, path, "127.0.0.1").await;
        assert_eq!(code, status, "{path}");
        assert_eq!(
            headers.get("x-content-type-options").unwrap(),
            "nosniff",
            "{path}"
        );
        assert_eq!(
            headers.get("referrer-policy").unwrap(),
            "no-referrer",
            "{path}"
        );
    }
}

#[actix_web::test]
async fn a_foreign_host_gets_421_while_ip_literals_localhost_and_allowed_names_pass() {
    let app = spawn_app(&[
        ("VMTELEMETRY_HOSTS", "test:///default"),
        (
            "VMTELEMETRY_ALLOWED_HOSTS",
            "vmt.example.net,.svc.cluster.local",
        ),
    ])
    .await;
    for host in [
        "rebind.attacker.example",
        "vmt.example.net.attacker.example",
        "example.net",
    ] {
        let (code, headers, body) = get_as(&app, "/api/telemetry/status", host).await;
        assert_eq!(code, 421, "{host}");
        let body: Value = serde_json::from_slice(&body).expect("a JSON body");
        assert_eq!(body["error"]["code"], "host_not_allowed", "{host}: {body}");
        assert_eq!(headers.get("x-content-type-options").unwrap(), "nosniff");
    }
    for host in [
        "127.0.0.1",
        "10.0.0.7:8080",
        "[::1]:8080",
        "localhost:8080",
        "LOCALHOST.",
        "vmt.example.net",
        "vmt-0.vmt.ns.svc.cluster.local:8080",
    ] {
        let (code, _, body) = get_as(&app, "/api/telemetry/status", host).await;
        assert_eq!(code, 200, "{host}: {}", String::from_utf8_lossy(&body));
    }
}

/// Lets this test process open the burst's sockets, whatever limit it started with.
fn raise_own_nofile_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed.
    let raised = unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
        limit.rlim_cur = limit.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &limit)
    };
    assert_eq!(raised, 0, "cannot raise this test's open files limit");
    assert!(
        limit.rlim_max > (BURST as libc::rlim_t) * 2,
        "the hard open files limit ({}) is too low for this test",
        limit.rlim_max
    );
}

/// `(soft, hard)` of the process's open files limit, from /proc/<pid>/limits.
fn open_files_limit(pid: u32) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .expect("an open files line");
    let fields: Vec<&str> = line.split_whitespace().collect();
    (fields[3].to_owned(), fields[4].to_owned())
}

#[actix_web::test]
async fn the_binary_raises_its_open_files_limit_and_answers_after_a_burst() {
    raise_own_nofile_limit();
    let service = ServiceProcess::start_with(&[("VMTELEMETRY_HOSTS", "test:///default")], |c| {
        // SAFETY: setrlimit is async-signal-safe; the closure allocates nothing.
        unsafe {
            c.pre_exec(|| {
                let mut limit = libc::rlimit {
                    rlim_cur: 0,
                    rlim_max: 0,
                };
                libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
                limit.rlim_cur = SYSTEMD_SOFT_NOFILE;
                match libc::setrlimit(libc::RLIMIT_NOFILE, &limit) {
                    0 => Ok(()),
                    _ => Err(std::io::Error::last_os_error()),
                }
            })
        };
    });
    let (soft, hard) = open_files_limit(service.pid());
    assert_eq!(soft, hard, "the soft open files limit was not raised");

    let address = service.address.trim_start_matches("http://").to_owned();
    let connects = join_all((0..BURST).map(|_| timeout(GUARD, TcpStream::connect(&address)))).await;
    let opened: Vec<TcpStream> = connects.into_iter().flatten().flatten().collect();
    assert_eq!(
        opened.len(),
        BURST,
        "connections not opened within {GUARD:?}"
    );
    actix_rt::time::sleep(Duration::from_secs(1)).await;
    drop(opened);

    let client = awc::Client::builder().timeout(GUARD).finish();
    let response = client
        .get(format!("{}/health", service.address))
        .send()
        .await
        .expect("answered after the burst");
    assert_eq!(response.status().as_u16(), 200);
}
