//! Starts every actor of the pipeline under an actix `Supervisor` (which restarts an actor that
//! stops), keeps their addresses, answers for all of them, and restarts one on request.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use actix::prelude::*;
use chrono::{DateTime, Utc};
use futures_util::future::{join_all, try_join_all};
use serde::Serialize;
use utoipa::ToSchema;

use super::features::{FeatureActor, FeatureStatus};
use super::host::{ConnectionState, HostActor, HostStatus};
use super::messages::{
    Drain, GetFeatureStatus, GetHostStatus, GetTelemetryStatus, GetWriterStatus, ListActors,
    Restart, RestartActor, StopCollecting,
};
use super::writer::{WriterActor, WriterStatus};
use crate::configuration::AppConfig;
use crate::influx::buffer::LineBuffer;
use crate::influx::tls::HttpClients;
use crate::influx::write::WriteTarget;

/// How long an actor may take to say how it is before it counts as failed.
const STATUS_TIMEOUT: Duration = Duration::from_secs(2);

pub struct TelemetrySupervisor {
    started_at: DateTime<Utc>,
    hosts: Vec<(String, Addr<HostActor>)>,
    features: Addr<FeatureActor>,
    writer: Addr<WriterActor>,
    /// Restarts asked for by name, with the actor's restart count when asked.
    restarts_requested: HashMap<String, u64>,
}

/// The seed's statistics, plus the writer's queue and each host's connection.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TelemetryStatus {
    pub started_at: DateTime<Utc>,
    pub total_collections: u64,
    pub total_errors: u64,
    pub last_collection_time: Option<DateTime<Utc>>,
    pub vms_monitored: usize,
    pub total_metrics_written: u64,
    pub queue_depth: usize,
    pub dropped_lines: u64,
    pub write_retries: u64,
    pub hosts: Vec<HostStatus>,
    pub features: FeatureStatus,
    pub writer: WriterStatus,
}

impl TelemetryStatus {
    /// Ready: a host of this instance is connected (or it was given none: an idle shard), and
    /// the last write attempt did not fail.
    pub fn is_ready(&self) -> bool {
        let connected = self.hosts.is_empty()
            || self
                .hosts
                .iter()
                .any(|host| host.connection == ConnectionState::Connected);
        connected && self.writer.consecutive_failures == 0
    }
}

