//! The extended measurements (`vm_cpu`, `vm_memory`, `vm_disk`, `vm_net`, and `vm_kvm`,
//! `vm_perf`, `vm_dirtyrate` of the newer groups) as plain data: read from libvirt's bulk stats
//! by the host's worker, and derived (rates, percentages) as they are encoded, from the previous
//! extended sample the VM's record keeps.
//!
//! Counters are integers, exactly as libvirt gives them; everything derived is a float. A counter
//! lower than before (a reboot, a device unplugged and plugged back) gives no rate for that pair.

mod carried;
mod newer;
mod sizes;

use std::collections::HashSet;
use std::sync::Arc;

use uuid::Uuid;

use crate::libvirt::bulk_stats::{DomainStats, StatsGroups};

pub use carried::Carried;
pub use newer::{VM_DIRTYRATE, VM_KVM, VM_PERF};
pub use sizes::SIZE_FIELDS;

/// The `stats_groups` names, as Telegraf's libvirt plugin spells them, and libvirt's groups.
pub const GROUP_NAMES: [(&str, StatsGroups); 8] = [
    ("cpu_total", StatsGroups::CPU_TOTAL),
    ("balloon", StatsGroups::BALLOON),
    ("vcpu", StatsGroups::VCPU),
    ("interface", StatsGroups::INTERFACE),
    ("block", StatsGroups::BLOCK),
    ("vm", StatsGroups::VM),
    ("perf", StatsGroups::PERF),
    ("dirtyrate", StatsGroups::DIRTYRATE),
];

pub const VM_CPU: &str = "vm_cpu";
pub const VM_MEMORY: &str = "vm_memory";
pub const VM_DISK: &str = "vm_disk";
pub const VM_NET: &str = "vm_net";

