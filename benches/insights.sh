#!/usr/bin/env bash
# The insights' detectors compared (a benchmark, not a test; tens of minutes in full):
#  1. Real guests with known truth (tests/guest/init), as tests/api/insights_truth.rs boots them:
#     a CPU burst and a half-busy neighbour pinned to host CPU 1 (the burst contends it), a
#     memory leak filling its guest, a disk storm on a disk of 10 IOPS, and a steady guest (every
#     steady workload) on CPU 0; onsets after AFTER seconds of idling. The release service scores
#     them every second (LEARNING samples of learning); benches/insights_record.py records every
#     signal's value and the service's verdicts once per cycle, and when each truth began.
#     examples/insights_eval.rs replays the recording through each detector compared (the
#     shipped robust z-score, k·MAD around a moving median, a Netdata-like k-means k=2) and
#     prints a table: detection delay per workload, anomalies per 1,000 steady VM-signal-samples
#     (the steady guest, and every guest before its onset), µs per VM-signal update, bytes per
#     VM-signal.
#  2. Netdata, Debian 12's package, installed here: whether its ML anomaly detection is built in
#     and enabled (buildinfo, /api/v1/info, netdata.conf's [ml], anomaly-bit queries). Run side by
#     side only if it is; else the reason is printed.
#  3. A 1,000-domain test-driver host (benches/node_xml.sh), seed only: the service's CPU per
#     cycle with insights on and off, per VM-signal, its resident memory, and the shipped
#     detector's anomalies per 1,000 VM-signal-samples on these steady VMs (from InfluxDB).
#  4. Forecasts: a 160 MiB guest leaking 1 MiB a second until it has no memory left, its
#     memory in use read once a second (the balloon's available less usable, against available
#     less the least usable beyond unused so far, as the service reads them);
#     examples/forecast_eval.rs forecasts the time left at 25 / 50 / 75 % of the way with the
#     shipped trend, predict_linear's least squares and Holt's double exponential smoothing on
#     the same readings, and prints a table.
#  5. benches/outlook.sh: the forecasts' and right-sizing's state per VM at 10,000 VMs, and the
#     replay's speed over a day of 5-second history of 100 VMs.
# Usage: benches/insights.sh [--short | --forecast]   (as root, after scripts/test-env.sh up:
# libvirtd and the InfluxDB at VMT_TEST_INFLUX_URL; stops every process and guest it starts
# itself). --forecast runs part 4 alone, on a debug build (its figures do not depend on speed).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
# shellcheck source=benches/node_xml.sh
. benches/node_xml.sh

profile=release
if [[ ${1:-} == --forecast ]]; then
    profile=debug
elif [[ ${1:-} == --short ]]; then
    AFTER=70 LEARNING=15 WATCH=45 CYCLES=30
else
    AFTER=300 LEARNING=60 WATCH=120 CYCLES=120
