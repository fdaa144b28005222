//! One actor's line in the admin API, as plain data, from any actor's status.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::status::{ConnectionState, FeatureStatus, HostStatus, InsightsStatus, WriterStatus};
use crate::coordination::status::CoordinationStatus;

/// One actor, for the admin API.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ActorInfo {
    /// `host:<uri>`, `features`, `insights`, `writer` or `coordinator`.
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
    Insights,
    Writer,
    Coordinator,
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

/// What every actor's status tells the supervisor and the admin API.
pub trait ActorStatus: Clone {
    const KIND: ActorKind;
    fn restarts(&self) -> u64;
    fn panics(&self) -> u64;
    fn set_panics(&mut self, panics: u64);
    /// Its work is failing (host disconnected, writes failing).
    fn failing(&self) -> bool {
        false
    }
    fn last_error(&self) -> (Option<String>, Option<DateTime<Utc>>) {
        (None, None)
    }
    fn queue_depth(&self) -> Option<usize> {
        None
    }
}

impl ActorInfo {
    pub fn from_status<S: ActorStatus>(name: String, state: ActorState, status: &S) -> Self {
        let (last_error, last_error_time) = status.last_error();
        ActorInfo {
            name,
            kind: S::KIND,
            state,
            restarts: status.restarts(),
            panics: status.panics(),
            last_error,
            last_error_time,
            queue_depth: status.queue_depth(),
        }
    }

    /// An actor whose status did not come back in time.
    pub fn not_answering(name: String, kind: ActorKind, error: &actix::MailboxError) -> Self {
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
}

/// The two counters every status keeps under the same names, and the last error of those that
/// keep one.
macro_rules! counters {
    () => {
        fn restarts(&self) -> u64 {
            self.restarts
        }
        fn panics(&self) -> u64 {
            self.panics
        }
        fn set_panics(&mut self, panics: u64) {
            self.panics = panics;
        }
    };
    (and last_error) => {
        counters!();
        fn last_error(&self) -> (Option<String>, Option<DateTime<Utc>>) {
            (self.last_error.clone(), self.last_error_time)
        }
    };
}

impl ActorStatus for HostStatus {
    const KIND: ActorKind = ActorKind::Host;
    counters!(and last_error);
    fn failing(&self) -> bool {
        self.connection == ConnectionState::Disconnected
    }
}

impl ActorStatus for FeatureStatus {
    const KIND: ActorKind = ActorKind::Features;
    counters!();
}

impl ActorStatus for InsightsStatus {
    const KIND: ActorKind = ActorKind::Insights;
    counters!();
}

impl ActorStatus for CoordinationStatus {
    const KIND: ActorKind = ActorKind::Coordinator;
    counters!(and last_error);
    fn failing(&self) -> bool {
        self.trouble().is_some()
    }
}

impl ActorStatus for WriterStatus {
    const KIND: ActorKind = ActorKind::Writer;
    counters!(and last_error);
    fn failing(&self) -> bool {
        self.trouble().is_some()
    }
    fn queue_depth(&self) -> Option<usize> {
        Some(self.queue_depth)
    }
}
