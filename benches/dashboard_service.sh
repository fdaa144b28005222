# shellcheck shell=bash
# The dashboard benchmarks' common part, sourced after scripts/lib.sh. Sets `work` (a fresh
# directory, removed at exit) and `pids` (the processes started, stopped at exit), and checks
# for Chromium.
work=$(mktemp -d /var/tmp/vmtelemetry-bench-dashboard.XXXXXX)
pids=()

dashboard_cleanup() {
    for pid in "${pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    # Chromium's helpers may still be writing its profile for a moment.
    rm -rf "$work" 2>/dev/null || { sleep 2 && rm -rf "$work"; }
}
trap dashboard_cleanup EXIT

command -v chromium >/dev/null || die "chromium is missing: scripts/install-deps.sh installs it"

# dashboard_service VMS PORT WORK: the debug binary (the release one with BENCH_RELEASE=1; built
# first) collecting one libvirt
# test-driver node of VMS domains (benches/node_xml.sh, in WORK) with its writes going nowhere,
# listening on 127.0.0.1:PORT; returns once it lists every VM. Sets service_pid and adds it to
# pids.
dashboard_service() { # dashboard_service VMS PORT WORK
    local vms=$1 port=$2 work=$3 count=0 profile=debug
    load_cargo_env || die "cargo not found"
    if [[ ${BENCH_RELEASE:-} == 1 ]]; then
        cargo build --release --quiet --bin vmtelemetry
        profile=release
    else
        cargo build --quiet
    fi
    # shellcheck source=benches/node_xml.sh
    . benches/node_xml.sh
    node_xml "$vms" "$work/node.xml"
    env VMTELEMETRY_LIBVIRT_URI="test+unix://$work/node.xml" VMTELEMETRY_LIBVIRT_TIMEOUT=60 \
        VMTELEMETRY_INFLUX_URL=http://127.0.0.1:9 VMTELEMETRY_SPOOL_DIR="" \
        VMTELEMETRY_LISTEN="127.0.0.1:$port" RUST_LOG=error \
        "target/$profile/vmtelemetry" >>"$work/service.log" 2>&1 &
    service_pid=$!
    pids+=("$service_pid")
    log "waiting for the service to list $vms VMs"
    for _ in $(seq 300); do
        count=$(curl -fsS "http://127.0.0.1:$port/api/telemetry/vms?limit=1" 2>/dev/null |
            python3 -c 'import json, sys; print(json.load(sys.stdin)["count"])' 2>/dev/null || echo 0)
        ((count == vms)) && return 0
        sleep 1
    done
    die "the service lists $count VMs, not $vms: $(tail -5 "$work/service.log")"
}
