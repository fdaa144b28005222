//! Starts every actor of the pipeline under an actix `Supervisor` (which restarts an actor that
//! stops), keeps their addresses, answers for all of them, and restarts one on request.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use chrono::{DateTime, Utc};
use futures_util::future::{join_all, try_join_all};

use super::actor_info::{ActorInfo, ActorState, ActorStatus, UnknownActor};
use super::coordinator::CoordinatorActor;
use super::features::FeatureActor;
use super::host::HostActor;
use super::insights::{GetInsightsStatus, InsightsActor};
use super::messages::{
    Drain, ForgetHost, GetCoordinationStatus, GetFeatureStatus, GetHostStatus, GetTelemetryStatus,
    GetWriterStatus, HostCollected, ListActors, Restart, RestartActor, Retire, StartHost,
    StopCollecting, StopHost,
};
use super::status::TelemetryStatus;
use super::writer::WriterActor;
use crate::configuration::{AppConfig, CollectionConfig, HostConfig};
use crate::coordination::{CollectDeadline, HostControl, Replica, Timing};
use crate::influx::buffer::LineBuffer;
use crate::influx::tls::HttpClients;
use crate::influx::write::WriteTarget;
use crate::vms::Catalogs;

/// How long an actor may take to say how it is before it counts as failed.
const STATUS_TIMEOUT: Duration = Duration::from_secs(2);

pub struct TelemetrySupervisor {
    started_at: DateTime<Utc>,
    hosts: Vec<(String, Addr<HostActor>)>,
    /// Starts the host actors, at start or when the coordinator says.
    host_factory: HostFactory,
    features: Addr<FeatureActor>,
    insights: Option<Addr<InsightsActor>>,
    writer: Addr<WriterActor>,
    /// None with static shards.
    coordinator: Option<Addr<CoordinatorActor>>,
    /// False once the service is stopping: the coordinator starts no more hosts.
    collecting: bool,
    /// Restarts asked for by name, with the actor's restart count when asked.
    restarts_requested: HashMap<String, u64>,
}

const FEATURES: &str = "features";
const INSIGHTS: &str = "insights";
const WRITER: &str = "writer";
const COORDINATOR: &str = "coordinator";

/// What every host actor starts with.
struct HostFactory {
    poll_interval: Duration,
    libvirt_timeout: Duration,
    collection: CollectionConfig,
    features: Recipient<HostCollected>,
    /// With etcd: shared with the coordinator, which moves it on.
    deadline: Option<CollectDeadline>,
}

impl HostFactory {
    fn start(&self, host: HostConfig) -> (String, Addr<HostActor>) {
        let name = format!("host:{}", host.uri);
        let (poll_interval, libvirt_timeout) = (self.poll_interval, self.libvirt_timeout);
        let (collection, features) = (self.collection.clone(), self.features.clone());
        let deadline = self.deadline.clone();
        let addr = Supervisor::start(move |_| {
            HostActor::new(host, poll_interval, libvirt_timeout, collection, features)
                .with_deadline(deadline.clone())
        });
        (name, addr)
    }
}

