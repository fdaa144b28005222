#!/usr/bin/env bash
# API benchmark at 10,000 VMs (a benchmark, not a test): the release binary collecting one libvirt
# test-driver node of BENCH_VMS domains (test+unix:///node.xml, as benches/libvirt.sh sets them up)
# at the default 5 s poll, its writes going nowhere (InfluxDB plays no part in these answers).
# Against it, with wrk (Debian's `wrk`, installed if missing; 2 threads, BENCH_CONNECTIONS
# connections, BENCH_SECONDS each):
#   - a page of 100 VMs (sorted by name; by memory, descending, deep in the list), plain and gzip;
#   - the whole list (the answer without parameters, as the dashboard fetches it today), plain
#     and gzip (gzipped once per cycle);
#   - the summary.
# For each: requests/s, latency (median, 99th percentile), and the service's CPU per request (its
# user + system time over the run / requests: unlike requests/s, hardly moved by what else the
# machine runs). Then the bytes a dashboard-like refresh moves every 5 s over BENCH_REFRESHES
# refreshes (status, summary and a page of 100 sorted by CPU %, gzip, each with the `ETag` of its
# last answer in `If-None-Match`), against the same refresh fetching the whole list, and the
# service's resident memory before the first API request, after the page runs and after the
# whole-list runs.
# Prints a Markdown table and one line per target: a page of 100 VMs >= 10,000 requests/s on 2
# cores, <= 50 KB per 5 s of steady refresh. wrk runs on the same cores as the service.
# Usage: benches/vms_api.sh   (as root; needs libvirtd running, as scripts/test-env.sh up leaves
# it; stops every process it starts itself). VMS_API_BIN=path/to/vmtelemetry measures that
# binary instead of building this tree's (another build, to compare).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

VMS=${BENCH_VMS:-10000}
SECONDS_EACH=${BENCH_SECONDS:-10}
CONNECTIONS=${BENCH_CONNECTIONS:-32}
REFRESHES=${BENCH_REFRESHES:-12}
api_port=${BENCH_API_PORT:-18380}
api="http://127.0.0.1:$api_port"
work=$(mktemp -d /var/tmp/vmtelemetry-bench-api.XXXXXX)
service_pid=""
HZ=$(getconf CLK_TCK)

