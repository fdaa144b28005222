//! Every measurement as InfluxDB line protocol: the seed's two, the extended ones,
//! `host_metrics` and the insights' three.
//!
//! Written by hand, every line of a cycle into one buffer: InfluxDB's own builder
//! (`influxdb-line-protocol`) formats every piece through `fmt`, far too slow for the target
//! (benches/README.md). The tests check every line with that crate's parser, InfluxDB 3's.
//!
//! Read top to bottom: `lines` (the batch), `escape` (what a tag value needs), `tags` (a VM's
//! tags, escaped once), `line` (one line's writer), `measurements` (one function each), `insights` (the insights'),
//! `outlook` (forecasts and recommendations).

mod escape;
mod guest;
mod insights;
mod line;
mod lines;
mod measurements;
mod outlook;
mod tags;

pub use guest::{vm_guest_fs, vm_guest_info};
pub use insights::{AnomalyLine, BottleneckLine, host_insights, vm_anomalies, vm_bottleneck};
pub use lines::Lines;
pub use measurements::{host_metrics, stats_row, vm_features, vm_metrics};
pub use outlook::{ForecastLine, RecommendationLine, vm_forecast, vm_recommendation};
pub use tags::VmTags;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EncodeError {
    #[error(
        "tag `{key}` of VM {uuid} is {value:?}: line protocol cannot carry an empty tag value, a newline, a tab or a trailing backslash"
    )]
    UnrepresentableTag {
        key: &'static str,
        value: String,
        uuid: String,
    },
    #[error("field `{field}` of VM {uuid} is {value}, beyond a signed 64-bit integer")]
    IntegerOverflow {
        field: &'static str,
        value: u64,
        uuid: String,
    },
}
