//! etcd for the coordination tests: the one `scripts/test-env.sh` runs on loopback (shared: each
//! test keeps its keys under a prefix of its own), or one of a test's own, to stop and start.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;

use super::influxd::free_port;
use super::{OwnServer, run};

/// The etcd that `scripts/test-env.sh up` starts.
pub fn shared_etcd_url() -> String {
    std::env::var("VMT_TEST_ETCD_URL").unwrap_or_else(|_| "http://127.0.0.1:12379".into())
}

/// A one-member etcd of a test's own, on free loopback ports; stopped when dropped.
pub struct OwnEtcd {
    /// First: killed before its directory goes.
    server: OwnServer,
    pub url: String,
    peer_url: String,
    /// With TLS: the directory of `ca.pem` and `server.pem`/`server.key` (`support::certs`).
    tls: Option<PathBuf>,
    /// Plain http on loopback: /health while the clients' port asks for a certificate.
    metrics_url: String,
    dir: tempfile::TempDir,
}

impl OwnEtcd {
    /// Its ports chosen, not started yet: what a replica sees of an etcd that is down.
    pub fn not_started() -> Self {
        Self::on("http", None)
    }

    fn on(scheme: &str, tls: Option<PathBuf>) -> Self {
        let url = format!("{scheme}://127.0.0.1:{}", free_port());
        let metrics_url = format!("http://127.0.0.1:{}", free_port());
        OwnEtcd {
            server: OwnServer::new("etcd", format!("{metrics_url}/health")),
            url,
            peer_url: format!("http://127.0.0.1:{}", free_port()),
            tls,
            metrics_url,
            dir: tempfile::tempdir().expect("a directory"),
        }
    }

    /// Clients over TLS, each with a certificate signed by `certs`' `ca.pem`
    /// (`--client-cert-auth`); its own certificate `server.pem`.
    pub fn start_tls(certs: &Path) -> Self {
        let mut etcd = Self::on("https", Some(certs.to_owned()));
        etcd.resume();
        etcd
    }

    pub fn start() -> Self {
        let mut etcd = Self::not_started();
        etcd.resume();
        etcd
    }

    /// Starts it (again, on the same ports and data) and waits until it answers.
    pub fn resume(&mut self) {
        let mut etcd = Command::new("/usr/bin/etcd");
        etcd.args(["--name", "own", "--data-dir"])
            .arg(self.dir.path().join("data"))
            .args(["--listen-client-urls", &self.url])
            .args(["--advertise-client-urls", &self.url])
            .args(["--listen-peer-urls", &self.peer_url])
            .args(["--initial-advertise-peer-urls", &self.peer_url])
            .args(["--initial-cluster", &format!("own={}", self.peer_url)])
            .args(["--listen-metrics-urls", &self.metrics_url])
            .env_clear();
        if let Some(certs) = &self.tls {
            etcd.arg("--cert-file")
                .arg(certs.join("server.pem"))
                .arg("--key-file")
                .arg(certs.join("server.key"))
                .arg("--trusted-ca-file")
                .arg(certs.join("ca.pem"))
                .arg("--client-cert-auth");
        }
        self.server.start(&mut etcd);
    }

    /// Turns etcd's authentication on, with a `root` user of `password` (through etcd's JSON
    /// gateway: the same calls as `etcdctl user add root` and `etcdctl auth enable`).
    pub fn enable_auth(&self, password: &str) {
        for (path, body) in [
            ("role/add", json!({"name": "root"})),
            ("user/add", json!({"name": "root", "password": password})),
            ("user/grant", json!({"user": "root", "role": "root"})),
            ("enable", json!({})),
        ] {
            let url = format!("{}/v3/auth/{path}", self.url);
            run(Command::new("curl").args(["-sf", "-X", "POST", &url, "-d", &body.to_string()]));
        }
    }

    /// SIGSTOP: connections stay open, nothing answers; `thaw` resumes it.
    pub fn freeze(&self) {
        self.server.signal("STOP");
    }

    pub fn thaw(&self) {
        self.server.signal("CONT");
    }

    /// Kills it (SIGKILL: no goodbye).
    pub fn kill(&mut self) {
        self.server.kill();
    }
}
