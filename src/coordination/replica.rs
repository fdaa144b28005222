//! One replica's part in the fleet: its membership on etcd, the hosts the rendezvous gives it,
//! and the ownership keys without which it collects nothing. `tick` runs every coordination
//! interval; the coordinator actor calls it, one at a time.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;

use super::control::HostControl;
use super::etcd::{Etcd, EtcdError, Lease};
use super::follow::Follower;
use super::plan::{Holdings, plan, spread_over};
use super::rendezvous::Assignment;
use super::status::{CoordinationState, CoordinationStatus, HostOwner, MemberView};
use super::timing::Timing;
use super::view::{MemberRecord, View};
use crate::configuration::{EtcdConfig, HostConfig};

pub struct Replica {
    config: EtcdConfig,
    hosts: Vec<HostConfig>,
    control: HostControl,
    timing: Timing,
    etcd: Option<Etcd>,
    lease: Option<Lease>,
    /// A lease given up while etcd was unreachable: revoked first thing on joining again, so that
    /// the keys it holds (etcd renews every lease when it restarts) go at once.
    stale_lease: Option<i64>,
    /// The members and owners, kept up by a watch.
    follower: Follower,
    running: BTreeSet<String>,
    /// Stopped here; their key is given up (or, assigned here again, they resume) from then on.
    releasing: BTreeMap<String, Instant>,
    /// What this member says of itself on etcd: draining, hosts declined (set by the admin API).
    record: MemberRecord,
    assignment: Assignment,
    status: Arc<Mutex<CoordinationStatus>>,
}

impl Replica {
    pub fn new(
        config: EtcdConfig,
        hosts: Vec<HostConfig>,
        control: HostControl,
        timing: Timing,
    ) -> Self {
        let mut status = CoordinationStatus::new(config.member_name.clone());
        status.hosts = (hosts.iter())
            .map(|h| HostOwner {
                uri: h.uri.clone(),
                owner: None,
                assigned_to: None,
            })
            .collect();
        Replica {
            config,
            hosts,
            control,
            timing,
            etcd: None,
            lease: None,
            stale_lease: None,
            follower: Follower::default(),
            running: BTreeSet::new(),
            releasing: BTreeMap::new(),
            record: MemberRecord::default(),
            assignment: Assignment::default(),
            status: Arc::new(Mutex::new(status)),
        }
    }

    /// The status, shared: read without waiting for a tick.
    pub fn status(&self) -> Arc<Mutex<CoordinationStatus>> {
        self.status.clone()
    }

    /// Drains this replica, or ends the draining and takes back the hosts it declined.
    pub fn set_draining(&mut self, draining: bool) {
        self.record.draining = draining;
        if !draining {
            self.record.declined.clear();
        }
        self.publish_record();
    }

    /// Hands `uri` over and declines it until resumed; false for a host that is not this
    /// replica's (not configured, or collected by another member).
    pub fn decline(&mut self, uri: &str) -> bool {
        let known = self.hosts.iter().any(|h| h.uri == uri);
        let here = self.running.contains(uri)
            || self.releasing.contains_key(uri)
            || self.record.declined.contains(uri)
            || self.assignment.of(uri) == Some(self.config.member_name.as_str());
        if known && here {
            self.record.declined.insert(uri.to_owned());
            self.publish_record();
        }
        known && here
    }

    fn publish_record(&self) {
        let (draining, declined) = (self.record.draining, &self.record.declined);
        let declined = declined.iter().cloned().collect();
        self.edit_status(|status| (status.draining, status.declined) = (draining, declined));
    }

    fn edit_status(&self, edit: impl FnOnce(&mut CoordinationStatus)) {
        let mut status = self.status.lock().unwrap_or_else(|e| e.into_inner());
        edit(&mut status);
    }

    pub async fn tick(&mut self) {
        match self.step().await {
            Ok(()) => self.edit_status(|status| status.etcd_unreachable_since = None),
            Err(error) => {
                tracing::warn!(%error, member = %self.config.member_name, "coordination");
                self.lose_if_due().await;
                let message = error.to_string();
                self.edit_status(|status| {
                    let now = Utc::now();
                    if error.unreachable() {
                        status.etcd_unreachable_since.get_or_insert(now);
                    }
                    status.last_error = Some(message);
                    status.last_error_time = Some(now);
                });
            }
        }
    }

    /// Not renewed this tick: stops collecting now if the next tick could come too late.
    async fn lose_if_due(&mut self) {
        let due = |lease: &Lease| Instant::now() + self.timing.margin >= lease.expires;
        if self.lease.as_ref().is_some_and(due) {
            self.lose("etcd has not renewed the lease and it expires before the next tick")
                .await;
        }
    }

