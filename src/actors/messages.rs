//! Messages between the actors and from the HTTP handlers.

use actix::Message;

use crate::influx::line_protocol::Line;
use crate::sample::HostSample;

use super::features::FeatureStatus;
use super::host::HostStatus;
use super::supervisor::TelemetryStatus;
use super::writer::WriterStatus;

/// A host actor finished a cycle: every domain of that host.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct HostCollected(pub HostSample);

/// Encoded lines for InfluxDB, oldest first.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct WriteLines(pub Vec<Line>);

#[derive(Message)]
#[rtype(result = "HostStatus")]
pub struct GetHostStatus;

#[derive(Message)]
#[rtype(result = "FeatureStatus")]
pub struct GetFeatureStatus;

#[derive(Message)]
#[rtype(result = "WriterStatus")]
pub struct GetWriterStatus;

#[derive(Message)]
#[rtype(result = "Result<TelemetryStatus, actix::MailboxError>")]
pub struct GetTelemetryStatus;
