//! An InfluxDB 1.x server of a test's own, for tests that stop and start it (the shared one
//! serves the other tests meanwhile). Loopback only; stopped when dropped.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::DiesWithTest;
use crate::helpers::Influx;

pub struct OwnInfluxd {
    pub url: String,
    config: PathBuf,
    _dir: tempfile::TempDir,
    child: Option<Child>,
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

impl OwnInfluxd {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("a directory");
        let (http, rpc) = (free_port(), free_port());
        let data = dir.path().display().to_string();
        let config = dir.path().join("influxd.conf");
        std::fs::write(
            &config,
            format!(
                "reporting-disabled = true\nbind-address = \"127.0.0.1:{rpc}\"\n\
                 [meta]\n  dir = \"{data}/meta\"\n\
                 [data]\n  dir = \"{data}/data\"\n  wal-dir = \"{data}/wal\"\n  query-log-enabled = false\n\
                 [http]\n  bind-address = \"127.0.0.1:{http}\"\n  log-enabled = false\n\
                 [monitor]\n  store-enabled = false\n[subscriber]\n  enabled = false\n"
            ),
        )
        .expect("config written");
        let mut influxd = OwnInfluxd {
            url: format!("http://127.0.0.1:{http}"),
            config,
            _dir: dir,
            child: None,
        };
        influxd.resume();
        influxd
    }

    /// One with a fresh database, then stopped: writes to it fail until `resume`.
    pub async fn down_with_database() -> (Self, Influx) {
        let mut influxd = OwnInfluxd::start();
        let influx = Influx::new_database_at(&influxd.url).await;
        influxd.kill();
        (influxd, influx)
    }

    /// Starts the server again on the same port and data.
    pub fn resume(&mut self) {
        let child = Command::new("influxd")
            .args(["run", "-config"])
            .arg(&self.config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .dies_with_test()
            .spawn()
            .expect("influxd starts (scripts/install-deps.sh installs it)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.answers() {
            assert!(
                Instant::now() < deadline,
                "influxd did not come up at {}",
                self.url
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Kills the server (SIGKILL: no goodbye).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn answers(&self) -> bool {
        Command::new("curl")
            .args(["-sf", "-o", "/dev/null", &format!("{}/ping", self.url)])
            .status()
            .is_ok_and(|status| status.success())
    }
}

impl Drop for OwnInfluxd {
    fn drop(&mut self) {
        self.kill();
    }
}
