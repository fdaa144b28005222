#!/usr/bin/env bash
# Regenerates the dashboard's screenshots in docs/: the fleet view with what needs attention
# beside the table (docs/dashboard-fleet.png), one VM's view beside it, a CPU-saturated one with
# its condition (docs/dashboard-vm.png) and the same in the dark theme
# (docs/dashboard-vm-dark.png), a host's panel (docs/dashboard-host.png) and the right-sizing
# table (docs/dashboard-rightsizing.png). The debug binary collects two libvirt test-driver nodes
# (rack-a, rack-b: SCREEN_VMS domains between them) and a third host that cannot be reached, writing to a
# throwaway database of the InfluxDB at SCREEN_INFLUX_URL (the test environment's by default;
# dropped afterwards) for SCREEN_WAIT seconds (long enough for right-sizing's first
# recommendations: two of VPA's minute samples), then Debian's headless Chromium takes the shots.
# Usage: scripts/screenshots.sh   (needs libvirtd and that InfluxDB running, as
# scripts/test-env.sh up leaves them; stops every process it starts itself)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

VMS=${SCREEN_VMS:-1000}
WAIT=${SCREEN_WAIT:-150}
influx=${SCREEN_INFLUX_URL:-http://127.0.0.1:18086}
port=${SCREEN_PORT:-18390}
db=vmtelemetry_screenshots
work=$(mktemp -d /var/tmp/vmtelemetry-screenshots.XXXXXX)
service_pid=""

influxql() { curl -fsS -o /dev/null -XPOST "$influx/query" --data-urlencode "q=$1"; }

cleanup() {
    if [[ -n $service_pid ]]; then
        kill -TERM "$service_pid" 2>/dev/null || true
        wait "$service_pid" 2>/dev/null || true
    fi
    influxql "DROP DATABASE $db" || true
    rm -rf "$work"
}
trap cleanup EXIT

command -v chromium >/dev/null || die "chromium is missing: scripts/install-deps.sh installs it"
load_cargo_env || die "cargo not found"
cargo build --quiet
influxql "CREATE DATABASE $db" || die "no InfluxDB at $influx"

# node FILE FIRST LAST: test-driver domains FIRST to LAST, named like a small company's VMs.
node() {
    python3 - "$2" "$3" >"$1" <<'EOF'
import sys
roles = ["web", "api", "db", "cache", "queue", "build", "search", "mail"]
print("<node>")
for i in range(int(sys.argv[1]), int(sys.argv[2]) + 1):
    state = 3 if i % 17 == 0 else 5 if i % 11 == 0 else 1
    print(f"<domain type='test'><name>{roles[i % len(roles)]}-{i:04d}</name>"
          f"<uuid>5c7e0000-0000-4000-8000-{i:012x}</uuid>"
          f"<memory unit='KiB'>{1048576 * (1 + i % 8)}</memory>"
          f"<currentMemory unit='KiB'>{524288 + (i * 7919) % 3145728}</currentMemory>"
          f"<vcpu>{1 + i % 8}</vcpu><os><type>hvm</type></os>"
          f"<test:runstate xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>"
          f"{state}</test:runstate></domain>")
print("</node>")
EOF
}
node "$work/rack-a.xml" 1 $((VMS * 6 / 10))
node "$work/rack-b.xml" $((VMS * 6 / 10 + 1)) "$VMS"
cat >"$work/config.toml" <<EOF
hosts = [
    { uri = "test+unix://$work/rack-a.xml", name = "rack-a" },
    { uri = "test+unix://$work/rack-b.xml", name = "rack-b" },
    { uri = "qemu+unix:///system?socket=/nonexistent/libvirt-sock", name = "rack-c" },
]
EOF

log "collecting $VMS domains for $WAIT s"
env VMTELEMETRY_INFLUX_URL="$influx" VMTELEMETRY_INFLUX_DB="$db" \
    VMTELEMETRY_INFLUX_API=v1 VMTELEMETRY_POLL_INTERVAL=2 VMTELEMETRY_HOST_METRICS=true VMTELEMETRY_SPOOL_DIR="" \
    VMTELEMETRY_LISTEN="127.0.0.1:$port" RUST_LOG=error \
    target/debug/vmtelemetry --config "$work/config.toml" >>"$work/service.log" 2>&1 &
service_pid=$!
sleep "$WAIT"
kill -0 "$service_pid" 2>/dev/null || die "the service stopped: $(cat "$work/service.log")"

# shot FILE URL [FLAG…]: the page after its first answers have been drawn.
shot() {
    local file=$1 url=$2
    shift 2
    chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --no-first-run \
        --user-data-dir="$work/profile" --window-size=1400,900 --virtual-time-budget=4000 \
        "$@" --screenshot="$PWD/$file" "$url" 2>>"$work/chromium.log" >/dev/null
    log "wrote $file"
}
mkdir -p docs
page="http://127.0.0.1:$port/"
# Domain 8: one vCPU, running, so saturated (the test driver counts CPU time at the wall clock's
# pace).
vm="#vm=5c7e0000-0000-4000-8000-000000000008&host=rack-a&range=15m&sort=memory_used_kb&order=desc"
shot docs/dashboard-fleet.png "$page"
shot docs/dashboard-vm.png "$page$vm"
shot docs/dashboard-vm-dark.png "$page$vm" --force-dark-mode --blink-settings=preferredColorScheme=0
shot docs/dashboard-host.png "$page#hostview=rack-a&filter-host=rack-a&range=15m"
shot docs/dashboard-rightsizing.png "$page#view=rightsizing&filter-host=rack-b"
