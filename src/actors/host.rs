//! One actor per libvirt URI: every `poll_interval` it asks its libvirt worker thread for a cycle
//! (with the extended groups due, each at its own interval) and passes the sample on. A cycle
//! that fails or overruns drops the worker (and its connection), so one stuck host never delays
//! another. A new worker starts after an exponential backoff, and never while an abandoned one is
//! still blocked in libvirt.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use actix::prelude::*;
use backon::ExponentialBackoff;
use chrono::{TimeDelta, Utc};

use super::backoff;
use super::crash::{CrashRecord, Crashable, crash_fields, crash_handlers, guarded};
use super::messages::{GetHostStatus, HostCollected, Retire, StopCollecting};
use super::spacing::Spacing;
use super::status::{ConnectionState, HostStatus};
use crate::configuration::{CollectionConfig, HostConfig};
use crate::coordination::CollectDeadline;
use crate::extended::StatsSample;
use crate::guest::{GuestAgents, GuestCycle};
use crate::libvirt::cadence::{Cadence, Due};
use crate::libvirt::{Abandoned, Cycle, LibvirtError, LibvirtWorker, StatsCycle};

/// The longest wait between two connection attempts to a failing host.
const RECONNECT_MAX_DELAY: Duration = Duration::from_secs(60);

pub struct HostActor {
    host: HostConfig,
    poll_interval: Duration,
    libvirt_timeout: Duration,
    worker: Option<LibvirtWorker>,
    /// The last worker given up on in the middle of a call, until its thread ends.
    abandoned: Option<Abandoned>,
    /// After a failed cycle: no new connection before `at`.
    reconnect: Option<Reconnect>,
    cycle_running: bool,
    /// A cycle starts at least half an interval after the last ended; a tick too soon waits.
    spacing: Spacing,
    deferred: Option<SpawnHandle>,
    /// Extended stats groups, their intervals, the domain filter.
    collection: CollectionConfig,
    /// Which groups each cycle carries: they ride on a cycle, so that they share its list of
    /// domains and its batch of lines.
    cadence: Cadence,
    /// The service is stopping: no new cycle starts.
    stopped: bool,
    /// Its host went to another replica: it stops for good, and is not restarted.
    retired: bool,
    /// With etcd: no cycle starts past it (the lease may have ended); `paused` once said so.
    deadline: Option<CollectDeadline>,
    paused: bool,
    /// Bulk stats calls left behind, of every worker this actor had, still in libvirt.
    stats_calls_left_behind: Arc<AtomicUsize>,
    features: Recipient<HostCollected>,
    status: HostStatus,
    crashes: CrashRecord,
}

struct Reconnect {
    at: Instant,
    backoff: ExponentialBackoff,
}

impl HostActor {
    pub fn new(
        host: HostConfig,
        poll_interval: Duration,
        libvirt_timeout: Duration,
        collection: CollectionConfig,
        features: Recipient<HostCollected>,
    ) -> Self {
        let status = HostStatus {
            uri: host.uri.clone(),
            ..HostStatus::default()
        };
        let cadence = Cadence::new(&collection.intervals, poll_interval);
        HostActor {
            host,
            poll_interval,
            libvirt_timeout,
            worker: None,
            abandoned: None,
            reconnect: None,
            cycle_running: false,
            spacing: Spacing::new(poll_interval),
            deferred: None,
            collection,
            cadence,
            stopped: false,
            retired: false,
            deadline: None,
            paused: false,
            stats_calls_left_behind: Arc::default(),
            features,
            status,
            crashes: CrashRecord::default(),
        }
    }

    /// Collects only while `deadline` allows it (coordination on etcd).
    pub fn with_deadline(mut self, deadline: Option<CollectDeadline>) -> Self {
        self.deadline = deadline;
        self
    }

    /// Whether the lease this replica collects under may have ended: no cycle then.
    fn past_deadline(&mut self) -> bool {
        let past = (self.deadline.as_ref()).is_some_and(|d| !d.allows(Instant::now()));
        if past && !self.paused {
            tracing::warn!(uri = %self.host.uri, "lease not renewed in time: no cycle until it is");
        }
        self.paused = past;
        past
    }

    /// A poll tick: counted when the last cycle keeps it from starting one on time.
    fn tick(&mut self, ctx: &mut Context<Self>) {
        if self.cycle_running || !self.spacing.wait(Instant::now()).is_zero() {
            self.status.overrun_ticks += 1;
        }
        self.collect(ctx);
    }

