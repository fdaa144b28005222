//! Until when this replica may start a cycle: shared by the coordinator, which moves it on with
//! each keepalive etcd answers, and every host actor, which checks it before each cycle. So a
//! coordinator tick that comes late (its thread starved) cannot stretch collection past the
//! lease: the clock is monotonic and the check does not wait for the tick.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct CollectDeadline {
    origin: Instant,
    /// Nanoseconds after `origin`; 0: no cycle at all.
    until: Arc<AtomicU64>,
}

impl Default for CollectDeadline {
    fn default() -> Self {
        CollectDeadline {
            origin: Instant::now(),
            until: Arc::default(),
        }
    }
}

impl CollectDeadline {
    /// Cycles may start until `margin` before `expires`, when the lease may end.
    pub fn extend(&self, expires: Instant, margin: Duration) {
        let until = expires.checked_sub(margin).unwrap_or(self.origin);
        let nanos = until.saturating_duration_since(self.origin).as_nanos();
        self.until
            .store(u64::try_from(nanos).unwrap_or(u64::MAX), Ordering::Release);
    }

    /// No cycle from now on (the lease is lost, revoked, or not held yet).
    pub fn revoke(&self) {
        self.until.store(0, Ordering::Release);
    }

    /// Whether a cycle may start at `now`.
    pub fn allows(&self, now: Instant) -> bool {
        let until = self.until.load(Ordering::Acquire);
        until != 0 && now.saturating_duration_since(self.origin).as_nanos() < u128::from(until)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cycles_stop_at_the_leases_end_less_the_margin_however_late_the_next_renewal() {
        let deadline = CollectDeadline::default();
        let host_side = deadline.clone();
        let (ttl, margin) = (Duration::from_secs(3), Duration::from_millis(1500));
        let renewed = Instant::now() + Duration::from_secs(1);
        assert!(!host_side.allows(renewed), "no lease yet");

        deadline.extend(renewed + ttl, margin);
        let end = renewed + ttl - margin;
        assert!(host_side.allows(renewed));
        assert!(host_side.allows(end - Duration::from_millis(1)));
        // No renewal since (the coordinator's thread starved, or etcd silent): the clock alone
        // ends collection, tick or no tick.
        assert!(!host_side.allows(end));
        assert!(!host_side.allows(end + Duration::from_secs(60)));

        // A renewal moves it on; a lost lease ends it at once.
        let later = renewed + Duration::from_secs(10);
        deadline.extend(later + ttl, margin);
        assert!(host_side.allows(later + Duration::from_secs(1)));
        deadline.revoke();
        assert!(!host_side.allows(later));
        // A margin longer than the TTL allows nothing.
        deadline.extend(later + ttl, ttl * 2);
        assert!(!host_side.allows(later));
    }
}
