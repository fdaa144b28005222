//! Black-box tests: the real application on a random port, against the real libvirtd and influxd
//! that `scripts/test.sh` starts (and an InfluxDB 3 stand-in where the real server cannot run here).

mod cli;
mod health_check;
mod helpers;
mod influx_v3;
mod kvm_guest;
mod multi_host;
mod status;
mod support;
mod test_driver;
