#!/usr/bin/env bash
# The cost of a /metrics scrape at 10,000 VMs (a benchmark, not a test). The release build
# collects a test-driver node of 10,000 running domains (benches/node_xml.sh) through the running
# libvirtd every POLL seconds, product defaults otherwise, writing to the running InfluxDB
# (database scrapebench, dropped after). The test driver's bulk stats give no extended rows, so
# each VM shows its seed families (the exporter's state and info, vmtelemetry_vm_*). Once every
# VM is in a scrape, SCRAPES scrapes one after the other per format (Prometheus text 0.0.4, and
# OpenMetrics as Prometheus's own scraper asks for it, plain and gzipped), each timed whole by curl; the service's
# CPU per scrape is the median of its utime + stime over each scrape (/proc, 10 ms ticks), so
# that a scrape overlapping a cycle does not count. Prints a Markdown table.
# Usage: benches/scrape.sh [SCRAPES [POLL]]   (needs scripts/test-env.sh up: libvirtd, influxd)
#        SCRAPE_BIN=path/to/vmtelemetry benches/scrape.sh ...   measures that binary (another
#        commit's release build, side by side) instead of building this checkout's.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
# shellcheck source=benches/node_xml.sh
. "$here/node_xml.sh"

SCRAPES=${1:-40}
POLL=${2:-10}
VMS=10000
influx=${VMT_TEST_INFLUX_URL:-http://127.0.0.1:18086}
port=${BENCH_API_PORT:-18392}
work=$(mktemp -d /var/tmp/vmtelemetry-scrape.XXXXXX)
service_pid=""
cleanup() {
    if [[ -n $service_pid ]]; then kill -TERM "$service_pid" 2>/dev/null || true; fi
    curl -sf -XPOST "$influx/query" --data-urlencode 'q=DROP DATABASE scrapebench' >/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

bin=${SCRAPE_BIN:-}
if [[ -z $bin ]]; then
    load_cargo_env || die "cargo not found"
    cargo build --release --bin vmtelemetry >&2
    bin=target/release/vmtelemetry
fi
node_xml "$VMS" "$work/node.xml"
curl -sf -XPOST "$influx/query" --data-urlencode 'q=CREATE DATABASE scrapebench' >/dev/null
env VMTELEMETRY_LIBVIRT_URI="test+unix://$work/node.xml" VMTELEMETRY_POLL_INTERVAL="$POLL" \
    VMTELEMETRY_INFLUX_API=v1 VMTELEMETRY_INFLUX_URL="$influx" VMTELEMETRY_INFLUX_DB=scrapebench \
    VMTELEMETRY_SPOOL_DIR="$work/spool" VMTELEMETRY_LISTEN="127.0.0.1:$port" RUST_LOG=warn \
    "$bin" >"$work/service.log" 2>&1 &
service_pid=$!
url="http://127.0.0.1:$port/metrics"
ticks() { awk '{ print $14 + $15 }' "/proc/$service_pid/stat"; }
rss_kib() { awk -v k="$1" '$1 == k ":" { print $2 }' "/proc/$service_pid/status"; }
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
p95() { sort -g | awk '{ v[NR] = $1 } END { i = int(NR * 0.95 + 0.999); print v[i] }'; }

# Every VM in a scrape, with the rates of two samples.
deadline=$((SECONDS + 300))
until [[ $(curl -sf "$url" | grep -c '^vmtelemetry_vm_memory_rate_bytes_per_second{' || true) -ge $VMS ]]; do
    ((SECONDS < deadline)) || die "not every VM in /metrics within 300 s (log: $work/service.log)"
    sleep 1
done

rss_before=$(rss_kib VmRSS)
echo "| format | encoding | VMs | scrapes | wall median (ms) | wall p95 (ms) | service CPU median (ms) | bytes sent | samples | µs CPU per sample | peak RSS while scraped (KiB) |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
# Prometheus's scraper asks for gzip (and OpenMetrics); plain text uncompressed is the worst case.
for row in "text/plain|identity" "application/openmetrics-text; version=1.0.0|identity" "application/openmetrics-text; version=1.0.0|gzip"; do
    format=${row%|*} encoding=${row##*|}
    : >"$work/walls" && : >"$work/cpu"
    # The peak RSS from now on (5: reset VmHWM to the current RSS).
    echo 5 >"/proc/$service_pid/clear_refs"
    for ((i = 0; i < SCRAPES; i++)); do
        t0=$(ticks)
        curl -sf -H "Accept: $format" -H "Accept-Encoding: $encoding" -o "$work/body" \
            -w '%{time_total}\n' "$url" >>"$work/walls"
        echo $(($(ticks) - t0)) >>"$work/cpu"
    done
    bytes=$(stat -c %s "$work/body")
    if [[ $encoding == gzip ]]; then samples=$(zcat "$work/body" | grep -vc '^#'); else samples=$(grep -vc '^#' "$work/body"); fi
    wall_ms=$(awk '{ print $1 * 1000 }' "$work/walls" | median)
    p95_ms=$(awk '{ print $1 * 1000 }' "$work/walls" | p95)
    cpu_ms=$(awk -v hz="$(getconf CLK_TCK)" '{ print $1 * 1000 / hz }' "$work/cpu" | median)
    printf '| %s | %s | %s | %s | %.1f | %.1f | %s | %s | %s | %.2f | %s |\n' "${format%%;*}" "$encoding" "$VMS" \
        "$SCRAPES" "$wall_ms" "$p95_ms" "$cpu_ms" "$bytes" "$samples" \
        "$(awk -v c="$cpu_ms" -v n="$samples" 'BEGIN { print c * 1000 / n }')" "$(rss_kib VmHWM)"
done
echo
echo "- $(date -u +%Y-%m-%d), $(nproc) cores, poll $POLL s; RSS before the scrapes $rss_before KiB."
