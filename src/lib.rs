//! vmtelemetry: watches the VMs of libvirt hosts and ships their telemetry to InfluxDB.

pub mod actors;
pub mod allocator;
pub mod configuration;
pub mod coordination;
pub mod domain_filter;
pub mod extended;
pub mod guest;
pub mod influx;
pub mod insights;
pub mod libvirt;
pub mod metrics;
pub mod replay;
pub mod routes;
pub mod sample;
pub mod startup;
pub mod telemetry;
pub mod vms;
