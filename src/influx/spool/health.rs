//! How the spool's file fares: its errors, and when a failed file is opened again (after an
//! exponential backoff, as every actor waits out its failures).

use std::fmt::Display;
use std::time::{Duration, Instant};

use backon::ExponentialBackoff;
use chrono::{DateTime, Utc};

use crate::actors::backoff;

const REOPEN_MIN_DELAY: Duration = Duration::from_millis(500);
const REOPEN_MAX_DELAY: Duration = Duration::from_secs(30);

#[derive(Debug, Default)]
pub struct Health {
    pub errors: u64,
    pub reopens: u64,
    pub last_error: Option<String>,
    pub last_error_time: Option<DateTime<Utc>>,
    /// While the file is closed by a failure: when to open it again.
    reopen: Option<Reopen>,
}

#[derive(Debug)]
struct Reopen {
    at: Instant,
    backoff: ExponentialBackoff,
}

impl Health {
    /// The file failed (or could not be opened again): it is closed until the next attempt.
    pub fn failed(&mut self, error: &dyn Display, now: Instant) {
        let first = self.reopen.is_none();
        let reopen = self.reopen.get_or_insert_with(|| Reopen {
            at: now,
            backoff: backoff::exponential(REOPEN_MIN_DELAY, REOPEN_MAX_DELAY),
        });
        let delay = reopen.backoff.next().unwrap_or(REOPEN_MAX_DELAY);
        reopen.at = now + delay;
        self.errors += 1;
        self.last_error = Some(error.to_string());
        self.last_error_time = Some(Utc::now());
        if first {
            tracing::error!(%error, "the spool failed: it is closed, new lines wait in memory");
        } else {
            tracing::warn!(%error, retry_in = ?delay, "the spool could not be opened again");
        }
    }

    pub fn failing(&self) -> bool {
        self.reopen.is_some()
    }

    pub fn reopen_due(&self, now: Instant) -> bool {
        self.reopen.as_ref().is_some_and(|reopen| now >= reopen.at)
    }

    pub fn reopened(&mut self) {
        self.reopen = None;
        self.reopens += 1;
        tracing::info!(reopens = self.reopens, "the spool is open again");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_file_is_opened_again_after_a_growing_wait() {
        let mut health = Health::default();
        let now = Instant::now();
        assert!(!health.failing() && !health.reopen_due(now));
        health.failed(&"disk full", now);
        assert!(health.failing());
        assert!(health.reopen_due(now + REOPEN_MAX_DELAY));
        health.failed(&"disk still full", now);
        assert_eq!(health.errors, 2);
        assert_eq!(health.last_error.as_deref(), Some("disk still full"));
        health.reopened();
        assert!(!health.failing());
        assert_eq!(health.reopens, 1);
    }
}
