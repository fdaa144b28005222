//! Insights: which VMs need attention, why, and since when. Fed by the feature actor with each
//! host's cycle (`host::HostCycle`), held by the insights actor, written as `vm_anomalies`,
//! `vm_bottlenecks` and `host_insights`, and shown by `/api/telemetry/insights`.
//!
//! Read top to bottom: `signals` (a VM's values of a cycle), `detector` (one signal against its
//! own past), `window` (a VM's anomaly rate), `vm` (one VM's record), `peers` (a VM against the
//! other VMs of its host), `bottlenecks` (named conditions), `host` and `fleet` (every VM of a
//! host, every host), `encode` (the lines), `views` (the API's shapes), `settings`, and
//! `snapshot` and `store` (every VM's models saved to `insights.redb`, so a restart keeps them).
//! Apart, the outlook (`outlook`, `outlook_lines`): `forecast` (time to full) and
//! `rightsizing` (VPA's recommender).

pub mod baseline;
pub mod bottlenecks;
pub mod detector;
pub mod encode;
pub mod fleet;
pub mod forecast;
pub mod host;
pub mod outlook;
pub mod outlook_lines;
pub mod peers;
pub mod rightsizing;
pub mod scrape;
pub mod settings;
pub mod signals;
pub mod snapshot;
pub mod store;
#[cfg(test)]
mod testing;
pub mod views;
pub mod vm;
pub mod window;

pub use fleet::Insights;
pub use host::HostCycle;
pub use settings::InsightsSettings;
