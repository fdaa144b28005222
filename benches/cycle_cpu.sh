#!/usr/bin/env bash
# benches/cycle_cpu.sh OLD_BIN NEW_BIN [RUNS [SECONDS]]: the service's own CPU per full cycle
# (seed + block,interface every 0.5 s, spool on, as benches/libvirt.sh runs it), two builds taking
# turns, RUNS runs of SECONDS each (default 3 x 40 s), so that the machine's drift falls on both;
# prints every run and each build's median. CPU from /proc/PID/stat (utime + stime: the threads a
# cycle starts and ends are counted too). Needs scripts/test-env.sh up (its influxd) and guests
# (benches/seed_guests.sh up).
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

# run BIN: prints the ms of CPU per cycle of one run.
run() {
    rm -rf "${spool:?}"/*
    env VMTELEMETRY_LIBVIRT_URI=qemu:///system VMTELEMETRY_POLL_INTERVAL=0.5 \
        VMTELEMETRY_STATS_INTERVAL=0.5 VMTELEMETRY_STATS_GROUPS=block,interface \
        VMTELEMETRY_HOST_METRICS=false VMTELEMETRY_INFLUX_API=v1 VMTELEMETRY_INFLUX_URL="$influx" \
        VMTELEMETRY_INFLUX_DB=cyclecpu VMTELEMETRY_SPOOL_DIR="$spool" \
        VMTELEMETRY_LISTEN="127.0.0.1:$port" RUST_LOG=warn "$1" >/dev/null 2>&1 &
    local pid=$! c0 t0 c1 t1
    until status >/dev/null 2>&1; do sleep 0.2; done
    sleep 3 # past its first cycles
    c0=$(cycles) t0=$(ticks "$pid")
    sleep "$seconds"
    t1=$(ticks "$pid") c1=$(cycles)
    kill -TERM "$pid"
    wait "$pid" || true
    awk -v t=$((t1 - t0)) -v c=$((c1 - c0)) 'BEGIN { printf "%.2f\n", t * 10 / c }'
}

declare -a old_ms new_ms
for ((i = 1; i <= runs; i++)); do
    old_ms+=("$(run "$old")")
    new_ms+=("$(run "$new")")
    echo "run $i: $old ${old_ms[-1]} ms, $new ${new_ms[-1]} ms CPU per cycle"
done
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
echo "medians: $old $(median "${old_ms[@]}") ms, $new $(median "${new_ms[@]}") ms CPU per cycle"
