//! The binary itself: bad configuration stops start-up with exit code 2 and one line naming the key.

use std::process::Command;

fn start_with(env: &[(&str, &str)], args: &[&str]) -> (Option<i32>, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_vmtelemetry"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("the binary runs");
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
