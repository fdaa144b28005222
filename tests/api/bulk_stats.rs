//! `libvirt::bulk_stats` frees everything libvirt allocates: the `bulk_stats_cycles` example runs
//! the bulk call many times under valgrind, and no leak may grow with the number of cycles.
//! (`virt`'s own `Connect::all_domain_stats` fails this: about 300 bytes lost per call.)

use crate::support::valgrind::{LeakSummary, assert_no_leak, example_binary, run_under_valgrind};

const EXAMPLE: &str = "bulk_stats_cycles";
const FEW: u64 = 200;
const MANY: u64 = 2000;

#[test]
fn bulk_stats_leak_nothing_over_many_cycles_under_valgrind() {
    let example = example_binary(EXAMPLE);
    let few = cycles_under_valgrind(&example, FEW);
    let many = cycles_under_valgrind(&example, MANY);
    assert_no_leak(&few, &many, MANY - FEW);
}

fn cycles_under_valgrind(example: &std::path::Path, cycles: u64) -> LeakSummary {
    let (stdout, summary) = run_under_valgrind(example, &["test:///default", &cycles.to_string()]);
    // Proves the cycles ran: the test driver's domain has two `state` parameters each time.
    assert!(
        stdout.starts_with(&format!("{cycles} cycles, {} parameters", 2 * cycles)),
        "{stdout}"
    );
    summary
}
