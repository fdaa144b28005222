//! Black-box tests: the real application on a random port, against the real libvirtd and influxd
//! that `scripts/test.sh` starts (and an InfluxDB 3 stand-in where the real server cannot run here).

mod admin;
mod bulk_stats;
mod cli;
mod dashboard;
mod dashboard_fleet;
mod extended;
mod fuzz;
mod guest_agent;
mod guest_truth;
mod health_check;
mod helpers;
mod history;
mod http_face;
mod influx_v3;
mod insights;
mod kvm_guest;
mod libvirt_faults;
mod line_protocol;
mod metrics;
mod metrics_health;
mod multi_host;
mod no_influx;
mod openapi;
mod real_guest;
mod reliability;
mod secrets;
mod spool_faults;
mod status;
mod support;
mod test_driver;
mod tls;
mod vm_stats;
mod vms;
mod vms_paging;
mod writer_replies;