cleanup() {
    if [[ -n $service_pid ]]; then
        kill -TERM "$service_pid" 2>/dev/null || true
        wait "$service_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

((EUID == 0)) || die "run as root"
if ! command -v wrk >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk >&2
fi
bin=${VMS_API_BIN:-}
if [[ -z $bin ]]; then
    load_cargo_env || die "cargo not found"
    log "building the release binary"
    cargo build --release --quiet
    bin=target/release/vmtelemetry
fi

python3 - "$VMS" >"$work/node.xml" <<'EOF'
import sys
print("<node>")
for i in range(1, int(sys.argv[1]) + 1):
    # Varied memory and vCPUs, a third of the domains paused, so sorts have work to do.
    print(f"<domain type='test'><name>bench-{i}</name>"
          f"<uuid>be7c0000-0000-4000-8000-{i:012x}</uuid>"
          f"<memory unit='KiB'>{1048576 + i * 64}</memory>"
          f"<currentMemory unit='KiB'>{524288 + (i * 7919) % 524288}</currentMemory>"
          f"<vcpu>{1 + i % 8}</vcpu><os><type>hvm</type></os>"
          f"<test:runstate xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>"
          f"{3 if i % 3 == 0 else 1}</test:runstate></domain>")
print("</node>")
EOF

log "starting the service on $VMS test-driver domains"
env VMTELEMETRY_LIBVIRT_URI="test+unix://$work/node.xml" \
    VMTELEMETRY_LIBVIRT_TIMEOUT=60 \
    VMTELEMETRY_HOST_METRICS=true \
    VMTELEMETRY_INFLUX_URL=http://127.0.0.1:9 \
    VMTELEMETRY_SPOOL_DIR="" \
    VMTELEMETRY_LISTEN="127.0.0.1:$api_port" \
    VMTELEMETRY_LOG_FORMAT=json RUST_LOG=error \
    "$bin" >>"$work/service.log" 2>&1 &
service_pid=$!

ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$service_pid/stat"; }
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$service_pid/status"; }
field() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
deadline=$((SECONDS + 300))
until [[ $(curl -sf "$api/api/telemetry/status" | field 'd["total_collections"]' 2>/dev/null || echo 0) -ge 2 ]]; do
    ((SECONDS < deadline)) || die "the service did not collect twice (log: $work/service.log)"
    sleep 0.5
done
rss_before=$(rss_kib)
listed=$(curl -sf "$api/api/telemetry/status" | field 'd["vms_monitored"]')
[[ $listed == "$VMS" ]] || die "the service lists $listed VMs, not $VMS"

rows=()
# run NAME PATH [wrk options...]: one wrk run; appends a table row, sets $rps.
run() {
    local name=$1 path=$2
    shift 2
    local before after out requests bytes
    bytes=$(curl -s -o /dev/null -w '%{size_download}' "$@" "$api$path")
    before=$(ticks)
    out=$(wrk -t2 -c"$CONNECTIONS" -d"${SECONDS_EACH}s" --latency "$@" "$api$path")
    after=$(ticks)
    rps=$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' <<<"$out")
    requests=$(awk '/requests in/ { print $1 }' <<<"$out")
    local p50 p99 non2xx cpu_us
    p50=$(awk '$1 == "50%" { print $2 }' <<<"$out")
    p99=$(awk '$1 == "99%" { print $2 }' <<<"$out")
    non2xx=$(awk '/Non-2xx/ { print $NF }' <<<"$out")
    [[ -z $non2xx ]] || die "$name: $non2xx answers were not 2xx"
    cpu_us=$(awk -v t=$((after - before)) -v n="$requests" -v hz="$HZ" 'BEGIN { printf "%.0f", t * 1e6 / hz / n }')
    rows+=("| $name | $bytes | $rps | $p50 / $p99 | $cpu_us |")
    log "$name: $rps requests/s"
}
gzip=(-H "Accept-Encoding: gzip")
run "page of 100, by name" "/api/telemetry/vms?sort=name&limit=100"
page_rps=$rps
run "page of 100, by name, gzip" "/api/telemetry/vms?sort=name&limit=100" "${gzip[@]}"
page_gzip_rps=$rps
run "page of 100, by memory desc, offset $((VMS / 2)), gzip" \
    "/api/telemetry/vms?sort=memory_used_kb&order=desc&limit=100&offset=$((VMS / 2))" "${gzip[@]}"
run "page of 100, running, name contains 99, gzip" \
    "/api/telemetry/vms?state=running&name=99&sort=cpu_count&limit=100" "${gzip[@]}"
rss_pages=$(rss_kib)
run "whole list" "/api/telemetry/vms"
run "whole list, gzip" "/api/telemetry/vms" "${gzip[@]}"
run "summary, gzip" "/api/telemetry/summary" "${gzip[@]}"
rss_after=$(rss_kib)

# refresh PATH...: fetches every PATH every 5 s, gzip, If-None-Match with each one's last ETag;
# prints the bytes moved per refresh (request, response headers and body as sent) and the 304s.
refresh() {
    local total=0 not_modified=0 i path status request header body
    declare -A etags=()
    for ((i = 0; i < REFRESHES; i++)); do
        for path in "$@"; do
            local headers=("${gzip[@]}")
            [[ -z ${etags[$path]:-} ]] || headers+=(-H "If-None-Match: ${etags[$path]}")
            read -r status request header body < <(curl -s -o /dev/null -D "$work/headers" \
                "${headers[@]}" -w '%{http_code} %{size_request} %{size_header} %{size_download}\n' \
                "$api$path")
            total=$((total + request + header + body))
            [[ $status != 304 ]] || not_modified=$((not_modified + 1))
            etags[$path]=$(awk 'tolower($1) == "etag:" { sub(/\r$/, ""); print $2 }' "$work/headers")
        done
        sleep 5
    done
    echo "$((total / REFRESHES)) $not_modified"
}

log "dashboard-like refresh every 5 s, $REFRESHES times"
read -r paged paged_304 < <(refresh /api/telemetry/status /api/telemetry/summary \
    "/api/telemetry/vms?sort=cpu_usage_percent&order=desc&limit=100")
read -r whole whole_304 < <(refresh /api/telemetry/status "/api/telemetry/vms")

echo
echo "vmtelemetry API, $VMS test-driver domains, 5 s poll, release build, $(nproc) cores shared with wrk (2 threads, $CONNECTIONS connections, ${SECONDS_EACH} s per run)"
echo
echo "| request | answer bytes (as sent) | requests/s | latency p50 / p99 | service CPU per request (µs) |"
echo "|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
echo
echo "| dashboard-like refresh every 5 s (gzip, If-None-Match) | bytes per 5 s | 304s in $REFRESHES refreshes |"
echo "|---|---|---|"
echo "| status + summary + page of 100 by CPU % | $paged | $paged_304 |"
echo "| status + whole list (today's dashboard) | $whole | $whole_304 |"
echo
echo "resident memory: $rss_before KiB after 2 cycles, before any API request; $rss_pages KiB after the page runs; $rss_after KiB after the whole-list runs"
echo
verdict() { if (($1)); then echo met; else echo MISSED; fi; }
echo "target: a page of 100 VMs >= 10,000 requests/s: $page_rps plain, $page_gzip_rps gzip: $(verdict "page_rps >= 10000")"
echo "target: <= 50 KB per 5 s of steady refresh: $paged bytes: $(verdict "paged <= 50000")"
