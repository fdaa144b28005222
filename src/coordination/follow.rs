//! The members and owners followed from tick to tick: read in full at first and whenever the
//! watch ended (etcd restarted, its history compacted, a new client), else caught up with the
//! watch's events, at least up to this replica's own last write.

use std::time::Duration;

use super::error::EtcdError;
use super::etcd::Etcd;
use super::view::Watched;

#[derive(Default)]
pub struct Follower {
    watched: Option<Watched>,
    /// The revision of this replica's last write since the last full read.
    written: i64,
}

impl Follower {
    /// The view, caught up, to plan on and hand back with `keep`; and whether it was read in
    /// full.
    pub async fn take(
        &mut self,
        etcd: &mut Etcd,
        timeout: Duration,
    ) -> Result<(Watched, bool), EtcdError> {
        if let Some(mut watched) = self.watched.take() {
            match watched.catch_up(self.written, timeout).await {
                Ok(()) => return Ok((watched, false)),
                Err(error) => tracing::info!(%error, "reading the members and owners again"),
            }
        }
        let watched = etcd.watch().await?;
        self.written = 0;
        Ok((watched, true))
    }

    pub fn keep(&mut self, watched: Watched) {
        self.watched = Some(watched);
    }

    /// A write of this replica's own, at `revision` (none: nothing written).
    pub fn wrote(&mut self, revision: Option<i64>) {
        self.written = self.written.max(revision.unwrap_or(0));
    }

    /// Reads in full next time (a new lease, a new client).
    pub fn forget(&mut self) {
        self.watched = None;
    }
}