    fn collect(&mut self, ctx: &mut Context<Self>) {
        // A cycle still running when the next is due is not doubled up.
        if self.cycle_running || self.stopped || self.past_deadline() {
            return;
        }
        let wait = self.spacing.wait(Instant::now());
        if !wait.is_zero() {
            // Once, however many ticks come meanwhile.
            if self.deferred.is_none() {
                self.deferred = Some(ctx.run_later(wait, |actor, ctx| {
                    actor.deferred = None;
                    guarded(actor, ctx, Self::collect);
                }));
            }
            return;
        }
        if self.abandoned.as_ref().is_some_and(Abandoned::has_ended) {
            self.abandoned = None;
            self.status.stuck_call_since = None;
        }
        if self.worker.is_none() {
            if self
                .reconnect
                .as_ref()
                .is_some_and(|r| Instant::now() < r.at)
            {
                return;
            }
            // One thread blocked in libvirt per host at most: stuck calls must not pile up.
            if let Some(abandoned) = &self.abandoned {
                if let Some(stuck) = abandoned.stuck() {
                    self.record_error(stuck.to_string());
                }
                return;
            }
            let left_behind = self.stats_calls_left_behind.clone();
            let worker = LibvirtWorker::spawn(
                &self.host,
                &self.collection,
                self.libvirt_timeout,
                left_behind,
            );
            match worker {
                Ok(worker) => self.worker = Some(worker),
                Err(e) => {
                    // A task limit reached, say: retried like a failed connection, not every poll.
                    self.status.connection = ConnectionState::Disconnected;
                    self.record_error(format!("cannot start a libvirt thread: {e}"));
                    self.back_off();
                    return;
                }
            }
        }
        let Some(worker) = &self.worker else { return };
        let due = self.cadence.next_cycle();
        self.cycle_running = true;
        let cycle = worker.sample(self.libvirt_timeout, due);
        ctx.spawn(cycle.into_actor(self).map(move |result, actor, ctx| {
            actor.cycle_running = false;
            actor.spacing.ended(Instant::now());
            guarded(actor, ctx, |actor, _| actor.finish_cycle(result, due));
        }));
    }

    /// Of a cycle that carried the extended groups: a failed call costs only the rows of the
    /// domains it read (counted in `stats_errors`, not in `total_errors`).
    fn finish_stats(&mut self, stats: StatsCycle) -> StatsSample {
        let StatsCycle {
            sample,
            duration,
            failed,
        } = stats;
        self.status.stats_collections += 1;
        self.status.last_stats_duration_sec = Some(duration.as_secs_f64());
        self.status.stats_durations.observe(duration);
        if let Some(error) = failed {
            tracing::warn!(uri = %self.host.uri, %error, "bulk stats failed");
            self.status.stats_errors += 1;
            self.status.last_stats_error = Some(error.to_string());
        }
        sample
    }

    /// The agents' counts for the status. A silent or absent agent is no error and is not
    /// logged (it would be, every cycle); anything else is logged at debug level.
    fn finish_guest(&mut self, guest: &GuestCycle, duration: Duration) {
        let before = self.status.guest_agents.take().unwrap_or_default();
        let rejected: usize = guest.samples.iter().map(|s| s.rejected).sum();
        if let Some(error) = &guest.failed {
            tracing::debug!(uri = %self.host.uri, %error, "guest agent call failed");
        }
        self.status.guest_agents = Some(GuestAgents {
            answering: guest.answering,
            silent: guest.silent,
            absent: guest.absent,
            duration_sec: duration.as_secs_f64(),
            rejected_values: before.rejected_values + rejected as u64,
            rounds_skipped: before.rounds_skipped + guest.skipped_rounds as u64,
            last_error: guest.failed.clone().or(before.last_error),
        });
    }