    async fn step(&mut self) -> Result<(), EtcdError> {
        let mut etcd = match self.etcd.take() {
            Some(etcd) => etcd,
            None => Etcd::connect(&self.config, self.timing.request_timeout).await?,
        };
        let result = self.step_with(&mut etcd).await;
        self.etcd = Some(etcd);
        result
    }

    async fn step_with(&mut self, etcd: &mut Etcd) -> Result<(), EtcdError> {
        let Some(lease) = self.lease.as_mut() else {
            return self.join(etcd).await;
        };
        let renewed = etcd.keep_alive(lease).await;
        let (id, expires) = (lease.id, lease.expires);
        if let Err(EtcdError::LeaseGone) = renewed {
            self.lose("etcd let the lease expire").await;
        }
        renewed?;
        self.control.deadline.extend(expires, self.timing.margin);
        let timeout = self.timing.request_timeout;
        let (watched, full) = self.follower.take(etcd, timeout).await?;
        if full {
            self.edit_status(|status| status.full_reads += 1);
        }
        let result = self.act_on(etcd, id, &watched.view).await;
        self.follower.keep(watched);
        result
    }

    async fn act_on(&mut self, etcd: &mut Etcd, lease: i64, view: &View) -> Result<(), EtcdError> {
        self.sync_member(etcd, lease, view).await?;
        self.reconcile(etcd, lease, view).await
    }

    async fn join(&mut self, etcd: &mut Etcd) -> Result<(), EtcdError> {
        if let Some(stale) = self.stale_lease {
            etcd.revoke(stale).await?;
            self.stale_lease = None;
        }
        let name = &self.config.member_name;
        let lease = etcd
            .join(name, self.config.member_ttl, &self.record)
            .await?;
        tracing::info!(member = %name, lease = lease.id, "joined the fleet's members on etcd");
        self.control
            .deadline
            .extend(lease.expires, self.timing.margin);
        self.lease = Some(lease);
        self.follower.forget();
        self.edit_status(|status| {
            status.state = CoordinationState::Member;
            status.last_error = None;
        });
        Ok(())
    }

    /// Writes this member's record when the admin API changed it.
    async fn sync_member(
        &mut self,
        etcd: &mut Etcd,
        lease: i64,
        view: &View,
    ) -> Result<(), EtcdError> {
        let written = view.members.get(&self.config.member_name);
        if written == Some(&self.record) {
            return Ok(());
        }
        let revision = (etcd.update_member(&self.config.member_name, lease, &self.record)).await?;
        self.follower.wrote(Some(revision));
        Ok(())
    }

    /// Stops every host at once, without giving their keys up (they go with the lease), and
    /// leaves the members until etcd answers again.
    async fn lose(&mut self, why: &str) {
        self.control.deadline.revoke();
        let hosts: Vec<String> = std::mem::take(&mut self.running).into_iter().collect();
        self.stop_hosts(&hosts).await;
        self.releasing.clear();
        if let Some(lease) = self.lease.take() {
            self.stale_lease = Some(lease.id);
        }
        // A new client when it joins again: the old one's connections failed for a whole TTL.
        self.etcd = None;
        self.follower.forget();
        tracing::error!(
            member = %self.config.member_name,
            hosts = hosts.len(),
            "{why}: stopped collecting every host it held until it joins again"
        );
        self.edit_status(|status| {
            status.state = CoordinationState::Lost;
            status.collecting.clear();
            status.leases_lost += 1;
        });
    }

    async fn reconcile(
        &mut self,
        etcd: &mut Etcd,
        lease: i64,
        view: &View,
    ) -> Result<(), EtcdError> {
        let (members, declined) = spread_over(view);
        let uris = self.hosts.iter().map(|h| h.uri.as_str());
        if self.assignment.update(uris, &members, &declined) {
            self.edit_status(|status| status.assignment_changed_at = Some(Utc::now()));
        }
        let releasing: BTreeSet<String> = self.releasing.keys().cloned().collect();
        let here = Holdings {
            member: &self.config.member_name,
            lease,
            running: &self.running,
            releasing: &releasing,
        };
        let uris = self.hosts.iter().map(|h| h.uri.as_str());
        let plan = plan(uris, &self.assignment, &view.owners, &here);
        if !plan.lost.is_empty() {
            tracing::warn!(hosts = ?plan.lost, "ownership keys gone: stopping those hosts");
            self.stop_hosts(&plan.lost).await;
        }
        self.hand_over(&plan.moving).await;
        let mut starting = self.finish_releases(etcd, lease).await?;
        starting.extend(plan.resume);
        let mut took = 0;
        for host in plan.take {
            let taken = etcd.take(&host, &self.config.member_name, lease).await?;
            if taken.is_some() {
                self.follower.wrote(taken);
                starting.push(host);
                took += 1;
            }
        }
        self.start_hosts(&starting).await;
        self.edit_status(|status| status.hosts_taken += took);
        self.publish(view);
        Ok(())
    }