fi
VMS=1000
influx=${VMT_TEST_INFLUX_URL:-http://127.0.0.1:18086}
state=${VMT_BENCH_STATE:-/var/tmp/vmtelemetry-bench-insights}
work=$(mktemp -d /var/tmp/vmtelemetry-bench-insights.XXXXXX)
HZ=$(getconf CLK_TCK)
service_pid="" netdata_pid=""
guests=()

cleanup() {
    local pid
    for pid in $service_pid $netdata_pid; do
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    for g in "${guests[@]}"; do
        virsh -q -c qemu:///system destroy "$g" >/dev/null 2>&1 || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

((EUID == 0)) || die "run as root"
load_cargo_env || die "cargo not found"
log "building the $profile binary and the replays"
if [[ $profile == release ]]; then
    cargo build --release --quiet --bin vmtelemetry --example insights_eval --example forecast_eval
else
    cargo build --quiet --example forecast_eval
fi
bash tests/guest/build-guest.sh "$state/guest" >/dev/null

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
influx_query() { curl -sf -XPOST "$influx/query" --data-urlencode "db=${2:-}" --data-urlencode "q=$1"; }

# service URI DB [VAR=VALUE...]: starts the release service collecting URI into DB; sets api.
service() {
    local uri=$1 db=$2
    shift 2
    influx_query "CREATE DATABASE \"$db\"" >/dev/null
    api="http://127.0.0.1:$(free_port)"
    env VMTELEMETRY_LIBVIRT_URI="$uri" VMTELEMETRY_INFLUX_URL="$influx" \
        VMTELEMETRY_INFLUX_API=v1 VMTELEMETRY_INFLUX_DB="$db" \
        VMTELEMETRY_SPOOL_DIR="$work/spool-$db" VMTELEMETRY_LISTEN="${api#http://}" \
        VMTELEMETRY_POLL_INTERVAL=1 VMTELEMETRY_STATS_INTERVAL=1 VMTELEMETRY_BATCH_MAX_SEC=1 \
        VMTELEMETRY_INSIGHTS_LEARNING_SAMPLES="$LEARNING" VMTELEMETRY_LIBVIRT_TIMEOUT=60 \
        VMTELEMETRY_LOG_FORMAT=json RUST_LOG=error "$@" \
        target/release/vmtelemetry >>"$work/service.log" 2>&1 &
    service_pid=$!
    local deadline=$((SECONDS + 60))
    until curl -sf "$api/api/telemetry/status" >/dev/null; do
        ((SECONDS < deadline)) || die "the service did not answer (log: $work/service.log)"
        sleep 0.2
    done
}

stop_service() {
    kill -TERM "$service_pid"
    wait "$service_pid" || true
    service_pid=""
}

# boot NAME HOST_CPU CMDLINE: a test guest as tests/api/support/guest.rs makes it.
boot() {
    local name=$1 cpu=$2 cmdline=$3 dir="$work/$1"
    mkdir -p "$dir"
    truncate -s 8M "$dir/disk.img"
    cat >"$dir/domain.xml" <<EOF
<domain type='qemu'><name>$name</name><memory unit='KiB'>163840</memory>
<currentMemory unit='KiB'>163840</currentMemory><vcpu>1</vcpu>
<cputune><vcpupin vcpu='0' cpuset='$cpu'/></cputune>
<os><type arch='x86_64' machine='pc'>hvm</type><kernel>$state/guest/vmlinuz</kernel>
<initrd>$state/guest/initramfs.gz</initrd><cmdline>console=ttyS0 edd=off $cmdline</cmdline></os>
<on_poweroff>destroy</on_poweroff><on_reboot>destroy</on_reboot><on_crash>destroy</on_crash>
<devices><controller type='usb' model='none'/>
<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='$dir/disk.img'/>
<target dev='vda' bus='virtio'/></disk>
<interface type='ethernet'><target dev='vmtib$$x${#guests[@]}'/><model type='virtio'/></interface>
<serial type='file'><source path='$dir/console.log'/><target port='0'/></serial>
<memballoon model='virtio'><stats period='1'/></memballoon></devices></domain>
EOF
    virsh -q -c qemu:///system create "$dir/domain.xml" >/dev/null
    guests+=("$name")
}

real_guests() {
    local p=vmt-bench-ins
    boot $p-burst 1 "vmt.work=burst vmt.after=$AFTER vmt.duty=99"
    boot $p-neighbour 1 "vmt.work=burst vmt.after=0 vmt.duty=50"
    boot $p-leak 0 "vmt.work=leak vmt.after=$AFTER vmt.leak=8 vmt.leakcap=512 vmt.leakleave=8"
    boot $p-storm 0 "vmt.work=storm vmt.after=$AFTER"
    boot $p-steady 0 "vmt.work=cpu,mem,disk,net"
    local g deadline=$((SECONDS + 120))
    for g in "${guests[@]}"; do
        until grep -q '^VMT-GUEST-UP' "$work/$g/console.log" 2>/dev/null; do
            ((SECONDS < deadline)) || die "$g did not boot"
            sleep 0.5
        done
    done
    # The storm's disk, slow once booted (its boot would wait on it).
    virsh -q -c qemu:///system blkdeviotune $p-storm vda --total-iops-sec 10 --live
    log "guests up; the service learns for $LEARNING cycles, the onsets come $AFTER s after boot"
    service qemu:///system guests VMTELEMETRY_INSIGHTS=true \
        VMTELEMETRY_DOMAIN_INCLUDE="$(IFS=,; echo "${guests[*]}")" \
        VMTELEMETRY_STATS_GROUPS=cpu_total,balloon,vcpu,interface,block
    local c="$work/$p"
    cat >"$work/spec.json" <<EOF
{"guests": {$(printf '"%s": 0,' "${guests[@]}" | sed 's/,$//')},
 "truths": [
  {"vm": "$p-burst", "workload": "burst", "line": "VMT-GUEST-ONSET burst", "console": "$c-burst/console.log",
   "signals": ["cpu_percent"], "condition": "cpu_saturated"},
  {"vm": "$p-neighbour", "workload": "contention", "line": "VMT-GUEST-ONSET burst", "console": "$c-burst/console.log",
   "signals": ["cpu_steal_percent"], "condition": "cpu_contention"},
  {"vm": "$p-leak", "workload": "leak", "line": "VMT-GUEST-ONSET leak", "console": "$c-leak/console.log",
   "signals": ["memory_used_percent"], "condition": "memory_pressure"},
  {"vm": "$p-storm", "workload": "storm", "line": "VMT-GUEST-ONSET storm", "console": "$c-storm/console.log",
   "signals": ["disk_write_latency_ms", "disk_write_iops"], "condition": "disk_latency"}],
 "steady": ["$p-steady"], "watch": $WATCH, "deadline": $((AFTER + WATCH + 120))}
EOF
    python3 benches/insights_record.py "$api" "$work/spec.json" "$work"
    stop_service
    for g in "${guests[@]}"; do virsh -q -c qemu:///system destroy "$g" >/dev/null; done
    guests=()
    echo
    echo "Real guests (TCG, 1 vCPU each, 2 cores), onset ${AFTER} s after boot, $LEARNING samples of learning, 1 s cycles:"
    echo
    target/release/examples/insights_eval "$work/recording.jsonl" "$work/onsets.json" "$LEARNING"
}

# Part 4: the leak recorded until the guest runs out, then the methods compared on it.
forecast_leak() {
    local g=vmt-bench-ins-fleak
    local console="$work/$g/console.log" out="$work/leak.txt"
    boot $g 0 "vmt.work=leak vmt.after=10 vmt.leak=1 vmt.leakcap=400"
    local start=$EPOCHREALTIME t previous=0 onset="" exhausted="" last="" stats held=""
    local deadline=$((SECONDS + 300))
    until [[ -n $exhausted ]]; do
        ((SECONDS < deadline)) || die "$g never ran out (console: $console)"
        t=$(awk -v a="$EPOCHREALTIME" -v b="$start" 'BEGIN { printf "%.3f", a - b }')
        # Used and the capacity as the service reads them: available less usable, against
        # available less its kernel's low watermark (src/insights/forecast/fill.rs) and less the
        # least usable beyond unused so far (held, KiB; the third word).
        stats=$(virsh -c qemu:///system domstats --balloon $g |
            awk -F= -v held="$held" '/balloon.available=/ { a = $2 } /balloon.usable=/ { u = $2 }
                /balloon.unused=/ { f = $2 }
                END { if (!a || u == "" || f == "") exit
                      gap = u > f ? u - f : 0; if (held == "" || gap < held) held = gap
                      m = int(sqrt(16 * a)); m = m < 128 ? 128 : m > 262144 ? 262144 : m
                      low = m + (int(m / 4) > int(a / 1000) ? int(m / 4) : int(a / 1000))
                      printf "%d %d %d", (a - u) * 1024, (a - low - held) * 1024, held }')
        [[ -n $stats ]] && held=${stats##* } && stats=${stats% *}
        # A new reading only when the balloon's stats (every second) changed.
        [[ -n $stats && $stats != "$last" ]] && echo "$t $stats" >>"$out" && last=$stats
        # The onset no earlier than the poll before its line showed; the exhaustion at the
        # poll that saw it.
        [[ -z $onset ]] && grep -q '^VMT-GUEST-ONSET leak' "$console" && onset=$previous
        grep -qE 'VMT-GUEST-LEAK-FULL|Out of memory' "$console" && exhausted=$t
        previous=$t
        sleep 0.25
    done
    virsh -q -c qemu:///system destroy $g >/dev/null
    guests=()
    echo
    "target/$profile/examples/forecast_eval" "$out" "$onset" "$exhausted"
}

# Netdata: is its ML anomaly detection built in and on? Prints what was found.
netdata_ml() {
    if ! command -v netdata >/dev/null; then
        local before
        before=$(pgrep -x netdata || true)
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends netdata-core >&2
        # A daemon the package's scripts started: stopped by its pid.
        for pid in $(pgrep -x netdata || true); do
            grep -qx "$pid" <<<"$before" || kill -TERM "$pid"
        done
    fi
    local version build port info conf bits
    version=$(dpkg-query -W -f '${Version}' netdata-core)
    build=$(netdata -W buildinfo 2>/dev/null | grep -i 'machine learning' | tr -s ' ')
    port=$(free_port)
    mkdir -p "$work/netdata/cache" "$work/netdata/lib" "$work/netdata/log"
    cat >"$work/netdata/netdata.conf" <<EOF
[global]
    run as user = root
    memory mode = ram
    update every = 1
    cache directory = $work/netdata/cache
    lib directory = $work/netdata/lib
    log directory = $work/netdata/log
[web]
    bind to = 127.0.0.1:$port
[ml]
    enabled = yes
EOF
    netdata -D -c "$work/netdata/netdata.conf" >"$work/netdata/stdout" 2>&1 &
    netdata_pid=$!
    local deadline=$((SECONDS + 30))
    until info=$(curl -sf "http://127.0.0.1:$port/api/v1/info"); do
        ((SECONDS < deadline)) || die "netdata did not answer (see $work/netdata)"
        sleep 0.5
    done
    sleep 3
    conf=$(curl -sf "http://127.0.0.1:$port/netdata.conf" | grep -c '^\[ml\]' || true)
    bits=$(curl -sf "http://127.0.0.1:$port/api/v1/data?chart=system.cpu&after=-2&options=anomaly-bit" |
        python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["labels"], d["data"][:2])' 2>&1 || true)
    kill -TERM "$netdata_pid"
    wait "$netdata_pid" 2>/dev/null || true
    netdata_pid=""
    echo
    echo "Netdata $version (Debian 12's netdata-core): buildinfo '$build';" \
        "/api/v1/info ml fields: $(grep -o '"ml[^"]*": *[^,}]*' <<<"$info" | tr '\n' ' ');" \
        "[ml] sections in its served netdata.conf: $conf; system.cpu with anomaly-bit: $bits"
    if grep -qi 'yes' <<<"$build"; then
        die "this Netdata has its ML built in: run it on the guests side by side (not written yet)"
    fi
    echo "Netdata not run side by side: the package is built without its ML (no k-means, no" \
        "anomaly bits to compare); the Netdata-like row above is its recipe, reimplemented."
}

# One run on the 1,000-domain host with insights MODE; prints its row, sets cpu_us.
thousand() {
    local mode=$1 db="thousand_$1"
    service "test+unix://$work/node.xml" "$db" VMTELEMETRY_INSIGHTS="$mode" \
        VMTELEMETRY_STATS_GROUPS="" VMTELEMETRY_HOST_METRICS=true
    sleep $((LEARNING + 5))
    local ticks0 ticks1
    ticks0=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$service_pid/stat")
    sleep "$CYCLES"
    ticks1=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$service_pid/stat")
    local rss
    rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$service_pid/status")
    stop_service
    cpu_us=$(awk -v t=$((ticks1 - ticks0)) -v hz="$HZ" -v c="$CYCLES" 'BEGIN { printf "%.0f", t * 1e6 / hz / c }')
    local fp="-"
    if [[ $mode == true ]]; then
        fp=$(influx_query "SELECT SUM(anomalous_signals), COUNT(cpu_percent_score), COUNT(memory_used_percent_score), COUNT(memory_rate_kb_per_sec_score) FROM vm_anomalies" "$db" |
            python3 -c 'import json,sys; v=json.load(sys.stdin)["results"][0]["series"][0]["values"][0]; n=sum(v[2:5]); print(f"{1000*v[1]/n:.2f} ({v[1]} of {n})")')
        signals=3
    fi
    rows+=("| insights $mode | $cpu_us | $rss | $fp |")
}

if [[ $profile == debug ]]; then
    forecast_leak
    exit
fi
rows=()
real_guests
forecast_leak
netdata_ml
node_xml "$VMS" "$work/node.xml"
thousand false
off_us=$cpu_us
thousand true
on_us=$cpu_us
echo
echo "$VMS test-driver VMs, seed only ($signals signals each), 1 s cycles, $CYCLES cycles after $((LEARNING + 5)) s:"
echo
echo "| run | service CPU per cycle (µs) | resident memory (KiB) | anomalies per 1,000 VM-signal-samples |"
echo "|---|---|---|---|"
printf '%s\n' "${rows[@]}"
awk -v on="$on_us" -v off="$off_us" -v n=$((VMS * signals)) \
    'BEGIN { printf "\nInsights on minus off: %.3f µs per VM-signal per cycle (the whole service: readings, analysis, lines)\n", (on - off) / n }'

# 5. The forecasts' and right-sizing's state per VM and the replay's speed (issue #27).
echo
bash benches/outlook.sh
