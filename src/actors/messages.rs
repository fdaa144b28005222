//! Messages between the actors and from the HTTP handlers.

use actix::Message;

use chrono::{DateTime, Utc};

use crate::configuration::HostConfig;
use crate::coordination::status::CoordinationStatus;
use crate::extended::StatsSample;
use crate::guest::GuestCycle;
use crate::influx::line_protocol::Lines;
use crate::sample::HostSample;
use std::sync::Arc;

use crate::vms::{Answer, Catalog, Encoding, PageQuery, TableSnapshot, VmLookup};

use super::actor_info::{ActorInfo, UnknownActor};
use super::status::{FeatureStatus, HostStatus, TelemetryStatus, WriterStatus};

/// A host actor finished a cycle: every domain of that host, and the extended groups of every
/// (filtered) domain when the cycle carried them.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct HostCollected {
    pub sample: HostSample,
    pub stats: Option<StatsSample>,
    /// The guest agents' answers, when the cycle asked them.
    pub guest: Option<GuestCycle>,
}

/// Encoded lines for InfluxDB, oldest first.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct WriteLines(pub Lines);

#[derive(Message)]
#[rtype(result = "HostStatus")]
pub struct GetHostStatus;

#[derive(Message)]
#[rtype(result = "FeatureStatus")]
pub struct GetFeatureStatus;

#[derive(Message)]
#[rtype(result = "WriterStatus")]
pub struct GetWriterStatus;

#[derive(Message)]
#[rtype(result = "Result<TelemetryStatus, actix::MailboxError>")]
pub struct GetTelemetryStatus;

/// The catalog of the table's current generation, built if not yet.
#[derive(Message)]
#[rtype(result = "Arc<Catalog>")]
pub struct GetCatalog;

/// The answer to a VM list query that the catalog of the table's current generation lacks,
/// from the table, with that catalog.
#[derive(Message)]
#[rtype(result = "(Arc<Catalog>, Answer)")]
pub struct AnswerVms {
    pub query: PageQuery,
    pub encoding: Encoding,
}

/// Every VM's latest values, for a scrape of `/metrics`.
#[derive(Message)]
#[rtype(result = "TableSnapshot")]
pub struct SnapshotVms;

/// One VM by UUID, name or numeric VMID, optionally on one host.
#[derive(Message)]
#[rtype(result = "VmLookup")]
pub struct LookupVm {
    pub selector: String,
    pub host: Option<String>,
}

/// Stops the actor; its `actix::Supervisor` starts it again at once. Answers its restarts
/// before this one.
#[derive(Message)]
#[rtype(result = "u64")]
pub struct Restart;

/// Every actor's name, state and restarts.
#[derive(Message)]
#[rtype(result = "Vec<ActorInfo>")]
pub struct ListActors;

/// Restarts one actor by name; the others keep running.
#[derive(Message)]
#[rtype(result = "Result<(), UnknownActor>")]
pub struct RestartActor(pub String);

/// The service is stopping: write everything held, now.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Drain;

/// The service is stopping: collect no more.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopCollecting;

/// The coordinator took `0`'s ownership key: start its host actor.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StartHost(pub HostConfig);

/// The host of this URI goes to another replica: stop its actor, for good. Answers when its last
/// cycle ended (none if it had none), so that the next owner starts a poll interval later.
#[derive(Message)]
#[rtype(result = "Option<DateTime<Utc>>")]
pub struct StopHost(pub String);

/// To the feature actor: the host of this URI went to another replica, forget its VMs.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ForgetHost(pub String);

/// To a host actor: stop collecting and stop, without being restarted. Answers as `StopHost`.
#[derive(Message)]
#[rtype(result = "Option<DateTime<Utc>>")]
pub struct Retire;

#[derive(Message)]
#[rtype(result = "CoordinationStatus")]
pub struct GetCoordinationStatus;

/// Drain this replica (hand every host over, take none) or end the draining.
#[derive(Message)]
#[rtype(result = "CoordinationStatus")]
pub struct SetDraining(pub bool);

/// Hand one host over and decline it until resumed; None when it is not this replica's.
#[derive(Message)]
#[rtype(result = "Option<CoordinationStatus>")]
pub struct HandOver(pub String);