    /// Stops `hosts`; each key is given up a poll interval after its last cycle, so the next
    /// owner's first cycle never comes within one poll of this replica's last.
    async fn hand_over(&mut self, hosts: &[String]) {
        let last_cycles = self.stop_hosts(hosts).await;
        for (host, last) in hosts.iter().zip(last_cycles) {
            let since = last.map_or(Duration::MAX, |t| {
                (Utc::now() - t).to_std().unwrap_or_default()
            });
            let wait = self.timing.poll_interval.saturating_sub(since);
            self.releasing.insert(host.clone(), Instant::now() + wait);
        }
    }

    /// Gives up the keys of the hosts stopped long enough ago; those assigned here again are
    /// returned, to be collected again.
    async fn finish_releases(
        &mut self,
        etcd: &mut Etcd,
        lease: i64,
    ) -> Result<Vec<String>, EtcdError> {
        let now = Instant::now();
        let due: Vec<String> = (self.releasing.iter())
            .filter(|(_, at)| **at <= now)
            .map(|(host, _)| host.clone())
            .collect();
        let mut back = Vec::new();
        for host in due {
            let member = Some(self.config.member_name.as_str());
            if self.assignment.of(&host) == member && !self.record.draining {
                back.push(host.clone());
            } else {
                let released = etcd.release(&host, lease).await?;
                self.follower.wrote(released);
                self.edit_status(|status| status.hosts_released += 1);
            }
            self.releasing.remove(&host);
        }
        Ok(back)
    }

    /// Stops the host actors of `hosts`; the time of each one's last cycle.
    async fn stop_hosts(&mut self, hosts: &[String]) -> Vec<Option<chrono::DateTime<Utc>>> {
        let last_cycles = self.control.stop_all(hosts).await;
        for host in hosts {
            self.running.remove(host);
        }
        last_cycles
    }

    async fn start_hosts(&mut self, uris: &[String]) {
        let hosts = (self.hosts.iter())
            .filter(|h| uris.contains(&h.uri))
            .collect();
        self.running.extend(self.control.start_all(hosts).await);
        if !uris.is_empty() {
            tracing::info!(hosts = ?uris, member = %self.config.member_name, "collecting");
        }
    }

    /// The members, owners and assignment as read this tick, adjusted by what it did.
    fn publish(&self, view: &View) {
        let member = &self.config.member_name;
        let owner_of = |uri: &str| match (self.running.contains(uri), view.owners.get(uri)) {
            (true, _) => Some(member.clone()),
            (false, _) if self.releasing.contains_key(uri) => Some(member.clone()),
            (false, Some(owner)) if &owner.member != member => Some(owner.member.clone()),
            _ => None,
        };
        let hosts: Vec<HostOwner> = (self.hosts.iter())
            .map(|h| HostOwner {
                uri: h.uri.clone(),
                owner: owner_of(&h.uri),
                assigned_to: self.assignment.of(&h.uri).map(str::to_owned),
            })
            .collect();
        let members = (view.members.iter())
            .map(|(name, record)| MemberView {
                name: name.clone(),
                draining: record.draining,
                declined: record.declined.iter().cloned().collect(),
                hosts: (hosts.iter())
                    .filter(|h| h.owner.as_ref() == Some(name))
                    .map(|h| h.uri.clone())
                    .collect(),
            })
            .collect();
        let collecting = self.running.iter().cloned().collect();
        self.edit_status(|status| {
            status.state = CoordinationState::Member;
            status.members = members;
            status.hosts = hosts;
            status.collecting = collecting;
        });
    }

    /// The service is stopping: hands every host over at once (a poll interval after its last
    /// cycle) by revoking the lease.
    pub async fn leave(&mut self) {
        let hosts: Vec<String> = std::mem::take(&mut self.running).into_iter().collect();
        self.hand_over(&hosts).await;
        let last_release = self.releasing.values().max().copied();
        if let Some(at) = last_release {
            actix_rt::time::sleep_until(at.into()).await;
        }
        if let (Some(etcd), Some(lease)) = (self.etcd.as_mut(), self.lease.take()) {
            match etcd.revoke(lease.id).await {
                Ok(()) => {
                    tracing::info!(hosts = hosts.len(), "left the members: hosts handed over")
                }
                Err(error) => {
                    tracing::warn!(%error, "could not revoke the lease: its hosts wait for it to expire")
                }
            }
        }
    }
}
