//! The insights' snapshots' part of the insights actor's status, as plain data (re-exported by
//! `status`).

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

/// The insights' snapshots, in `/api/telemetry/status` (`insights.snapshot`).
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct SnapshotStatus {
    pub path: String,
    pub interval_sec: f64,
    /// VMs in the snapshot last loaded (at start, or when the actor restarted).
    pub vms_loaded: usize,
    /// Of those, VMs found again on their host: they went on from what they had learned.
    pub vms_restored: usize,
    /// Of those, VMs gone from their host, on a host no longer collected, or unsound.
    pub vms_dropped: usize,
    pub saves: u64,
    pub last_save_time: Option<DateTime<Utc>>,
    pub last_save_vms: usize,
    /// The file's size after the last save.
    pub file_bytes: u64,
    /// Snapshots found unreadable: ignored (every VM learned again), each logged.
    pub damaged_files: u64,
    /// Saves that failed, and files that could not be opened (models then in memory only).
    pub errors: u64,
    pub last_error: Option<String>,
}
