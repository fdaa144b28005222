//! Leak checks: an example binary built for the tests' profile, run under valgrind.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Bytes of each kind in valgrind's leak summary.
#[derive(Debug, Default)]
pub struct LeakSummary {
    pub definitely_lost: u64,
    pub indirectly_lost: u64,
    pub possibly_lost: u64,
    pub still_reachable: u64,
}

/// `few` and `many` runs of `extra` more cycles: nothing lost, and nothing kept that grows by a
/// byte a cycle. libvirt's one-time allocations may stay reachable (or possibly lost), but a
/// per-call leak kept reachable, say in a cache, would grow by at least a byte per cycle.
#[track_caller]
pub fn assert_no_leak(few: &LeakSummary, many: &LeakSummary, extra: u64) {
    for summary in [few, many] {
        assert_eq!(summary.definitely_lost, 0, "{summary:#?}");
        assert_eq!(summary.indirectly_lost, 0, "{summary:#?}");
    }
    for (what, a, b) in [
        ("still reachable", few.still_reachable, many.still_reachable),
        ("possibly lost", few.possibly_lost, many.possibly_lost),
    ] {
        assert!(
            b < a + extra,
            "{what} grew from {a} to {b} bytes over {extra} more cycles"
        );
    }
}

/// `example args` under valgrind, which must succeed: its standard output and leak summary.
pub fn run_under_valgrind(example: &Path, args: &[&str]) -> (String, LeakSummary) {
    let output = Command::new("valgrind")
        .args([
            "--leak-check=full",
            "--errors-for-leak-kinds=definite,indirect",
            "--error-exitcode=3",
        ])
        .arg(example)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run valgrind ({e}): scripts/install-deps.sh installs it (apt `valgrind`)"
            )
        });
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "valgrind {args:?}: {} (3: memory errors or leaks)\n{stdout}\n{stderr}",
        output.status
    );
    let summary = parse_leak_summary(&stderr)
        .unwrap_or_else(|| panic!("no leak summary in valgrind's output:\n{stderr}"));
    (stdout, summary)
}

/// Reads valgrind's `LEAK SUMMARY` (`==1== definitely lost: 1,600 bytes in 100 blocks`).
fn parse_leak_summary(stderr: &str) -> Option<LeakSummary> {
    if stderr.contains("All heap blocks were freed -- no leaks are possible") {
        return Some(LeakSummary::default());
    }
    let bytes = |kind: &str| {
        let line = stderr.lines().find(|l| l.contains(&format!("{kind}:")))?;
        let after = line.split_once(&format!("{kind}:"))?.1.trim_start();
        after.split_once(" bytes")?.0.replace(',', "").parse().ok()
    };
    Some(LeakSummary {
        definitely_lost: bytes("definitely lost")?,
        indirectly_lost: bytes("indirectly lost")?,
        possibly_lost: bytes("possibly lost")?,
        still_reachable: bytes("still reachable")?,
    })
}

/// The example, built by cargo for this test's own profile and target directory, next to the test
/// binary: `target/<profile>/deps/api-<hash>` → `target/<profile>/examples/<name>`.
/// Built here because `cargo test --all-targets` builds examples only as test harnesses; when it
/// is fresh this is a no-op of a fraction of a second.
pub fn example_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test binary sits in target/<profile>/deps");
    let example = profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));

    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    // Variables cargo sets for the running test, not for a build: some build scripts (ring's)
    // watch them, so leaving them in would rebuild those crates here and again in the next
    // plain `cargo test`.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if [
            "CARGO_PKG_",
            "CARGO_MANIFEST_",
            "CARGO_BIN_",
            "CARGO_CRATE_",
            "CARGO_PRIMARY_",
        ]
        .iter()
        .any(|prefix| key.starts_with(prefix))
            || ["CARGO_TARGET_TMPDIR", "CARGO_RUSTC_CURRENT_DIR", "OUT_DIR"].contains(&&*key)
        {
            build.env_remove(&*key);
        }
    }
    build
        .args(["build", "--quiet", "--example", name, "--manifest-path"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"));
    if let Some(target_dir) = profile_dir.parent() {
        build.arg("--target-dir").arg(target_dir);
    }
    match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => {}
        Some("release") => {
            build.arg("--release");
        }
        Some(profile) => {
            build.args(["--profile", profile]);
        }
    }
    match build.status() {
        Ok(status) if status.success() => {}
        // Still usable if an earlier build left it (say, cargo is not on PATH).
        outcome if example.is_file() => eprintln!("cargo build --example {name}: {outcome:?}"),
        outcome => panic!("cannot build the example {name}: {outcome:?}"),
    }
    assert!(example.is_file(), "{} is missing", example.display());
    example
}
