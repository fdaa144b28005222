#!/usr/bin/env bash
# benches/groups_cost.sh [SECONDS]: what the stats groups cost per guest per hour at the default
# cadences against every group every poll (a benchmark, not a test). As root, with libvirtd
# running (scripts/test-env.sh up). Real guests on qemu:///system: GUESTS firmware-only KVM guests
# (default 4: a raw virtio disk that halts the CPU at boot, a tap NIC, a virtio balloon, software
# perf events enabled) and the kernel guest of tests/guest (TCG) with qemu-ga on its channel and
# an ext2 filesystem. The service (release build; built if missing) collects them with every group
# on (cpu_total, balloon, vcpu, interface, block, vm, perf, dirtyrate, guest), polling every 5 s
# (the default), SECONDS each (default 300, the longest default cadence), the modes MODES names
# (default "every-poll defaults"):
#   every-poll:     every group every poll (stats_group_intervals all 5 s, the disks' sizes too);
#   defaults:       the default cadences (guest 60 s, dirtyrate and block_sizes 300 s, the rest
#                   every 5 s);
#   default-config: the default configuration as it is (config/default.toml's stats_groups and
#                   cadences): what an operator who changes nothing pays.
# No InfluxDB (influx_url = ""): the lines are counted as produced. CPU from /proc/PID/stat
# (utime + stime) of the service, of libvirtd, and of the KVM guests' QEMU processes (the TCG
# guest's QEMU runs its guest's code, which drowns what its monitor and agent cost). Prints a
# Markdown table per guest per hour (all guests: the service, libvirtd, the lines; KVM guests'
# QEMU per KVM guest).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
seconds=${1:-300}
guests=${GUESTS:-4}
modes=${MODES:-every-poll defaults}
port=${BENCH_API_PORT:-18381}
work=$(mktemp -d /var/tmp/vmt-groups-cost.XXXXXX)
names=()
service_pid=""
HZ=$(getconf CLK_TCK)

cleanup() {
    if [[ -n $service_pid ]]; then kill -KILL "$service_pid" 2>/dev/null || true; fi
    for g in "${names[@]}"; do virsh -q -c qemu:///system destroy "$g" >/dev/null 2>&1 || true; done
    rm -rf "$work"
}
trap cleanup EXIT
((EUID == 0)) || die "run as root"
load_cargo_env || die "cargo not found"
bin=target/release/vmtelemetry
[[ -x $bin ]] || cargo build --release --quiet --bin vmtelemetry
libvirtd=$(cat /run/libvirtd.pid)

# The firmware guests: a boot sector that halts the CPU for good (cli; hlt; jmp), so their QEMU
# idles steadily.
python3 -c '
import sys
b = bytearray(1 << 20); b[0:4] = bytes([0xFA, 0xF4, 0xEB, 0xFD]); b[510:512] = b"\x55\xaa"
open(sys.argv[1], "wb").write(b)' "$work/halt.img"
for ((i = 1; i <= guests; i++)); do
    g="vmt-cost-$$-$i"
    cp "$work/halt.img" "$work/$g.img"
    cat >"$work/$g.xml" <<EOF
<domain type='kvm'><name>$g</name><memory unit='MiB'>48</memory><vcpu>1</vcpu>
<os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os><devices>
<controller type='usb' model='none'/><disk type='file' device='disk'><driver name='qemu' type='raw'/>
<source file='$work/$g.img'/><target dev='vda' bus='virtio'/></disk>
<interface type='ethernet'><target dev='vmtc$$x$i'/><model type='virtio'/><rom enabled='no'/></interface>
<memballoon model='virtio'/></devices></domain>
EOF
    virsh -q -c qemu:///system create "$work/$g.xml" >/dev/null
    names+=("$g")
    virsh -q -c qemu:///system perf "$g" --enable cpu_clock,task_clock,context_switches --live >/dev/null
