//! The names InfluxDB's readers see: measurements, tag keys and fields. The encoder writes them,
//! the history query asks for them, the tests check them; renaming one breaks every dashboard.

/// The tags of every line of a VM, in the key order they are written.
pub mod vm_tags {
    pub const VMID: &str = "VMID";
    pub const HOST: &str = "host";
    pub const NAME: &str = "name";
    pub const UUID: &str = "uuid";
    pub const ALL: [&str; 4] = [VMID, HOST, NAME, UUID];
}

/// The seed's per-VM measurement: a string, then integers.
pub mod vm_metrics {
    pub const MEASUREMENT: &str = "vm_metrics";
    /// A string.
    pub const STATE: &str = "state";
    pub const CPU_COUNT: &str = "cpu_count";
    pub const MEMORY_MAX_KB: &str = "memory_max_kb";
    pub const MEMORY_USED_KB: &str = "memory_used_kb";
    /// A cumulative counter.
    pub const CPUTIME_NS: &str = "cputime_ns";
    /// Every field, in the order written.
    pub const FIELDS: [&str; 5] = [STATE, CPU_COUNT, MEMORY_MAX_KB, MEMORY_USED_KB, CPUTIME_NS];
    pub const INTEGERS: [&str; 4] = [CPU_COUNT, MEMORY_MAX_KB, MEMORY_USED_KB, CPUTIME_NS];
}

/// The features derived from two samples of a VM: floats.
pub mod vm_features {
    pub const MEASUREMENT: &str = "vm_features";
    pub const MEMORY_RATE_KB_PER_SEC: &str = "memory_rate_kb_per_sec";
    pub const MEMORY_ANGLE_DEG: &str = "memory_angle_deg";
    pub const FIELDS: [&str; 2] = [MEMORY_RATE_KB_PER_SEC, MEMORY_ANGLE_DEG];
}

/// One line per host and cycle, tagged `host` only: integers, then one float.
pub mod host_metrics {
    pub const MEASUREMENT: &str = "host_metrics";
    pub const HOST: &str = super::vm_tags::HOST;
    pub const CPUS: &str = "cpus";
    pub const MEMORY_TOTAL_KB: &str = "memory_total_kb";
    pub const MEMORY_FREE_KB: &str = "memory_free_kb";
    pub const DOMAINS: &str = "domains";
    pub const DOMAINS_RUNNING: &str = "domains_running";
    pub const DOMAINS_PAUSED: &str = "domains_paused";
    pub const DOMAINS_STOPPED: &str = "domains_stopped";
    pub const DOMAINS_OTHER: &str = "domains_other";
    /// A float.
    pub const COLLECTION_DURATION_SEC: &str = "collection_duration_sec";
}

/// Each VM's anomaly scores against its own past: one float per signal (0 to 1), then integers
/// and the VM's anomaly rate. Written every cycle for a VM with a trained model.
pub mod vm_anomalies {
    pub const MEASUREMENT: &str = "vm_anomalies";
    /// One per signal, in `insights::signals::Signal::ALL` order: `<signal>_score`.
    pub const SCORES: [&str; 16] = [
        "cpu_percent_score",
        "memory_used_percent_score",
        "memory_rate_kb_per_sec_score",
        "disk_read_bytes_per_sec_score",
        "disk_write_bytes_per_sec_score",
        "disk_read_iops_score",
        "disk_write_iops_score",
        "disk_read_latency_ms_score",
        "disk_write_latency_ms_score",
        "net_rx_bytes_per_sec_score",
        "net_tx_bytes_per_sec_score",
        "net_drops_per_sec_score",
        "cpu_steal_percent_score",
        "swap_in_kb_per_sec_score",
        "swap_out_kb_per_sec_score",
        "major_faults_per_sec_score",
    ];
    /// Integers.
    pub const ANOMALOUS_SIGNALS: &str = "anomalous_signals";
    pub const PEER_OUTLIER_SIGNALS: &str = "peer_outlier_signals";
    /// A float.
    pub const ANOMALY_RATE: &str = "anomaly_rate";
}

/// One line per VM and condition while it holds: the VM's tags and `kind`.
pub mod vm_bottlenecks {
    pub const MEASUREMENT: &str = "vm_bottlenecks";
    pub const KIND: &str = "kind";
    /// A string: the signal the evidence is.
    pub const SIGNAL: &str = "signal";
    /// Floats.
    pub const VALUE: &str = "value";
    pub const THRESHOLD: &str = "threshold";
    pub const HELD_SEC: &str = "held_sec";
}

/// One line per host and cycle, tagged `host` only.
pub mod host_insights {
    pub const MEASUREMENT: &str = "host_insights";
    pub const HOST: &str = super::vm_tags::HOST;
    /// Floats (the overcommit ratios only when `host_metrics` gives the host's CPUs and memory).
    pub const ANOMALY_RATE: &str = "anomaly_rate";
    pub const VCPU_OVERCOMMIT: &str = "vcpu_overcommit";
    pub const MEMORY_OVERCOMMIT: &str = "memory_overcommit";
    /// Integers.
    pub const VMS: &str = "vms";
    pub const VMS_TRAINED: &str = "vms_trained";
    pub const VMS_ANOMALOUS: &str = "vms_anomalous";
    /// VMs per condition, in `insights::bottlenecks::Condition::ALL` order.
    pub const VMS_IN: [&str; 6] = [
        "vms_cpu_saturated",
        "vms_cpu_contention",
        "vms_memory_pressure",
        "vms_disk_latency",
        "vms_disk_errors",
        "vms_network_drops",
    ];
}

/// Each bounded resource's forecast (`resource`: `memory`, `disk:<device>`; a host's
/// `committed_memory` is tagged `host` only): floats, then `growing` (0 or 1). The seconds to
/// full and their 80 % interval only while growing (the upper bound only when finite).
pub mod vm_forecasts {
    pub const MEASUREMENT: &str = "vm_forecasts";
    pub const HOST: &str = super::vm_tags::HOST;
    pub const RESOURCE: &str = "resource";
    pub const USED: &str = "used";
    pub const CAPACITY: &str = "capacity";
    pub const GROWTH_PER_HOUR: &str = "growth_per_hour";
    pub const SECONDS_TO_FULL: &str = "seconds_to_full";
    pub const SECONDS_TO_FULL_LOWER: &str = "seconds_to_full_lower";
    pub const SECONDS_TO_FULL_UPPER: &str = "seconds_to_full_upper";
    pub const GROWING: &str = "growing";
}

/// Each VM's right-sizing (hourly): `class` (a string), integers in vCPUs and MiB, floats.
/// The memory fields only for a guest that reports its memory in use.
pub mod vm_recommendations {
    pub const MEASUREMENT: &str = "vm_recommendations";
    pub const CLASS: &str = "class";
    pub const CPU: [&str; 4] = ["cpu_current", "cpu_lower", "cpu_target", "cpu_upper"];
    pub const MEMORY: [&str; 4] = [
        "memory_current_mib",
        "memory_lower_mib",
        "memory_target_mib",
        "memory_upper_mib",
    ];
    pub const RECLAIMABLE_VCPUS: &str = "reclaimable_vcpus";
    pub const RECLAIMABLE_MEMORY_MIB: &str = "reclaimable_memory_mib";
    pub const HISTORY_HOURS: &str = "history_hours";
    pub const CONFIDENCE_DAYS: &str = "confidence_days";
}
