//! Test-only servers.

pub mod influxdb3_standin;
