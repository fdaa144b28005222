//! What a host's watchdog sees of its libvirt thread: how many calls have returned.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counts the libvirt calls made through it, and the beats of a thread waiting on calls of its
/// own, so that a watchdog can tell a slow cycle (the count moves) from a stuck call.
#[derive(Debug, Clone, Default)]
pub struct Heartbeat(Arc<AtomicU64>);

impl Heartbeat {
    /// Makes a libvirt call, counted once it has returned, failed or not.
    pub fn call<T>(&self, call: impl FnOnce() -> T) -> T {
        let returned = call();
        self.beat();
        returned
    }

    /// Tells the watchdog this thread waits rather than hangs.
    pub fn beat(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    pub fn beats(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::Heartbeat;

    #[test]
    fn every_call_made_through_it_counts_once_it_returns() {
        let heartbeat = Heartbeat::default();
        let shared = heartbeat.clone();
        let during = heartbeat.call(|| shared.beats());
        assert_eq!(during, 0, "counted after the call, not before");
        let failed: Result<(), &str> = heartbeat.call(|| Err("refused"));
        assert!(failed.is_err());
        heartbeat.beat();
        assert_eq!(shared.beats(), 3);
    }
}
