//! What a replica says about the fleet's coordination, as plain data for the status, `/ready`
//! and the admin API.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CoordinationStatus {
    /// Always `etcd` (there is no coordination status with static shards).
    pub mode: &'static str,
    /// This replica's name among the members.
    pub member: String,
    pub state: CoordinationState,
    /// Set by the admin API: this replica hands its hosts over and takes none.
    pub draining: bool,
    /// Set by the admin API: hosts this replica hands over and declines until resumed.
    pub declined: Vec<String>,
    /// The live members as this replica last read them, each with the hosts it holds.
    pub members: Vec<MemberView>,
    /// Every configured host, with the member holding it (none while it changes hands).
    pub hosts: Vec<HostOwner>,
    /// The hosts this replica collects.
    pub collecting: Vec<String>,
    /// When the assignment of hosts to members last changed (a member joined, left, drained or
    /// declined a host).
    pub assignment_changed_at: Option<DateTime<Utc>>,
    /// Since when etcd has not answered (none while it answers).
    pub etcd_unreachable_since: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub last_error_time: Option<DateTime<Utc>>,
    /// Hosts taken (their ownership key created), given up, and leases lost.
    pub hosts_taken: u64,
    pub hosts_released: u64,
    pub leases_lost: u64,
    /// Full reads of the members and owners: on joining, and when the watch keeping them up
    /// ended (etcd restarted or compacted its history); between those, a tick reads the changes.
    pub full_reads: u64,
    pub restarts: u64,
    pub panics: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CoordinationState {
    /// Not a member yet: etcd not reached, or the member name still held by a previous lease.
    Joining,
    /// A member, holding its lease.
    Member,
    /// Its lease expired (or would have) while etcd could not be reached: collecting nothing
    /// until it joins again.
    Lost,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MemberView {
    pub name: String,
    pub draining: bool,
    pub declined: Vec<String>,
    pub hosts: Vec<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HostOwner {
    pub uri: String,
    /// The member holding its ownership key.
    pub owner: Option<String>,
    /// The member the rendezvous gives it to.
    pub assigned_to: Option<String>,
}

impl CoordinationStatus {
    pub fn new(member: String) -> Self {
        CoordinationStatus {
            mode: "etcd",
            member,
            state: CoordinationState::Joining,
            draining: false,
            declined: Vec::new(),
            members: Vec::new(),
            hosts: Vec::new(),
            collecting: Vec::new(),
            assignment_changed_at: None,
            etcd_unreachable_since: None,
            last_error: None,
            last_error_time: None,
            hosts_taken: 0,
            hosts_released: 0,
            leases_lost: 0,
            full_reads: 0,
            restarts: 0,
            panics: 0,
        }
    }

    /// Why this replica cannot collect what it should, if so.
    pub fn trouble(&self) -> Option<String> {
        let since = self
            .etcd_unreachable_since
            .map(|since| format!(" (etcd unreachable since {})", since.to_rfc3339()))
            .unwrap_or_default();
        let error = self.last_error.as_deref().unwrap_or("no error recorded");
        match self.state {
            CoordinationState::Member => None,
            CoordinationState::Joining => Some(format!("not a member yet{since}: {error}")),
            CoordinationState::Lost => Some(format!(
                "lease lost{since}: collecting nothing until it joins again ({error})"
            )),
        }
    }
}
