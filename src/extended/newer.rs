//! The newer groups' rows: KVM's own statistics (`vm`: QEMU's `query-stats`, of the VM and of
//! each vCPU), perf events (`perf`) and the memory dirty rate (`dirtyrate`). Every field is an
//! integer as libvirt gives it.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Mutex, OnceLock, PoisonError};

use super::{MAX_DEVICES, StatsRow};
use crate::libvirt::bulk_stats::{DomainStats, StatsGroups};

pub const VM_KVM: &str = "vm_kvm";
pub const VM_PERF: &str = "vm_perf";
pub const VM_DIRTYRATE: &str = "vm_dirtyrate";

/// libvirt's perf events (`perf.<event>`), each a `vm_perf` field of its own name: those the
/// domain has enabled (`virsh perf --enable`, or `<perf>` in its XML) are given.
const PERF_EVENTS: [&str; 22] = [
    "cmt",
    "mbmt",
    "mbml",
    "cpu_cycles",
    "instructions",
    "cache_references",
    "cache_misses",
    "branch_instructions",
    "branch_misses",
    "bus_cycles",
    "stalled_cycles_frontend",
    "stalled_cycles_backend",
    "ref_cpu_cycles",
    "cpu_clock",
    "task_clock",
    "page_faults",
    "context_switches",
    "cpu_migrations",
    "page_faults_min",
    "page_faults_maj",
    "alignment_faults",
    "emulation_faults",
];

/// `dirtyrate.*` → `vm_dirtyrate` field.
const DIRTYRATE_FIELDS: [(&str, &str); 2] = [
    ("dirtyrate.megabytes_per_second", "dirty_rate_mib_per_sec"),
    ("dirtyrate.calc_period", "calc_period_sec"),
];
/// `dirtyrate.calc_status` of a calculation that has finished.
const DIRTYRATE_MEASURED: i64 = 2;

/// KVM statistic names kept (the kernel has about 70): names are interned, so they are bounded.
const MAX_KVM_NAMES: usize = 512;
const MAX_KVM_NAME_LEN: usize = 64;

/// The integer fields of `vm_perf`. `vm_kvm`'s are the kernel's and `vm_dirtyrate`'s a rate
/// and a period: `/metrics` gives those the VMs have, as gauges (`metrics::vms`).
pub(super) fn field_types() -> impl Iterator<Item = (&'static str, &'static str, bool)> {
    PERF_EVENTS.iter().map(|event| (VM_PERF, *event, true))
}

/// The rows of the newer groups in `wanted` of one record, for vCPUs below `vcpu_slots`.
pub(super) fn rows(
    stats: &DomainStats,
    wanted: StatsGroups,
    vcpu_slots: u64,
    rows: &mut Vec<StatsRow>,
) {
    if wanted.contains(StatsGroups::VM) {
        kvm_rows(stats, vcpu_slots, rows);
    }
    if wanted.contains(StatsGroups::PERF) {
        let counters = PERF_EVENTS
            .iter()
            .filter_map(|event| Some((*event, stats.get_u64(&format!("perf.{event}"))?)))
            .collect();
        rows.extend(row(VM_PERF, None, counters));
    }
    // Before its first calculation, and while one runs, the group gives no rate.
    if wanted.contains(StatsGroups::DIRTYRATE)
        && stats.get_i64("dirtyrate.calc_status") == Some(DIRTYRATE_MEASURED)
    {
        let counters = DIRTYRATE_FIELDS
            .iter()
            .filter_map(|(param, field)| Some((*field, stats.get_u64(param)?)))
            .collect();
        rows.extend(row(VM_DIRTYRATE, None, counters));
    }
}

