//! The buffered writer: keeps lines in its buffer (the durable spool, or memory), writes a batch
//! when `batch_max_lines` wait or the oldest has waited `batch_max_sec`, and acts on InfluxDB's
//! reply: partial writes drop only the rejected lines, a 413 (or an all-or-nothing refusal)
//! halves the batch until the culprit is alone, and anything transient is retried after an
//! exponential backoff with full jitter, or when `Retry-After` says. A restart keeps every line.

use std::time::{Duration, Instant};

use actix::prelude::*;
use backon::ExponentialBackoff;
use chrono::Utc;

use super::backoff;
use super::crash::{CrashRecord, Crashable, crash_fields, crash_handlers, guarded};
use super::messages::{Drain, GetWriterStatus, WriteLines};
use super::status::{WriteFailures, WriterStatus};
use crate::configuration::WriterConfig;
use crate::influx::buffer::LineBuffer;
use crate::influx::tls::HttpClients;
use crate::influx::write::{WriteOutcome, WriteTarget};

const RETRY_MIN_DELAY: Duration = Duration::from_millis(500);
/// The longest `Retry-After` honoured.
const RETRY_AFTER_CAP: Duration = Duration::from_secs(600);
/// While stopping, a failed batch is tried again this soon.
const DRAIN_RETRY_DELAY: Duration = Duration::from_millis(200);
/// Freed memory is given back at most this often: once a cycle with one host, not once per host
/// with many (each time ≈ 0.4 ms at 10,000 VMs).
const GIVE_BACK_EVERY: Duration = Duration::from_millis(500);

pub struct WriterActor {
    config: WriterConfig,
    /// None without InfluxDB (`influx_url = ""`): lines are not kept.
    target: Option<WriteTarget>,
    clients: HttpClients,
    /// Created on the actor's own thread: `awc::Client` is not `Send`.
    client: Option<awc::Client>,
    buffer: Box<dyn LineBuffer + Send>,
    /// Lines per request: `batch_max_lines`, halved on 413 or refusal, doubled back on success.
    batch_limit: usize,
    in_flight: bool,
    retry: Option<Retry>,
    /// Stopping: every line waiting is due, and retries come quickly.
    draining: bool,
    status: WriterStatus,
    crashes: CrashRecord,
    given_back_at: Option<Instant>,
}

/// A failed batch waits until `at`; `backoff` yields the ceilings of later waits.
struct Retry {
    at: Instant,
    backoff: ExponentialBackoff,
}

impl WriterActor {
    pub fn new(
        config: WriterConfig,
        target: Option<WriteTarget>,
        clients: HttpClients,
        buffer: Box<dyn LineBuffer + Send>,
    ) -> Self {
        let status = WriterStatus {
            url: target
                .as_ref()
                .map(|t| t.url().to_string())
                .unwrap_or_default(),
            spooled: config.spool.is_some(),
            ..WriterStatus::default()
        };
        WriterActor {
            batch_limit: config.batch_max_lines,
            config,
            target,
            clients,
            client: None,
            buffer,
            in_flight: false,
            retry: None,
            draining: false,
            status,
            crashes: CrashRecord::default(),
            given_back_at: None,
        }
    }

    fn flush_if_due(&mut self, ctx: &mut Context<Self>) {
        let now = Instant::now();
        let due_at = if self.draining { 1 } else { self.batch_limit };
        if self.in_flight
            || self.retry.as_ref().is_some_and(|retry| now < retry.at)
            || !self.buffer.batch_due(now, due_at)
        {
            return;
        }
        self.send_batch(ctx);
    }

    fn send_batch(&mut self, ctx: &mut Context<Self>) {
        let (Some(client), Some(target)) = (self.client.clone(), self.target.clone()) else {
            return;
        };
        let batch = self.buffer.take_batch(self.batch_limit);
        if batch.lines == 0 {
            return;
        }
        self.in_flight = true;
        let lines = batch.lines;
        let write = async move { target.write(&client, batch.body).await };
        let sent = Instant::now();
        ctx.spawn(write.into_actor(self).map(move |outcome, actor, ctx| {
            actor.in_flight = false;
            actor.status.write_durations.observe(sent.elapsed());
            guarded(actor, ctx, |actor, ctx| {
                actor.batch_done(outcome, lines, ctx);
                actor.flush_if_due(ctx);
            });
        }));
    }

