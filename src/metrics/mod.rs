//! The Prometheus exposition of `/metrics`, built with the Prometheus project's own Rust client:
//! every VM under the names of Debian's prometheus-libvirt-exporter (`exporter`), the service's
//! own VM families (`vms`), the pipeline's health (`service`, `writer`), the process (`process`) and the
//! HTTP requests (`http`). A scrape encodes the actors' latest values: it makes no libvirt call.

mod exporter;
mod family;
mod http;
mod process;
mod scrape;
mod service;
mod vms;
mod writer;

pub use http::{HttpMetrics, count_requests};
pub use scrape::{Format, Scrape};
