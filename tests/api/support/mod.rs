//! Test-only servers and processes.

pub mod influxd;
pub mod influxdb3_standin;
pub mod service;