    fn batch_done(&mut self, outcome: WriteOutcome, lines: usize, ctx: &mut Context<Self>) {
        let now = Instant::now();
        count_failure(&mut self.status.failures, &outcome);
        match outcome {
            WriteOutcome::Written => {
                self.buffer.batch_done();
                self.written(lines);
            }
            WriteOutcome::Partial(rejected) => {
                self.buffer.batch_done();
                for line in &rejected {
                    tracing::error!(
                        line_number = line.line_number,
                        error = %line.error_message,
                        line = %line.original_line,
                        "InfluxDB rejected a line"
                    );
                }
                let refused = rejected.len().min(lines);
                self.status.rejected_lines += refused as u64;
                self.written(lines - refused);
            }
            WriteOutcome::Refused { status, message } if lines > 1 => {
                // All-or-nothing: halve until the bad line is alone, losing no good line.
                self.buffer.batch_failed(now);
                self.batch_limit = (lines / 2).max(1);
                tracing::warn!(status, %message, lines, "batch refused: retrying in halves");
            }
            WriteOutcome::Refused { status, message } => {
                self.buffer.batch_done();
                self.status.rejected_lines += 1;
                self.note_error(format!("InfluxDB refused a line ({status}): {message}"));
            }
            WriteOutcome::TooLarge if lines > 1 => {
                self.buffer.batch_failed(now);
                self.batch_limit = (lines / 2).max(1);
                tracing::warn!(lines, "batch too large for InfluxDB: retrying in halves");
            }
            WriteOutcome::TooLarge => {
                self.buffer.batch_done();
                self.status.rejected_lines += 1;
                self.note_error("InfluxDB refused a single line as too large (413)".into());
            }
            WriteOutcome::DatabaseMissing(message)
                if self
                    .target
                    .as_ref()
                    .is_some_and(WriteTarget::creates_database) =>
            {
                self.buffer.batch_failed(now);
                self.create_database(message, ctx);
            }
            WriteOutcome::DatabaseMissing(message) => {
                self.retry_later(
                    format!("InfluxDB has no such database ({message}); set create_database = true to create it"),
                    None,
                    false,
                );
            }
            WriteOutcome::Retry {
                reason,
                retry_after,
                auth_failed,
            } => self.retry_later(reason, retry_after, auth_failed),
        }
        self.status.dropped_lines = self.buffer.dropped();
        // While stopping no push follows to make the spool's removals durable: made so here,
        // so that the next start does not send written lines again.
        if self.draining {
            self.buffer.persist();
        }
    }

    fn written(&mut self, lines: usize) {
        self.retry = None;
        self.batch_limit = (self.batch_limit * 2).min(self.config.batch_max_lines);
        self.status.total_metrics_written += lines as u64;
        self.status.consecutive_failures = 0;
        self.status.auth_failing = false;
        self.status.last_write_time = Some(Utc::now());
        tracing::debug!(lines, "batch written");
    }

    fn retry_later(&mut self, reason: String, retry_after: Option<Duration>, auth_failed: bool) {
        self.buffer.batch_failed(Instant::now());
        let max_delay = self.config.retry_max_delay;
        let retry = self.retry.get_or_insert_with(|| Retry {
            at: Instant::now(),
            backoff: backoff::exponential(RETRY_MIN_DELAY.min(max_delay), max_delay),
        });
        // Full jitter: anywhere between no wait and the exponential ceiling.
        let ceiling = retry.backoff.next().unwrap_or(max_delay);
        let delay = match retry_after {
            Some(asked) => asked.min(RETRY_AFTER_CAP),
            None => ceiling.mul_f64(fastrand::f64()),
        };
        let delay = if self.draining {
            delay.min(DRAIN_RETRY_DELAY)
        } else {
            delay
        };
        retry.at = Instant::now() + delay;
        self.status.write_retries += 1;
        self.status.consecutive_failures += 1;
        self.status.auth_failing = auth_failed;
        tracing::warn!(error = %reason, retry_in = ?delay, "batch kept for a retry");
        self.note_error(reason);
    }

