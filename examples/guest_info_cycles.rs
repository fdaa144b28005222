//! Leak-check target: runs `guest_info::set_agent_timeout` and `guest_info::guest_info` (every
//! type the service asks for) on one domain many times, and one call libvirt refuses, so that a
//! per-call leak grows with the cycle count under valgrind. The domain needs a guest agent.
//!
//!     guest_info_cycles URI DOMAIN [CYCLES]    (default 100 cycles; the connection read-write)

use std::process::ExitCode;

use virt::connect::Connect;
use vmtelemetry::libvirt::guest_info::{GUEST_TYPES, guest_info, set_agent_timeout};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(uri), Some(name)) = (args.first(), args.get(1)) else {
        eprintln!("usage: guest_info_cycles URI DOMAIN [CYCLES]");
        return ExitCode::from(2);
    };
    let Ok(cycles) = args.get(2).map_or(Ok(100), |n| n.parse::<u64>()) else {
        eprintln!("CYCLES must be a number");
        return ExitCode::from(2);
    };
    virt::error::clear_error_callback();
    let conn = match Connect::open(Some(uri)) {
        Ok(conn) => conn,
        Err(e) => {
            eprintln!("cannot open {uri}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let Ok(domain) = conn.lookup_domain_by_name(name) else {
        eprintln!("no domain {name} on {uri}");
        return ExitCode::FAILURE;
    };
    let mut params = 0;
    for _ in 0..cycles {
        let answer = set_agent_timeout(&domain, 5).and_then(|()| guest_info(&domain, GUEST_TYPES));
        match answer {
            Ok(answer) => params += answer.params.len(),
            Err(e) => {
                eprintln!("guest_info failed: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    // The error path: libvirt refuses an unknown type before asking the agent.
    let refused = guest_info(&domain, 1 << 30).is_err();
    // Closed before exit so that only leaks, not a live connection, remain for valgrind.
    drop(domain);
    drop(conn);
    println!("{cycles} cycles, {params} parameters, unknown type refused: {refused}");
    ExitCode::SUCCESS
}
