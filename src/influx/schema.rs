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
