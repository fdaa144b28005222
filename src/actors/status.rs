//! What the actors say about themselves, as plain data: each actor's status and the pipeline's;
//! the actors, their messages and the HTTP handlers read them (one actor's line in the admin API:
//! `actor_info`).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use serde::Serialize;
use utoipa::ToSchema;

pub use super::snapshot_status::SnapshotStatus;
pub use super::spool_status::{SpoolState, SpoolStatus};
use crate::coordination::status::CoordinationStatus;

#[derive(Debug, Clone, Default, Serialize, ToSchema)]
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
    /// Seconds of the last successful cycle (list, info per domain, the host's own calls).
    pub last_collection_duration_sec: Option<f64>,
    pub last_error: Option<String>,
    pub last_error_time: Option<DateTime<Utc>>,
    pub restarts: u64,
    pub panics: u64,
    /// After a failure: the earliest time of the next connection attempt.
    pub next_attempt_time: Option<DateTime<Utc>>,
    /// After a failure: the wait before that attempt, between half and all of a ceiling that
    /// starts at `poll_interval` and doubles with each failure in a row, up to 60 s.
    pub reconnect_backoff_sec: Option<f64>,
    /// When a connection was abandoned while its thread was blocked in a libvirt call that has not
    /// returned since. No new connection is opened meanwhile.
    pub stuck_call_since: Option<DateTime<Utc>>,
    /// Domains that were listed but gone by the time they were read (not errors).
    pub domains_vanished: u64,
    /// Poll ticks that found the last cycle still running or ended less than half a
    /// `poll_interval` before: this host's cycles come less often than `poll_interval` asks.
    pub overrun_ticks: u64,
    /// Cycles that made the bulk stats calls (the extended groups), and those in which one
    /// failed or was left behind, costing the rows of the domains it reads (not counted in
    /// `total_errors`: the seed's fields do not depend on them).
    pub stats_collections: u64,
    pub stats_errors: u64,
    pub last_stats_error: Option<String>,
    /// Bulk stats calls left behind after `libvirt_timeout` (a guest whose QEMU does not answer
    /// its monitor) that have not returned yet, each holding a thread.
    pub stats_calls_left_behind: usize,
    /// Wall time of the bulk stats calls of the last cycle that made them (after its seed calls,
    /// on the same list of domains), in seconds.
    pub last_stats_duration_sec: Option<f64>,
    /// Every successful cycle's wall time, and every bulk stats calls' (for `/metrics`).
    #[serde(skip)]
    #[schema(ignore)]
    pub cycle_durations: Durations,
    #[serde(skip)]
    #[schema(ignore)]
    pub stats_durations: Durations,
    /// The guest group's agents in its last cycle (None: the group is off, or has not run yet).
    pub guest_agents: Option<crate::guest::GuestAgents>,
}

/// A histogram of durations, 1 ms to 33 s. Its copies share their counts: a status handed to a
/// scrape reads what the actor records after.
#[derive(Debug, Clone)]
pub struct Durations(pub Histogram);

impl Default for Durations {
    fn default() -> Self {
        Durations(Histogram::new(exponential_buckets(0.001, 2.0, 16)))
    }
}

