//! etcd for the coordination tests: the one `scripts/test-env.sh` runs on loopback (shared: each
//! test keeps its keys under a prefix of its own), or one of a test's own, to stop and start.

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
    dir: tempfile::TempDir,
}

impl OwnEtcd {
    /// Its ports chosen, not started yet: what a replica sees of an etcd that is down.
    pub fn not_started() -> Self {
        let url = format!("http://127.0.0.1:{}", free_port());
        OwnEtcd {
            server: OwnServer::new("etcd", format!("{url}/health")),
            url,
            peer_url: format!("http://127.0.0.1:{}", free_port()),
            dir: tempfile::tempdir().expect("a directory"),
        }
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
            .env_clear();
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

    /// Kills it (SIGKILL: no goodbye).
    pub fn kill(&mut self) {
        self.server.kill();
    }
}
