//! Test-only servers and processes.

use std::os::unix::process::CommandExt;
use std::process::{Command, Output};

pub mod browser;
pub mod guest;
pub mod influxd;
pub mod influxdb3_standin;
pub mod libvirtd;
pub mod prometheus;
pub mod service;
pub mod settings;
pub mod task_limit;
pub mod test_node;

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
