#!/usr/bin/env bash
# The real servers the integration tests talk to:
#   virtlogd + libvirtd  (qemu:///system; unix sockets only, no TCP)
#   influxd              (InfluxDB 1.x, loopback only, all state under $VMT_TEST_STATE)
#   etcd                 (one member, loopback only, for coordination = "etcd")
# Usage: scripts/test-env.sh up|down|status
#   up      start what is not running yet (reuses servers started by an earlier `up`,
#           uses a libvirtd/virtlogd somebody else started), then check libvirt works
#   down    stop exactly the processes that `up` started, nothing else
#   status  show what runs and who started it
# Environment: VMT_TEST_STATE (default /var/tmp/vmtelemetry-test), VMT_TEST_INFLUX_PORT
# (18086), VMT_TEST_INFLUX_RPC_PORT (18088), VMT_TEST_ETCD_PORT (12379), VMT_TEST_ETCD_PEER_PORT
# (12380), VMT_TIMEOUT (60 s to wait for a server).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"

STATE=${VMT_TEST_STATE:-/var/tmp/vmtelemetry-test}
INFLUX_PORT=${VMT_TEST_INFLUX_PORT:-18086}
INFLUX_RPC_PORT=${VMT_TEST_INFLUX_RPC_PORT:-18088}
PIDDIR=$STATE/pids
INFLUX_CONF=$STATE/influxd.conf
INFLUX_LOG=$STATE/influxd.log
INFLUXD=/usr/bin/influxd
ETCD=/usr/bin/etcd
ETCD_PORT=${VMT_TEST_ETCD_PORT:-12379}
ETCD_PEER_PORT=${VMT_TEST_ETCD_PEER_PORT:-12380}
ETCD_DATA=$STATE/etcd
ETCD_LOG=$STATE/etcd.log
LIBVIRTD=/usr/sbin/libvirtd
VIRTLOGD=/usr/sbin/virtlogd
QEMU_CONF=/etc/libvirt/qemu.conf
LIBVIRTD_LOG=/var/log/libvirt/libvirtd.log

# recorded NAME BINARY [NEEDLE]: the pid `up` recorded for NAME, if that process still runs
# BINARY. A pid file that fails the test is stale and removed.
recorded() {
    local file=$PIDDIR/$1.pid pid
    [[ -e $file ]] || return 1
    if pid=$(read_pidfile "$file") && is_prog "$pid" "$2" "${3:-}"; then
        printf '%s\n' "$pid"
        return 0
    fi
    log "removing stale $file"
    rm -f "$file"
    return 1
}

record() {
    mkdir -p "$PIDDIR"
    printf '%s\n' "$2" >"$PIDDIR/$1.pid"
}

# foreign NAME BINARY: the pid of a NAME that runs but that `up` did not start.
foreign() {
    local pid
    if pid=$(read_pidfile "/run/$1.pid") && is_prog "$pid" "$2"; then
        printf '%s\n' "$pid"
    else
        find_prog "$2"
    fi
}

