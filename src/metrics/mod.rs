//! The Prometheus exposition of `/metrics`, built with the Prometheus project's own Rust client:
//! every VM under the names of Debian's prometheus-libvirt-exporter (`exporter`), the service's
//! own VM families (`vms`; the seed's values under both names in `seed`), the insights (`insights`), the pipeline's health
//! (`service`, `writer`), the process (`process`) and the HTTP requests (`http`). A scrape encodes
//! the actors' latest values (it makes no libvirt call), sent as it is encoded (`stream`).

mod exporter;
mod family;
mod guest;
mod host;
mod http;
mod insights;
mod outlook;
mod process;
mod scrape;
mod seed;
mod service;
mod stream;
#[cfg(test)]
mod testing;
mod vms;
mod writer;

pub use http::{HttpMetrics, count_requests};
pub use scrape::{Format, Scrape};
pub use stream::scrape_body;
