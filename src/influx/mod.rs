//! InfluxDB: line protocol, the bounded write queue, and the HTTP write client.

pub mod line_protocol;
pub mod queue;
pub mod write;
