//! The replay's table: one row per VM, what it has, what VPA would give it, and when its
//! resources run out.

use std::fmt::Write as _;

use crate::insights::rightsizing::summary::{Forecast, Recommendations};

pub fn table(all: &Recommendations) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<16} {:<24} {:<18} {:>15} {:>22} {:>8}  FORECASTS",
        "HOST", "NAME", "CLASS", "VCPUS", "MEMORY MIB", "HISTORY"
    );
    for vm in &all.vms {
        let (class, cpu, memory, hours) = match &vm.recommendation {
            None => (
                "learning".into(),
                String::new(),
                String::new(),
                String::new(),
            ),
            Some(r) => (
                r.class.name().to_string(),
                format!(
                    "{} → {} ({}–{})",
                    r.cpu.current, r.cpu.target, r.cpu.lower, r.cpu.upper
                ),
                r.memory.map_or_else(String::new, |m| {
                    format!("{} → {} ({}–{})", m.current, m.target, m.lower, m.upper)
                }),
                format!("{:.1} h", r.history_hours),
            ),
        };
        let forecasts: Vec<String> = vm.forecasts.iter().map(forecast).collect();
        let _ = writeln!(
            out,
            "{:<16} {:<24} {:<18} {:>15} {:>22} {:>8}  {}",
            vm.host,
            vm.name,
            class,
            cpu,
            memory,
            hours,
            forecasts.join(", ")
        );
    }
    let f = &all.fleet;
    let _ = writeln!(
        out,
        "fleet: {} VMs, {} recommended: {} over-, {} right-, {} under-provisioned; \
         reclaimable {} vCPUs and {:.1} GiB; needed {} vCPUs and {:.1} GiB",
        f.vms,
        f.vms_recommended,
        f.over_provisioned,
        f.right_sized,
        f.under_provisioned,
        f.reclaimable_vcpus,
        f.reclaimable_memory_gib,
        f.vcpus_needed,
        f.memory_needed_gib
    );
    out
}

fn forecast(f: &Forecast) -> String {
    match f.seconds_to_full {
        None => format!("{}: not growing", f.resource),
        Some(seconds) => format!("{}: full in {:.1} h", f.resource, seconds / 3600.0),
    }
}
