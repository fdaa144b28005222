//! An InfluxDB 1.x server of a test's own, for tests that stop and start it (the shared one
//! serves the other tests meanwhile). Loopback only; stopped when dropped.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;

use super::OwnServer;
use crate::helpers::Influx;

pub struct OwnInfluxd {
    /// First: killed before its directory goes.
    server: OwnServer,
    pub url: String,
    config: PathBuf,
    _dir: tempfile::TempDir,
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

impl OwnInfluxd {
    pub fn start() -> Self {
        Self::start_with(false)
    }

    /// One that asks for credentials (`auth-enabled`): its first user is created without them.
    pub fn start_with_auth() -> Self {
        Self::start_with(true)
    }

    fn start_with(auth: bool) -> Self {
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
                 [http]\n  bind-address = \"127.0.0.1:{http}\"\n  log-enabled = false\n  auth-enabled = {auth}\n\
                 [monitor]\n  store-enabled = false\n[subscriber]\n  enabled = false\n"
            ),
        )
        .expect("config written");
        let url = format!("http://127.0.0.1:{http}");
        let mut influxd = OwnInfluxd {
            server: OwnServer::new("influxd", format!("{url}/ping")),
            url,
            config,
            _dir: dir,
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
        let mut influxd = Command::new("influxd");
        influxd.args(["run", "-config"]).arg(&self.config);
        self.server.start(&mut influxd);
    }

    /// Kills the server (SIGKILL: no goodbye).
    pub fn kill(&mut self) {
        self.server.kill();
    }
}
