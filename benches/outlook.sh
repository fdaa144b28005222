#!/usr/bin/env bash
# The forecasts' and right-sizing's cost (issue #27), printed as a table:
#  1. their state per VM at 10,000 VMs (`cargo bench --bench outlook_state`: glibc's heap in use
#     before and after, and the snapshot's JSON, per VM);
#  2. replay speed: `vmtelemetry replay` over synthetic 5-second history of VMS VMs (vm_metrics,
#     vm_memory, vm_disk: three points a VM-sample, written with the line protocol into a
#     database of its own), VM-samples per second of the whole command, its peak resident
#     memory, and the write's rate.
# Usage: [BENCH_CHUNK=1h] benches/outlook.sh [DAYS] [VMS]   (defaults 1 and 100; BENCH_CHUNK is
# the replay's --chunk, by default none: spans sized by the answers; a month is DAYS=30: 155 M
# points to write, 24 minutes on this machine).
# Needs the InfluxDB 1.x at VMT_TEST_INFLUX_URL (scripts/test-env.sh up); drops its database at
# the end.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

DAYS=${1:-1}
VMS=${2:-100}
CHUNK=${BENCH_CHUNK:-}
STEP=5
influx=${VMT_TEST_INFLUX_URL:-http://127.0.0.1:18086}
db=bench_replay_$$
work=$(mktemp -d /var/tmp/vmtelemetry-bench-outlook.XXXXXX)
influx_query() { curl -sf -XPOST "$influx/query" --data-urlencode "q=$1" >/dev/null; }
cleanup() {
    influx_query "DROP DATABASE \"$db\"" || true
    rm -rf "$work"
}
trap cleanup EXIT

load_cargo_env || die "cargo not found"
log "building the release binary and the state bench"
cargo build --release --quiet --bin vmtelemetry
state=$(cargo bench --quiet --bench outlook_state -- --bench | grep '^outlook state')

influx_query "CREATE DATABASE \"$db\""
end=$(($(date +%s) / 3600 * 3600))
start=$((end - DAYS * 86400))
log "writing $DAYS day(s) of ${STEP}-second history of $VMS VMs into $db"
written=$(python3 - "$influx" "$db" "$start" "$end" "$STEP" "$VMS" <<'EOF'
import sys, time, urllib.request
influx, db, start, end, step, vms = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:])
url = f"{influx}/write?db={db}&precision=s"
def send(lines):
    req = urllib.request.Request(url, data="\n".join(lines).encode(), method="POST")
    with urllib.request.urlopen(req) as answer:
        assert answer.status == 204, answer.status
began, points, batch = time.monotonic(), 0, []
cputime = [0] * vms
for t in range(start, end, step):
    for i in range(vms):
        tags = f"VMID={i + 1},host=kvm-bench,name=replay-{i:03d},uuid=7e9a0000-0000-4000-8000-{i:012x}"
        cputime[i] += int(step * 1e9 * (0.2 + (i % 8) * 0.25 + ((t // step + i) % 7) * 0.02))
        used = (1 << 20) + (t - start) // 60 * (i % 3) + (t * 7 + i) % 4096
        batch.append(f'vm_metrics,{tags} state="running",cpu_count=4i,memory_max_kb=4194304i,'
                     f"memory_used_kb=4194304i,cputime_ns={cputime[i]}i {t}")
        batch.append(f"vm_memory,{tags} available_kb=4000000i,usable_kb={4000000 - used}i,"
                     f"unused_kb={3900000 - used}i {t}")
        batch.append(f"vm_disk,{tags},device=vda allocation_bytes={(10 << 30) + (t - start) * 1024}i,"
                     f"capacity_bytes={100 << 30}i {t}")
    if len(batch) >= 15000:
        send(batch)
        points += len(batch)
        batch = []
if batch:
    send(batch)
    points += len(batch)
print(points, f"{points / (time.monotonic() - began):.0f}")
EOF
)
read -r points write_rate <<<"$written"
samples=$((points / 3))
log "replaying $samples VM-samples"
t0=$(date +%s.%N)
# Its peak resident memory from the kernel's own count (getrusage of the child).
peak_kib=$(env VMTELEMETRY_INFLUX_URL="$influx" VMTELEMETRY_INFLUX_API=v1 VMTELEMETRY_INFLUX_DB="$db" \
    python3 -c 'import resource, subprocess, sys
subprocess.run(sys.argv[2:], stdout=open(sys.argv[1], "w"), check=True)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)' "$work/replay.json" \
    target/release/vmtelemetry replay --start "$(date -u -d "@$start" +%FT%TZ)" \
    --end "$(date -u -d "@$end" +%FT%TZ)" --json --limit "$VMS" ${CHUNK:+--chunk "$CHUNK"})
t1=$(date +%s.%N)
vms_out=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["vms"]))' "$work/replay.json")
((vms_out == VMS)) || die "the replay gave $vms_out VMs of $VMS"

echo
echo "| measure | figure |"
echo "|---|---|"
echo "| state per VM | ${state#outlook state } |"
awk -v s="$samples" -v a="$t0" -v b="$t1" -v d="$DAYS" -v n="$VMS" -v p="$points" -v w="$write_rate" \
    -v c="${CHUNK:+$CHUNK chunks}" -v m="$peak_kib" 'BEGIN {
    if (c == "") c = "spans sized by the answers"
    printf "| replay of %d day(s) of 5-second history, %d VMs (%d VM-samples, %d points), %s | %.1f s: %.0f VM-samples per second, peak resident memory %.0f MiB (writing it: %d points per second) |\n",
        d, n, s, p, c, b - a, s / (b - a), m / 1024, w }'
