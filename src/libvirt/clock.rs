//! The time a reading is stamped with.

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, in ns but to the whole µs: a reading is no finer (a libvirt call takes tens of µs at the
/// least), and whole µs keep each recent sample 1–2 bytes shorter (see `vms::recent`).
pub fn now_ns() -> i64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since_epoch.as_micros())
        .ok()
        .and_then(|us| us.checked_mul(1000))
        .unwrap_or(i64::MAX)
}
