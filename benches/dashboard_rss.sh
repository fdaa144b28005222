#!/usr/bin/env bash
# Resident memory at the target's set-up with the dashboard open, a benchmark, not a test: the
# memory step of benches/libvirt.sh (10,000 libvirt test-driver VMs, 1 s poll, insights off,
# the spool on, writes to the InfluxDB 1.x that scripts/test-env.sh up leaves on 18086): the
# median of 20 VmRSS readings over 5 s after 65 cycles, then again after 40 s with Debian's
# headless Chromium on the dashboard, one VM chosen by the address a shared link gives (UUID and
# host: its charts query InfluxDB). BENCH_RUNS (3) runs of the release binary, or of
# DASHBOARD_RSS_BIN (another build, to compare). Prints a Markdown table against the < 40 MB
# target.
# Usage: benches/dashboard_rss.sh   (as root; stops every process it starts itself)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
# shellcheck source=benches/node_xml.sh
. benches/node_xml.sh
# shellcheck source=benches/memory_step.sh
. benches/memory_step.sh
RUNS=${BENCH_RUNS:-3}
port=${BENCH_API_PORT:-18394}
work=$(mktemp -d /tmp/vmt-dashboard-rss.XXXXXX)
pid="" browser=""
cleanup() {
    if [[ -n $browser ]]; then kill -KILL "$browser" 2>/dev/null || true; fi
    if [[ -n $pid ]]; then kill -KILL "$pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
bin=${DASHBOARD_RSS_BIN:-}
if [[ -z $bin ]]; then
    load_cargo_env || die "cargo not found"
    cargo build --release --quiet --bin vmtelemetry
    bin=target/release/vmtelemetry
fi
node_xml 10000 "$work/node.xml"
# The first VM's address as the dashboard writes it: without its host, the VM is not found.
vm_address() {
    curl -sf "http://127.0.0.1:$port/api/telemetry/vms?limit=1" | python3 -c '
import json, sys, urllib.parse
vm = json.load(sys.stdin)["vms"][0]
print(urllib.parse.urlencode({"vm": vm["uuid"], "host": vm["host"]}))'
}
all_with=()
echo "| run | without the dashboard (KiB) | with it open (KiB) | load |"
echo "|---|---|---|---|"
for i in $(seq "$RUNS"); do
    rm -rf "$work/chromium"
    memory_step_start "$bin" "$work/node.xml" bench_dashboard_rss "$port" "$work"
    without=$(resident)
    chromium --headless=new --no-sandbox --disable-gpu --user-data-dir="$work/chromium" \
        --remote-debugging-port=0 "http://127.0.0.1:$port/#$(vm_address)" >/dev/null 2>&1 &
    browser=$!
    sleep 40
    with=$(resident)
    kill -TERM "$browser"
    wait "$browser" 2>/dev/null || true
    browser=""
    kill -TERM "$pid"
    wait "$pid" || true
    pid=""
    echo "| $i | $without | $with | $(cut -d' ' -f1 /proc/loadavg) |"
    all_with+=("$with")
done
target=39062 # 40,000,000 bytes
met=$(printf '%s\n' "${all_with[@]}" | awk -v t=$target '$1 < t { n++ } END { print n + 0 }')
echo "target: < $target KiB (40 MB) with the dashboard open: met in $met of $RUNS runs (median $(printf '%s\n' "${all_with[@]}" | median) KiB)"
