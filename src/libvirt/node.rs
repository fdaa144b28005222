//! The host's own fields: CPUs, memory, and the counts of the cycle's domains.

use std::time::Instant;

use virt::connect::Connect;

use super::clock::now_ns;
use super::heartbeat::Heartbeat;
use crate::sample::{DomainSample, NodeSample};

/// The host's CPUs and memory, which do not change while a connection lasts: read once per
/// connection.
#[derive(Debug, Default)]
pub struct NodeInfo {
    cpus_and_memory: Option<(u32, u64)>,
}

impl NodeInfo {
    /// The host's free memory (and, once, its CPUs and memory), then the cycle's domains and
    /// duration. A driver that cannot say (the call fails) leaves its fields out, and is asked
    /// again next cycle; that is not a collection error.
    pub fn sample(
        &mut self,
        connect: &Connect,
        heartbeat: &Heartbeat,
        domains: &[DomainSample],
        started: Instant,
    ) -> NodeSample {
        if self.cpus_and_memory.is_none() {
            let info = heartbeat.call(|| connect.node_info());
            self.cpus_and_memory = info.ok().map(|info| (info.cpus, info.memory));
        }
        let free = heartbeat.call(|| connect.free_memory());
        let mut node = NodeSample {
            cpus: self.cpus_and_memory.map(|(cpus, _)| cpus),
            memory_total_kb: self.cpus_and_memory.map(|(_, memory)| memory),
            memory_free_kb: free.ok().map(|bytes| bytes / 1024),
            domains: 0,
            domains_running: 0,
            domains_paused: 0,
            domains_stopped: 0,
            domains_other: 0,
            collection_duration_sec: started.elapsed().as_secs_f64(),
            timestamp_ns: now_ns(),
        };
        node.count(domains);
        node
    }
}