    fn finish_cycle(&mut self, result: Result<Cycle, LibvirtError>, due: Due) {
        // A cycle that ends after its host went to another replica is not this replica's.
        if self.retired {
            return;
        }
        match result {
            Ok(Cycle {
                sample,
                domain_errors,
                vanished,
                duration,
                stats,
                guest,
            }) => {
                self.reconnect = None;
                self.status.next_attempt_time = None;
                self.status.reconnect_backoff_sec = None;
                self.status.domains_vanished += vanished as u64;
                self.status.connection = ConnectionState::Connected;
                self.status.host = Some(sample.host.clone());
                self.status.total_collections += 1;
                self.status.vms_monitored = sample.domains.len();
                self.status.last_collection_time = Some(Utc::now());
                self.status.last_collection_duration_sec = Some(duration.as_secs_f64());
                self.status.cycle_durations.observe(duration);
                for error in domain_errors {
                    self.record_error(format!("reading a domain: {error}"));
                }
                let stats = stats.map(|stats| self.finish_stats(stats));
                if let Some((guest, duration)) = &guest {
                    self.finish_guest(guest, *duration);
                }
                self.features.do_send(HostCollected {
                    sample,
                    stats,
                    guest: guest.map(|(guest, _)| guest),
                });
            }
            Err(error) => {
                // The extended groups it would have carried come with the next cycle.
                self.cadence.missed(due);
                // Whatever failed, the next attempt starts on a new thread and connection.
                if let (Some(worker), LibvirtError::Timeout(_)) = (self.worker.take(), &error) {
                    self.abandon(worker, Duration::ZERO);
                }
                self.status.connection = ConnectionState::Disconnected;
                self.status.vms_monitored = 0;
                self.record_error(error.to_string());
                self.back_off();
            }
        }
    }

    fn abandon(&mut self, worker: LibvirtWorker, grace: Duration) {
        self.abandoned = Some(worker.abandon(self.libvirt_timeout, grace));
        self.status.stuck_call_since = Some(Utc::now());
    }

    fn back_off(&mut self) {
        let poll_interval = self.poll_interval;
        let reconnect = self.reconnect.get_or_insert_with(|| Reconnect {
            at: Instant::now(),
            backoff: backoff::exponential(poll_interval, RECONNECT_MAX_DELAY.max(poll_interval)),
        });
        let ceiling = reconnect.backoff.next().unwrap_or(RECONNECT_MAX_DELAY);
        // Equal jitter: hosts that failed together retry apart, none sooner than half the ceiling.
        let delay = ceiling.mul_f64(0.5 + 0.5 * fastrand::f64());
        reconnect.at = Instant::now() + delay;
        self.status.next_attempt_time =
            Some(Utc::now() + TimeDelta::from_std(delay).unwrap_or(TimeDelta::MAX));
        self.status.reconnect_backoff_sec = Some(delay.as_secs_f64());
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
        if self.retired {
            ctx.stop();
            return;
        }
        tracing::info!(uri = %self.host.uri, "host actor started");
        self.crashes.wait_out(ctx);
        guarded(self, ctx, Self::collect);
        ctx.run_interval(self.poll_interval, |actor, ctx| {
            guarded(actor, ctx, Self::tick);
        });
    }
}

impl Crashable for HostActor {
    crash_fields!(HostStatus);

    fn name(&self) -> String {
        format!("host:{}", self.host.uri)
    }

    fn fill_in(&self, status: &mut HostStatus) {
        status.stats_calls_left_behind = self.stats_calls_left_behind.load(Ordering::Acquire);
    }
}

impl Supervised for HostActor {
    fn restarting(&mut self, _: &mut Self::Context) {
        // A restart reconnects at once: drop the worker and its connection; counters are kept.
        // A worker in the middle of a cycle is kept an eye on, in case that call never returns.
        if let Some(worker) = self.worker.take()
            && self.cycle_running
        {
            self.abandon(worker, self.libvirt_timeout);
        }
        self.reconnect = None;
        self.status.next_attempt_time = None;
        self.status.reconnect_backoff_sec = None;
        self.cycle_running = false;
        // A restart cancels what the context had scheduled.
        self.deferred = None;
        self.status.connection = ConnectionState::Connecting;
        self.status.restarts += 1;
    }
}

crash_handlers!(HostActor, GetHostStatus);

impl Handler<Retire> for HostActor {
    type Result = MessageResult<Retire>;

    fn handle(&mut self, _: Retire, ctx: &mut Self::Context) -> Self::Result {
        tracing::info!(uri = %self.host.uri, "host handed over: its actor stops");
        self.retired = true;
        self.stopped = true;
        // Its thread ends once its current call returns; the cycle's answer is dropped.
        self.worker = None;
        ctx.stop();
        MessageResult(self.status.last_collection_time)
    }
}

impl Handler<StopCollecting> for HostActor {
    type Result = ();

    fn handle(&mut self, _: StopCollecting, _: &mut Self::Context) {
        self.stopped = true;
    }
}
