#!/usr/bin/env bash
# Failover with coordination = "etcd" (a benchmark, not a test): three replicas of the binary
# share FAILOVER_HOSTS test-driver hosts of FAILOVER_VMS domains each through an etcd of this
# script's own; FAILOVER_KILLS times, one replica (in turn) is killed with SIGKILL, the time until
# the survivors' status shows every host collected again is taken (takeover), and so is, in
# InfluxDB, each of the dead replica's VMs' gap between its last row before the kill and its first
# after; the replica is then restarted and the hosts rebalance. Prints one line per kill and the
# median and maximum of both; first, what the replicas ask of etcd at steady state over
# FAILOVER_LOAD_SEC (range reads, transactions and bytes sent to clients, from etcd's /metrics).
# Usage: benches/failover.sh   (as root; uses the servers of scripts/test-env.sh, starting them
# if needed, and stops only what it started)
# Environment: VMT_BIN (default target/debug/vmtelemetry, built when missing), FAILOVER_KILLS (5),
# FAILOVER_HOSTS (12), FAILOVER_VMS (5), FAILOVER_TTL (3 s), FAILOVER_POLL (1 s),
# FAILOVER_LOAD_SEC (10 s).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

KILLS=${FAILOVER_KILLS:-5}
HOSTS=${FAILOVER_HOSTS:-12}
VMS=${FAILOVER_VMS:-5}
TTL=${FAILOVER_TTL:-3}
POLL=${FAILOVER_POLL:-1}
LOAD_SEC=${FAILOVER_LOAD_SEC:-10}
BIN=${VMT_BIN:-target/debug/vmtelemetry}
INFLUX=${VMT_TEST_INFLUX_URL:-http://127.0.0.1:18086}
work=$(mktemp -d /var/tmp/vmtelemetry-failover.XXXXXX)
etcd_pid=""
servers_were_up=yes

cleanup() {
    local f
    for f in "$work"/replica-*.pid; do
        if [[ -e $f ]]; then kill -9 "$(cat "$f")" 2>/dev/null || true; fi
    done
    if [[ -n $etcd_pid ]]; then kill -9 "$etcd_pid" 2>/dev/null || true; fi
    # Servers that were up before this run (a test session's) are left alone.
    if [[ -z $servers_were_up ]]; then bash scripts/test-env.sh down >/dev/null 2>&1 || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

if ! bash scripts/test-env.sh status >/dev/null 2>&1; then
    servers_were_up=""
    bash scripts/test-env.sh up >/dev/null
fi
if [[ ! -x $BIN ]]; then
    load_cargo_env || die "cargo not found"
    cargo build --quiet --bin vmtelemetry
fi

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
etcd_port=$(free_port)
etcd_pid=$(start_etcd "$work/etcd" "$etcd_port" "$(free_port)" "$work/etcd.log")
wait_etcd "$etcd_port" "$etcd_pid" "$work/etcd.log"

uris=()
for ((h = 0; h < HOSTS; h++)); do
    {
        echo "<node>"
        for ((d = 0; d < VMS; d++)); do
            printf "<domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'><name>fo-%d-%d</name><uuid>fa110000-0000-4000-8000-%012x</uuid>" \
                "$h" "$d" $((h * VMS + d))
            printf "<memory unit='KiB'>1048576</memory><currentMemory unit='KiB'>524288</currentMemory>"
            printf "<vcpu>1</vcpu><os><type>hvm</type></os><test:runstate>1</test:runstate></domain>\n"
        done
        echo "</node>"
    } >"$work/node-$h.xml"
    uris+=("test+unix://$work/node-$h.xml")
done
db=failover_$$
curl -sf -o /dev/null -XPOST "$INFLUX/query" --data-urlencode "q=CREATE DATABASE $db"

# The measurement loop: replicas as processes, statuses over HTTP, rows from InfluxDB.
export WORK=$work INFLUX DB=$db HOSTS VMS KILLS POLL TTL LOAD_SEC BIN ETCD="http://127.0.0.1:$etcd_port"
URIS=$(IFS=,; echo "${uris[*]}")
export URIS
python3 - <<'PY'
import json, os, signal, statistics, subprocess, time, urllib.parse, urllib.request

env = os.environ
work, influx, db = env["WORK"], env["INFLUX"], env["DB"]
hosts, vms, kills = int(env["HOSTS"]), int(env["VMS"]), int(env["KILLS"])
replicas = {}


def start(n):
    """Replica n (named replica-n, as a StatefulSet's pod); its port once it serves."""
    log = open(f"{work}/replica-{n}.log", "w")
    settings = {
        "VMTELEMETRY_HOSTS": env["URIS"], "VMTELEMETRY_INFLUX_URL": influx,
        "VMTELEMETRY_INFLUX_API": "v1", "VMTELEMETRY_INFLUX_DB": db,
        "VMTELEMETRY_SPOOL_DIR": f"{work}/spool-{n}", "VMTELEMETRY_LISTEN": "127.0.0.1:0",
        "VMTELEMETRY_LOG_FORMAT": "json", "VMTELEMETRY_POLL_INTERVAL": env["POLL"],
        "VMTELEMETRY_BATCH_MAX_SEC": "0.2", "VMTELEMETRY_STATS_GROUPS": "",
        "VMTELEMETRY_HOST_METRICS": "false", "VMTELEMETRY_INSIGHTS": "false",
        "VMTELEMETRY_SEED_CONNECTIONS": "1", "VMTELEMETRY_COORDINATION": "etcd",
        "VMTELEMETRY_ETCD_ENDPOINTS": env["ETCD"], "VMTELEMETRY_ETCD_MEMBER_TTL": env["TTL"],
        "VMTELEMETRY_MEMBER_NAME": f"replica-{n}",
    }
    child = subprocess.Popen([env["BIN"]], env={"PATH": env["PATH"], **settings},
                             stdout=log, stderr=subprocess.STDOUT)
    with open(f"{work}/replica-{n}.pid", "w") as f:
        f.write(str(child.pid))
    deadline = time.time() + 20
    while time.time() < deadline:
        for line in open(f"{work}/replica-{n}.log"):
            fields = json.loads(line).get("fields", {}) if line.startswith("{") else {}
            if fields.get("message") == "vmtelemetry started":
                replicas[n] = (child, fields["port"])
                return
        time.sleep(0.1)
    raise SystemExit(f"replica {n} did not start: see {work}/replica-{n}.log")


def collecting(n):
    try:
        url = f"http://127.0.0.1:{replicas[n][1]}/api/telemetry/status"
        with urllib.request.urlopen(url, timeout=2) as r:
            c = json.load(r)["coordination"]
        return set(c["collecting"]) if c["state"] == "member" else None
    except (OSError, ValueError, KeyError):
        return None


def shared(ns, busy):
    """Each replica's hosts, once every host is collected by exactly one of them."""
    shares = [collecting(n) for n in ns]
    if any(s is None for s in shares):
        return None
    ok = sum(map(len, shares)) == hosts == len(set().union(*shares)) and all(shares[:busy])
    return shares if ok else None


def wait(ns, busy, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        s = shared(ns, busy)
        if s:
            return s
        time.sleep(0.05)
    raise SystemExit(f"the hosts were not shared out over replicas {ns} within {timeout} s")


def rows():
    q = urllib.parse.urlencode({"db": db, "epoch": "ns",
                                "q": "SELECT cpu_count FROM vm_metrics GROUP BY uuid"})
    with urllib.request.urlopen(f"{influx}/query?{q}", timeout=30) as r:
        series = json.load(r)["results"][0].get("series", [])
    return {s["tags"]["uuid"]: sorted(v[0] for v in s["values"]) for s in series}


def etcd_counters():
    """etcd's counters of range reads, transactions and bytes sent to its clients."""
    with urllib.request.urlopen(f"{env['ETCD']}/metrics", timeout=5) as r:
        text = r.read().decode()
    counts = {"ranges": 0.0, "txns": 0.0, "sent": 0.0}
    for line in text.splitlines():
        name, _, value = line.rpartition(" ")
        if name == "etcd_mvcc_range_total":
            counts["ranges"] += float(value)
        elif name == "etcd_network_client_grpc_sent_bytes_total":
            counts["sent"] += float(value)
        elif name.startswith("grpc_server_handled_total") and 'grpc_method="Txn"' in name:
            counts["txns"] += float(value)
    return counts


def uuids_of(uri):
    h = int(uri.rsplit("node-", 1)[1].split(".")[0])
    return [f"fa110000-0000-4000-8000-{h * vms + d:012x}" for d in range(vms)]


for n in range(3):
    start(n)
takeovers, all_gaps = [], []
print(f"{hosts} hosts x {vms} VMs, 3 replicas, TTL {env['TTL']} s, poll {env['POLL']} s")
wait([0, 1, 2], 3)
load_sec = float(env["LOAD_SEC"])
before, t0 = etcd_counters(), time.time()
time.sleep(load_sec)
after, t1 = etcd_counters(), time.time()
rate = {k: (after[k] - before[k]) / (t1 - t0) for k in after}
print(f"etcd at steady state over {t1 - t0:.1f} s: {rate['ranges']:.1f} range reads/s, "
      f"{rate['txns']:.1f} transactions/s, {rate['sent'] / 1000:.1f} kB/s sent to clients")
print()
print("| kill | replica | its hosts | takeover (s) | gap per VM: median / max (s) |")
print("|---|---|---|---|---|")
for k in range(kills):
    victim = k % 3
    shares = wait([0, 1, 2], 3)
    time.sleep(3)
    shares = wait([0, 1, 2], 3)
    child, _ = replicas.pop(victim)
    killed = time.time()
    child.send_signal(signal.SIGKILL)
    child.wait()
    wait([n for n in range(3) if n != victim], 2)
    takeover = time.time() - killed
    time.sleep(2.5)
    data, gaps, killed_ns = rows(), [], int(killed * 1e9)
    for uuid in (u for uri in shares[victim] for u in uuids_of(uri)):
        before = [t for t in data.get(uuid, []) if t <= killed_ns]
        after = [t for t in data.get(uuid, []) if t > killed_ns]
        if not (before and after):
            raise SystemExit(f"{uuid}: no row before and after the kill")
        gaps.append((after[0] - before[-1]) / 1e9)
    takeovers.append(takeover)
    all_gaps += gaps
    print(f"| {k + 1} | {victim} | {len(shares[victim])} | {takeover:.2f} | "
          f"{statistics.median(gaps):.2f} / {max(gaps):.2f} |", flush=True)
    start(victim)
print()
print(f"takeover: median {statistics.median(takeovers):.2f} s, max {max(takeovers):.2f} s; "
      f"gap per VM ({len(all_gaps)} VMs): median {statistics.median(all_gaps):.2f} s, "
      f"max {max(all_gaps):.2f} s")
for child, _ in replicas.values():
    child.kill()
PY