impl Durations {
    pub fn observe(&self, duration: Duration) {
        self.0.observe(duration.as_secs_f64());
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ConnectionState {
    #[default]
    Connecting,
    Connected,
    Disconnected,
}

#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct FeatureStatus {
    pub vms_tracked: usize,
    pub lines_produced: u64,
    /// Lines that could not be encoded (see `line_protocol::EncodeError`), each logged.
    pub unencodable_lines: u64,
    pub restarts: u64,
    pub panics: u64,
}

/// The insights actor: how many VMs it follows and how many have a trained model (a VM found in
/// the last snapshot starts as trained as it was).
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct InsightsStatus {
    pub vms_tracked: usize,
    pub vms_trained: usize,
    pub vms_learning: usize,
    /// Host cycles analysed.
    pub cycles: u64,
    pub lines_produced: u64,
    /// Lines that could not be encoded (a VM whose name line protocol cannot carry).
    pub unencodable_lines: u64,
    pub restarts: u64,
    pub panics: u64,
    /// Every VM's models saved to `insights.redb` in `spool_dir`; none without a spool.
    pub snapshot: Option<SnapshotStatus>,
}

#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct WriterStatus {
    pub url: String,
    /// Lines held (in the spool, or in memory), the batch in flight included.
    pub queue_depth: usize,
    pub spooled: bool,
    pub total_metrics_written: u64,
    /// Lines lost because the buffer was full or could not keep them.
    pub dropped_lines: u64,
    /// Lines InfluxDB refused as invalid, each logged with its reason.
    pub rejected_lines: u64,
    pub write_retries: u64,
    /// Write requests that failed, for any reason.
    pub failed_writes: u64,
    pub consecutive_failures: u64,
    /// InfluxDB refused the token (401/403): lines wait until the operator fixes it.
    pub auth_failing: bool,
    pub last_error: Option<String>,
    pub last_error_time: Option<DateTime<Utc>>,
    pub last_write_time: Option<DateTime<Utc>>,
    pub restarts: u64,
    pub panics: u64,
    /// The durable spool's state; none when lines are held in memory only.
    pub spool: Option<SpoolStatus>,
    /// Write requests that failed, by what failed them.
    pub failures: WriteFailures,
    /// Time from sending each batch to InfluxDB's answer (for `/metrics`).
    #[serde(skip)]
    #[schema(ignore)]
    pub write_durations: Durations,
}

/// Write requests that failed, by class; a batch refused or too large counts once for each
/// request, the halves it is retried in included.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct WriteFailures {
    /// No answer, a 5xx or 429, or another answer worth a retry.
    pub transient: u64,
    /// 401 or 403: the token refused.
    pub auth: u64,
    /// A batch refused as invalid: 400 or 422 (InfluxDB 3: 422, its 400 is transient).
    pub refused: u64,
    /// 413.
    pub too_large: u64,
    /// No such database (InfluxDB 3's 404).
    pub database_missing: u64,
}

impl WriterStatus {
    /// Why the writer cannot take lines as it should: InfluxDB failing, or the spool.
    pub fn trouble(&self) -> Option<String> {
        let influx = match &self.last_error {
            Some(error) if self.consecutive_failures > 0 => Some(format!("failing ({error})")),
            _ => None,
        };
        let spool = self
            .spool
            .as_ref()
            .filter(|spool| spool.state == SpoolState::Failing)
            .map(|spool| {
                format!(
                    "spool failing ({}), {} lines held in memory",
                    spool.last_error.as_deref().unwrap_or("no error recorded"),
                    spool.lines_in_memory
                )
            });
        match (influx, spool) {
            (Some(influx), Some(spool)) => Some(format!("{influx}; {spool}")),
            (influx, spool) => influx.or(spool),
        }
    }
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
    /// None when `insights = false`.
    pub insights: Option<InsightsStatus>,
    /// None with static shards (`coordination = "static"`).
    pub coordination: Option<CoordinationStatus>,
}

impl TelemetryStatus {
    /// The totals of every actor's status.
    pub fn new(
        started_at: DateTime<Utc>,
        hosts: Vec<HostStatus>,
        features: FeatureStatus,
        writer: WriterStatus,
    ) -> Self {
        TelemetryStatus {
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
            insights: None,
            coordination: None,
        }
    }

    /// Ready: a host of this instance is connected (or it was given none: an idle shard), the
    /// last write attempt did not fail, the spool is not failing, and with etcd, this replica is
    /// a member holding its lease.
    pub fn is_ready(&self) -> bool {
        let connected = self.hosts.is_empty()
            || self
                .hosts
                .iter()
                .any(|host| host.connection == ConnectionState::Connected);
        let coordinated = (self.coordination.as_ref()).is_none_or(|c| c.trouble().is_none());
        connected && coordinated && self.writer.trouble().is_none()
    }
}
