//! A scrape holding every kind of value `/metrics` shows, for the module's tests: every
//! extended field, a guest agent's answer, a host's own figures, the insights and the outlook.

use std::sync::Arc;

use uuid::Uuid;

use super::scrape::Scrape;
use crate::actors::status::{FeatureStatus, SpoolStatus, TelemetryStatus, WriterStatus};
use crate::extended::{self, DomainStatsSample, StatsRow};
use crate::guest::{GuestFs, GuestInfo, GuestSample};
use crate::insights::bottlenecks::{Condition, Evidence};
use crate::insights::forecast::trend::{Outlook, ToFull};
use crate::insights::host::HostSummary;
use crate::insights::rightsizing::recommend::recommend;
use crate::insights::rightsizing::vm::{VmRightsizing, VpaClock};
use crate::insights::scrape::{
    HostOutlookScrape, HostScrape, InsightsScrape, VmOutlookScrape, VmScrape,
};
use crate::insights::signals::{Scores, Signal};
use crate::sample::{DomainSample, MemoryFeatures, NodeSample, VmState};
use crate::vms::{NodeSnapshot, VmSnapshot};

/// Every character a label value must carry escaped: quotes, backslashes, a newline (which
/// libvirt refuses in a domain's name, so only here), unicode.
pub const AWKWARD: &str = "a \"b\" \\ ☃\nnext";

