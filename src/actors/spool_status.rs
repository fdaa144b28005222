//! The durable spool's part of the writer's status, as plain data (re-exported by `status`).

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

/// The durable spool: how full it is, on disk too, and how it fares.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct SpoolStatus {
    pub state: SpoolState,
    /// Lines in the spool's file not yet written (part of `queue_depth`).
    pub lines: usize,
    /// Their bytes, against `spool_max_bytes`.
    pub line_bytes: u64,
    /// The bytes of lines it may hold now: `spool_max_bytes`, or less when its filesystem is
    /// short of room (`spool_min_free_bytes` kept free).
    pub allowed_bytes: u64,
    /// What the file occupies on disk (its blocks), as last measured.
    pub file_bytes: u64,
    /// What its filesystem has left, as last measured.
    pub free_bytes: u64,
    /// Lines held in memory while the file cannot take them (part of `queue_depth`): at most
    /// `max_queue`, the oldest dropped first.
    pub lines_in_memory: usize,
    /// Lines InfluxDB has whose removal from the file has not succeeded yet: never sent again.
    pub written_not_removed: usize,
    /// Oldest lines dropped to make room (part of `dropped_lines`).
    pub evicted_lines: u64,
    /// Errors of the file or its disk; each closes it, to be opened again after a backoff.
    pub errors: u64,
    pub reopens: u64,
    pub last_error: Option<String>,
    pub last_error_time: Option<DateTime<Utc>>,
    /// Damaged files found at an open, each moved aside as `spool.redb.corrupt-<UTC time>`.
    pub damaged_files: u64,
    /// Lines read back from them and replayed.
    pub salvaged_lines: u64,
    /// Files found empty at an open: their lines, if any, are lost and their number unknown.
    pub empty_files: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SpoolState {
    #[default]
    Ok,
    /// Its last commit dropped its oldest lines to make room.
    Full,
    /// Its file failed and is closed until it opens again: new lines wait in memory.
    Failing,
}