done
kernel_dir=/var/tmp/vmtelemetry-test/guest
bash tests/guest/build-guest.sh "$kernel_dir" >/dev/null
k="vmt-cost-$$-agent"
cat >"$work/$k.xml" <<EOF
<domain type='qemu'><name>$k</name><memory unit='MiB'>160</memory><vcpu>1</vcpu>
<os><type arch='x86_64' machine='pc'>hvm</type><kernel>$kernel_dir/vmlinuz</kernel>
<initrd>$kernel_dir/initramfs.gz</initrd><cmdline>console=ttyS0 edd=off vmt.agent=1 vmt.fs=1</cmdline></os>
<devices><controller type='usb' model='none'/>
<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='$work/agent.img'/><target dev='vda' bus='virtio'/></disk>
<serial type='file'><source path='$work/agent.console'/><target port='0'/></serial>
<channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>
<memballoon model='virtio'><stats period='5'/></memballoon></devices></domain>
EOF
truncate -s 8M "$work/agent.img"
virsh -q -c qemu:///system create "$work/$k.xml" >/dev/null
names+=("$k")
until grep -q '^VMT-GUEST-UP' "$work/agent.console" 2>/dev/null; do sleep 0.5; done
all=$((guests + 1))
include=$(IFS=,; echo "${names[*]}")

status() { curl -sf "http://127.0.0.1:$port/api/telemetry/status"; }
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
qemu_ticks() {
    local sum=0 g
    for g in "${names[@]:0:guests}"; do sum=$((sum + $(ticks "$(cat "/run/libvirt/qemu/$g.pid")"))); done
    echo "$sum"
}
produced() { status | python3 -c 'import json, sys; print(json.load(sys.stdin)["features"]["lines_produced"])'; }

# run MODE [ENV...]: one row of the table.
run() {
    local mode=$1
    shift
    env VMTELEMETRY_STATS_GROUPS=cpu_total,balloon,vcpu,interface,block,vm,perf,dirtyrate,guest \
        "$@" VMTELEMETRY_LIBVIRT_URI=qemu:///system VMTELEMETRY_INFLUX_URL= \
        VMTELEMETRY_DOMAIN_INCLUDE="$include" VMTELEMETRY_INSIGHTS=false \
        VMTELEMETRY_SPOOL_DIR= VMTELEMETRY_LISTEN="127.0.0.1:$port" RUST_LOG=warn "$bin" \
        >"$work/$mode.log" 2>&1 &
    service_pid=$!
    until status >/dev/null 2>&1; do sleep 0.2; done
    local s0 l0 q0 p0 s1 l1 q1 p1
    s0=$(ticks "$service_pid") l0=$(ticks "$libvirtd") q0=$(qemu_ticks) p0=$(produced)
    sleep "$seconds"
    s1=$(ticks "$service_pid") l1=$(ticks "$libvirtd") q1=$(qemu_ticks) p1=$(produced)
    kill -TERM "$service_pid"
    wait "$service_pid" || true
    service_pid=""
    awk -v m="$mode" -v s=$((s1 - s0)) -v l=$((l1 - l0)) -v q=$((q1 - q0)) -v p=$((p1 - p0)) \
        -v hz="$HZ" -v w="$seconds" -v n="$all" -v k="$guests" 'BEGIN {
        h = 3600 / w
        printf "| %s | %.1f | %.1f | %.1f | %.1f | %d |\n", m, s / hz * h / n, l / hz * h / n,
            (s + l) / hz * h / n, q / hz * h / k, p * h / n }'
}

echo "| $all guests, poll 5 s, ${seconds} s a mode ($(date -u +%F)) | service CPU s / guest / h | libvirtd CPU s / guest / h | both | QEMU CPU s / KVM guest / h | lines / guest / h |"
echo "|---|---|---|---|---|---|"
default_groups=$(python3 -c 'import tomllib; print(",".join(tomllib.load(open("config/default.toml", "rb"))["stats_groups"]))')
for mode in $modes; do
    case $mode in
    every-poll)
        run every-poll VMTELEMETRY_STATS_GROUP_INTERVALS__GUEST=5 VMTELEMETRY_STATS_GROUP_INTERVALS__DIRTYRATE=5 \
            VMTELEMETRY_STATS_GROUP_INTERVALS__BLOCK_SIZES=5
        ;;
    defaults) run defaults ;;
    default-config) run "default configuration ($default_groups)" VMTELEMETRY_STATS_GROUPS="$default_groups" ;;
    *) die "unknown mode $mode (every-poll, defaults, default-config)" ;;
    esac
done