/// What the HTTP handlers talk to: the supervisor, and the feature actor for live VM queries.
#[derive(Clone)]
pub struct Pipeline {
    pub supervisor: Addr<TelemetrySupervisor>,
    pub features: Addr<FeatureActor>,
    /// None when `insights = false`.
    pub insights: Option<Addr<InsightsActor>>,
    /// None with static shards.
    pub coordinator: Option<Addr<CoordinatorActor>>,
    /// The VM list the API serves, shared with the feature actor.
    pub catalogs: Arc<Catalogs>,
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
    /// Starts the writer, the insights actor (when on), the feature actor and one host actor per
    /// configured URI.
    pub fn start_pipeline(
        config: &AppConfig,
        target: Option<WriteTarget>,
        clients: HttpClients,
        buffer: Box<dyn LineBuffer + Send>,
    ) -> Pipeline {
        let writer_config = config.writer.clone();
        // A thread of its own: the spool's disk commits never hold up collection or the API.
        let writer_arbiter = Arbiter::new().handle();
        let writer = Supervisor::start_in_arbiter(&writer_arbiter, move |_| {
            WriterActor::new(writer_config, target, clients, buffer)
        });
        let insights = config.insights.clone().map(|settings| {
            let writer = writer.clone().recipient();
            let outlook = config.outlook.clone();
            Supervisor::start(move |_| {
                InsightsActor::new(writer, settings).with_outlook(outlook.clone())
            })
        });
        let writer_recipient = writer.clone().recipient();
        let recent_samples = config.recent_samples;
        let to_insights = insights.clone().map(Addr::recipient);
        let catalogs = Arc::new(Catalogs::default());
        let shared = catalogs.clone();
        let features = Supervisor::start(move |_| {
            let features =
                FeatureActor::new(writer_recipient, recent_samples).with_catalogs(shared);
            match to_insights {
                Some(insights) => features.with_insights(insights),
                None => features,
            }
        });
        let host_factory = HostFactory {
            poll_interval: config.poll_interval,
            libvirt_timeout: config.libvirt_timeout,
            collection: config.collection.clone(),
            features: features.clone().recipient(),
            deadline: (config.coordination.etcd()).map(|_| CollectDeadline::default()),
        };
        let mut coordinator = None;
        let supervisor = TelemetrySupervisor::create(|ctx| {
            // With etcd the coordinator starts each host once it owns it; else every host now.
            coordinator = start_coordinator(config, ctx, host_factory.deadline.clone());
            let hosts = match coordinator {
                Some(_) => Vec::new(),
                None => (config.hosts.iter())
                    .map(|host| host_factory.start(host.clone()))
                    .collect(),
            };
            TelemetrySupervisor {
                started_at: Utc::now(),
                hosts,
                host_factory,
                features: features.clone(),
                insights: insights.clone(),
                writer: writer.clone(),
                coordinator: coordinator.clone(),
                collecting: true,
                restarts_requested: HashMap::new(),
            }
        });
        Pipeline {
            supervisor,
            features,
            insights,
            coordinator,
            catalogs,
            writer,
            _writer_arbiter: writer_arbiter,
        }
    }

    /// One actor's line for the admin API, from its status or from its silence.
    fn info<S: ActorStatus>(&self, name: String, reply: Result<S, MailboxError>) -> ActorInfo {
        let status = match reply {
            Ok(status) => status,
            Err(error) => return ActorInfo::not_answering(name, S::KIND, &error),
        };
        let state = match self.restarts_requested.get(&name) {
            Some(asked_at) if status.restarts() <= *asked_at => ActorState::Restarting,
            _ if status.failing() => ActorState::Failed,
            _ => ActorState::Running,
        };
        ActorInfo::from_status(name, state, &status)
    }

    /// Asks the actor named `name` to restart; none is so named: `None`.
    fn restart(&self, name: &str) -> Option<ResponseFuture<Result<u64, MailboxError>>> {
        if name == FEATURES {
            Some(Box::pin(self.features.send(Restart)))
        } else if name == INSIGHTS {
            let insights = self.insights.as_ref()?;
            Some(Box::pin(insights.send(Restart)))
        } else if name == WRITER {
            Some(Box::pin(self.writer.send(Restart)))
        } else if name == COORDINATOR {
            let coordinator = self.coordinator.as_ref()?;
            Some(Box::pin(coordinator.send(Restart)))
        } else {
            let (_, host) = self.hosts.iter().find(|(n, _)| n == name)?;
            Some(Box::pin(host.send(Restart)))
        }
    }
}

