//! The service as its own process, for what only a process can show: `kill -9`, SIGTERM, its
//! threads counted apart from the test harness's (other tests run in parallel in this process).

use std::fs::File;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::DiesWithTest;
use super::settings::base_settings;

pub struct ServiceProcess {
    pub address: String,
    child: Child,
    /// Its log and, unless the test names another, its spool.
    dir: tempfile::TempDir,
}

impl ServiceProcess {
    /// Starts the binary with `env` over `base_settings`, and waits until its log tells the port
    /// it serves on.
    pub fn start(env: &[(&str, &str)]) -> Self {
        Self::start_with(env, |_| {})
    }

    /// As `start`, with `prepare` changing the command first (its limits, say).
    pub fn start_with(env: &[(&str, &str)], prepare: impl FnOnce(&mut Command)) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let log_path = dir.path().join("service.log");
        let mut command = Command::new(env!("CARGO_BIN_EXE_vmtelemetry"));
        prepare(&mut command);
        let mut child = command
            .envs(base_settings(&dir.path().join("spool")))
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            // After the test's env: the port is read from the JSON log.
            .env("VMTELEMETRY_LOG_FORMAT", "json")
            .stdin(Stdio::null())
            .stdout(File::create(&log_path).expect("a log file"))
            .stderr(Stdio::inherit())
            .dies_with_test()
            .spawn()
            .expect("the binary starts");
        let deadline = Instant::now() + Duration::from_secs(20);
        let port = loop {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            if let Some(port) = log
                .lines()
                .filter_map(|line| serde_json::from_str::<Value>(line).ok())
                .find(|line| line["fields"]["message"] == json!("vmtelemetry started"))
                .and_then(|line| line["fields"]["port"].as_u64())
            {
                break port;
            }
            let exited = child.try_wait().expect("the child can be waited on");
            assert!(exited.is_none(), "the service exited: {exited:?}\n{log}");
            assert!(
                Instant::now() < deadline,
                "the service did not start\n{log}"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        ServiceProcess {
            address: format!("http://127.0.0.1:{port}"),
            child,
            dir,
        }
    }

    /// `(tid, name)` of each of its threads.
    pub fn threads(&self) -> Vec<(String, String)> {
        let tasks = format!("/proc/{}/task", self.pid());
        std::fs::read_dir(&tasks)
            .unwrap()
            .filter_map(Result::ok)
            .filter_map(|task| {
                let tid = task.file_name().to_string_lossy().into_owned();
                let name = std::fs::read_to_string(task.path().join("comm")).ok()?;
                Some((tid, name.trim_end().to_owned()))
            })
            .collect()
    }

    /// The ids of its threads whose name starts with `prefix`.
    pub fn threads_named(&self, prefix: &str) -> Vec<String> {
        self.threads()
            .into_iter()
            .filter(|(_, name)| name.starts_with(prefix))
            .map(|(tid, _)| tid)
            .collect()
    }

    /// The messages it has logged so far (JSON lines), each with its level.
    pub fn logged(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.path().join("service.log"))
            .unwrap_or_default()
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }

    /// What it logged with a message starting `prefix`.
    pub fn logged_starting(&self, prefix: &str) -> Vec<Value> {
        self.logged()
            .into_iter()
            .filter(|line| {
                line["fields"]["message"]
                    .as_str()
                    .is_some_and(|message| message.starts_with(prefix))
            })
            .collect()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `/api/telemetry/status`, or None while it does not answer.
    pub fn status(&self) -> Option<Value> {
        match self.request("GET", "/api/telemetry/status", None) {
            (200, status) => Some(status),
            _ => None,
        }
    }

    /// `method path`, with `Authorization: Bearer <token>` when given: the answer's status (0
    /// without one) and its JSON body (null if none).
    pub fn request(&self, method: &str, path: &str, token: Option<&str>) -> (u16, Value) {
        let mut curl = Command::new("curl");
        curl.args(["-s", "-X", method, "-w", "\n%{http_code}"])
            .arg(format!("{}{path}", self.address));
        if let Some(token) = token {
            curl.args(["-H", &format!("Authorization: Bearer {token}")]);
        }
        let Ok(output) = curl.output() else {
            return (0, Value::Null);
        };
        let text = String::from_utf8_lossy(&output.stdout);
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
        let body = serde_json::from_str(body).unwrap_or(Value::Null);
        (code.trim().parse().unwrap_or(0), body)
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
