//! HTTP resources, one file each; errors map to responses in `error`.

mod admin;
mod connections;
mod dashboard;
mod error;
mod headers;
mod health;
mod history;
mod host_check;
mod insights;
mod metrics;
mod openapi;
mod recommendations;
mod request_span;
mod stats;
mod status;
mod summary;
mod validators;
mod vms;

pub use admin::{AdminToken, drain, hand_over, list_actors, restart_actor, resume};
pub use connections::ConnectionCount;
pub use dashboard::{asset, index};
pub use error::{ApiError, query_error};
pub use headers::security_headers;
pub use health::{health, ready};
pub use history::{QueryLimit, history};
pub use host_check::{host_check, served_names};
pub use insights::{fleet_insights, vm_insights};
pub use metrics::metrics;
pub use openapi::{ApiDoc, openapi_json};
pub use recommendations::recommendations;
pub use request_span::PathOnlySpan;
pub use stats::vm_stats;
pub use status::telemetry_status;
pub use summary::summary;
pub use vms::list_vms;
