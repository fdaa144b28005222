#!/usr/bin/env bash
# Collection cost benchmark (a benchmark, not a test). Against the same libvirtd, in one run, for
# libvirt test-driver nodes of 100, 1,000 and 5,000 domains (test+unix:///node.xml) and for a
# dozen firmware-only KVM guests (qemu:///system):
#   - the service (release build, its own InfluxDB 1.x, spool in a temp dir), measured from
#     outside: CPU per cycle of the service and of libvirtd (/proc/PID/stat, over BENCH_CYCLES
#     cycles), lines per cycle and domains reported (/api/telemetry/status), wall time of a cycle
#     (first to last domain read, from the sample timestamps of /api/telemetry/vms, scaled by
#     n/(n-1) for the one read the spread cannot see; medians);
#   - Debian's prometheus-libvirt-exporter, one scrape = one cycle: wall time per scrape (median),
#     CPU per scrape of the exporter and of libvirtd, distinct domains in libvirt_domain_info_*.
# Then the service's resident memory with 10,000 test domains tracked, and line encoding
# throughput (`cargo bench --bench encode`). Prints a Markdown table and one line per target.
# Note: the service collects the seed fields only (list + info per domain); the exporter also
# reads block and interface statistics and the domain XML. The ratios compare what exists.
# Usage: benches/libvirt.sh   (as root; starts libvirtd/influxd with scripts/test-env.sh up if
# needed and leaves them running; stops every process it starts itself)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

CYCLES=${BENCH_CYCLES:-10}
KVM_GUESTS=${BENCH_KVM_GUESTS:-12}
influx_port=${BENCH_INFLUX_PORT:-18286}
rpc_port=${BENCH_INFLUX_RPC_PORT:-18288}
api_port=${BENCH_API_PORT:-18280}
exporter_port=${BENCH_EXPORTER_PORT:-18277}
EXPORTER=/usr/bin/prometheus-libvirt-exporter
work=$(mktemp -d /var/tmp/vmtelemetry-bench.XXXXXX)
influx_pid=""
service_pid=""
exporter_pid=""
guests=()
policy_added=""
HZ=$(getconf CLK_TCK)

cleanup() {
    local g
    if [[ -n $service_pid ]]; then kill -KILL "$service_pid" 2>/dev/null || true; fi
    if [[ -n $exporter_pid ]]; then kill -KILL "$exporter_pid" 2>/dev/null || true; fi
    if [[ -n $influx_pid ]]; then stop_pid influxd "$influx_pid" /usr/bin/influxd "$work" || true; fi
    for g in "${guests[@]}"; do virsh -q -c qemu:///system destroy "$g" >/dev/null 2>&1 || true; done
    if [[ -n $policy_added ]]; then rm -f /usr/sbin/policy-rc.d; fi
    rm -rf "$work"
}
trap cleanup EXIT

((EUID == 0)) || die "run as root"
bash scripts/install-deps.sh
if [[ ! -x $EXPORTER ]]; then
    # Install without letting the package start its own exporter on :9177.
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        policy_added=yes
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q prometheus-libvirt-exporter >&2
fi
load_cargo_env || die "cargo not found"
bash scripts/test-env.sh up >/dev/null
libvirtd_pid=$(read_pidfile /run/libvirtd.pid) || die "no libvirtd pid in /run/libvirtd.pid"
log "building the release binary"
cargo build --release --quiet

write_influx_conf "$work/influxd.conf" "$work/influxdb" "$influx_port" "$rpc_port"
influx_pid=$(start_influxd "$work/influxd.conf" "$work/influxd.pid" "$work/influxd.log")
wait_influx "$influx_port" "$influx_pid" "$work/influxd.log"
curl -sf -o /dev/null -XPOST "http://127.0.0.1:$influx_port/query" --data-urlencode 'q=CREATE DATABASE bench'

# ticks PID: user + system CPU time of PID so far, in clock ticks (threads that exited included).
ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
ms() { awk -v t="$1" -v n="$2" -v hz="$HZ" 'BEGIN { printf "%.1f", n ? t * 1000 / hz / n : 0 }'; }
status() { curl -sf "http://127.0.0.1:$api_port/api/telemetry/status"; }
field() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)]; else print 0 }'; }

node_xml() { # node_xml COUNT FILE
    {
        echo "<node>"
        for ((i = 1; i <= $1; i++)); do
            printf "<domain type='test'><name>bench-%d</name><uuid>be7c0000-0000-4000-8000-%012x</uuid>" "$i" "$i"
            printf "<memory unit='KiB'>1048576</memory><currentMemory unit='KiB'>524288</currentMemory>"
            printf "<vcpu>2</vcpu><os><type>hvm</type></os></domain>\n"
        done
        echo "</node>"
    } >"$2"
}

