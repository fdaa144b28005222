//! How often a replica talks to etcd, and how long before its lease would end it gives up.

use std::time::Duration;

/// The coordination's timing, from the poll interval and the member TTL.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub poll_interval: Duration,
    /// Between two ticks: at most a poll interval (a dead replica's hosts wait TTL + one poll at
    /// most; 0.1 s at the least) and a third of the TTL (two keepalives a TTL at least).
    pub tick: Duration,
    /// One etcd call's longest wait.
    pub request_timeout: Duration,
    /// Cut off from etcd, a replica stops collecting this long before its lease would expire:
    /// the next tick's renewal, had it failed too, would come after that.
    pub margin: Duration,
}

impl Timing {
    pub fn new(poll_interval: Duration, ttl: Duration) -> Self {
        // Not below 0.1 s: a 10 ms poll need not read etcd a hundred times a second.
        let tick = poll_interval.min(ttl / 3).max(Duration::from_millis(100));
        let request_timeout = (tick / 2).clamp(Duration::from_millis(500), Duration::from_secs(2));
        Timing {
            poll_interval,
            tick,
            request_timeout,
            margin: tick + request_timeout,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Timing;
    use std::time::Duration;

    #[test]
    fn a_cut_off_replica_stops_before_its_lease_expires_and_ticks_within_a_poll() {
        let s = Duration::from_secs_f64;
        for (poll, ttl) in [
            (0.2, 2.0),
            (1.0, 3.0),
            (5.0, 2.0),
            (5.0, 10.0),
            (0.01, 3600.0),
            (60.0, 30.0),
        ] {
            let timing = Timing::new(s(poll), s(ttl));
            // A renewal missed once is not the lease lost: collection goes on one tick more.
            assert!(
                timing.tick + timing.margin < s(ttl),
                "poll {poll}, ttl {ttl}: {timing:?}"
            );
            assert!(
                timing.tick <= s(poll.max(0.1)) && timing.tick * 3 <= s(ttl),
                "{timing:?}"
            );
        }
    }
}
