//! Reading domains from libvirt. Every call here blocks, so it runs on a worker thread of its own
//! (`worker`), never on an actix arbiter.

mod block_stats;
mod bridges;
pub mod bulk_stats;
pub mod cadence;
mod clock;
mod connection;
mod crew;
mod dirty_rate;
pub mod event_loop;
mod guest;
pub mod guest_info;
mod guest_lane;
mod heartbeat;
mod node;
mod pool;
mod sampler;
mod seed;
mod stats;
#[cfg(test)]
mod test_node {
    include!("../../tests/api/support/test_node.rs");
}
mod worker;

pub use sampler::Sampler;
pub use worker::{Abandoned, LibvirtWorker};

use std::time::Duration;

/// What one host's collection cycle produced.
#[derive(Debug)]
pub struct Cycle {
    pub sample: crate::sample::HostSample,
    /// Domains that could not be read this cycle (those that vanished meanwhile are not counted).
    pub domain_errors: Vec<String>,
    /// Domains listed that were gone by the time they were read.
    pub vanished: usize,
    /// From the start of the cycle (connection check included) to its last libvirt call for the
    /// seed's fields and the host's.
    pub duration: Duration,
    /// The extended groups, when the cycle was asked for them: a failed bulk call fails only
    /// these, and only of the domains it read.
    pub stats: Option<StatsCycle>,
    /// The guest agents' answers of a round that ended since the last cycle, and its wall time.
    pub guest: Option<(crate::guest::GuestCycle, Duration)>,
}

/// What the bulk stats calls of one cycle produced.
#[derive(Debug)]
pub struct StatsCycle {
    pub sample: crate::extended::StatsSample,
    /// The bulk calls alone, after the seed's.
    pub duration: Duration,
    /// The first call that failed or was left behind: the domains it read are missing from
    /// `sample`, the others are there.
    pub failed: Option<LibvirtError>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum LibvirtError {
    #[error("cannot connect to {uri}: {message}")]
    Connect { uri: String, message: String },
    #[error("{call} failed: {message}")]
    Call { call: &'static str, message: String },
    #[error("no libvirt call returned within {0:?}: the connection is abandoned")]
    Timeout(Duration),
    #[error(
        "the previous libvirt call has not returned yet (no answer within {timeout:?}, abandoned \
         {for_secs} s ago): no new connection until it has"
    )]
    Stuck { timeout: Duration, for_secs: u64 },
    #[error(
        "a stats call (virDomainListGetStats, or virDomainBlockStatsFlags of one domain) gave no \
         answer within {timeout:?} for {domains} domains (a guest whose QEMU does not answer its \
         monitor?): left behind, their extended rows are missing \
         from this cycle, and the next one is read over a new connection"
    )]
    StatsLeftBehind { timeout: Duration, domains: usize },
    #[error("the libvirt worker thread stopped")]
    WorkerGone,
}

impl LibvirtError {
    fn call(call: &'static str, e: virt::error::Error) -> Self {
        LibvirtError::Call {
            call,
            message: e.message().to_owned(),
        }
    }
}