start_service() { # start_service URI POLL_INTERVAL
    rm -rf "$work/spool"
    VMTELEMETRY_LIBVIRT_URI="$1" \
        VMTELEMETRY_POLL_INTERVAL="$2" \
        VMTELEMETRY_LIBVIRT_TIMEOUT=60 \
        VMTELEMETRY_INFLUX_API=v1 \
        VMTELEMETRY_INFLUX_URL="http://127.0.0.1:$influx_port" \
        VMTELEMETRY_INFLUX_DB=bench \
        VMTELEMETRY_SPOOL_DIR="$work/spool" \
        VMTELEMETRY_LISTEN="127.0.0.1:$api_port" \
        VMTELEMETRY_LOG_FORMAT=json RUST_LOG=warn \
        target/release/vmtelemetry >>"$work/service.log" 2>&1 &
    service_pid=$!
}
stop_service() {
    kill -TERM "$service_pid"
    wait "$service_pid" || true
    service_pid=""
}
collections() { status | field 'd["total_collections"]'; }
wait_collections() { # wait_collections AT_LEAST
    local deadline=$((SECONDS + 300))
    until [[ $(collections 2>/dev/null || echo 0) -ge $1 ]]; do
        ((SECONDS < deadline)) || die "the service did not reach $1 collections (log: $work/service.log)"
        sleep 0.2
    done
}

