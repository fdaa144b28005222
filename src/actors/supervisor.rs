//! Starts every actor of the pipeline under an actix `Supervisor` (which restarts an actor that
//! stops), keeps their addresses, and answers for all of them.

use actix::prelude::*;
use chrono::{DateTime, Utc};
use futures_util::future::try_join_all;
use serde::Serialize;

use super::features::{FeatureActor, FeatureStatus};
use super::host::{ConnectionState, HostActor, HostStatus};
use super::messages::{GetFeatureStatus, GetHostStatus, GetTelemetryStatus, GetWriterStatus};
use super::writer::{WriterActor, WriterStatus};
use crate::configuration::AppConfig;
use crate::influx::write::WriteTarget;

pub struct TelemetrySupervisor {
    started_at: DateTime<Utc>,
    hosts: Vec<Addr<HostActor>>,
    features: Addr<FeatureActor>,
    writer: Addr<WriterActor>,
}

/// The seed's statistics, plus the writer's queue and each host's connection.
#[derive(Debug, Clone, Serialize)]
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
}

impl TelemetryStatus {
    /// Ready: at least one host connected and the last write attempt did not fail.
    pub fn is_ready(&self) -> bool {
        self.hosts
            .iter()
            .any(|host| host.connection == ConnectionState::Connected)
            && self.writer.consecutive_failures == 0
    }
}

impl TelemetrySupervisor {
    /// Starts the writer, the feature actor and one host actor per configured URI.
    pub fn start_pipeline(config: &AppConfig, target: WriteTarget) -> Addr<Self> {
        let writer_config = config.writer.clone();
        let writer = Supervisor::start(move |_| WriterActor::new(writer_config, target));
        let writer_recipient = writer.clone().recipient();
        let features = Supervisor::start(move |_| FeatureActor::new(writer_recipient));
        let hosts = config
            .hosts
            .iter()
            .map(|host| {
                let host = host.clone();
                let features = features.clone().recipient();
                let (poll_interval, libvirt_timeout) =
                    (config.poll_interval, config.libvirt_timeout);
                Supervisor::start(move |_| {
                    HostActor::new(host, poll_interval, libvirt_timeout, features)
                })
            })
            .collect();
        TelemetrySupervisor {
            started_at: Utc::now(),
            hosts,
            features,
            writer,
        }
        .start()
    }
}

impl Actor for TelemetrySupervisor {
    type Context = Context<Self>;
}

impl Handler<GetTelemetryStatus> for TelemetrySupervisor {
    type Result = ResponseFuture<Result<TelemetryStatus, MailboxError>>;

    fn handle(&mut self, _: GetTelemetryStatus, _: &mut Self::Context) -> Self::Result {
        let started_at = self.started_at;
        let hosts = try_join_all(self.hosts.iter().map(|host| host.send(GetHostStatus)));
        let features = self.features.send(GetFeatureStatus);
        let writer = self.writer.send(GetWriterStatus);
        Box::pin(async move {
            let hosts = hosts.await?;
            let features = features.await?;
            let writer = writer.await?;
            Ok(TelemetryStatus {
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
            })
        })
    }
}
