//! The settings every test's service starts from, in this process (`spawn_app`) or as its own
//! (`ServiceProcess`): a free port, a spool of its own, the test InfluxDB through v1.

use std::path::Path;

/// `VMTELEMETRY_*` pairs, before what a test adds.
pub fn base_settings(spool_dir: &Path) -> Vec<(String, String)> {
    [
        ("VMTELEMETRY_LISTEN", "127.0.0.1:0".to_owned()),
        ("VMTELEMETRY_SPOOL_DIR", spool_dir.display().to_string()),
        ("VMTELEMETRY_INFLUX_API", "v1".to_owned()),
        ("VMTELEMETRY_INFLUX_URL", influx_url()),
        // Off unless a test asks for them (tests/api/insights.rs): the others count the feature
        // actor's lines against those written, exactly.
        ("VMTELEMETRY_INSIGHTS", "false".to_owned()),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_owned(), value))
    .collect()
}

/// The real InfluxDB (1.x) that `scripts/test-env.sh` runs on loopback.
pub fn influx_url() -> String {
    std::env::var("VMT_TEST_INFLUX_URL").unwrap_or_else(|_| "http://127.0.0.1:18086".into())
}
