#!/usr/bin/env bash
# Runs vmtelemetry for a first look: an InfluxDB 1.x on loopback (started here unless one
# already answers on the port), the database `vmstats`, then the service in the foreground
# with config/demo.toml (libvirt's built-in test driver: no VM needed). When the service
# exits, or on Ctrl-C, the influxd started here is stopped; nothing else is.
# Usage: scripts/run.sh [vmtelemetry arguments...]
# Environment: VMT_INFLUX_PORT (8086), VMT_INFLUX_RPC_PORT (8088), VMT_DEMO_STATE
# (/var/tmp/vmtelemetry-demo).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here/.."
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"

PORT=${VMT_INFLUX_PORT:-8086}
RPC_PORT=${VMT_INFLUX_RPC_PORT:-8088}
STATE=${VMT_DEMO_STATE:-/var/tmp/vmtelemetry-demo}
CONF=$STATE/influxd.conf
RUN_PID=$STATE/influxd.pid
LOGFILE=$STATE/influxd.log

bash "$here/install-deps.sh"
load_cargo_env || die "cargo not found: install the Rust toolchain with rustup first"

influx_pid=""
on_exit() {
    local rc=$?
    if [[ -n $influx_pid ]]; then
        stop_pid influxd "$influx_pid" /usr/bin/influxd "$CONF"
    fi
    exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if pid=$(read_pidfile "$RUN_PID") && is_prog "$pid" /usr/bin/influxd "$CONF"; then
    # Left over from an earlier run.sh that was killed: ours, so adopt it and stop it later.
    influx_pid=$pid
    log "reusing influxd pid $pid from an earlier run"
elif influx_ping "$PORT"; then
    log "using the InfluxDB that already answers on 127.0.0.1:$PORT (it is left running)"
else
    mkdir -p "$STATE"
    write_influx_conf "$CONF" "$STATE/influxdb" "$PORT" "$RPC_PORT"
    influx_pid=$(start_influxd "$CONF" "$RUN_PID" "$LOGFILE")
    log "started influxd pid $influx_pid on 127.0.0.1:$PORT (log: $LOGFILE)"
fi
if [[ -n $influx_pid ]]; then
    wait_influx "$PORT" "$influx_pid" "$LOGFILE"
fi

curl -sf -o /dev/null -XPOST "http://127.0.0.1:$PORT/query" --data-urlencode 'q=CREATE DATABASE vmstats' ||
    die "could not create database vmstats on http://127.0.0.1:$PORT"
# config/demo.toml names port 8086; another port reaches the service through its environment.
if [[ $PORT != 8086 ]]; then
    export VMTELEMETRY_INFLUX_URL=${VMTELEMETRY_INFLUX_URL:-http://127.0.0.1:$PORT}
fi

log "to see lines arrive: curl -G http://127.0.0.1:$PORT/query --data-urlencode db=vmstats --data-urlencode 'q=SELECT * FROM vm_metrics ORDER BY time DESC LIMIT 5'   and: curl http://127.0.0.1:8080/api/telemetry/status"
# Not exec: the EXIT trap must still stop influxd when the service ends.
cargo run --release -- --config config/demo.toml "$@"