/// With `coordination = "etcd"`, the coordinator, which has the supervisor start and stop the
/// host actors.
fn start_coordinator(
    config: &AppConfig,
    ctx: &mut Context<TelemetrySupervisor>,
    deadline: Option<CollectDeadline>,
) -> Option<Addr<CoordinatorActor>> {
    let (etcd, deadline) = (config.coordination.etcd()?, deadline?);
    let control = HostControl {
        start: ctx.address().recipient(),
        stop: ctx.address().recipient(),
        deadline,
    };
    let timing = Timing::new(config.poll_interval, etcd.member_ttl);
    let replica = Replica::new(etcd.clone(), config.hosts.clone(), control, timing);
    Some(Supervisor::start(move |_| {
        CoordinatorActor::new(replica, timing)
    }))
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
        let insights = self.insights.as_ref().map(|a| a.send(GetInsightsStatus));
        let writer = self.writer.send(GetWriterStatus);
        let coordination = self
            .coordinator
            .as_ref()
            .map(|a| a.send(GetCoordinationStatus));
        Box::pin(async move {
            let (hosts, features, writer) = (hosts.await?, features.await?, writer.await?);
            let mut status = TelemetryStatus::new(started_at, hosts, features, writer);
            if let Some(insights) = insights {
                status.insights = Some(insights.await?);
            }
            if let Some(coordination) = coordination {
                status.coordination = Some(coordination.await?);
            }
            Ok(status)
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
        let insights =
            (self.insights.as_ref()).map(|a| a.send(GetInsightsStatus).timeout(STATUS_TIMEOUT));
        let writer = self.writer.send(GetWriterStatus).timeout(STATUS_TIMEOUT);
        let coordinator = (self.coordinator.as_ref())
            .map(|a| a.send(GetCoordinationStatus).timeout(STATUS_TIMEOUT));
        let replies = async move {
            let insights = match insights {
                Some(reply) => Some(reply.await),
                None => None,
            };
            let coordinator = match coordinator {
                Some(reply) => Some(reply.await),
                None => None,
            };
            (
                hosts.await,
                features.await,
                insights,
                writer.await,
                coordinator,
            )
        };
        Box::pin(replies.into_actor(self).map(
            |(hosts, features, insights, writer, coordinator), supervisor, _| {
                let mut actors: Vec<ActorInfo> = hosts
                    .into_iter()
                    .map(|(name, reply)| supervisor.info(name, reply))
                    .collect();
                actors.push(supervisor.info(FEATURES.into(), features));
                if let Some(insights) = insights {
                    actors.push(supervisor.info(INSIGHTS.into(), insights));
                }
                actors.push(supervisor.info(WRITER.into(), writer));
                if let Some(coordinator) = coordinator {
                    actors.push(supervisor.info(COORDINATOR.into(), coordinator));
                }
                actors
            },
        ))
    }
}

impl Handler<RestartActor> for TelemetrySupervisor {
    type Result = ResponseActFuture<Self, Result<(), UnknownActor>>;

    fn handle(&mut self, RestartActor(name): RestartActor, _: &mut Self::Context) -> Self::Result {
        // The restart count before the restart tells when it has happened.
        let Some(restarts) = self.restart(&name) else {
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

    /// No host starts a cycle from now on; then the coordinator hands them over.
    fn handle(&mut self, _: StopCollecting, _: &mut Self::Context) -> Self::Result {
        self.collecting = false;
        let stops = join_all(self.hosts.iter().map(|(_, host)| host.send(StopCollecting)));
        let coordinator = self.coordinator.clone();
        Box::pin(async move {
            stops.await;
            if let Some(coordinator) = coordinator {
                let _ = coordinator.send(StopCollecting).await;
            }
        })
    }
}

impl Handler<StartHost> for TelemetrySupervisor {
    type Result = ();

    fn handle(&mut self, StartHost(host): StartHost, _: &mut Self::Context) {
        let name = format!("host:{}", host.uri);
        if self.collecting && !self.hosts.iter().any(|(n, _)| *n == name) {
            self.hosts.push(self.host_factory.start(host));
        }
    }
}

impl Handler<StopHost> for TelemetrySupervisor {
    type Result = ResponseFuture<Option<DateTime<Utc>>>;

    fn handle(&mut self, StopHost(uri): StopHost, _: &mut Self::Context) -> Self::Result {
        let name = format!("host:{uri}");
        let Some(at) = self.hosts.iter().position(|(n, _)| *n == name) else {
            return Box::pin(async { None });
        };
        let (_, host) = self.hosts.remove(at);
        // With its last address gone, its actix Supervisor does not start it again.
        let retired = host.send(Retire);
        drop(host);
        let features = self.features.clone();
        Box::pin(async move {
            let last_cycle = retired.await.ok().flatten();
            // After its last cycle's samples, which went before the retirement.
            features.do_send(ForgetHost(uri));
            last_cycle
        })
    }
}
