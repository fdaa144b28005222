//! The binary itself: bad configuration stops start-up with exit code 2 and one line naming the key.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::DiesWithTest;

/// The exit code and standard error of the binary; a binary that starts instead (a setting
/// wrongly accepted) is stopped after a few seconds, and its code is None.
pub(crate) fn start_with(env: &[(&str, &str)], args: &[&str]) -> (Option<i32>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vmtelemetry"))
        .args(args)
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .dies_with_test()
        .spawn()
        .expect("the binary runs");
    let deadline = Instant::now() + Duration::from_secs(10);
    while child
        .try_wait()
        .expect("the child can be waited on")
        .is_none()
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let output = child.wait_with_output().expect("the binary's output");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn invalid_settings_exit_2_with_one_line_naming_the_key() {
    for (key, value, named) in [
        ("VMTELEMETRY_POLL_INTERVAL", "-5", "poll_interval"),
        ("VMTELEMETRY_BATCH_MAX_LINES", "30000", "batch_max_lines"),
        ("VMTELEMETRY_INFLUX_URL", "localhost:8181", "influx_url"),
        ("VMTELEMETRY_INFLUX_API", "v9", "influx_api"),
        ("VMTELEMETRY_HOSTS", "", "hosts"),
    ] {
        let (code, stderr) = start_with(&[(key, value)], &[]);
        assert_eq!(code, Some(2), "{key}={value}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{key}={value}: {stderr}");
        assert!(stderr.contains(named), "{key}={value}: {stderr}");
    }
}

#[test]
fn a_missing_config_file_exits_2() {
    let (code, stderr) = start_with(&[], &["--config", "/nonexistent/vmtelemetry.toml"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("/nonexistent/vmtelemetry.toml"), "{stderr}");
}

#[test]
fn secrets_never_reach_the_logs() {
    let spool = tempfile::tempdir().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_vmtelemetry"))
        .envs([
            ("VMTELEMETRY_LIBVIRT_URI", "test:///default"),
            ("VMTELEMETRY_LISTEN", "127.0.0.1:0"),
            ("VMTELEMETRY_POLL_INTERVAL", "0.2"),
            ("VMTELEMETRY_BATCH_MAX_SEC", "0.1"),
            ("VMTELEMETRY_SPOOL_DIR", spool.path().to_str().unwrap()),
            // Every write fails, and is logged.
            ("VMTELEMETRY_INFLUX_URL", "http://127.0.0.1:9"),
            ("VMTELEMETRY_LOG_FORMAT", "json"),
            ("VMTELEMETRY_SHUTDOWN_TIMEOUT", "0.5"),
            ("RUST_LOG", "trace"),
            ("INFLUX_TOKEN", "influx-s3cret-t0ken"),
            (
                "VMTELEMETRY_ADMIN_TOKEN",
                "adm1n-s3cret-t0ken-0c4f9b2e7a1d5836",
            ),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .dies_with_test()
        .spawn()
        .expect("the binary runs");
    std::thread::sleep(std::time::Duration::from_secs(3));
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let output = child.wait_with_output().unwrap();
    let logs = String::from_utf8_lossy(&output.stdout) + String::from_utf8_lossy(&output.stderr);
    assert!(
        logs.contains("batch kept for a retry"),
        "the failing writes were logged"
    );
    assert!(!logs.contains("s3cret"), "a secret leaked into the logs");
    for line in logs.lines().filter(|l| !l.is_empty()) {
        assert!(
            serde_json::from_str::<serde_json::Value>(line).is_ok(),
            "not JSON: {line}"
        );
    }
}
