# shellcheck shell=bash
# The memory step of benches/libvirt.sh, sourced by the memory benchmarks: the service on the
# test-driver node NODE (10,000 VMs), 1 s poll, insights off, the spool on, writing to the
# InfluxDB 1.x that scripts/test-env.sh up leaves on VMT_TEST_INFLUX_PORT (18086).

median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# collections PORT: the service's cycles so far (0 while it does not answer).
collections() {
    curl -sf "http://127.0.0.1:$1/api/telemetry/status" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["total_collections"])' 2>/dev/null ||
        echo 0
}

# memory_step_start BINARY NODE DB PORT WORK [NAME=VALUE...]: starts the service (its pid in
# `pid`, its log in WORK/service.log, its spool WORK/spool, emptied first) and waits for 65 cycles.
memory_step_start() {
    local bin=$1 node=$2 db=$3 port=$4 work=$5
    local influx=http://127.0.0.1:${VMT_TEST_INFLUX_PORT:-18086}
    shift 5
    curl -sf -o /dev/null -XPOST "$influx/query" --data-urlencode "q=CREATE DATABASE $db"
    rm -rf "$work/spool"
    env VMTELEMETRY_LIBVIRT_URI="test+unix://$node" VMTELEMETRY_POLL_INTERVAL=1 \
        VMTELEMETRY_LIBVIRT_TIMEOUT=60 VMTELEMETRY_INFLUX_API=v1 VMTELEMETRY_INFLUX_URL="$influx" \
        VMTELEMETRY_INFLUX_DB="$db" VMTELEMETRY_SPOOL_DIR="$work/spool" \
        VMTELEMETRY_LISTEN="127.0.0.1:$port" VMTELEMETRY_INSIGHTS=false RUST_LOG=warn "$@" \
        "$bin" >>"$work/service.log" 2>&1 &
    pid=$!
    until [[ $(collections "$port") -ge 65 ]]; do
        kill -0 "$pid" 2>/dev/null || { cat "$work/service.log" >&2; exit 1; }
        sleep 0.5
    done
}

# resident: the median of 20 VmRSS readings (KiB) of `pid` over 5 s.
resident() {
    for _ in $(seq 20); do
        awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status"
        sleep 0.25
    done | median
}
