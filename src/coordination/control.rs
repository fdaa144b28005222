//! Where a replica's decisions reach the host actors: the supervisor starts and stops them, and
//! the deadline past which none starts a cycle.

use actix::Recipient;
use chrono::{DateTime, Utc};
use futures_util::future::join_all;

use super::deadline::CollectDeadline;
use crate::actors::messages::{StartHost, StopHost};
use crate::configuration::HostConfig;

/// The supervisor's addresses, and the deadline it gives every host actor.
pub struct HostControl {
    pub start: Recipient<StartHost>,
    pub stop: Recipient<StopHost>,
    /// Moved on with each renewal of the lease; the host actors check it before each cycle.
    pub deadline: CollectDeadline,
}

impl HostControl {
    /// Stops the host actors of `hosts`; the time of each one's last cycle.
    pub async fn stop_all(&self, hosts: &[String]) -> Vec<Option<DateTime<Utc>>> {
        let stops = (hosts.iter()).map(|uri| self.stop.send(StopHost(uri.clone())));
        let last_cycles = join_all(stops).await;
        (last_cycles.into_iter())
            .map(|reply| reply.ok().flatten())
            .collect()
    }

    /// Starts the host actors of `hosts`; the URIs of those started.
    pub async fn start_all(&self, hosts: Vec<&HostConfig>) -> Vec<String> {
        let mut started = Vec::with_capacity(hosts.len());
        for host in hosts {
            if self.start.send(StartHost(host.clone())).await.is_ok() {
                started.push(host.uri.clone());
            }
        }
        started
    }
}