/// A row's derived values.
type Derived = Vec<(&'static str, f64)>;

/// Every field of the fixed groups, each row keyed as libvirt's are.
fn fixed_rows() -> (Vec<StatsRow>, Vec<Derived>) {
    let mut rows: Vec<StatsRow> = Vec::new();
    let mut derived = Vec::new();
    for (measurement, field, integer) in extended::field_types() {
        let key = match measurement {
            extended::VM_DISK => Some(("device", "vda".to_owned())),
            extended::VM_NET => Some(("interface", "vnet0".to_owned())),
            _ if field.starts_with("vcpu_") => Some(("vcpu", "0".to_owned())),
            _ => None,
        };
        let found = (rows.iter()).position(|r| r.measurement == measurement && r.key == key);
        let at = found.unwrap_or_else(|| {
            rows.push(StatsRow {
                measurement,
                key,
                source: None,
                counters: Vec::new(),
            });
            derived.push(Vec::new());
            rows.len() - 1
        });
        if integer {
            rows[at].counters.push((field, 7));
        } else {
            derived[at].push((field, 0.5));
        }
    }
    (rows, derived)
}

/// Every field of every group, the newer ones (`vm_kvm`, `vm_dirtyrate`) with a few of theirs.
fn stats(latest: &DomainSample) -> DomainStatsSample {
    let (mut rows, mut derived) = fixed_rows();
    for (measurement, key, counters) in [
        (extended::VM_KVM, None, vec![("remote_tlb_flush", 7)]),
        (
            extended::VM_KVM,
            Some(("vcpu", "0".to_owned())),
            vec![("exits", 7), ("halt_wait_ns", 7)],
        ),
        (
            extended::VM_DIRTYRATE,
            None,
            vec![("dirty_rate_mib_per_sec", 7), ("calc_period_sec", 1)],
        ),
    ] {
        rows.push(StatsRow {
            measurement,
            key,
            source: None,
            counters,
        });
        derived.push(Vec::new());
    }
    DomainStatsSample {
        uuid: latest.uuid,
        name: latest.name.to_string(),
        timestamp_ns: 1,
        vcpus: Some(2),
        rows,
        derived,
        carried: Vec::new(),
    }
}

/// A guest agent's answer: one filesystem with an awkward mountpoint, and the whole identity.
fn guest(latest: &DomainSample) -> GuestSample {
    let fs = GuestFs {
        mountpoint: AWKWARD.into(),
        fstype: "ext4".into(),
        device: "vda1".into(),
        total_bytes: 1000,
        used_bytes: 250,
    };
    let info = GuestInfo {
        os_id: Some("debian".into()),
        os_version: Some("12".into()),
        kernel_release: Some("6.1.0".into()),
        hostname: Some(AWKWARD.into()),
        users: Some(2),
    };
    GuestSample {
        uuid: latest.uuid,
        name: latest.name.to_string(),
        id: latest.id,
        timestamp_ns: 1,
        filesystems: vec![fs],
        info,
        rejected: 0,
    }
}

/// A running VM with features, every extended field and a guest agent's answer.
pub fn vm(n: u128) -> VmSnapshot {
    let latest = DomainSample {
        id: Some(1),
        name: AWKWARD.into(),
        uuid: Uuid::from_u128(n),
        state: VmState::Running,
        cpu_count: 2,
        memory_max_kb: 4096,
        memory_used_kb: 2048,
        cputime_ns: 5_000_000_000,
        timestamp_ns: 1,
    };
    VmSnapshot {
        uri: "test:///default".into(),
        host: "h".into(),
        features: Some(MemoryFeatures {
            memory_rate_kb_per_sec: 1.0,
            memory_angle_deg: 45.0,
        }),
        stats: Some(stats(&latest)),
        guest: Some(Arc::new(guest(&latest))),
        latest,
    }
}

/// `vms` such VMs on host `h`, read by its last cycle, and a writer with a spool and one write
/// timed.
pub fn scrape(vms: u128) -> Scrape {
    let writer = WriterStatus {
        spool: Some(SpoolStatus::default()),
        ..WriterStatus::default()
    };
    writer
        .write_durations
        .observe(std::time::Duration::from_millis(3));
    let status = TelemetryStatus::new(
        chrono::DateTime::UNIX_EPOCH,
        Vec::new(),
        FeatureStatus::default(),
        writer,
    );
    let node = NodeSample {
        cpus: Some(16),
        memory_total_kb: Some(1 << 20),
        memory_free_kb: Some(1 << 19),
        domains: vms as u64,
        domains_running: vms as u64,
        domains_paused: 0,
        domains_stopped: 0,
        domains_other: 0,
        collection_duration_sec: 0.25,
        timestamp_ns: 1,
    };
    Scrape {
        vms: (1..=vms).map(vm).collect(),
        nodes: vec![NodeSnapshot {
            host: "h".into(),
            node,
        }],
        status,
        insights: Some(insights(vms)),
        now_ns: 2,
    }
}

/// One host of `vms` such VMs, each trained, every signal scored, one condition held, and each
/// with its forecasts and recommendation.
fn insights(vms: u128) -> InsightsScrape {
    let evidence = Evidence {
        signal: "cpu_percent",
        value: 97.0,
        threshold: 90.0,
    };
    let mut scores = Scores::default();
    for signal in Signal::ALL {
        scores.set(signal, 0.5);
    }
    let vm = |n| VmScrape {
        uuid: Uuid::from_u128(n).to_string(),
        name: AWKWARD.into(),
        trained: true,
        anomalous_signals: 1,
        peer_outlier_signals: 1,
        anomaly_rate: Some(0.25),
        scores,
        held: vec![(Condition::CpuSaturated, evidence, 30.0)],
    };
    let summary = HostSummary {
        vms: vms as usize,
        anomaly_rate: Some(0.25),
        ..HostSummary::default()
    };
    let host = HostScrape {
        host: "h".into(),
        summary,
        vms: (1..=vms).map(vm).collect(),
    };
    InsightsScrape {
        hosts: vec![host],
        outlook: vec![outlook(vms)],
    }
}

/// Host `h`'s committed memory growing, and each VM's memory growing with a recommendation.
fn outlook(vms: u128) -> HostOutlookScrape {
    let growing = Outlook {
        used: 512.0,
        capacity: 1024.0,
        growth_per_hour: 3600.0,
        to_full: Some(ToFull {
            seconds: 512.0,
            lower: 400.0,
            upper: Some(700.0),
        }),
    };
    let mut rightsizing = VmRightsizing::default();
    let clock = VpaClock::default();
    let (t0, minute) = (1_700_000_000_000_000_000, 60_000_000_000);
    for i in 0..3 {
        rightsizing.observe_cpu(t0 + i * minute, (i * minute / 2) as u64, clock);
    }
    rightsizing.observe_memory(t0, 300e6, clock);
    let vm = |n| VmOutlookScrape {
        uuid: Uuid::from_u128(n).to_string(),
        name: AWKWARD.into(),
        forecasts: vec![("memory".into(), growing)],
        recommendation: recommend(&rightsizing, 4, 4 << 20, clock),
    };
    HostOutlookScrape {
        host: "h".into(),
        committed: vec![("committed_memory".into(), growing)],
        vms: (1..=vms).map(vm).collect(),
    }
}