# measure_service URI POLL_INTERVAL CYCLES: sets svc_* figures.
measure_service() {
    local uri=$1 poll=$2 cycles=$3 s0 s1 c0 c1 l0 l1 n0 k spreads=()
    start_service "$uri" "$poll"
    wait_collections 2
    s0=$(status)
    c0=$(ticks "$service_pid") l0=$(ticks "$libvirtd_pid")
    n0=$(echo "$s0" | field 'd["total_collections"]')
    # Only the status is read (twice) inside the CPU window.
    sleep "$(awk -v p="$poll" -v c="$cycles" 'BEGIN { print p * c }')"
    wait_collections $((n0 + cycles))
    c1=$(ticks "$service_pid") l1=$(ticks "$libvirtd_pid")
    s1=$(status)
    local dn dlines
    dn=$(($(echo "$s1" | field 'd["total_collections"]') - n0))
    dlines=$(($(echo "$s1" | field 'd["features"]["lines_produced"]') - $(echo "$s0" | field 'd["features"]["lines_produced"]')))
    svc_cpu=$(ms $((c1 - c0)) "$dn")
    svc_libvirtd=$(ms $((l1 - l0)) "$dn")
    svc_lines=$((dlines / dn))
    svc_vms=$(echo "$s1" | field 'd["vms_monitored"]')
    svc_errors=$(echo "$s1" | field 'd["total_errors"]')
    # Wall time: one cycle's first-to-last read, from the latest sample of every VM (the feature
    # actor gets a cycle whole, so they are all from one cycle), after 5 distinct cycles.
    for ((k = 0; k < 5; k++)); do
        wait_collections $(($(collections) + 1))
        spreads+=("$(curl -sf "http://127.0.0.1:$api_port/api/telemetry/vms" | python3 -c '
import json, sys
from datetime import datetime
def ns(t):
    t = t.rstrip("Z").replace("+00:00", "")
    base, _, frac = t.partition(".")
    return int(datetime.fromisoformat(base).timestamp()) * 10**9 + int((frac + "000000000")[:9])
v = [ns(x["timestamp"]) for x in json.load(sys.stdin)["vms"]]
n = len(v)
print((max(v) - min(v)) / 1e6 * n / (n - 1) if n > 1 else 0)')")
    done
    svc_wall=$(printf '%s\n' "${spreads[@]}" | median)
    stop_service
}

# measure_exporter URI SCRAPES: sets exp_* figures.
measure_exporter() {
    local uri=$1 scrapes=$2 c0 c1 l0 l1 k times=() deadline=$((SECONDS + 120))
    "$EXPORTER" --web.listen-address="127.0.0.1:$exporter_port" --libvirt.uri="$uri" >"$work/exporter.log" 2>&1 &
    exporter_pid=$!
    until curl -sf -o /dev/null "http://127.0.0.1:$exporter_port/metrics"; do # also warms it up
        ((SECONDS < deadline)) || die "the exporter did not answer (log: $work/exporter.log)"
        sleep 0.2
    done
    c0=$(ticks "$exporter_pid") l0=$(ticks "$libvirtd_pid")
    for ((k = 0; k < scrapes; k++)); do
        times+=("$(curl -sf -o "$work/metrics" -w '%{time_total}' "http://127.0.0.1:$exporter_port/metrics")")
    done
    c1=$(ticks "$exporter_pid") l1=$(ticks "$libvirtd_pid")
    exp_wall=$(printf '%s\n' "${times[@]}" | median | awk '{ printf "%.1f", $1 * 1000 }')
    exp_cpu=$(ms $((c1 - c0)) "$scrapes")
    exp_libvirtd=$(ms $((l1 - l0)) "$scrapes")
    exp_vms=$(grep -E '^libvirt_domain_info_[a-z_]+\{' "$work/metrics" |
        grep -oE 'domain="[^"]*"' | sort -u | wc -l)
    kill -TERM "$exporter_pid"
    wait "$exporter_pid" || true
    exporter_pid=""
}

rows=()
# bench WORKLOAD URI EXPECTED POLL CYCLES SCRAPES
bench() {
    local name=$1 uri=$2 expected=$3 svc_total exp_total ratio_cpu ratio_wall
    log "$name: the service, $5 cycles at $4 s"
    measure_service "$uri" "$4" "$5"
    log "$name: the exporter, $6 scrapes"
    measure_exporter "$uri" "$6"
    svc_total=$(awk -v a="$svc_cpu" -v b="$svc_libvirtd" 'BEGIN { print a + b }')
    exp_total=$(awk -v a="$exp_cpu" -v b="$exp_libvirtd" 'BEGIN { print a + b }')
    # CPU per domain reported, exporter over service.
    ratio_cpu=$(awk -v s="$svc_total" -v sv="$svc_vms" -v e="$exp_total" -v ev="$exp_vms" \
        'BEGIN { if (s > 0 && sv > 0 && ev > 0) printf "%.1f×", (e / ev) / (s / sv); else print "n/a" }')
    ratio_wall=$(awk -v s="$svc_wall" -v e="$exp_wall" 'BEGIN { if (s > 0) printf "%.1f×", e / s; else print "n/a" }')
    rows+=("| $name | $expected | $(printf '%.1f' "$svc_wall") | $svc_cpu | $svc_libvirtd | $svc_lines | $svc_vms | $exp_wall | $exp_cpu | $exp_libvirtd | $exp_vms | $ratio_wall | $ratio_cpu |")
    last_result="$svc_wall $svc_total $svc_vms $exp_total $exp_vms $svc_errors $expected"
}

idle0=$(ticks "$libvirtd_pid")
sleep 5
idle=$(ms $(($(ticks "$libvirtd_pid") - idle0)) 5)
log "libvirtd idle: $idle ms CPU per second (other clients included)"

declare -A result
for n in 100 1000 5000; do
    node_xml "$n" "$work/node-$n.xml"
    scrapes=$CYCLES
    ((n < 5000)) || scrapes=5
    bench "test driver, $n domains" "test+unix://$work/node-$n.xml" "$n" 1 "$CYCLES" "$scrapes"
    result[$n]=$last_result
done

# A dozen firmware-only guests (the XML of tests/api/kvm_guest.rs).
domain_type=qemu
[[ -e /dev/kvm ]] && domain_type=kvm
for ((i = 1; i <= KVM_GUESTS; i++)); do
    g="vmt-bench-$$-$i"
    printf "<domain type='%s'><name>%s</name><memory unit='MiB'>48</memory><vcpu>1</vcpu><os><type arch='x86_64' machine='pc'>hvm</type></os><devices><controller type='usb' model='none'/><memballoon model='none'/></devices></domain>\n" \
        "$domain_type" "$g" >"$work/$g.xml"
    virsh -q -c qemu:///system create "$work/$g.xml" >/dev/null
    guests+=("$g")
done
on_host=$(virsh -q -c qemu:///system list --all --name | grep -c . || true)
bench "qemu:///system, $KVM_GUESTS $domain_type guests ($on_host domains on the host)" qemu:///system "$on_host" 0.2 $((CYCLES * 5)) $((CYCLES * 5))
result[kvm]=$last_result
for g in "${guests[@]}"; do virsh -q -c qemu:///system destroy "$g" >/dev/null; done
guests=()

# Resident memory with 10,000 VMs tracked.
log "resident memory with 10,000 test domains"
node_xml 10000 "$work/node-10000.xml"
start_service "test+unix://$work/node-10000.xml" 5
wait_collections 2
rss_vms=$(status | field 'd["vms_monitored"]')
rss_kib=$(awk '/^VmRSS:/ { print $2 }' "/proc/$service_pid/status")
stop_service

log "line encoding (cargo bench --bench encode)"
cargo bench --quiet --bench encode >"$work/encode.txt" 2>"$work/encode.err" || {
    cat "$work/encode.err" >&2
    die "cargo bench --bench encode failed"
}
encode_mps=$(sed -n 's/^encode vm_metrics + vm_features: .*, \([0-9.]*\) M lines\/s per CPU-second.*/\1/p' "$work/encode.txt")

printf '\n%s, %s cores, libvirt %s; %s cycles per workload; service = seed fields (list + info per domain), exporter = one full scrape.\n' \
    "$(date -u +%Y-%m-%d)" "$(nproc)" "$(virsh -c qemu:///system version 2>/dev/null | sed -n 's/^Using library: libvirt //p')" "$CYCLES"
printf 'Times in ms. CPU = user + system, per cycle (service) or per scrape (exporter). Ratios: exporter ÷ service; "CPU/domain" compares (own + libvirtd CPU) per domain reported. libvirtd idle: %s ms CPU/s.\n\n' "$idle"
echo '| workload | domains | service wall | service CPU | libvirtd CPU (service) | lines/cycle | service reports | exporter wall | exporter CPU | libvirtd CPU (exporter) | exporter reports | wall ratio | CPU/domain ratio |'
echo '|---|---|---|---|---|---|---|---|---|---|---|---|---|'
printf '%s\n' "${rows[@]}"
printf '| resident memory, 10,000 test domains tracked (poll 5 s, after 2 cycles) | %s | %s KiB (%.1f MiB) | | | | | | | | | | |\n' \
    "$rss_vms" "$rss_kib" "$(awk -v k="$rss_kib" 'BEGIN { print k / 1024 }')"
sed 's/^/    /' "$work/encode.txt"
echo

# Targets.
read -r kw _ kv _ _ _ kexp <<<"${result[kvm]}"
kw=$(printf '%.1f' "$kw")
if awk -v w="$kw" 'BEGIN { exit !(w <= 5) }' && [[ $kv == "$kexp" ]]; then
    echo "- target met: seed-fields cycle on $KVM_GUESTS real guests ${kw} ms wall (≤ 5 ms), $kv/$kexp domains"
else
    echo "- target MISSED: seed-fields cycle on $KVM_GUESTS real guests ${kw} ms wall (target ≤ 5 ms; $(awk -v w="$kw" 'BEGIN { printf "%.1f", w / 5 }')× over), $kv/$kexp domains"
fi
read -r _ st sv et ev serr _ <<<"${result[1000]}"
per=$(awk -v s="$st" -v sv="$sv" -v e="$et" -v ev="$ev" 'BEGIN { if (s > 0 && sv > 0 && ev > 0) printf "%.2f", (e / ev) / (s / sv); else print 0 }')
if [[ $sv == 1000 ]] && awk -v r="$per" 'BEGIN { exit !(r >= 3) }'; then
    echo "- target met: 1,000 test domains, service reports $sv/1000 (exporter $ev/1000), ${per}× less CPU per domain than the exporter (≥ 3×); cycle errors: $serr"
else
    echo "- target MISSED: 1,000 test domains, service reports $sv/1000 (exporter $ev/1000), ${per}× less CPU per domain than the exporter (target ≥ 3×); cycle errors: $serr"
fi
if ((rss_kib < 40 * 1024)) && [[ $rss_vms == 10000 ]]; then
    echo "- target met: resident memory $((rss_kib / 1024)) MiB with $rss_vms VMs tracked (< 40 MB)"
else
    echo "- target MISSED: resident memory $((rss_kib / 1024)) MiB with $rss_vms VMs tracked (target < 40 MB: $(awk -v k="$rss_kib" 'BEGIN { printf "%.1f", k * 1024 / 40e6 }')× over)"
fi
if awk -v m="${encode_mps:-0}" 'BEGIN { exit !(m >= 5) }'; then
    echo "- target met: line encoding ${encode_mps} M lines/s per core (≥ 5 M)"
else
    echo "- target MISSED: line encoding ${encode_mps:-?} M lines/s per core (target ≥ 5 M: $(awk -v m="${encode_mps:-0}" 'BEGIN { if (m > 0) printf "%.1f", 5 / m; else print "?" }')× short)"
fi
