#!/usr/bin/env bash
# The service's resident memory with BENCH_VMS (10,000) VMs, without a dashboard and then with
# the dashboard open in Debian's headless Chromium on one VM's page (polling the table, tiles,
# insights, status and the VM's history, every 2 to 5 s), a benchmark, not a test. The debug
# binary (larger than the release one: the figures are an upper bound; the difference is what
# the dashboard costs), or the release one with BENCH_RELEASE=1, collecting one libvirt
# test-driver node every 5 s, insights on (the default), its writes going nowhere. Each phase:
# BENCH_SETTLE s to settle, then VmRSS read every 2 s for BENCH_SECONDS s. Prints a Markdown
# table: median and peak of each phase, and the change.
# Usage: [BENCH_RELEASE=1] benches/dashboard_memory.sh   (needs libvirtd running, as scripts/test-env.sh up leaves
# it; stops every process it starts itself)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

VMS=${BENCH_VMS:-10000}
SETTLE=${BENCH_SETTLE:-30}
SECONDS_READ=${BENCH_SECONDS:-60}
api_port=${BENCH_API_PORT:-18383}
devtools_port=${BENCH_DEVTOOLS_PORT:-18384}
# shellcheck source=benches/dashboard_service.sh
. benches/dashboard_service.sh
dashboard_service "$VMS" "$api_port" "$work"

# phase: "median peak" of VmRSS (KiB) after SETTLE s, read every 2 s for SECONDS_READ s.
phase() {
    sleep "$SETTLE"
    local readings=()
    for _ in $(seq $((SECONDS_READ / 2))); do
        readings+=("$(awk '/^VmRSS:/ { print $2 }' "/proc/$service_pid/status")")
        sleep 2
    done
    printf '%s\n' "${readings[@]}" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)], v[NR] }'
}

log "no dashboard: $SETTLE s to settle, then $SECONDS_READ s of readings"
read -r alone_median alone_peak < <(phase)
vm="be7c0000-0000-4000-8000-$(printf '%012x' 1)"
chromium --headless --no-sandbox --disable-gpu --no-first-run --disable-background-networking \
    --user-data-dir="$work/profile" --window-size=1400,1000 \
    --remote-debugging-port="$devtools_port" \
    "http://127.0.0.1:$api_port/#vm=$vm&range=15m" >>"$work/chromium.log" 2>&1 &
pids+=($!)
log "the dashboard open on a VM's page: $SETTLE s to settle, then $SECONDS_READ s of readings"
read -r open_median open_peak < <(phase)

mib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB (%.1f MB)", k / 1024, k * 1.024 / 1000 }'; }
echo
echo "| $VMS VMs, insights on, $([[ ${BENCH_RELEASE:-} == 1 ]] && echo release || echo debug) build | median | peak |"
echo "|---|---|---|"
echo "| no dashboard | $(mib "$alone_median") | $(mib "$alone_peak") |"
echo "| the dashboard open, refreshing | $(mib "$open_median") | $(mib "$open_peak") |"
echo "| difference | $(mib $((open_median - alone_median))) | $(mib $((open_peak - alone_peak))) |"