    fn create_database(&mut self, reason: String, ctx: &mut Context<Self>) {
        let (Some(client), Some(target)) = (self.client.clone(), self.target.clone()) else {
            return;
        };
        self.in_flight = true;
        let create = async move { target.create_database(&client).await };
        ctx.spawn(create.into_actor(self).map(move |created, actor, ctx| {
            actor.in_flight = false;
            match created {
                Ok(()) => {
                    tracing::info!(%reason, "database created");
                    actor.send_batch(ctx);
                }
                Err(error) => actor.retry_later(error.to_string(), None, false),
            }
        }));
    }

    fn note_error(&mut self, error: String) {
        self.status.failed_writes += 1;
        self.status.last_error = Some(error);
        self.status.last_error_time = Some(Utc::now());
    }
}

fn count_failure(failures: &mut WriteFailures, outcome: &WriteOutcome) {
    let class = match outcome {
        WriteOutcome::Written | WriteOutcome::Partial(_) => return,
        WriteOutcome::Retry {
            auth_failed: true, ..
        } => &mut failures.auth,
        WriteOutcome::Retry { .. } => &mut failures.transient,
        WriteOutcome::Refused { .. } => &mut failures.refused,
        WriteOutcome::TooLarge => &mut failures.too_large,
        WriteOutcome::DatabaseMissing(_) => &mut failures.database_missing,
    };
    *class += 1;
}

impl Actor for WriterActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.crashes.wait_out(ctx);
        self.client = Some(self.clients.client());
        // Check a few times per batch age, so no line waits much longer than `batch_max_sec`.
        let tick = (self.config.batch_max_age / 4).max(Duration::from_millis(5));
        ctx.run_interval(tick, |actor, ctx| {
            guarded(actor, ctx, |actor, ctx| {
                actor.buffer.maintain(Instant::now());
                actor.status.dropped_lines = actor.buffer.dropped();
                actor.flush_if_due(ctx);
            });
        });
    }
}

impl Crashable for WriterActor {
    crash_fields!(WriterStatus);

    fn name(&self) -> String {
        "writer".into()
    }

    fn fill_in(&self, status: &mut WriterStatus) {
        status.queue_depth = self.buffer.depth();
        status.spool = self.buffer.spool_status();
    }
}

impl Supervised for WriterActor {
    fn restarting(&mut self, _: &mut Self::Context) {
        // No line is lost: a batch whose request was cut short stays in the buffer (InfluxDB
        // overwrites a point written twice). A new client and retry schedule start clean.
        self.buffer.batch_failed(Instant::now());
        self.in_flight = false;
        self.client = None;
        self.retry = None;
        self.status.restarts += 1;
    }
}

impl Handler<WriteLines> for WriterActor {
    type Result = ();

    fn handle(&mut self, WriteLines(lines): WriteLines, ctx: &mut Self::Context) {
        if self.target.is_none() {
            return;
        }
        guarded(self, ctx, |actor, ctx| {
            let now = Instant::now();
            actor.buffer.push(lines, now);
            actor.status.dropped_lines = actor.buffer.dropped();
            actor.flush_if_due(ctx);
            // A cycle's buffers are freed by now (its samples, its lines once stored).
            if actor
                .given_back_at
                .is_none_or(|at| now.duration_since(at) >= GIVE_BACK_EVERY)
            {
                crate::allocator::give_back_free_memory();
                actor.given_back_at = Some(now);
            }
        });
    }
}

crash_handlers!(WriterActor, GetWriterStatus);

/// From now on writes whatever waits at once, retrying quickly: the service is stopping.
impl Handler<Drain> for WriterActor {
    type Result = ();

    fn handle(&mut self, _: Drain, ctx: &mut Self::Context) {
        self.draining = true;
        self.retry = None;
        self.buffer.persist();
        self.flush_if_due(ctx);
    }
}
