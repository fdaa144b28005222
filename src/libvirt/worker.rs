//! A thread that owns one host's libvirt connection and answers sampling requests.
//!
//! The host actor never waits on libvirt itself: it awaits the reply with a watchdog, and when no
//! libvirt call has finished for `timeout` it abandons the worker. The stuck thread then exits as
//! soon as its call returns (its request channel is closed); until then the `Abandoned` handle
//! tells it is still there, so that a host never has more than one thread blocked in libvirt.

use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Weak, mpsc};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::cadence::Due;
use super::heartbeat::Heartbeat;
use super::{Cycle, LibvirtError, Sampler};
use crate::configuration::{CollectionConfig, HostConfig};

/// A cycle the host actor asks of its worker thread (the seed's fields and the host's, and what
/// `due` says of the extended groups), with where the answer goes.
struct Request {
    due: Due,
    reply: oneshot::Sender<Result<Cycle, LibvirtError>>,
}

pub struct LibvirtWorker {
    requests: mpsc::Sender<Request>,
    heartbeat: Heartbeat,
    /// Dead once the thread has ended (it holds the only strong reference).
    thread_alive: Weak<()>,
}

/// A worker given up on while its thread was in a libvirt call.
pub struct Abandoned {
    thread_alive: Weak<()>,
    since: Instant,
    /// Still there after this, the thread counts as stuck.
    stuck_from: Instant,
    timeout: Duration,
}

impl LibvirtWorker {
    pub fn spawn(
        host: &HostConfig,
        collection: &CollectionConfig,
        timeout: Duration,
        stats_calls_left_behind: Arc<AtomicUsize>,
    ) -> std::io::Result<Self> {
        let (requests, inbox) = mpsc::channel::<Request>();
        let heartbeat = Heartbeat::default();
        let mut sampler = Sampler::new(
            host,
            collection,
            timeout,
            heartbeat.clone(),
            stats_calls_left_behind,
        );
        let alive = Arc::new(());
        let thread_alive = Arc::downgrade(&alive);
        std::thread::Builder::new()
            .name(format!("libvirt {}", host.uri))
            .spawn(move || {
                while let Ok(Request { due, reply }) = inbox.recv() {
                    // The requester may have given up meanwhile; nothing to do then.
                    let _ = reply.send(sampler.sample(due));
                }
                // Closing the connection is a libvirt call too, and may block as well.
                drop(sampler);
                drop(alive);
            })?;
        Ok(LibvirtWorker {
            requests,
            heartbeat,
            thread_alive,
        })
    }

    /// Gives the worker up: its thread ends once its current call returns. `grace` is how much
    /// longer that call may take before the thread counts as stuck: none after a `Timeout`.
    pub fn abandon(self, timeout: Duration, grace: Duration) -> Abandoned {
        let since = Instant::now();
        Abandoned {
            thread_alive: self.thread_alive,
            since,
            stuck_from: since + grace,
            timeout,
        }
    }

    /// One collection cycle, with the extended groups `due`. Fails with `Timeout` when no
    /// libvirt call finishes within `timeout`, however long the whole cycle takes while calls
    /// keep finishing (or while the thread waits on its stats calls, which it gives up on
    /// itself after `timeout`).
    pub fn sample(
        &self,
        timeout: Duration,
        due: Due,
    ) -> impl Future<Output = Result<Cycle, LibvirtError>> + 'static {
        let (reply, mut answer) = oneshot::channel();
        let sent = self.requests.send(Request { due, reply }).is_ok();
        let heartbeat = self.heartbeat.clone();
        async move {
            if !sent {
                return Err(LibvirtError::WorkerGone);
            }
            let mut calls_seen = heartbeat.beats();
            loop {
                match tokio::time::timeout(timeout, &mut answer).await {
                    Ok(Ok(result)) => return result,
                    Ok(Err(_)) => return Err(LibvirtError::WorkerGone),
                    Err(_) => {
                        let calls_now = heartbeat.beats();
                        if calls_now == calls_seen {
                            return Err(LibvirtError::Timeout(timeout));
                        }
                        calls_seen = calls_now;
                    }
                }
            }
        }
    }
}

impl Abandoned {
    pub fn has_ended(&self) -> bool {
        self.thread_alive.strong_count() == 0
    }

    /// `Stuck` once the thread is still there after its grace.
    pub fn stuck(&self) -> Option<LibvirtError> {
        (!self.has_ended() && Instant::now() >= self.stuck_from).then(|| LibvirtError::Stuck {
            timeout: self.timeout,
            for_secs: self.since.elapsed().as_secs(),
        })
    }
}
