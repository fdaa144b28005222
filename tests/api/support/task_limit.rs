//! A limit on the service's threads (a pids cgroup, what a unit's `TasksMax` is to a service),
//! and what the service logs about it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use super::service::ServiceProcess;
use crate::helpers::{Influx, wait_for};

/// A pids cgroup of the test's own, what a unit's `TasksMax` is to a service: v1's `pids`
/// hierarchy, or v2's. Removed when dropped, once its processes are gone.
pub struct PidsCgroup {
    path: PathBuf,
}

impl PidsCgroup {
    pub fn new() -> Self {
        let v1 = Path::new("/sys/fs/cgroup/pids");
        let root = if v1.is_dir() {
            v1
        } else {
            let v2 = Path::new("/sys/fs/cgroup");
            let controllers =
                std::fs::read_to_string(v2.join("cgroup.controllers")).unwrap_or_default();
            assert!(
                controllers.split_whitespace().any(|c| c == "pids"),
                "this machine has no pids cgroup controller: {controllers:?}"
            );
            std::fs::write(v2.join("cgroup.subtree_control"), "+pids")
                .expect("the pids controller enabled for child cgroups");
            v2
        };
        // Tests run side by side in this process: a name of each one's own.
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = root.join(format!("vmt-test-{}-{n}", std::process::id()));
        std::fs::create_dir(&path).expect("a pids cgroup created (the tests run as root)");
        PidsCgroup { path }
    }

    /// Moves every thread of process `pid` in.
    pub fn adopt(&self, pid: u32) {
        std::fs::write(self.path.join("cgroup.procs"), pid.to_string()).unwrap();
    }

    /// At most `more` tasks more than it holds now.
    pub fn allow_more(&self, more: u32) {
        let current = std::fs::read_to_string(self.path.join("pids.current")).unwrap();
        let current: u32 = current.trim().parse().unwrap();
        std::fs::write(self.path.join("pids.max"), (current + more).to_string()).unwrap();
    }

    pub fn lift(&self) {
        std::fs::write(self.path.join("pids.max"), "max").unwrap();
    }
}

impl Drop for PidsCgroup {
    fn drop(&mut self) {
        // A process just killed may take a moment to leave.
        for _ in 0..50 {
            if std::fs::remove_dir(&self.path).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The service as a process collecting one URI into a fresh database, in a pids cgroup of its
/// own.
pub struct ShortHanded {
    /// Declared first, dropped first: its cgroup is removed once it has gone.
    pub service: ServiceProcess,
    pub cgroup: PidsCgroup,
    pub influx: Influx,
}

impl ShortHanded {
    /// Starts the service collecting `uri` (`env` over that), allowed `more` threads beyond
    /// those it has once started.
    pub async fn collecting(uri: &str, more: u32, env: &[(&str, &str)]) -> Self {
        let influx = Influx::new_database().await;
        let cgroup = PidsCgroup::new();
        let target = [
            ("VMTELEMETRY_LIBVIRT_URI", uri),
            ("VMTELEMETRY_INFLUX_DB", &influx.db),
        ];
        let service = ServiceProcess::start(&[&target, env].concat());
        settled(&service);
        cgroup.adopt(service.pid());
        cgroup.allow_more(more);
        ShortHanded {
            service,
            cgroup,
            influx,
        }
    }
}

/// Waits until the service's threads have stayed the same for a second: a thread of its start
/// still running when the limit is counted, and gone after, would leave room for one more.
fn settled(service: &ServiceProcess) {
    let deadline = Instant::now() + Duration::from_secs(15);
    let (mut last, mut since) = (service.threads(), Instant::now());
    while since.elapsed() < Duration::from_secs(1) {
        assert!(Instant::now() < deadline, "threads never settled: {last:?}");
        std::thread::sleep(Duration::from_millis(50));
        let now = service.threads();
        if now != last {
            (last, since) = (now, Instant::now());
        }
    }
}

/// The name of the threads a host's sampler runs its side-by-side calls on.
const CALL_THREADS: &str = "libvirt calls";

/// The host `uri` runs every call on its own thread (none of its calls' threads exists), and
/// warned once for the whole streak.
#[track_caller]
pub fn assert_short_handed(service: &ServiceProcess, uri: &str) {
    assert_eq!(
        service.threads_named(CALL_THREADS),
        Vec::<String>::new(),
        "{:?}",
        service.threads()
    );
    let warnings = service.logged_starting("no thread could be started");
    assert_eq!(warnings.len(), 1, "one warning a streak: {warnings:?}");
    assert_eq!(warnings[0]["level"], json!("WARN"), "{warnings:?}");
    assert_eq!(warnings[0]["fields"]["owner"], json!(uri), "{warnings:?}");
}

/// Lifts `cgroup`'s limit, then waits for the host `uri`'s calls to get threads again, and for
/// the log to say so.
pub async fn lift_and_see_threads_again(cgroup: &PidsCgroup, service: &ServiceProcess, uri: &str) {
    cgroup.lift();
    wait_for("the calls' threads", Duration::from_secs(20), || async {
        (!service.threads_named(CALL_THREADS).is_empty()).then_some(())
    })
    .await;
    let recovered = wait_for(
        "the log to say threads can be started again",
        Duration::from_secs(10),
        || async {
            service
                .logged_starting("threads can be started again")
                .pop()
        },
    )
    .await;
    assert_eq!(recovered["fields"]["owner"], json!(uri), "{recovered}");
}