/// `vm.<name>.<sum|cur|max>` in one row, `vcpu.<n>.<name>.<sum|cur|max>` in one per vCPU
/// (tag `vcpu`), each field the statistic's name. Booleans and histograms are left out.
fn kvm_rows(stats: &DomainStats, vcpu_slots: u64, rows: &mut Vec<StatsRow>) {
    let mut vm = Vec::new();
    let mut vcpus: BTreeMap<u64, Vec<(&'static str, u64)>> = BTreeMap::new();
    for (param, value) in &stats.params {
        let (vcpu, rest) = match param.strip_prefix("vm.") {
            Some(rest) => (None, rest),
            None => {
                let Some((n, rest)) = param
                    .strip_prefix("vcpu.")
                    .and_then(|rest| rest.split_once('.'))
                else {
                    continue;
                };
                match n.parse::<u64>() {
                    Ok(n) if n < vcpu_slots.min(MAX_DEVICES) => (Some(n), rest),
                    _ => continue,
                }
            }
        };
        let Some((name, "sum" | "cur" | "max")) = rest.rsplit_once('.') else {
            continue;
        };
        let (Some(value), Some(name)) = (value.as_u64(), intern(name)) else {
            continue;
        };
        match vcpu {
            None => vm.push((name, value)),
            Some(n) => vcpus.entry(n).or_default().push((name, value)),
        }
    }
    rows.extend(row(VM_KVM, None, vm));
    for (n, counters) in vcpus {
        let mut vcpu = row(VM_KVM, None, counters);
        if let Some(row) = &mut vcpu {
            row.key = Some(("vcpu", n.to_string()));
        }
        rows.extend(vcpu);
    }
}

fn row(
    measurement: &'static str,
    key: Option<(&'static str, String)>,
    counters: Vec<(&'static str, u64)>,
) -> Option<StatsRow> {
    (!counters.is_empty()).then_some(StatsRow {
        measurement,
        key,
        source: None,
        counters,
    })
}

/// A KVM statistic's name as a field name for good: a lower-case word of at most 64 bytes,
/// among the first 512 seen (None past them).
fn intern(name: &str) -> Option<&'static str> {
    let sane = !name.is_empty()
        && name.len() <= MAX_KVM_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !sane {
        return None;
    }
    static NAMES: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let names = NAMES.get_or_init(Mutex::default);
    let mut names = names.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(known) = names.get(name) {
        return Some(*known);
    }
    if names.len() >= MAX_KVM_NAMES {
        return None;
    }
    // Leaked on purpose: at most MAX_KVM_NAMES short names, kept for the process's life.
    let name: &'static str = Box::leak(name.to_owned().into_boxed_str());
    names.insert(name);
    Some(name)
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;
    use crate::extended::DomainStatsSample;
    use crate::libvirt::bulk_stats::StatValue::{self, Boolean, Int, LLong, UInt, ULLong};

    fn sample(params: Vec<(&str, StatValue)>, wanted: StatsGroups) -> DomainStatsSample {
        let stats = DomainStats {
            uuid: Some(Uuid::from_u128(9)),
            name: "vm".into(),
            params: params.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
            skipped: 0,
        };
        DomainStatsSample::from_bulk(&stats, 1, wanted).unwrap()
    }

    /// What libvirt 9.0 gave for a KVM guest here (`virsh domstats --vm --vcpu`), trimmed.
    fn kvm_guest() -> Vec<(&'static str, StatValue)> {
        vec![
            ("vcpu.current", UInt(1)),
            ("vcpu.maximum", UInt(1)),
            ("vcpu.0.state", Int(1)),
            ("vcpu.0.time", ULLong(1_150_000_000)),
            ("vcpu.0.delay", ULLong(66_215_612)),
            ("vcpu.0.exits.sum", ULLong(6337)),
            ("vcpu.0.halt_wait_ns.sum", ULLong(4_377_089_703)),
            ("vcpu.0.blocking.cur", Boolean(false)),
            ("vcpu.0.guest_mode.cur", Boolean(false)),
            ("vm.mmu_cache_miss.sum", ULLong(20)),
            ("vm.pages_4k.cur", ULLong(0)),
            ("vm.max_mmu_rmap_size.max", ULLong(0)),
        ]
    }

    fn fields(row: &StatsRow) -> Vec<(&str, u64)> {
        row.counters.clone()
    }

    #[test]
    fn kvm_statistics_give_a_vm_row_and_one_per_vcpu_by_their_names() {
        let s = sample(kvm_guest(), StatsGroups::VM);
        assert_eq!(s.rows.len(), 2, "{:?}", s.rows);
        assert_eq!((s.rows[0].measurement, &s.rows[0].key), (VM_KVM, &None));
        assert_eq!(
            fields(&s.rows[0]),
            [
                ("mmu_cache_miss", 20),
                ("pages_4k", 0),
                ("max_mmu_rmap_size", 0)
            ]
        );
        assert_eq!(s.rows[1].key, Some(("vcpu", "0".to_owned())));
        assert_eq!(
            fields(&s.rows[1]),
            [("exits", 6337), ("halt_wait_ns", 4_377_089_703)]
        );
        // The vcpu group's own rows only when it is wanted too.
        let both = sample(kvm_guest(), StatsGroups::VM | StatsGroups::VCPU);
        let measurements: Vec<_> = both.rows.iter().map(|r| r.measurement).collect();
        assert_eq!(measurements, ["vm_cpu", "vm_kvm", "vm_kvm"]);
        assert!(sample(kvm_guest(), StatsGroups::VCPU).rows.len() == 1);
    }

    #[test]
    fn odd_kvm_names_kinds_and_values_are_left_out() {
        let s = sample(
            vec![
                ("vcpu.maximum", UInt(2)),
                ("vm.Upper.sum", ULLong(1)),
                ("vm.sp ace.sum", ULLong(1)),
                ("vm.hist.log_hist", ULLong(1)),
                ("vm.negative.sum", LLong(-1)),
                ("vm.text.cur", StatValue::String("x".into())),
                ("vm.ok.max", Int(3)),
                ("vcpu.7.exits.sum", ULLong(1)),
                ("vcpu.x.exits.sum", ULLong(1)),
                ("vm.nokind", ULLong(1)),
            ],
            StatsGroups::VM,
        );
        assert_eq!(s.rows.len(), 1, "{:?}", s.rows);
        assert_eq!(fields(&s.rows[0]), [("ok", 3)]);
        assert_eq!(intern(&"a".repeat(MAX_KVM_NAME_LEN + 1)), None);
        assert_eq!(intern("exits"), Some("exits"));
    }

    #[test]
    fn perf_events_and_a_finished_dirty_rate() {
        let s = sample(
            vec![
                ("perf.cpu_clock", ULLong(5)),
                ("perf.task_clock", ULLong(7)),
                ("perf.unknown", ULLong(1)),
                ("dirtyrate.calc_status", Int(2)),
                ("dirtyrate.calc_period", Int(1)),
                ("dirtyrate.megabytes_per_second", LLong(12)),
            ],
            StatsGroups::PERF | StatsGroups::DIRTYRATE,
        );
        assert_eq!(fields(&s.rows[0]), [("cpu_clock", 5), ("task_clock", 7)]);
        assert_eq!(s.rows[0].measurement, VM_PERF);
        assert_eq!(s.rows[1].measurement, VM_DIRTYRATE);
        assert_eq!(
            fields(&s.rows[1]),
            [("dirty_rate_mib_per_sec", 12), ("calc_period_sec", 1)]
        );
        // Measuring (1) or never started (0): no rate yet, no row.
        for status in [0, 1] {
            let s = sample(
                vec![
                    ("dirtyrate.calc_status", Int(status)),
                    ("dirtyrate.megabytes_per_second", LLong(3)),
                ],
                StatsGroups::DIRTYRATE,
            );
            assert!(s.rows.is_empty(), "{status}");
        }
        let none = sample(vec![("perf.cpu_clock", ULLong(5))], StatsGroups::VM);
        assert!(none.rows.is_empty());
    }
}
