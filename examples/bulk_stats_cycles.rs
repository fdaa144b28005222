//! Leak-check target: runs `bulk_stats::all_domain_stats` with every group many times, so that a
//! per-call leak grows with the cycle count under valgrind or LeakSanitizer.
//!
//!     bulk_stats_cycles [URI [CYCLES [ours|virt]]]    (defaults: test:///default 2000 ours)
//!
//! `virt` runs `virt`'s own `Connect::all_domain_stats` instead, which never frees the records:
//! a baseline showing what a leak looks like.

use std::process::ExitCode;

use virt::connect::Connect;
use vmtelemetry::libvirt::bulk_stats::{StatsGroups, all_domain_stats};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let uri = args.next().unwrap_or_else(|| "test:///default".to_owned());
    let cycles: u64 = match args.next().map(|n| n.parse()) {
        None => 2000,
        Some(Ok(n)) => n,
        Some(Err(e)) => {
            eprintln!("CYCLES must be a number: {e}");
            return ExitCode::from(2);
        }
    };
    let use_virt = match args.next().as_deref() {
        None | Some("ours") => false,
        Some("virt") => true,
        Some(other) => {
            eprintln!("unknown mode {other:?}: ours or virt");
            return ExitCode::from(2);
        }
    };

    virt::error::clear_error_callback();
    let conn = match Connect::open(Some(&uri)) {
        Ok(conn) => conn,
        Err(e) => {
            eprintln!("cannot open {uri}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut params = 0;
    for _ in 0..cycles {
        let result = if use_virt {
            conn.all_domain_stats(StatsGroups::ALL.bits(), 0)
                .map(|records| records.len())
        } else {
            all_domain_stats(&conn, StatsGroups::ALL, 0)
                .map(|stats| stats.iter().map(|d| d.params.len()).sum())
        };
        match result {
            Ok(n) => params += n,
            Err(e) => {
                eprintln!("all_domain_stats failed: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    // Closed before exit so that only leaks, not a live connection, remain for valgrind.
    drop(conn);
    println!("{cycles} cycles, {params} parameters (or records, for virt) read from {uri}");
    ExitCode::SUCCESS
}
