#!/usr/bin/env bash
# Soak run (a benchmark, not a test): the release build collects from 1,000 test-driver VMs
# through libvirtd every second for SOAK_MINUTES (30), while its own InfluxDB 1.x is killed and
# restarted twice (at 1/3 and 2/3 of the run, down for 20 s each). Prints lines collected,
# written, dropped, the points InfluxDB holds, and the service's resident memory at start and end.
# Usage: benches/soak.sh   (as root; starts libvirtd with scripts/test-env.sh and stops what it started)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

MINUTES=${SOAK_MINUTES:-30}
VMS=${SOAK_VMS:-1000}
work=$(mktemp -d /var/tmp/vmtelemetry-soak.XXXXXX)
influx_port=${SOAK_INFLUX_PORT:-18186}
rpc_port=${SOAK_INFLUX_RPC_PORT:-18188}
api_port=${SOAK_API_PORT:-18180}
influx_pid=""
service_pid=""

cleanup() {
    if [[ -n $service_pid ]]; then kill -9 "$service_pid" 2>/dev/null || true; fi
    if [[ -n $influx_pid ]]; then kill -9 "$influx_pid" 2>/dev/null || true; fi
    # Servers that were up before this run (a test session's) are left alone.
    if [[ -z $servers_were_up ]]; then bash scripts/test-env.sh down >/dev/null 2>&1 || true; fi
    rm -rf "$work"
}
servers_were_up=yes
trap cleanup EXIT

servers_were_up=""
bash scripts/install-deps.sh
load_cargo_env || die "cargo not found"
if bash scripts/test-env.sh status >/dev/null 2>&1; then servers_were_up=yes; fi
bash scripts/test-env.sh up >/dev/null
cargo build --release --quiet

{
    echo "<node xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>"
    for i in $(seq 1 "$VMS"); do
        printf "<domain type='test'><name>soak-%d</name><uuid>5e5e5e5e-0000-4000-8000-%012x</uuid>" "$i" "$i"
        printf "<memory unit='KiB'>1048576</memory><currentMemory unit='KiB'>524288</currentMemory>"
        printf "<vcpu>2</vcpu><os><type>hvm</type></os></domain>\n"
    done
    echo "</node>"
} >"$work/node.xml"

write_influx_conf "$work/influxd.conf" "$work/influxdb" "$influx_port" "$rpc_port"
start_influx() {
    influxd run -config "$work/influxd.conf" >"$work/influxd.log" 2>&1 &
    influx_pid=$!
    until curl -sf -o /dev/null "http://127.0.0.1:$influx_port/ping"; do sleep 0.2; done
}
start_influx
curl -sf -o /dev/null -XPOST "http://127.0.0.1:$influx_port/query" --data-urlencode 'q=CREATE DATABASE soak'

VMTELEMETRY_LIBVIRT_URI="test+unix://$work/node.xml" \
    VMTELEMETRY_POLL_INTERVAL=1 \
    VMTELEMETRY_INFLUX_API=v1 \
    VMTELEMETRY_INFLUX_URL="http://127.0.0.1:$influx_port" \
    VMTELEMETRY_INFLUX_DB=soak \
    VMTELEMETRY_RETRY_MAX_DELAY=5 \
    VMTELEMETRY_SPOOL_DIR="$work/spool" \
    VMTELEMETRY_LISTEN="127.0.0.1:$api_port" \
    VMTELEMETRY_LOG_FORMAT=json RUST_LOG=warn \
    target/release/vmtelemetry >"$work/service.log" 2>&1 &
service_pid=$!

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$service_pid/status"; }
status() { curl -sf "http://127.0.0.1:$api_port/api/telemetry/status"; }
field() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

sleep 60
rss_start=$(rss_kib)
log "warm: rss ${rss_start} KiB; running ${MINUTES} min with 2 InfluxDB outages"
total=$((MINUTES * 60))
for outage in 1 2; do
    sleep $((total / 3 - 60 * (outage == 1) - 20))
    log "outage $outage: killing influxd"
    kill -9 "$influx_pid"
    wait "$influx_pid" 2>/dev/null || true
    sleep 20
    start_influx
    log "outage $outage: influxd back"
done
sleep $((total / 3))
rss_end=$(rss_kib)
final=$(status)
# Stop collecting and let the backlog drain (the SIGTERM path flushes within shutdown_timeout).
kill -TERM "$service_pid"
wait "$service_pid" || true
service_pid=""
points=0
for query in "SELECT count(cputime_ns) FROM vm_metrics" "SELECT count(memory_rate_kb_per_sec) FROM vm_features"; do
    n=$(curl -sf -G "http://127.0.0.1:$influx_port/query" --data-urlencode db=soak --data-urlencode "q=$query" |
        python3 -c 'import json,sys; r=json.load(sys.stdin)["results"][0]; s=r.get("series"); print(s[0]["values"][0][1] if s else 0)')
    points=$((points + n))
done

collected=$(echo "$final" | field 'd["features"]["lines_produced"]')
written=$(echo "$final" | field 'd["total_metrics_written"]')
dropped=$(echo "$final" | field 'd["dropped_lines"]')
retries=$(echo "$final" | field 'd["write_retries"]')
printf '\n| soak: %d VMs, 1 s polling, %d min, 2 InfluxDB outages of 20 s | value |\n|---|---|\n' "$VMS" "$MINUTES"
printf '| lines collected (at the end of the run) | %s |\n' "$collected"
printf '| lines written (by then) | %s |\n' "$written"
printf '| lines dropped | %s |\n' "$dropped"
printf '| write retries | %s |\n' "$retries"
printf '| points in InfluxDB after the final flush | %s |\n' "$points"
printf '| resident memory after 1 min | %s KiB |\n' "$rss_start"
printf '| resident memory at the end | %s KiB |\n' "$rss_end"
