//! Test-only servers and processes.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub mod browser;
pub mod certs;
pub mod etcd;
pub mod guest;
pub mod influxd;
pub mod influxdb3_standin;
pub mod libvirtd;
pub mod prometheus;
pub mod service;
pub mod settings;
pub mod task_limit;
pub mod test_node;
pub mod valgrind;

/// Runs `command`, which must succeed; its output.
#[track_caller]
pub fn run(command: &mut Command) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?} does not run: {e}"));
    assert!(
        output.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Sends the signal `name` (`STOP`, `CONT`) to the process `pid`.
#[track_caller]
pub fn signal(pid: u32, name: &str) {
    run(Command::new("kill").args([&format!("-{name}"), &pid.to_string()]));
}

/// For the servers a test starts: a test killed outright (SIGKILL, a CI timeout) runs no `Drop`,
/// so the child is told to die with the thread that started it, the test's own.
pub trait DiesWithTest {
    fn dies_with_test(&mut self) -> &mut Self;
}

impl DiesWithTest for Command {
    fn dies_with_test(&mut self) -> &mut Self {
        // SAFETY: prctl is async-signal-safe, and the closure allocates nothing.
        unsafe {
            self.pre_exec(
                || match libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) {
                    -1 => Err(std::io::Error::last_os_error()),
                    _ => Ok(()),
                },
            )
        }
    }
}

/// A server of a test's own (influxd, etcd), to kill and start again; killed when dropped.
pub struct OwnServer {
    name: &'static str,
    /// Answers 2xx once the server is up.
    health: String,
    child: Option<Child>,
}

impl OwnServer {
    pub fn new(name: &'static str, health: String) -> Self {
        OwnServer {
            name,
            health,
            child: None,
        }
    }

    /// Starts `command` and waits until the server answers.
    pub fn start(&mut self, command: &mut Command) {
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .dies_with_test()
            .spawn()
            .unwrap_or_else(|e| panic!("{} starts (scripts/install-deps.sh): {e}", self.name));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.answers() {
            assert!(
                Instant::now() < deadline,
                "{} did not come up: {}",
                self.name,
                self.health
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Sends it the signal `name`.
    pub fn signal(&self, name: &str) {
        signal(self.child.as_ref().expect("started").id(), name);
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
            .args(["-sf", "-o", "/dev/null", &self.health])
            .status()
            .is_ok_and(|status| status.success())
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        self.kill();
    }
}
