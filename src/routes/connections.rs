//! Memory back after a burst of connections: each one's buffers are freed when it closes, but
//! glibc keeps the freed pages scattered through its heap; `malloc_trim` hands them back.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A burst: at least this many connections since the last trim (a dashboard's few are not one).
const BURST: u64 = 100;
/// A burst is over once no connection came for this long.
const QUIET: Duration = Duration::from_secs(5);

/// Connections accepted so far, counted by the server's `on_connect` hook.
#[derive(Clone, Default)]
pub struct ConnectionCount(Arc<AtomicU64>);

impl ConnectionCount {
    pub fn accepted(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// Trims the allocator once each burst is over; runs until the actix System stops.
    pub fn trim_after_bursts(self) {
        actix_rt::spawn(async move {
            let mut trimmed_at = 0;
            let mut seen = 0;
            let mut ticks = actix_rt::time::interval(QUIET);
            loop {
                ticks.tick().await;
                let now = self.0.load(Ordering::Relaxed);
                if now == seen && now - trimmed_at >= BURST {
                    trim();
                    trimmed_at = now;
                }
                seen = now;
            }
        });
    }
}

fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory of glibc's allocator to the system.
    unsafe {
        libc::malloc_trim(0);
    }
}
