#!/usr/bin/env bash
# The project's whole test command: installs what is missing, starts the real servers
# (libvirtd, influxd; see test-env.sh), then fmt, clippy and the tests. The servers this
# run started are stopped on the way out; the exit code is that of the first failing step.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here/.."
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"

bash "$here/install-deps.sh"
# The Python with DataFusion that install-deps.sh built, for the InfluxDB 3 stand-in's queries.
export VMT_TEST_PYTHON=${VMT_TEST_PYTHON:-${VMT_TEST_STATE:-/var/tmp/vmtelemetry-test}/venv/bin/python}
load_cargo_env || die "cargo not found: install the Rust toolchain with rustup first"
cargo fmt --version >/dev/null 2>&1 || die "cargo fmt is missing: rustup component add rustfmt"
cargo clippy --version >/dev/null 2>&1 || die "cargo clippy is missing: rustup component add clippy"

# Set before `up`, so a half-finished `up` is cleaned up too; `down` stops only what `up`
# started. Signals become exits so that the EXIT trap runs.
on_exit() {
    local rc=$?
    bash "$here/test-env.sh" down || log "warning: test-env.sh down failed"
    exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
bash "$here/test-env.sh" up
export VMT_TEST_INFLUX_URL="http://127.0.0.1:${VMT_TEST_INFLUX_PORT:-18086}"

# The tests' tiny Linux guest, built from Debian packages (cached; fast when up to date).
bash tests/guest/build-guest.sh "${VMT_TEST_STATE:-/var/tmp/vmtelemetry-test}/guest"
cargo fmt --all -- --check
cargo clippy --all-targets -- -D warnings
# src/ keeps its shape: no import circle, functions and files a newcomer can read.
python3 scripts/check-structure.py
# The tests that measure real guests' rates and timings (a vCPU's share of a pinned core, an
# agent's timeout, detection within a few cycles) run alone afterwards: beside the other guests
# and the 10,000-VM tests, the machine's two cores are not theirs to measure.
cargo test --all-targets -- --skip guest_truth:: --skip guest_agent:: --skip insights_truth::
cargo test --test api -- guest_truth:: guest_agent:: insights_truth:: --test-threads=1
# The deployment kit, checked against the binary the tests just built.
bash deploy/check.sh
