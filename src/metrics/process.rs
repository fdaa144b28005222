//! The process's CPU, memory and file descriptors, from `/proc/self`, under the names every
//! Prometheus client gives them (`process_*`); `prometheus-client` has no process collector.

use std::fmt;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::registry::Unit;

use super::family::{Column, NO_LABELS, Spec, emit, emit_table};

#[derive(Debug)]
pub(super) struct Process;

/// From `/proc/self/stat`.
const STAT: [Column<Stat>; 3] = [
    (
        Spec::counter(
            "process_cpu",
            Some(Unit::Seconds),
            "Total user and system CPU time spent in seconds.",
        ),
        |stat| Some(stat.cpu_seconds),
    ),
    (
        Spec::gauge(
            "process_resident_memory",
            Some(Unit::Bytes),
            "Resident memory size in bytes.",
        ),
        |stat| Some(stat.resident_bytes),
    ),
    (
        Spec::gauge(
            "process_virtual_memory",
            Some(Unit::Bytes),
            "Virtual memory size in bytes.",
        ),
        |stat| Some(stat.virtual_bytes),
    ),
];
const FDS: Spec = Spec::gauge("process_open_fds", None, "Number of open file descriptors.");
const MAX_FDS: Spec = Spec::gauge(
    "process_max_fds",
    None,
    "Maximum number of open file descriptors.",
);

/// What `/proc/self/stat` says, in base units.
struct Stat {
    cpu_seconds: f64,
    virtual_bytes: f64,
    resident_bytes: f64,
}

impl Collector for Process {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let one = |value: f64| [(NO_LABELS, value)];
        let stat = read_stat();
        emit_table(&mut encoder, &STAT, || stat.iter().map(|s| (NO_LABELS, s)))?;
        if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
            emit(&mut encoder, &FDS, one(fds.count() as f64))?;
        }
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit only writes the struct it is given, which lives for the call.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
            emit(&mut encoder, &MAX_FDS, one(limit.rlim_cur as f64))?;
        }
        Ok(())
    }
}

fn read_stat() -> Option<Stat> {
    let text = std::fs::read_to_string("/proc/self/stat").ok()?;
    parse_stat(
        &text,
        sysconf(libc::_SC_CLK_TCK)?,
        sysconf(libc::_SC_PAGESIZE)?,
    )
}

/// The fields after the command (which may hold spaces and parentheses): utime and stime are
/// the 14th and 15th of the line, vsize and rss the 23rd and 24th.
fn parse_stat(text: &str, ticks_per_sec: f64, page_bytes: f64) -> Option<Stat> {
    let fields: Vec<&str> = text.get(text.rfind(')')? + 2..)?.split(' ').collect();
    let field = |n: usize| fields.get(n - 3)?.parse::<f64>().ok();
    Some(Stat {
        cpu_seconds: (field(14)? + field(15)?) / ticks_per_sec,
        virtual_bytes: field(23)?,
        resident_bytes: field(24)? * page_bytes,
    })
}

fn sysconf(name: libc::c_int) -> Option<f64> {
    // SAFETY: sysconf reads a system constant and touches no memory of ours.
    let value = unsafe { libc::sysconf(name) };
    (value > 0).then_some(value as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_stat_line_whose_command_holds_spaces_and_parentheses() {
        let line = "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 250 150 0 0 20 0 3 0 77 \
                    104857600 512 18446744073709551615";
        let stat = parse_stat(line, 100.0, 4096.0).unwrap();
        assert_eq!(stat.cpu_seconds, 4.0);
        assert_eq!(stat.virtual_bytes, 104_857_600.0);
        assert_eq!(stat.resident_bytes, 512.0 * 4096.0);
        assert!(parse_stat("42 (x) S", 100.0, 4096.0).is_none());
    }

    #[test]
    fn this_process_has_cpu_memory_and_descriptors() {
        let stat = read_stat().unwrap();
        assert!(stat.resident_bytes > 0.0 && stat.virtual_bytes >= stat.resident_bytes);
    }
}
