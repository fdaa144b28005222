#!/usr/bin/env bash
# benches/seed_pair.sh A B CYCLES [URI]: two release services side by side, seed_connections A and
# B, polls 0.25 s apart (so that the machine's drift falls on both alike), no stats groups; prints
# each one's median seed-cycle wall (its own timing) and CPU per cycle. Needs scripts/test-env.sh up
# (its influxd) and guests (benches/seed_guests.sh up), and cargo build --release.
set -u
cd "$(dirname "${BASH_SOURCE[0]}")/.."
a=$1 b=$2 cycles=$3 uri=${4:-qemu:///system}
pids=()
start() { # start N PORT
  env VMTELEMETRY_LIBVIRT_URI="$uri" VMTELEMETRY_POLL_INTERVAL=${POLL:-0.5} VMTELEMETRY_STATS_GROUPS= \
  VMTELEMETRY_HOST_METRICS=false VMTELEMETRY_SEED_CONNECTIONS=$1 VMTELEMETRY_INFLUX_API=v1 \
  VMTELEMETRY_INFLUX_URL=${VMT_TEST_INFLUX_URL:-http://127.0.0.1:18086} VMTELEMETRY_INFLUX_DB=seedwall VMTELEMETRY_SPOOL_DIR= \
  VMTELEMETRY_LISTEN=127.0.0.1:$2 RUST_LOG=warn ${BIN:-target/release/vmtelemetry} >/dev/null 2>&1 &
  pids+=($!)
}
start "$a" 18381; sleep ${OFFSET:-0.25}; start "$b" 18382
sleep 3
python3 - "$cycles" "$a" "$b" "${pids[0]}" "${pids[1]}" <<'PY'
import json, sys, time, urllib.request
cycles, a, b = int(sys.argv[1]), sys.argv[2], sys.argv[3]
seen = {18381: {}, 18382: {}}
while min(len(v) for v in seen.values()) < cycles + 2:
    for port, d in seen.items():
        s = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/api/telemetry/status"))
        d[s["total_collections"]] = s["hosts"][0]["last_collection_duration_sec"]
    time.sleep(0.1)
def ticks(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(f[11]) + int(f[12])
for port, n, pid in ((18381, a, sys.argv[4]), (18382, b, sys.argv[5])):
    v = sorted(list(seen[port].values())[2:cycles + 2])
    print(f"  ticks {ticks(pid)} over {max(seen[port])} cycles: {ticks(pid) * 10 / max(seen[port]):.2f} ms CPU/cycle")
    print(f"seed_connections={n}: median {v[len(v)//2]*1e3:.2f} ms, p25 {v[len(v)//4]*1e3:.2f}, p75 {v[3*len(v)//4]*1e3:.2f} over {len(v)} cycles")
PY
kill "${pids[@]}"; wait 2>/dev/null
