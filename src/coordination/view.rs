//! The members and owners as this replica knows them: read in full once, then kept up by a
//! watch on the fleet's prefix, so a tick reads etcd's changes rather than all of its keys. The
//! ownership keys are still taken by transaction: a view that lags only delays a take or a stop
//! by a tick, it never lets two replicas hold a host.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use etcd_client::{EventType, KeyValue, WatchResponse, WatchStream};
use futures_util::FutureExt;
use serde::{Deserialize, Serialize};

use super::error::EtcdError;

/// A member's record under `members/<name>`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct MemberRecord {
    #[serde(default)]
    pub draining: bool,
    /// Hosts handed over by hand: the assignment gives each to another member.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub declined: BTreeSet<String>,
}

/// An ownership key: the member holding a host, and its lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub member: String,
    pub lease: i64,
}

/// Members and owners at one revision.
#[derive(Debug, Default)]
pub struct View {
    /// By name.
    pub members: BTreeMap<String, MemberRecord>,
    /// By host URI.
    pub owners: BTreeMap<String, Owner>,
}

impl View {
    /// A key under the fleet's prefix (`rest` is what follows it) set to `kv`, or deleted.
    pub fn apply(&mut self, rest: &str, kv: Option<&KeyValue>) {
        if let Some(name) = rest.strip_prefix("members/") {
            match kv {
                Some(kv) => {
                    let record = serde_json::from_slice(kv.value()).unwrap_or_default();
                    self.members.insert(name.to_owned(), record)
                }
                None => self.members.remove(name),
            };
        } else if let Some(host) = rest.strip_prefix("owners/") {
            match kv {
                Some(kv) => {
                    let member = String::from_utf8_lossy(kv.value()).into_owned();
                    let lease = kv.lease();
                    self.owners.insert(host.to_owned(), Owner { member, lease })
                }
                None => self.owners.remove(host),
            };
        }
    }
}

/// A view, and the watch that keeps it up from the revision it was read at.
pub struct Watched {
    pub view: View,
    prefix: String,
    stream: WatchStream,
    /// The revision the view is at: of its read, then of the last event applied.
    revision: i64,
}

impl Watched {
    pub fn new(view: View, prefix: String, stream: WatchStream, revision: i64) -> Self {
        Watched {
            view,
            prefix,
            stream,
            revision,
        }
    }

    /// Applies the events etcd has sent, waiting (at most `timeout`) for those up to `written`,
    /// this replica's own last write; an error when the watch ended (etcd restarted, the
    /// revision compacted): the view must then be read again.
    pub async fn catch_up(&mut self, written: i64, timeout: Duration) -> Result<(), EtcdError> {
        while self.revision < written {
            let next = actix_rt::time::timeout(timeout, self.stream.message()).await;
            let answer = next.map_err(|_| EtcdError::Timeout(timeout))?;
            self.apply(answer?)?;
        }
        while let Some(answer) = self.stream.message().now_or_never() {
            self.apply(answer?)?;
        }
        Ok(())
    }

    fn apply(&mut self, answer: Option<WatchResponse>) -> Result<(), EtcdError> {
        let answer = answer.ok_or(EtcdError::WatchEnded("etcd closed the stream"))?;
        if answer.canceled() || answer.compact_revision() != 0 {
            return Err(EtcdError::WatchEnded("etcd cancelled the watch"));
        }
        for event in answer.events() {
            let Some(kv) = event.kv() else { continue };
            let key = String::from_utf8_lossy(kv.key());
            let Some(rest) = key.strip_prefix(self.prefix.as_str()) else {
                continue;
            };
            let put = matches!(event.event_type(), EventType::Put);
            self.view.apply(rest, put.then_some(kv));
            self.revision = self.revision.max(kv.mod_revision());
        }
        Ok(())
    }
}