# Debian puts these in libvirt-daemon-system (user, dirs, qemu.conf), which we do not
# install: it would pull in systemd units and a default network we do not want.
prepare_libvirt() {
    getent group libvirt >/dev/null || groupadd --system libvirt
    getent group kvm >/dev/null || groupadd --system kvm
    # libvirtd's QEMU driver refuses to start without this user, even when qemu.conf
    # says to run QEMU as root.
    if ! getent passwd libvirt-qemu >/dev/null; then
        useradd --system --gid kvm --home-dir /var/lib/libvirt --no-create-home \
            --shell /usr/sbin/nologin --comment "Libvirt Qemu" libvirt-qemu
    fi
    getent group libvirt-qemu >/dev/null || groupadd --system libvirt-qemu
    [[ " $(id -nG libvirt-qemu) " == *" libvirt-qemu "* ]] || usermod -a -G libvirt-qemu libvirt-qemu
    # virtlogd and libvirtd exit at once when they cannot open their log files.
    mkdir -p /var/log/libvirt/qemu /var/lib/libvirt

    # What the QEMU driver needs here: QEMU runs as root because /dev/kvm may be root-only
    # (0600, no udev rule for group kvm); no private mount namespace per VM because that
    # fails where / is not a mount point (chroots, some containers).
    local -a want=(user '"root"' group '"root"' namespaces '[]') missing=()
    local i key val
    conf_changed=0
    if [[ ! -e $QEMU_CONF ]]; then
        mkdir -p "${QEMU_CONF%/*}"
        cat >"$QEMU_CONF" <<'CONF'
# Written by vmtelemetry's scripts/test-env.sh (Debian's full copy of this file comes
# with libvirt-daemon-system, which is not installed).
# QEMU runs as root: /dev/kvm may be root-only here.
user = "root"
group = "root"
# No per-VM mount namespace: it fails where / is not a mount point (chroots, containers).
namespaces = []
CONF
        conf_changed=1
        return 0
    fi
    for ((i = 0; i < ${#want[@]}; i += 2)); do
        conf_sets "${want[i]}" "${want[i + 1]}" || missing+=("${want[i]}" "${want[i + 1]}")
    done
    ((${#missing[@]})) || return 0
    # Keep the admin's file: comment out their lines for these keys and append ours.
    cp -n "$QEMU_CONF" "$QEMU_CONF.vmtelemetry-orig"
    printf '\n# Added by vmtelemetry scripts/test-env.sh\n' >>"$QEMU_CONF"
    for ((i = 0; i < ${#missing[@]}; i += 2)); do
        key=${missing[i]} val=${missing[i + 1]}
        sed -i -E "s/^([[:space:]]*${key}[[:space:]]*=)/# (vmtelemetry) \\1/" "$QEMU_CONF"
        printf '%s = %s\n' "$key" "$val" >>"$QEMU_CONF"
        log "set $key = $val in $QEMU_CONF (original kept as $QEMU_CONF.vmtelemetry-orig)"
    done
    conf_changed=1
}

# conf_sets KEY VALUE: qemu.conf has an active `KEY = VALUE` line.
conf_sets() {
    local val
    val=$(printf '%s' "$2" | sed 's/[][\\.*^$+?(){}|/]/\\&/g')
    val=${val//'\[\]'/'\[[[:space:]]*\]'} # `[ ]` is the same empty list
    grep -Eq "^[[:space:]]*$1[[:space:]]*=[[:space:]]*${val}[[:space:]]*(#.*)?$" "$QEMU_CONF"
}

# ensure_daemon NAME BINARY: a running NAME (libvirtd, virtlogd), started with -d if none.
ensure_daemon() {
    local name=$1 bin=$2 pid i
    if pid=$(recorded "$name" "$bin"); then
        log "$name: reusing pid $pid (started by test-env)"
        return 0
    fi
    if pid=$(foreign "$name" "$bin"); then
        log "$name: using pid $pid (not started by test-env: down leaves it alone)"
        return 0
    fi
    # -d forks; the daemon writes its own /run/NAME.pid, which is where we learn its pid.
    "$bin" -d || die "$bin -d failed (see /var/log/libvirt/$name.log)"
    for ((i = 0; i < 100; i++)); do
        if pid=$(read_pidfile "/run/$name.pid") && is_prog "$pid" "$bin"; then
            record "$name" "$pid"
            log "$name: started, pid $pid"
            return 0
        fi
        sleep 0.1
    done
    tail -n 20 "/var/log/libvirt/$name.log" >&2 || true
    die "$name did not come up (no live pid in /run/$name.pid after 10 s; log: /var/log/libvirt/$name.log)"
}

ensure_influxd() {
    local pid
    if pid=$(recorded influxd "$INFLUXD" "$INFLUX_CONF"); then
        grep -qF "bind-address = \"127.0.0.1:$INFLUX_PORT\"" "$INFLUX_CONF" ||
            die "influxd pid $pid from $STATE listens on another port than $INFLUX_PORT; run '$0 down' first"
        log "influxd: reusing pid $pid (started by test-env)"
    else
        if influx_ping "$INFLUX_PORT"; then
            die "something that test-env did not start answers on 127.0.0.1:$INFLUX_PORT; stop it or set VMT_TEST_INFLUX_PORT"
        fi
        # Every database in it is a finished test's scratch: a server that opened them all
        # again would run out of file descriptors after a few hundred runs.
        rm -rf "$STATE/influxdb"
        write_influx_conf "$INFLUX_CONF" "$STATE/influxdb" "$INFLUX_PORT" "$INFLUX_RPC_PORT"
        pid=$(start_influxd "$INFLUX_CONF" "$STATE/influxd.run.pid" "$INFLUX_LOG")
        record influxd "$pid"
        log "influxd: started, pid $pid"
    fi
    wait_influx "$INFLUX_PORT" "$pid" "$INFLUX_LOG"
    log "influxd: answers on http://127.0.0.1:$INFLUX_PORT"
}

ensure_etcd() {
    local pid
    if pid=$(recorded etcd "$ETCD" "$ETCD_DATA"); then
        log "etcd: reusing pid $pid (started by test-env)"
    else
        if etcd_health "$ETCD_PORT"; then
            die "something that test-env did not start answers on 127.0.0.1:$ETCD_PORT; stop it or set VMT_TEST_ETCD_PORT"
        fi
        pid=$(start_etcd "$ETCD_DATA" "$ETCD_PORT" "$ETCD_PEER_PORT" "$ETCD_LOG")
        record etcd "$pid"
        log "etcd: started, pid $pid"
    fi
    wait_etcd "$ETCD_PORT" "$pid" "$ETCD_LOG"
    log "etcd: answers on http://127.0.0.1:$ETCD_PORT"
}

# libvirtd -d returns before its drivers are up (and exits later if one fails): wait until
# qemu:///system answers, then check the in-process test driver too.
check_libvirt() {
    local deadline=$((SECONDS + VMT_TIMEOUT)) out pid
    until out=$(timeout 30 virsh -c qemu:///system version 2>&1); do
        if ! pid=$(recorded libvirtd "$LIBVIRTD") && ! pid=$(foreign libvirtd "$LIBVIRTD"); then
            tail -n 20 "$LIBVIRTD_LOG" >&2 || true
            die "libvirtd exited while starting (log: $LIBVIRTD_LOG)"
        fi
        if ((SECONDS >= deadline)); then
            printf '%s\n' "$out" >&2
            die "qemu:///system did not answer within ${VMT_TIMEOUT}s (log: $LIBVIRTD_LOG)"
        fi
        sleep 0.5
    done
    log "libvirt: $(printf '%s\n' "$out" | grep -m1 'Running hypervisor' || echo ok)"
    out=$(virsh -c test:///default list --all 2>&1) || {
        printf '%s\n' "$out" >&2
        die "virsh -c test:///default list --all failed"
    }
}

# guests_first on|off: libvirt's VMs' cgroup (its `machine` partition) weighted as 16 busy
# processes rather than one, or back to the weight it had before `on`. The real-guest tests
# measure what their own workloads cause (insights_truth: a steady guest raises nothing, a
# neighbour's steal comes from the burst on its core): on a runner busy with other work (builds,
# other tests), all the guests' vCPUs together would otherwise weigh as one of its processes and
# every guest look contended. Not more: the service under test, beside them, must not starve.
WEIGHT_SAVED="$STATE/machine-cpu-weight"
guests_first() {
    local shares=16384 weight=1600
    if [[ $1 == off ]]; then
        [[ -f $WEIGHT_SAVED ]] || return 0
        shares=$(<"$WEIGHT_SAVED") weight=$shares
        rm -f "$WEIGHT_SAVED"
    elif [[ ! -f $WEIGHT_SAVED ]]; then
        machine_weight >"$WEIGHT_SAVED"
    fi
    if [[ -f /sys/fs/cgroup/cgroup.controllers ]]; then
        if [[ -d /run/systemd/system ]]; then
            # Not a number: it was not set (an empty value unsets it again).
            [[ $weight =~ ^[0-9]+$ ]] || weight=
            systemctl set-property --runtime machine.slice "CPUWeight=$weight"
        elif [[ -d /sys/fs/cgroup/machine ]]; then
            echo "$weight" >/sys/fs/cgroup/machine/cpu.weight
        fi
    elif [[ -d /sys/fs/cgroup/cpu ]]; then
        mkdir -p /sys/fs/cgroup/cpu/machine
        echo "$shares" >/sys/fs/cgroup/cpu/machine/cpu.shares
    fi
}

# The machine partition's CPU weight now, in the unit guests_first writes.
machine_weight() {
    if [[ -f /sys/fs/cgroup/cgroup.controllers ]]; then
        if [[ -d /run/systemd/system ]]; then
            systemctl show -P CPUWeight machine.slice
        elif [[ -f /sys/fs/cgroup/machine/cpu.weight ]]; then
            cat /sys/fs/cgroup/machine/cpu.weight
        else
            echo 100
        fi
    elif [[ -f /sys/fs/cgroup/cpu/machine/cpu.shares ]]; then
        cat /sys/fs/cgroup/cpu/machine/cpu.shares
    else
        echo 1024
    fi
}

up() {
    ((EUID == 0)) || die "run as root: libvirtd for qemu:///system runs as root"
    mkdir -p "$STATE" "$PIDDIR"
    prepare_libvirt
    local pid
    if ((conf_changed)); then
        if pid=$(recorded libvirtd "$LIBVIRTD"); then
            log "restarting our libvirtd (pid $pid) to apply the new $QEMU_CONF"
            stop_pid libvirtd "$pid" "$LIBVIRTD"
            rm -f "$PIDDIR/libvirtd.pid"
        elif pid=$(foreign libvirtd "$LIBVIRTD"); then
            log "warning: libvirtd pid $pid (not ours) must be restarted to read the new $QEMU_CONF"
        fi
    fi
    # libvirtd hands QEMU's console output to virtlogd, so virtlogd goes first.
    ensure_daemon virtlogd "$VIRTLOGD"
    ensure_daemon libvirtd "$LIBVIRTD"
    ensure_influxd
    ensure_etcd
    check_libvirt
    guests_first on
    log "up: state in $STATE; VMT_TEST_INFLUX_URL=http://127.0.0.1:$INFLUX_PORT VMT_TEST_ETCD_URL=http://127.0.0.1:$ETCD_PORT"
}

down() {
    local pid doms
    guests_first off
    if pid=$(recorded libvirtd "$LIBVIRTD"); then
        # QEMU processes outlive libvirtd; say so rather than kill what the tests left.
        doms=$(timeout 10 virsh -c qemu:///system list --name 2>/dev/null | sed '/^$/d' | paste -sd' ' || true)
        [[ -z $doms ]] || log "warning: these domains keep running after libvirtd stops: $doms"
        stop_pid libvirtd "$pid" "$LIBVIRTD"
    fi
    rm -f "$PIDDIR/libvirtd.pid"
    if pid=$(recorded virtlogd "$VIRTLOGD"); then
        stop_pid virtlogd "$pid" "$VIRTLOGD"
    fi
    rm -f "$PIDDIR/virtlogd.pid"
    if pid=$(recorded influxd "$INFLUXD" "$INFLUX_CONF"); then
        stop_pid influxd "$pid" "$INFLUXD" "$INFLUX_CONF"
    fi
    rm -f "$PIDDIR/influxd.pid"
    if pid=$(recorded etcd "$ETCD" "$ETCD_DATA"); then
        stop_pid etcd "$pid" "$ETCD" "$ETCD_DATA"
    fi
    rm -f "$PIDDIR/etcd.pid"
}

status() {
    local name bin pid rc=0
    for name in virtlogd libvirtd; do
        bin=$LIBVIRTD
        [[ $name == virtlogd ]] && bin=$VIRTLOGD
        if pid=$(recorded "$name" "$bin"); then
            echo "$name: running, pid $pid, started by test-env"
        elif pid=$(foreign "$name" "$bin"); then
            echo "$name: running, pid $pid, NOT started by test-env"
        else
            echo "$name: not running"
            rc=3
        fi
    done
    if pid=$(recorded influxd "$INFLUXD" "$INFLUX_CONF"); then
        local ping=no
        influx_ping "$INFLUX_PORT" && ping=yes
        echo "influxd: running, pid $pid, started by test-env, http://127.0.0.1:$INFLUX_PORT (answers /ping: $ping)"
    elif influx_ping "$INFLUX_PORT"; then
        echo "influxd: something NOT started by test-env answers on http://127.0.0.1:$INFLUX_PORT"
    else
        echo "influxd: not running on 127.0.0.1:$INFLUX_PORT"
        rc=3
    fi
    if pid=$(recorded etcd "$ETCD" "$ETCD_DATA"); then
        echo "etcd: running, pid $pid, started by test-env, http://127.0.0.1:$ETCD_PORT"
    elif etcd_health "$ETCD_PORT"; then
        echo "etcd: something NOT started by test-env answers on http://127.0.0.1:$ETCD_PORT"
    else
        echo "etcd: not running on 127.0.0.1:$ETCD_PORT"
        rc=3
    fi
    return "$rc"
}

case ${1:-} in
up) up ;;
down) down ;;
status) status ;;
*)
    echo "usage: $0 up|down|status" >&2
    exit 2
    ;;
esac
