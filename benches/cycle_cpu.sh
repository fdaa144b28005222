#!/usr/bin/env bash
# benches/cycle_cpu.sh OLD_BIN NEW_BIN [RUNS [SECONDS]]: the CPU per full cycle (seed +
# block,interface every 0.5 s, spool on, as benches/libvirt.sh runs it) of the service, and of
# the service and libvirtd together, two builds taking turns, RUNS runs of SECONDS each (default
# 3 x 40 s), so that the machine's drift falls on both; prints every run and each build's
# medians. CPU from /proc/PID/stat (utime + stime: threads that ended are counted too). Needs
# scripts/test-env.sh up (its influxd and libvirtd) and guests (benches/seed_guests.sh up).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
old=$1 new=$2 runs=${3:-3} seconds=${4:-40}
influx=${VMT_TEST_INFLUX_URL:-http://127.0.0.1:18086}
port=18391
spool=$(mktemp -d)
trap 'rm -rf "$spool"' EXIT
curl -sf -XPOST "$influx/query" --data-urlencode 'q=CREATE DATABASE cyclecpu' >/dev/null

status() { curl -sf "http://127.0.0.1:$port/api/telemetry/status"; }
cycles() { status | python3 -c 'import json, sys; print(json.load(sys.stdin)["hosts"][0]["total_collections"])'; }
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
libvirtd=$(cat /run/libvirtd.pid)

# run BIN: prints the ms of CPU per cycle of one run: the service's, then with libvirtd's.
run() {
    rm -rf "${spool:?}"/*
    env VMTELEMETRY_LIBVIRT_URI=qemu:///system VMTELEMETRY_POLL_INTERVAL=0.5 \
        VMTELEMETRY_STATS_INTERVAL=0.5 VMTELEMETRY_STATS_GROUPS=block,interface \
        VMTELEMETRY_HOST_METRICS=false VMTELEMETRY_INFLUX_API=v1 VMTELEMETRY_INFLUX_URL="$influx" \
        VMTELEMETRY_INFLUX_DB=cyclecpu VMTELEMETRY_SPOOL_DIR="$spool" \
        VMTELEMETRY_LISTEN="127.0.0.1:$port" RUST_LOG=warn "$1" >/dev/null 2>&1 &
    local pid=$! c0 t0 l0 c1 t1 l1
    until status >/dev/null 2>&1; do sleep 0.2; done
    sleep 3 # past its first cycles
    c0=$(cycles) t0=$(ticks "$pid") l0=$(ticks "$libvirtd")
    sleep "$seconds"
    t1=$(ticks "$pid") l1=$(ticks "$libvirtd") c1=$(cycles)
    kill -TERM "$pid"
    wait "$pid" || true
    awk -v t=$((t1 - t0)) -v l=$((l1 - l0)) -v c=$((c1 - c0)) \
        'BEGIN { printf "%.2f %.2f\n", t * 10 / c, (t + l) * 10 / c }'
}

declare -a old_ms new_ms old_total new_total
for ((i = 1; i <= runs; i++)); do
    read -r own total < <(run "$old")
    old_ms+=("$own") old_total+=("$total")
    read -r own total < <(run "$new")
    new_ms+=("$own") new_total+=("$total")
    echo "run $i: $old ${old_ms[-1]} ms (${old_total[-1]} with libvirtd), $new ${new_ms[-1]} ms (${new_total[-1]}) CPU per cycle"
done
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
echo "medians: $old $(median "${old_ms[@]}") ms (with libvirtd $(median "${old_total[@]}")), $new $(median "${new_ms[@]}") ms (with libvirtd $(median "${new_total[@]}")) CPU per cycle"
