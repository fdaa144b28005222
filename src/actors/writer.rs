//! The buffered writer: queues lines, flushes a batch when `batch_max_lines` wait or the oldest has
//! waited `batch_max_sec`, and keeps a failed batch for a retry after exponential backoff with
//! full jitter. A restart keeps the queue.

use std::time::{Duration, Instant};

use actix::prelude::*;
use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::messages::{GetWriterStatus, Restart, WriteLines};
use crate::configuration::WriterConfig;
use crate::influx::queue::WriteQueue;
use crate::influx::write::{WriteError, WriteTarget};

const RETRY_MIN_DELAY: Duration = Duration::from_millis(500);
const RETRY_MAX_DELAY: Duration = Duration::from_secs(60);

pub struct WriterActor {
    config: WriterConfig,
    target: WriteTarget,
    /// Created on the actor's own thread: `awc::Client` is not `Send`.
    client: Option<awc::Client>,
    queue: WriteQueue,
    retry: Option<Retry>,
    status: WriterStatus,
}

/// A failed batch waits until `at`; `backoff` yields the ceilings of later waits.
struct Retry {
    at: Instant,
    backoff: ExponentialBackoff,
}

#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct WriterStatus {
    pub url: String,
    pub queue_depth: usize,
    pub total_metrics_written: u64,
    pub dropped_lines: u64,
    /// Lines InfluxDB refused as invalid (logged with its reason).
    pub rejected_lines: u64,
    pub write_retries: u64,
    /// Write requests that failed, for any reason.
    pub failed_writes: u64,
    pub consecutive_failures: u64,
    pub last_error: Option<String>,
    pub last_error_time: Option<DateTime<Utc>>,
    pub last_write_time: Option<DateTime<Utc>>,
    pub restarts: u64,
}

impl WriterActor {
    pub fn new(config: WriterConfig, target: WriteTarget) -> Self {
        let queue = WriteQueue::new(
            config.max_queue,
            config.batch_max_lines,
            config.batch_max_age,
        );
        let status = WriterStatus {
            url: target.url().to_string(),
            ..WriterStatus::default()
        };
        WriterActor {
            config,
            target,
            client: None,
            queue,
            retry: None,
            status,
        }
    }

    fn flush_if_due(&mut self, ctx: &mut Context<Self>) {
        let now = Instant::now();
        if self.retry.as_ref().is_some_and(|retry| now < retry.at) || !self.queue.batch_due(now) {
            return;
        }
        let Some(client) = &self.client else { return };
        let body = self.queue.take_batch();
        let target = self.target.clone();
        let client = client.clone();
        let write = async move { target.write(&client, body).await };
        ctx.spawn(write.into_actor(self).map(move |result, actor, ctx| {
            actor.batch_done(result);
            actor.flush_if_due(ctx);
        }));
    }

    fn batch_done(&mut self, result: Result<(), WriteError>) {
        match result {
            Ok(()) => {
                let lines = self.queue.batch_done() as u64;
                self.retry = None;
                self.status.total_metrics_written += lines;
                self.status.consecutive_failures = 0;
                self.status.last_write_time = Some(Utc::now());
                tracing::debug!(lines, "batch written");
            }
            Err(error @ WriteError::Rejected { .. }) => {
                let lines = self.queue.batch_done() as u64;
                self.status.rejected_lines += lines;
                self.note_error(&error);
                tracing::error!(%error, lines, "batch dropped: InfluxDB refused it");
            }
            Err(error) => {
                self.queue.batch_failed(Instant::now());
                let retry = self.retry.get_or_insert_with(|| Retry {
                    at: Instant::now(),
                    backoff: backoff(),
                });
                // Full jitter: anywhere between no wait and the exponential ceiling.
                let ceiling = retry.backoff.next().unwrap_or(RETRY_MAX_DELAY);
                let delay = ceiling.mul_f64(fastrand::f64());
                retry.at = Instant::now() + delay;
                self.status.write_retries += 1;
                self.status.consecutive_failures += 1;
                self.note_error(&error);
                tracing::warn!(%error, retry_in = ?delay, "batch kept for a retry");
            }
        }
        self.status.dropped_lines = self.queue.dropped();
    }

    fn note_error(&mut self, error: &WriteError) {
        self.status.failed_writes += 1;
        self.status.last_error = Some(error.to_string());
        self.status.last_error_time = Some(Utc::now());
    }
}

fn backoff() -> ExponentialBackoff {
    ExponentialBuilder::default()
        .with_min_delay(RETRY_MIN_DELAY)
        .with_max_delay(RETRY_MAX_DELAY)
        .without_max_times()
        .build()
}

impl Actor for WriterActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.client = Some(awc::Client::default());
        // Check a few times per batch age, so no line waits much longer than `batch_max_sec`.
        let tick = (self.config.batch_max_age / 4).max(Duration::from_millis(5));
        ctx.run_interval(tick, Self::flush_if_due);
    }
}

impl Supervised for WriterActor {
    fn restarting(&mut self, _: &mut Self::Context) {
        // No line is lost: a batch whose request was cut short goes back to the queue (InfluxDB
        // overwrites a point written twice). A new client and retry schedule start clean.
        self.queue.batch_failed(Instant::now());
        self.client = None;
        self.retry = None;
        self.status.restarts += 1;
    }
}

impl Handler<Restart> for WriterActor {
    type Result = ();

    fn handle(&mut self, _: Restart, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

impl Handler<WriteLines> for WriterActor {
    type Result = ();

    fn handle(&mut self, WriteLines(lines): WriteLines, ctx: &mut Self::Context) {
        self.queue.push(lines, Instant::now());
        self.status.dropped_lines = self.queue.dropped();
        self.flush_if_due(ctx);
    }
}

impl Handler<GetWriterStatus> for WriterActor {
    type Result = MessageResult<GetWriterStatus>;

    fn handle(&mut self, _: GetWriterStatus, _: &mut Self::Context) -> Self::Result {
        let mut status = self.status.clone();
        status.queue_depth = self.queue.depth();
        MessageResult(status)
    }
}
