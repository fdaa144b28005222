//! One actor per libvirt URI: every `poll_interval` it asks its libvirt worker thread for a cycle
//! and passes the sample on. A cycle that fails or overruns drops the worker (and its connection);
//! the next cycle starts a new one, so one stuck host never delays another.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::messages::{GetHostStatus, HostCollected, Restart};
use crate::configuration::HostConfig;
use crate::libvirt::{Cycle, LibvirtError, LibvirtWorker};

pub struct HostActor {
    host: HostConfig,
    poll_interval: Duration,
    libvirt_timeout: Duration,
    worker: Option<LibvirtWorker>,
    cycle_running: bool,
    features: Recipient<HostCollected>,
    status: HostStatus,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HostStatus {
    pub uri: String,
    /// The `host` tag, once connected.
    #[schema(value_type = Option<String>)]
    pub host: Option<Arc<str>>,
    pub connection: ConnectionState,
    pub total_collections: u64,
    pub total_errors: u64,
    pub vms_monitored: usize,
    pub last_collection_time: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub last_error_time: Option<DateTime<Utc>>,
    pub restarts: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ConnectionState {
    Connecting,
    Connected,
    Disconnected,
}

impl HostActor {
    pub fn new(
        host: HostConfig,
        poll_interval: Duration,
        libvirt_timeout: Duration,
        features: Recipient<HostCollected>,
    ) -> Self {
        let status = HostStatus {
            uri: host.uri.clone(),
            host: None,
            connection: ConnectionState::Connecting,
            total_collections: 0,
            total_errors: 0,
            vms_monitored: 0,
            last_collection_time: None,
            last_error: None,
            last_error_time: None,
            restarts: 0,
        };
        HostActor {
            host,
            poll_interval,
            libvirt_timeout,
            worker: None,
            cycle_running: false,
            features,
            status,
        }
    }

    fn collect(&mut self, ctx: &mut Context<Self>) {
        // A cycle still running when the next is due is not doubled up.
        if self.cycle_running {
            return;
        }
        if self.worker.is_none() {
            match LibvirtWorker::spawn(&self.host) {
                Ok(worker) => self.worker = Some(worker),
                Err(e) => {
                    self.record_error(format!("cannot start a libvirt thread: {e}"));
                    return;
                }
            }
        }
        let Some(worker) = &self.worker else { return };
        self.cycle_running = true;
        let cycle = worker.sample(self.libvirt_timeout);
        ctx.spawn(cycle.into_actor(self).map(|result, actor, _| {
            actor.cycle_running = false;
            actor.finish_cycle(result);
        }));
    }

    fn finish_cycle(&mut self, result: Result<Cycle, LibvirtError>) {
        match result {
            Ok(Cycle {
                sample,
                domain_errors,
            }) => {
                self.status.connection = ConnectionState::Connected;
                self.status.host = Some(sample.host.clone());
                self.status.total_collections += 1;
                self.status.vms_monitored = sample.domains.len();
                self.status.last_collection_time = Some(Utc::now());
                for error in domain_errors {
                    self.record_error(format!("reading a domain: {error}"));
                }
                self.features.do_send(HostCollected(sample));
            }
            Err(error) => {
                // Whatever failed, the next cycle starts on a new thread and connection.
                self.worker = None;
                self.status.connection = ConnectionState::Disconnected;
                self.status.vms_monitored = 0;
                self.record_error(error.to_string());
            }
        }
    }

    fn record_error(&mut self, message: String) {
        tracing::warn!(uri = %self.host.uri, error = %message, "libvirt collection error");
        self.status.total_errors += 1;
        self.status.last_error = Some(message);
        self.status.last_error_time = Some(Utc::now());
    }
}

impl Actor for HostActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        tracing::info!(uri = %self.host.uri, "host actor started");
        self.collect(ctx);
        ctx.run_interval(self.poll_interval, Self::collect);
    }
}

impl Supervised for HostActor {
    fn restarting(&mut self, _: &mut Self::Context) {
        // A restart reconnects: drop the worker and its connection; counters are kept.
        self.worker = None;
        self.cycle_running = false;
        self.status.connection = ConnectionState::Connecting;
        self.status.restarts += 1;
    }
}

impl Handler<Restart> for HostActor {
    type Result = ();

    fn handle(&mut self, _: Restart, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

impl Handler<GetHostStatus> for HostActor {
    type Result = MessageResult<GetHostStatus>;

    fn handle(&mut self, _: GetHostStatus, _: &mut Self::Context) -> Self::Result {
        MessageResult(self.status.clone())
    }
}
