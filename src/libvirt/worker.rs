//! A thread that owns one host's libvirt connection and answers sampling requests.
//!
//! The host actor never waits on libvirt itself: it awaits the reply with a watchdog, and when no
//! libvirt call has finished for `timeout` it drops the worker. The stuck thread then exits as soon
//! as its call returns (its request channel is closed), and the next cycle starts a fresh worker
//! with a fresh connection.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use tokio::sync::oneshot;

use super::{Cycle, LibvirtError, Sampler};
use crate::configuration::HostConfig;

type Reply = oneshot::Sender<Result<Cycle, LibvirtError>>;

pub struct LibvirtWorker {
    requests: mpsc::Sender<Reply>,
    progress: Arc<AtomicU64>,
}

impl LibvirtWorker {
    pub fn spawn(host: &HostConfig) -> std::io::Result<Self> {
        let (requests, inbox) = mpsc::channel::<Reply>();
        let progress = Arc::new(AtomicU64::new(0));
        let mut sampler = Sampler::new(host, progress.clone());
        std::thread::Builder::new()
            .name(format!("libvirt {}", host.uri))
            .spawn(move || {
                while let Ok(reply) = inbox.recv() {
                    // The requester may have given up meanwhile; nothing to do then.
                    let _ = reply.send(sampler.sample());
                }
            })?;
        Ok(LibvirtWorker { requests, progress })
    }

    /// One collection cycle. Fails with `Timeout` when no libvirt call finishes within `timeout`,
    /// however long the whole cycle takes while calls keep finishing.
    pub fn sample(
        &self,
        timeout: Duration,
    ) -> impl Future<Output = Result<Cycle, LibvirtError>> + 'static {
        let (reply, mut answer) = oneshot::channel();
        let sent = self.requests.send(reply);
        let progress = self.progress.clone();
        async move {
            sent.map_err(|_| LibvirtError::WorkerGone)?;
            let mut calls_seen = progress.load(Ordering::Relaxed);
            loop {
                match tokio::time::timeout(timeout, &mut answer).await {
                    Ok(Ok(result)) => return result,
                    Ok(Err(_)) => return Err(LibvirtError::WorkerGone),
                    Err(_) => {
                        let calls_now = progress.load(Ordering::Relaxed);
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