/// One line's worth of counters: a measurement, the tag telling devices apart (`device`,
/// `interface`, `vcpu`) if any, and the counters (integer fields) in a fixed order.
#[derive(Debug, Clone, PartialEq)]
pub struct StatsRow {
    pub measurement: &'static str,
    pub key: Option<(&'static str, String)>,
    /// A disk's source as the bulk stats give it (`block.N.path`: its file or block device), or
    /// a NIC's bridge (read from the domain's XML by the sampler), for `/metrics` (the
    /// exporter's `source_file` and `source_bridge`); not written to InfluxDB.
    pub source: Option<String>,
    pub counters: Vec<(&'static str, u64)>,
}

/// One domain's bulk stats from one stats cycle.
#[derive(Debug, Clone, PartialEq)]
pub struct DomainStatsSample {
    pub uuid: Uuid,
    pub name: String,
    /// When the bulk call returned, in nanoseconds since the Unix epoch.
    pub timestamp_ns: i64,
    /// `vcpu.current`, when the vcpu group is on.
    pub vcpus: Option<u64>,
    /// The rows read this time: each is written.
    pub rows: Vec<StatsRow>,
    /// Each row's derived (float) fields, in the rows' order (see `derive`): set when the VM
    /// table records the sample after the one before, and read by the encoder and `/metrics`.
    pub derived: Vec<Vec<(&'static str, f64)>>,
    /// Rows of groups not read this time (they have cadences of their own), from the samples
    /// before, with when they were read: the next rates of those groups derive from them; and
    /// the sizes last read of each disk read without them. Never written again.
    pub carried: Vec<Carried>,
}

/// Every (filtered) domain of one host from one stats cycle.
#[derive(Debug, Clone)]
pub struct StatsSample {
    pub uri: Arc<str>,
    pub host: Arc<str>,
    pub domains: Vec<DomainStatsSample>,
}

const CPU_FIELDS: [(&str, &str); 3] = [
    ("cpu.time", "cpu_time_ns"),
    ("cpu.user", "cpu_user_ns"),
    ("cpu.system", "cpu_system_ns"),
];
const VCPU_FIELDS: [(&str, &str); 3] = [
    ("time", "vcpu_time_ns"),
    ("wait", "vcpu_wait_ns"),
    ("delay", "vcpu_delay_ns"),
];
const BALLOON_FIELDS: [(&str, &str); 9] = [
    ("balloon.current", "balloon_current_kb"),
    ("balloon.maximum", "balloon_maximum_kb"),
    ("balloon.rss", "rss_kb"),
    ("balloon.available", "available_kb"),
    ("balloon.unused", "unused_kb"),
    ("balloon.usable", "usable_kb"),
    ("balloon.swap_in", "swap_in_kb"),
    ("balloon.swap_out", "swap_out_kb"),
    ("balloon.major_fault", "major_faults"),
];
const BLOCK_FIELDS: [(&str, &str); 10] = [
    ("rd.bytes", "read_bytes"),
    ("rd.reqs", "read_requests"),
    ("rd.times", "read_time_ns"),
    ("wr.bytes", "write_bytes"),
    ("wr.reqs", "write_requests"),
    ("wr.times", "write_time_ns"),
    ("errs", "errors"),
    ("capacity", "capacity_bytes"),
    ("allocation", "allocation_bytes"),
    ("physical", "physical_bytes"),
];
const NET_FIELDS: [(&str, &str); 8] = [
    ("rx.bytes", "rx_bytes"),
    ("rx.pkts", "rx_packets"),
    ("rx.errs", "rx_errors"),
    ("rx.drop", "rx_drops"),
    ("tx.bytes", "tx_bytes"),
    ("tx.pkts", "tx_packets"),
    ("tx.errs", "tx_errors"),
    ("tx.drop", "tx_drops"),
];

/// Per measurement: counter → the per-second rate derived from it.
const RATES: [(&str, &str, &str); 8] = [
    (VM_DISK, "read_bytes", "read_bytes_per_sec"),
    (VM_DISK, "write_bytes", "write_bytes_per_sec"),
    (VM_DISK, "read_requests", "read_iops"),
    (VM_DISK, "write_requests", "write_iops"),
    (VM_NET, "rx_bytes", "rx_bytes_per_sec"),
    (VM_NET, "tx_bytes", "tx_bytes_per_sec"),
    (VM_NET, "rx_packets", "rx_packets_per_sec"),
    (VM_NET, "tx_packets", "tx_packets_per_sec"),
];

/// Every integer field any row may carry, and every derived (float) one: fixed forever.
pub fn field_types() -> Vec<(&'static str, &'static str, bool)> {
    let mut all = Vec::new();
    for (m, fields) in [
        (VM_CPU, &CPU_FIELDS[..]),
        (VM_CPU, &VCPU_FIELDS[..]),
        (VM_MEMORY, &BALLOON_FIELDS[..]),
        (VM_DISK, &BLOCK_FIELDS[..]),
        (VM_NET, &NET_FIELDS[..]),
    ] {
        all.extend(fields.iter().map(|(_, f)| (m, *f, true)));
    }
    all.extend(RATES.iter().map(|(m, _, r)| (*m, *r, false)));
    all.push((VM_CPU, "cpu_usage_percent", false));
    all.push((VM_MEMORY, "used_percent", false));
    all.extend(newer::field_types());
    all
}

impl DomainStatsSample {
    /// The rows of `wanted`'s groups in one bulk record (a call may ask for more: libvirt gives
    /// KVM's per-vCPU statistics only with the vcpu group). Groups libvirt did not give (not
    /// supported, or skipped by NOWAIT while the domain was busy) give no row. None for a record
    /// without a domain.
    pub fn from_bulk(stats: &DomainStats, timestamp_ns: i64, wanted: StatsGroups) -> Option<Self> {
        let uuid = stats.uuid?;
        let mut rows = Vec::new();
        let wants = |group| wanted.contains(group);
        if wants(StatsGroups::CPU_TOTAL) {
            rows.extend(counters_row(stats, VM_CPU, None, &CPU_FIELDS, ""));
        }
        let vcpus = stats.get_u64("vcpu.current");
        let vcpu_slots = stats.get_u64("vcpu.maximum").unwrap_or(0).min(MAX_DEVICES);
        if wants(StatsGroups::VCPU) {
            for n in 0..vcpu_slots {
                let (slot, prefix) = (n.to_string(), format!("vcpu.{n}."));
                let key = Some(("vcpu", slot.as_str()));
                rows.extend(counters_row(stats, VM_CPU, key, &VCPU_FIELDS, &prefix));
            }
        }
        if wants(StatsGroups::BALLOON) {
            rows.extend(counters_row(stats, VM_MEMORY, None, &BALLOON_FIELDS, ""));
        }
        if wants(StatsGroups::BLOCK) {
            device_rows(
                stats,
                "block",
                (VM_DISK, "device"),
                &BLOCK_FIELDS,
                &mut rows,
            );
        }
        if wants(StatsGroups::INTERFACE) {
            device_rows(stats, "net", (VM_NET, "interface"), &NET_FIELDS, &mut rows);
        }
        newer::rows(stats, wanted, vcpu_slots, &mut rows);
        Some(DomainStatsSample {
            uuid,
            name: stats.name.clone(),
            timestamp_ns,
            vcpus,
            rows,
            derived: Vec::new(),
            carried: Vec::new(),
        })
    }

    /// The row of `measurement` and `key` last read, and when: this time's, else one carried.
    fn row(
        &self,
        measurement: &str,
        key: &Option<(&'static str, String)>,
    ) -> Option<(i64, &StatsRow)> {
        let same = |r: &StatsRow| r.measurement == measurement && &r.key == key && !r.sizes_only();
        match self.rows.iter().find(|r| same(r)) {
            Some(row) => Some((self.timestamp_ns, row)),
            None => self
                .carried
                .iter()
                .find(|c| same(&c.row))
                .map(|c| (c.read_at, &c.row)),
        }
    }
}

/// The most vCPUs, disks or interfaces read of one domain: libvirt's counts bound the loops.
const MAX_DEVICES: u64 = 4096;

/// The row of `fields` read under `prefix`: none when libvirt gave none of them.
fn counters_row(
    stats: &DomainStats,
    measurement: &'static str,
    key: Option<(&'static str, &str)>,
    fields: &[(&str, &'static str)],
    prefix: &str,
) -> Option<StatsRow> {
    let counters: Vec<(&'static str, u64)> = fields
        .iter()
        .filter_map(|(param, field)| {
            let value = stats.get_u64(&format!("{prefix}{param}"))?;
            Some((*field, value))
        })
        .collect();
    let source = match measurement {
        VM_DISK => stats.get_str(&format!("{prefix}path")),
        _ => None,
    };
    (!counters.is_empty()).then(|| StatsRow {
        measurement,
        key: key.map(|(tag, value)| (tag, value.to_owned())),
        source: source.map(str::to_owned),
        counters,
    })
}

/// One row per device of `group` (`block`, `net`): `measurement` tagged `tag` with its name.
fn device_rows(
    stats: &DomainStats,
    group: &str,
    (measurement, tag): (&'static str, &'static str),
    fields: &[(&str, &'static str)],
    rows: &mut Vec<StatsRow>,
) {
    let count = stats
        .get_u64(&format!("{group}.count"))
        .unwrap_or(0)
        .min(MAX_DEVICES);
    let mut seen = HashSet::new();
    for n in 0..count {
        let Some(name) = stats.get_str(&format!("{group}.{n}.name")) else {
            continue;
        };
        // With backing chains a device may repeat: its top image comes first.
        if name.is_empty() || !seen.insert(name.to_owned()) {
            continue;
        }
        let prefix = format!("{group}.{n}.");
        rows.extend(counters_row(
            stats,
            measurement,
            Some((tag, name)),
            fields,
            &prefix,
        ));
    }
}

impl StatsRow {
    pub fn counter(&self, field: &str) -> Option<u64> {
        self.counters
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, v)| *v)
    }
}

/// Per second from two readings of a counter `dt_ns` apart; none when time did not move forward
/// or the counter went back (it was reset).
pub fn rate(previous: u64, current: u64, dt_ns: i64) -> Option<f64> {
    if dt_ns <= 0 || current < previous {
        return None;
    }
    Some((current - previous) as f64 / (dt_ns as f64 / 1e9))
}

/// A guest's memory in use and what it has, in KiB, from a `vm_memory` row: what it has
/// (`available_kb`) less what it could still use (`usable_kb`, else `unused_kb`).
pub fn memory_in_use(row: &StatsRow) -> Option<(u64, u64)> {
    let available = row.counter("available_kb").filter(|a| *a > 0)?;
    let free = row.counter("usable_kb").or(row.counter("unused_kb"))?;
    Some((available.saturating_sub(free), available))
}

/// The share of its memory a guest has in use (`memory_in_use`), in percent.
pub fn used_percent(row: &StatsRow) -> Option<f64> {
    let (used, available) = memory_in_use(row)?;
    Some(used as f64 / available as f64 * 100.0)
}

/// The derived (float) fields of each row of `current`, in the same order as its rows.
/// `vcpus_fallback`: the vCPU count from `vm_metrics`, when the vcpu group is off.
pub fn derive(
    previous: Option<&DomainStatsSample>,
    current: &DomainStatsSample,
    vcpus_fallback: Option<u32>,
) -> Vec<Vec<(&'static str, f64)>> {
    current
        .rows
        .iter()
        .map(|row| {
            let mut derived = Vec::new();
            let before = previous.and_then(|p| p.row(row.measurement, &row.key));
            // Each kind of row from the last that read it: groups have cadences of their own.
            let dt_ns = before.map_or(0, |(at, _)| current.timestamp_ns.saturating_sub(at));
            let before = before.map(|(_, row)| row);
            if row.measurement == VM_CPU && row.key.is_none() {
                let vcpus = current.vcpus.or(vcpus_fallback.map(u64::from));
                // Δcpu_time / (Δt × vCPUs) × 100; both in nanoseconds.
                if let (Some(before), Some(vcpus)) = (before, vcpus.filter(|n| *n > 0))
                    && let (Some(a), Some(b)) =
                        (before.counter("cpu_time_ns"), row.counter("cpu_time_ns"))
                    && let Some(per_sec) = rate(a, b, dt_ns)
                {
                    derived.push(("cpu_usage_percent", per_sec / 1e9 / vcpus as f64 * 100.0));
                }
            }
            if row.measurement == VM_MEMORY
                && let Some(percent) = used_percent(row)
            {
                derived.push(("used_percent", percent));
            }
            if let Some(before) = before {
                for (measurement, counter, rate_field) in RATES {
                    if measurement != row.measurement {
                        continue;
                    }
                    if let (Some(a), Some(b)) = (before.counter(counter), row.counter(counter))
                        && let Some(r) = rate(a, b, dt_ns)
                    {
                        derived.push((rate_field, r));
                    }
                }
            }
            derived
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::libvirt::bulk_stats::StatValue;

    fn stats(params: &[(&str, StatValue)]) -> DomainStats {
        DomainStats::of(1, params)
    }

    fn guest(t_sec: i64, cpu_ns: u64, rd: u64, rx: u64) -> DomainStatsSample {
        use StatValue::*;
        DomainStatsSample::from_bulk(
            &stats(&[
                ("cpu.time", ULLong(cpu_ns)),
                ("cpu.user", ULLong(cpu_ns / 2)),
                ("cpu.system", ULLong(cpu_ns / 4)),
                ("vcpu.current", UInt(2)),
                ("vcpu.maximum", UInt(2)),
                ("vcpu.0.time", ULLong(7)),
                ("vcpu.0.wait", ULLong(8)),
                ("vcpu.1.time", ULLong(9)),
                ("vcpu.1.delay", ULLong(10)),
                ("balloon.current", ULLong(1000)),
                ("balloon.maximum", ULLong(2000)),
                ("balloon.available", ULLong(800)),
                ("balloon.usable", ULLong(600)),
                ("balloon.unused", ULLong(500)),
                ("block.count", UInt(2)),
                ("block.0.name", String("vda".into())),
                ("block.0.path", String("/var/lib/a \"b\".img".into())),
                ("block.0.rd.bytes", ULLong(rd)),
                ("block.0.rd.reqs", ULLong(rd / 512)),
                ("block.0.wr.bytes", ULLong(0)),
                ("block.0.capacity", ULLong(1 << 30)),
                ("block.1.name", String("vda".into())),
                ("block.1.rd.bytes", ULLong(1)),
                ("net.count", UInt(1)),
                ("net.0.name", String("tap0".into())),
                ("net.0.rx.bytes", ULLong(rx)),
                ("net.0.rx.pkts", ULLong(rx / 100)),
                ("net.0.tx.bytes", ULLong(5)),
            ]),
            t_sec * 1_000_000_000,
            StatsGroups::ALL,
        )
        .unwrap()
    }

    #[test]
    fn bulk_params_become_rows_with_fixed_names() {
        let s = guest(0, 4_000, 1024, 100);
        let summary: Vec<_> = s
            .rows
            .iter()
            .map(|r| (r.measurement, r.key.clone().map(|k| k.1), r.counters.len()))
            .collect();
        assert_eq!(
            summary,
            vec![
                (VM_CPU, None, 3),
                (VM_CPU, Some("0".into()), 2),
                (VM_CPU, Some("1".into()), 2),
                (VM_MEMORY, None, 5),
                (VM_DISK, Some("vda".into()), 4), // the backing image's repeat is left out
                (VM_NET, Some("tap0".into()), 3),
            ]
        );
        assert_eq!(s.vcpus, Some(2));
        assert_eq!(s.rows[4].counter("capacity_bytes"), Some(1 << 30));
        assert_eq!(s.rows[4].source.as_deref(), Some("/var/lib/a \"b\".img"));
        assert_eq!(s.rows[5].source, None);
        // Every field a row carries is declared, as an integer.
        let declared = field_types();
        for row in &s.rows {
            for (f, _) in &row.counters {
                assert!(declared.contains(&(row.measurement, f, true)), "{f}");
            }
        }
    }

    #[test]
    fn a_record_without_a_domain_gives_no_sample() {
        let record = DomainStats {
            uuid: None,
            ..stats(&[("state.state", StatValue::Int(1))])
        };
        assert_eq!(
            DomainStatsSample::from_bulk(&record, 0, StatsGroups::ALL),
            None
        );
    }

    #[test]
    fn nothing_given_gives_no_rows() {
        let state = stats(&[("state.state", StatValue::Int(5))]);
        let s = DomainStatsSample::from_bulk(&state, 0, StatsGroups::ALL).unwrap();
        assert!(s.rows.is_empty());
        assert!(derive(None, &s, Some(1)).is_empty());
    }

    #[test]
    fn rates_are_per_second_and_a_reset_gives_none() {
        assert_eq!(rate(100, 300, 2_000_000_000), Some(100.0));
        assert_eq!(rate(100, 100, 1_000_000_000), Some(0.0));
        assert_eq!(rate(300, 100, 1_000_000_000), None);
        assert_eq!(rate(1, 2, 0), None);
        assert_eq!(rate(1, 2, -5), None);
    }

    #[test]
    fn derived_fields_from_two_samples() {
        // 2 s apart: 2 vCPUs busy for 1 s of CPU time in total = 25 %.
        let a = guest(10, 1_000_000_000, 1024, 1000);
        let b = guest(12, 2_000_000_000, 1024 + 4096, 1400);
        let derived = derive(Some(&a), &b, None);
        let get = |row: usize, f: &str| derived[row].iter().find(|(n, _)| *n == f).map(|x| x.1);
        assert_eq!(get(0, "cpu_usage_percent"), Some(25.0));
        assert_eq!(get(3, "used_percent"), Some(25.0)); // (800 - 600) / 800
        assert_eq!(get(4, "read_bytes_per_sec"), Some(2048.0));
        assert_eq!(get(4, "read_iops"), Some(4.0));
        assert_eq!(get(4, "write_bytes_per_sec"), Some(0.0));
        assert_eq!(get(5, "rx_bytes_per_sec"), Some(200.0));
        assert_eq!(get(5, "rx_packets_per_sec"), Some(2.0));
        assert!(derived[1].is_empty() && derived[2].is_empty());
        // The first sample has only what needs no previous one.
        let first = derive(None, &a, None);
        assert_eq!(first[3], vec![("used_percent", 25.0)]);
        assert!(first[0].is_empty() && first[4].is_empty());
    }

    #[test]
    fn a_reboot_gives_no_negative_rate() {
        let before = guest(10, 9_000_000_000, 1 << 20, 1 << 20);
        let rebooted = guest(15, 1_000_000, 4096, 60);
        let derived = derive(Some(&before), &rebooted, None);
        for (field, value) in derived.iter().flatten() {
            assert!(*value >= 0.0, "{field} = {value} after a reset");
        }
        let fields: Vec<&str> = derived.iter().flatten().map(|(f, _)| *f).collect();
        for reset in [
            "cpu_usage_percent",
            "read_bytes_per_sec",
            "read_iops",
            "rx_bytes_per_sec",
        ] {
            assert!(
                !fields.contains(&reset),
                "{reset} after a reset: {fields:?}"
            );
        }
        // Counters that did not go back still give their (zero) rate.
        assert!(fields.contains(&"write_bytes_per_sec") && fields.contains(&"tx_bytes_per_sec"));
    }

    #[test]
    fn cpu_usage_falls_back_to_the_vm_metrics_vcpu_count() {
        let cpu_only = |t: i64, ns: u64| {
            let cpu = stats(&[("cpu.time", StatValue::ULLong(ns))]);
            DomainStatsSample::from_bulk(&cpu, t, StatsGroups::ALL).unwrap()
        };
        let (a, b) = (cpu_only(0, 0), cpu_only(1_000_000_000, 500_000_000));
        assert_eq!(
            derive(Some(&a), &b, Some(1))[0],
            vec![("cpu_usage_percent", 50.0)]
        );
        assert!(derive(Some(&a), &b, None)[0].is_empty());
        assert!(derive(Some(&a), &b, Some(0))[0].is_empty());
    }

    /// `guest`'s record read for `groups` only, at `t_sec`.
    fn partial(t_sec: i64, rd: u64, rx: u64, groups: StatsGroups) -> DomainStatsSample {
        let all = guest(t_sec, 1_000_000_000, rd, rx);
        let keep = |r: &StatsRow| match r.measurement {
            VM_DISK => groups.contains(StatsGroups::BLOCK),
            VM_NET => groups.contains(StatsGroups::INTERFACE),
            _ => false,
        };
        DomainStatsSample {
            rows: all.rows.into_iter().filter(keep).collect(),
            ..all
        }
    }

    #[test]
    fn a_group_read_less_often_derives_its_rates_from_its_own_last_reading() {
        // Disks every other second, the network every second: the disk's rate spans 2 s, the
        // network's 1 s, and neither is lost to the cycles that read only the other.
        let (both, net) = (
            StatsGroups::BLOCK | StatsGroups::INTERFACE,
            StatsGroups::INTERFACE,
        );
        let mut previous = partial(10, 1000, 100, both);
        previous.carry(None);
        let mut cycles = Vec::new();
        for (t, rd, rx, groups) in [(11, 9999, 200, net), (12, 5096, 400, both)] {
            let mut current = partial(t, rd, rx, groups);
            current.derived = derive(Some(&previous), &current, None);
            current.carry(Some(&previous));
            cycles.push(current.clone());
            previous = current;
        }
        let rate = |s: &DomainStatsSample, m: &str, f: &str| {
            let i = s.rows.iter().position(|r| r.measurement == m)?;
            s.derived[i].iter().find(|(n, _)| *n == f).map(|x| x.1)
        };
        assert_eq!(cycles[0].rows.len(), 1, "only the network was read");
        assert_eq!(rate(&cycles[0], VM_NET, "rx_bytes_per_sec"), Some(100.0));
        assert_eq!(cycles[0].carried.len(), 1);
        assert_eq!(cycles[0].carried[0].read_at, 10_000_000_000);
        // (5096 - 1000) bytes over the 2 s since the disk was last read.
        assert_eq!(
            rate(&cycles[1], VM_DISK, "read_bytes_per_sec"),
            Some(2048.0)
        );
        assert_eq!(rate(&cycles[1], VM_NET, "rx_bytes_per_sec"), Some(200.0));
        assert!(cycles[1].carried.is_empty(), "both read again");
        // A cycle that read nothing of a VM carries all, and writes nothing.
        let mut idle = partial(13, 0, 0, StatsGroups::empty());
        idle.carry(Some(&cycles[1]));
        assert!(idle.rows.is_empty() && idle.carried.len() == 2);
    }

    /// A disk `vda` at `t_sec`, its sizes read or not (the counters every time).
    fn disk(t_sec: i64, rd: u64, sizes: Option<u64>) -> DomainStatsSample {
        use StatValue::*;
        let mut params = vec![
            ("block.count", UInt(1)),
            ("block.0.name", String("vda".into())),
            ("block.0.rd.bytes", ULLong(rd)),
            ("block.0.rd.reqs", ULLong(rd / 512)),
        ];
        if let Some(allocation) = sizes {
            params.push(("block.0.capacity", ULLong(1 << 30)));
            params.push(("block.0.allocation", ULLong(allocation)));
        }
        DomainStatsSample::from_bulk(&stats(&params), t_sec * 1_000_000_000, StatsGroups::BLOCK)
            .unwrap()
    }

    #[test]
    fn a_disks_sizes_are_kept_until_read_again_and_never_in_its_written_rows() {
        let vda = Some(("device", "vda".to_owned()));
        let first = disk(0, 0, Some(4096));
        let mut second = disk(1, 1024, None);
        second.derived = derive(Some(&first), &second, None);
        second.carry(Some(&first));
        // Written: the counters alone, with their rates from the sample before.
        assert_eq!(second.rows.len(), 1);
        assert_eq!(second.rows[0].counter("capacity_bytes"), None);
        assert_eq!(
            second.derived[0],
            [("read_bytes_per_sec", 1024.0), ("read_iops", 2.0)]
        );
        assert_eq!(second.disk_size(&vda, "capacity_bytes"), Some(1 << 30));
        assert_eq!(second.disk_size(&vda, "allocation_bytes"), Some(4096));
        // Kept on, and the rates still derive from the counters' row, not the sizes'.
        let mut third = disk(2, 3072, None);
        third.derived = derive(Some(&second), &third, None);
        third.carry(Some(&second));
        assert_eq!(third.derived[0][0], ("read_bytes_per_sec", 2048.0));
        assert_eq!(third.disk_size(&vda, "allocation_bytes"), Some(4096));
        // Read again: the new ones.
        let mut fourth = disk(3, 3072, Some(8192));
        fourth.carry(Some(&third));
        assert_eq!(fourth.disk_size(&vda, "allocation_bytes"), Some(8192));
        assert!(fourth.carried.is_empty(), "{:?}", fourth.carried);
        assert_eq!(disk(0, 0, None).disk_size(&vda, "capacity_bytes"), None);
    }
}
