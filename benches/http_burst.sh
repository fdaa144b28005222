#!/usr/bin/env bash
# The HTTP face under bursts of connections (a benchmark, not a test): each build given is started
# on loopback with the test:///default host and no InfluxDB (a closed port), under a soft limit of
# 1,024 open files as systemd gives by default, then takes bursts of simultaneous connections, all
# opened at once, each sending GET /api/telemetry/status and, answered, held HOLD seconds as
# keep-alive clients do. Prints, per build and burst: the requests answered and failed, the
# connect and answer times (p50/p99), the service's resident memory before the burst, right after
# it and after IDLE seconds idle, and how many "Too many open files" errors it logged.
# Usage: benches/http_burst.sh [BIN...]   (default: target/release/vmtelemetry, built if missing)
# Environment: BURSTS ("2000 8000 15000"), HOLD (2 s), IDLE (10 s), NOFILE (the soft limit the
# service starts with, 1024), PORT (18380).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

BURSTS=${BURSTS:-"2000 8000 15000"}
IDLE=${IDLE:-10}
HOLD=${HOLD:-2}
NOFILE=${NOFILE:-1024}
PORT=${PORT:-18380}
work=$(mktemp -d /var/tmp/vmtelemetry-burst.XXXXXX)
service_pid=""
cleanup() {
    if [[ -n $service_pid ]]; then kill -9 "$service_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

if (($# == 0)); then
    load_cargo_env || die "cargo not found"
    cargo build --release --quiet
    set -- target/release/vmtelemetry
fi

# One burst: N connections opened at once, each sending one request, reading its answer and
# holding the connection HOLD seconds (as keep-alive clients do); prints one JSON line.
cat >"$work/burst.py" <<'PY'
import asyncio, json, resource, sys, time

port, count, hold = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
REQUEST = b"GET /api/telemetry/status HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"

async def one(start):
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 120)
        connected = time.monotonic()
        writer.write(REQUEST)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 120)
        length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        await reader.readexactly(length)
        answered = time.monotonic()
        await asyncio.sleep(hold)
        writer.close()
        return (connected - start, answered - start, head.startswith(b"HTTP/1.1 200"))
    except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, IndexError):
        return None

def pct(values, p):
    values = sorted(values)
    return round(values[min(len(values) - 1, int(len(values) * p))] * 1000) if values else -1

async def main():
    start = time.monotonic()
    results = await asyncio.gather(*(one(start) for _ in range(count)))
    done = [r for r in results if r and r[2]]
    print(json.dumps({
        "ok": len(done), "failed": count - len(done),
        "connect_p50": pct([r[0] for r in done], 0.5), "connect_p99": pct([r[0] for r in done], 0.99),
        "answer_p50": pct([r[1] for r in done], 0.5), "answer_p99": pct([r[1] for r in done], 0.99),
    }))

asyncio.run(main())
PY

rss_mb() { awk '/^VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$service_pid/status"; }

run_build() {
    local bin=$1 log=$work/service.log
    # A port nothing listens on: writes fail and lines wait in memory, as during an outage.
    (
        ulimit -Sn "$NOFILE"
        exec env VMTELEMETRY_HOSTS=test:///default VMTELEMETRY_INFLUX_API=v1 \
            VMTELEMETRY_INFLUX_URL=http://127.0.0.1:9 VMTELEMETRY_SPOOL_DIR= \
            VMTELEMETRY_LISTEN="127.0.0.1:$PORT" "$bin"
    ) >"$log" 2>&1 &
    service_pid=$!
    until curl -sf -o /dev/null "http://127.0.0.1:$PORT/health"; do
        kill -0 "$service_pid" 2>/dev/null || die "$bin did not start: $(tail -n 5 "$log")"
        sleep 0.2
    done
    sleep 3
    local burst before result after idle emfile
    for burst in $BURSTS; do
        before=$(rss_mb)
        emfile=$(grep -c "Too many open files" "$log" || true)
        result=$(python3 "$work/burst.py" "$PORT" "$burst" "$HOLD")
        after=$(rss_mb)
        sleep "$IDLE"
        idle=$(rss_mb)
        emfile=$(($(grep -c "Too many open files" "$log" || true) - emfile))
        python3 -c 'import json, sys
r = json.loads(sys.argv[2])
print("| %s | %s | %d | %d | %d / %d | %d / %d | %s | %s | %s | %s |" % (sys.argv[1], sys.argv[3],
      r["ok"], r["failed"], r["connect_p50"], r["connect_p99"], r["answer_p50"], r["answer_p99"],
      sys.argv[4], sys.argv[5], sys.argv[6], sys.argv[7]))' \
            "$bin" "$result" "$burst" "$before" "$after" "$idle" "$emfile"
    done
    kill -9 "$service_pid" 2>/dev/null || true
    wait "$service_pid" 2>/dev/null || true
    service_pid=""
}

echo "| build | burst | answered | failed | connect p50 / p99 ms | answer p50 / p99 ms | RSS before MB | RSS after MB | RSS after ${IDLE} s idle MB | EMFILE logged |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for bin in "$@"; do
    run_build "$bin"
done
