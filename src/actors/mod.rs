//! The actor system: a supervisor, one host actor per libvirt URI, a feature actor, an insights
//! actor and a writer. A sample flows host → features → writer (and features → insights →
//! writer) as plain data (see `messages`); what each actor says about itself is plain data too
//! (see `status`).

pub mod actor_info;
pub mod backoff;
pub mod coordinator;
pub mod crash;
pub mod features;
pub mod host;
pub mod insights;
pub mod messages;
pub mod snapshot_status;
pub mod spacing;
pub mod spool_status;
pub mod status;
pub mod supervisor;
pub mod writer;

pub use features::FeatureActor;
pub use host::HostActor;
pub use insights::InsightsActor;
pub use supervisor::{Pipeline, TelemetrySupervisor};
pub use writer::WriterActor;
