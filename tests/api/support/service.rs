//! The service as its own process, for what only a process can show: `kill -9`, SIGTERM.

use std::net::TcpListener;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::DiesWithTest;

pub struct ServiceProcess {
    pub address: String,
    child: Child,
}

impl ServiceProcess {
    /// Starts the binary with `env` over its defaults and waits until it serves.
    pub fn start(env: &[(&str, &str)]) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let listen = format!("127.0.0.1:{port}");
        let child = Command::new(env!("CARGO_BIN_EXE_vmtelemetry"))
            .env("VMTELEMETRY_LISTEN", &listen)
            // The seed's pipeline unless the test asks for more (its env comes after).
            .env("VMTELEMETRY_STATS_GROUPS", "")
            .env("VMTELEMETRY_HOST_METRICS", "false")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .dies_with_test()
            .spawn()
            .expect("the binary starts");
        let service = ServiceProcess {
            address: format!("http://{listen}"),
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while service.status().is_none() {
            assert!(Instant::now() < deadline, "the service did not come up");
            std::thread::sleep(Duration::from_millis(100));
        }
        service
    }

    /// `/api/telemetry/status`, or None while it does not answer.
    pub fn status(&self) -> Option<Value> {
        let output = Command::new("curl")
            .args(["-sf", &format!("{}/api/telemetry/status", self.address)])
            .output()
            .ok()?;
        serde_json::from_slice(&output.stdout).ok()
    }

    pub fn kill_9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits at most `timeout` for the exit.
    pub fn terminate(mut self, timeout: Duration) -> Option<ExitStatus> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