/// One actor, for the admin API.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ActorInfo {
    /// `host:<uri>`, `features` or `writer`.
    pub name: String,
    pub kind: ActorKind,
    pub state: ActorState,
    pub restarts: u64,
    /// Panics caught in its handlers, each followed by a restart.
    pub panics: u64,
    pub last_error: Option<String>,
    pub last_error_time: Option<DateTime<Utc>>,
    /// Lines waiting in the writer's queue; none for the other actors.
    pub queue_depth: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ActorKind {
    Host,
    Features,
    Writer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ActorState {
    Running,
    Restarting,
    /// Not answering, or its work is failing (host disconnected, writes failing).
    Failed,
}

#[derive(Debug, thiserror::Error)]
#[error("no actor is named `{0}`")]
pub struct UnknownActor(pub String);

const FEATURES: &str = "features";
const WRITER: &str = "writer";

/// What the HTTP handlers talk to: the supervisor, and the feature actor for live VM queries.
#[derive(Clone)]
pub struct Pipeline {
    pub supervisor: Addr<TelemetrySupervisor>,
    pub features: Addr<FeatureActor>,
    writer: Addr<WriterActor>,
    /// The writer's thread runs as long as someone holds its handle.
    _writer_arbiter: ArbiterHandle,
}

impl Pipeline {
    /// Stops collecting, then writes what is held for at most `timeout`. Returns the lines still
    /// held then (kept in the spool for the next start, if there is one).
    pub async fn shut_down(&self, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        let _ = self.supervisor.send(StopCollecting).await;
        self.writer.do_send(Drain);
        loop {
            let held = match self.writer.send(GetWriterStatus).await {
                Ok(status) => status.queue_depth,
                Err(_) => return 0,
            };
            if held == 0 || Instant::now() >= deadline {
                return held;
            }
            actix_rt::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl TelemetrySupervisor {
    /// Starts the writer, the feature actor and one host actor per configured URI.
    pub fn start_pipeline(
        config: &AppConfig,
        target: WriteTarget,
        clients: HttpClients,
        buffer: Box<dyn LineBuffer + Send>,
    ) -> Pipeline {
        let writer_config = config.writer.clone();
        // A thread of its own: the spool's disk commits never hold up collection or the API.
        let writer_arbiter = Arbiter::new().handle();
        let writer = Supervisor::start_in_arbiter(&writer_arbiter, move |_| {
            WriterActor::new(writer_config, target, clients, buffer)
        });
        let writer_recipient = writer.clone().recipient();
        let recent_samples = config.recent_samples;
        let features =
            Supervisor::start(move |_| FeatureActor::new(writer_recipient, recent_samples));
        let hosts = config
            .hosts
            .iter()
            .map(|host| {
                let name = format!("host:{}", host.uri);
                let host = host.clone();
                let features = features.clone().recipient();
                let (poll_interval, libvirt_timeout) =
                    (config.poll_interval, config.libvirt_timeout);
                let collection = config.collection.clone();
                let addr = Supervisor::start(move |_| {
                    HostActor::new(host, poll_interval, libvirt_timeout, collection, features)
                });
                (name, addr)
            })
            .collect();
        let supervisor = TelemetrySupervisor {
            started_at: Utc::now(),
            hosts,
            features: features.clone(),
            writer: writer.clone(),
            restarts_requested: HashMap::new(),
        }
        .start();
        Pipeline {
            supervisor,
            features,
            writer,
            _writer_arbiter: writer_arbiter,
        }
    }

    fn state(&self, name: &str, restarts: u64, failing: bool) -> ActorState {
        match self.restarts_requested.get(name) {
            Some(asked_at) if restarts <= *asked_at => ActorState::Restarting,
            _ if failing => ActorState::Failed,
            _ => ActorState::Running,
        }
    }
}

impl Actor for TelemetrySupervisor {
    type Context = Context<Self>;
}

impl Handler<GetTelemetryStatus> for TelemetrySupervisor {
    type Result = ResponseFuture<Result<TelemetryStatus, MailboxError>>;

    fn handle(&mut self, _: GetTelemetryStatus, _: &mut Self::Context) -> Self::Result {
        let started_at = self.started_at;
        let hosts = try_join_all(self.hosts.iter().map(|(_, host)| host.send(GetHostStatus)));
        let features = self.features.send(GetFeatureStatus);
        let writer = self.writer.send(GetWriterStatus);
        Box::pin(async move {
            let hosts = hosts.await?;
            let features = features.await?;
            let writer = writer.await?;
            Ok(TelemetryStatus {
                started_at,
                total_collections: hosts.iter().map(|h| h.total_collections).sum(),
                total_errors: hosts.iter().map(|h| h.total_errors).sum::<u64>()
                    + features.unencodable_lines
                    + writer.failed_writes,
                last_collection_time: hosts.iter().filter_map(|h| h.last_collection_time).max(),
                vms_monitored: hosts.iter().map(|h| h.vms_monitored).sum(),
                total_metrics_written: writer.total_metrics_written,
                queue_depth: writer.queue_depth,
                dropped_lines: writer.dropped_lines,
                write_retries: writer.write_retries,
                hosts,
                features,
                writer,
            })
        })
    }
}

impl Handler<ListActors> for TelemetrySupervisor {
    type Result = ResponseActFuture<Self, Vec<ActorInfo>>;

    fn handle(&mut self, _: ListActors, _: &mut Self::Context) -> Self::Result {
        let hosts = join_all(self.hosts.iter().map(|(name, host)| {
            let reply = host.send(GetHostStatus).timeout(STATUS_TIMEOUT);
            let name = name.clone();
            async move { (name, reply.await) }
        }));
        let features = self.features.send(GetFeatureStatus).timeout(STATUS_TIMEOUT);
        let writer = self.writer.send(GetWriterStatus).timeout(STATUS_TIMEOUT);
        let replies = async move { (hosts.await, features.await, writer.await) };
        Box::pin(
            replies
                .into_actor(self)
                .map(|(hosts, features, writer), supervisor, _| {
                    let mut actors = Vec::with_capacity(hosts.len() + 2);
                    for (name, reply) in hosts {
                        actors.push(match reply {
                            Ok(host) => ActorInfo {
                                state: supervisor.state(
                                    &name,
                                    host.restarts,
                                    host.connection == ConnectionState::Disconnected,
                                ),
                                name,
                                kind: ActorKind::Host,
                                restarts: host.restarts,
                                panics: host.panics,
                                last_error: host.last_error,
                                last_error_time: host.last_error_time,
                                queue_depth: None,
                            },
                            Err(error) => not_answering(name, ActorKind::Host, &error),
                        });
                    }
                    actors.push(match features {
                        Ok(features) => ActorInfo {
                            name: FEATURES.into(),
                            kind: ActorKind::Features,
                            state: supervisor.state(FEATURES, features.restarts, false),
                            restarts: features.restarts,
                            panics: features.panics,
                            last_error: None,
                            last_error_time: None,
                            queue_depth: None,
                        },
                        Err(error) => not_answering(FEATURES.into(), ActorKind::Features, &error),
                    });
                    actors.push(match writer {
                        Ok(writer) => ActorInfo {
                            name: WRITER.into(),
                            kind: ActorKind::Writer,
                            state: supervisor.state(
                                WRITER,
                                writer.restarts,
                                writer.consecutive_failures > 0,
                            ),
                            restarts: writer.restarts,
                            panics: writer.panics,
                            last_error: writer.last_error,
                            last_error_time: writer.last_error_time,
                            queue_depth: Some(writer.queue_depth),
                        },
                        Err(error) => not_answering(WRITER.into(), ActorKind::Writer, &error),
                    });
                    actors
                }),
        )
    }
}

fn not_answering(name: String, kind: ActorKind, error: &MailboxError) -> ActorInfo {
    ActorInfo {
        name,
        kind,
        state: ActorState::Failed,
        restarts: 0,
        panics: 0,
        last_error: Some(format!("not answering: {error}")),
        last_error_time: Some(Utc::now()),
        queue_depth: None,
    }
}

impl Handler<RestartActor> for TelemetrySupervisor {
    type Result = ResponseActFuture<Self, Result<(), UnknownActor>>;

    fn handle(&mut self, RestartActor(name): RestartActor, _: &mut Self::Context) -> Self::Result {
        // The restart count before the restart tells when it has happened.
        let restarts: ResponseFuture<Result<u64, MailboxError>> = if name == FEATURES {
            let features = self.features.clone();
            Box::pin(async move {
                let restarts = features.send(GetFeatureStatus).await?.restarts;
                features.do_send(Restart);
                Ok(restarts)
            })
        } else if name == WRITER {
            let writer = self.writer.clone();
            Box::pin(async move {
                let restarts = writer.send(GetWriterStatus).await?.restarts;
                writer.do_send(Restart);
                Ok(restarts)
            })
        } else if let Some((_, host)) = self.hosts.iter().find(|(n, _)| *n == name) {
            let host = host.clone();
            Box::pin(async move {
                let restarts = host.send(GetHostStatus).await?.restarts;
                host.do_send(Restart);
                Ok(restarts)
            })
        } else {
            return Box::pin(fut::ready(Err(UnknownActor(name))));
        };
        tracing::info!(actor = %name, "restart requested");
        Box::pin(
            restarts
                .into_actor(self)
                .map(move |restarts, supervisor, _| {
                    // An actor that does not answer is restarted by its own supervisor when it stops.
                    if let Ok(restarts) = restarts {
                        supervisor.restarts_requested.insert(name, restarts);
                    }
                    Ok(())
                }),
        )
    }
}

impl Handler<StopCollecting> for TelemetrySupervisor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: StopCollecting, _: &mut Self::Context) -> Self::Result {
        let stops = join_all(self.hosts.iter().map(|(_, host)| host.send(StopCollecting)));
        Box::pin(async move {
            stops.await;
        })
    }
}
