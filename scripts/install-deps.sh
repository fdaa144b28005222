#!/usr/bin/env bash
# Installs what building and testing vmtelemetry needs on Debian 12, as root:
# libvirt (daemon, QEMU driver, virsh, headers), QEMU/KVM, InfluxDB 1.x, Chromium (for the
# dashboard's browser test), Prometheus and prometheus-libvirt-exporter (for /metrics); then the Python venv in which the tests' InfluxDB 3 stand-in runs
# SQL with Apache DataFusion (tests/api/support/requirements.txt).
# Idempotent: when everything is installed already it touches neither apt nor PyPI.
# Environment: VMT_TEST_STATE (/var/tmp/vmtelemetry-test) holds the venv, in venv/.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"

PKGS=(
    libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients libvirt-dev
    qemu-system-x86 qemu-utils
    influxdb
    chromium
    python3 python3-venv
    pkg-config curl ca-certificates
    # builds the tests' tiny Linux guest (tests/guest/build-guest.sh)
    cpio
    # proves the libvirt bulk-stats wrapper frees what it gets (tests/api/bulk_stats.rs)
    valgrind
    # `/metrics` is checked by promtool (in `prometheus`), scraped by a real Prometheus and
    # compared with Debian's prometheus-libvirt-exporter (tests/api/metrics.rs)
    prometheus prometheus-libvirt-exporter
    # `kill` (the tests stop and resume QEMU, libvirtd and the service) and `ip` (removes a
    # test guest's tap): not in a minimal Debian 12
    procps iproute2
    # coordination = "etcd": the real etcd of the failover tests (tests/api/coordination.rs),
    # and protoc, which the etcd-client crate needs to build
    etcd-server protobuf-compiler
    # the CAs and certificates of the TLS tests (tests/api/support/certs.rs); ca-certificates
    # pulls it in today, named so that it stays
    openssl
)

missing=()
for pkg in "${PKGS[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    [[ $status == "install ok installed" ]] || missing+=("$pkg")
done

if ((${#missing[@]})); then
    ((EUID == 0)) || die "missing packages (${missing[*]}); run as root to install them"
    log "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q

    install=("${PKGS[@]}")
    apt_opts=(-y -q --no-install-recommends)
    # Some images carry a qemu-utils from bookworm-backports without that apt source; it
    # conflicts with bookworm's qemu-system-x86. Move it to the version apt can see.
    inst=$(dpkg-query -W -f='${Version}' qemu-utils 2>/dev/null || true)
    if [[ -n $inst ]]; then
        mapfile -t avail < <(apt-cache madison qemu-utils | awk -F'|' '{gsub(/ /, "", $2); print $2}')
        if ((${#avail[@]})) && ! printf '%s\n' "${avail[@]}" | grep -qxF -- "$inst"; then
            best=${avail[0]}
            for v in "${avail[@]}"; do
                if dpkg --compare-versions "$v" gt "$best"; then best=$v; fi
            done
            log "qemu-utils $inst comes from no configured apt source; installing $best"
            install=("${install[@]/#qemu-utils/qemu-utils=$best}")
            apt_opts+=(--allow-downgrades)
        fi
    fi

    # Packages must not start their daemons (influxd on :8086 etc.) as a side effect;
    # test-env.sh and run.sh start exactly what they need. Docker images already have this.
    policy=/usr/sbin/policy-rc.d
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        trap 'rm -f "$policy"' EXIT
    fi
    apt-get install "${apt_opts[@]}" "${install[@]}"
fi

load_cargo_env || die "cargo not found (looked on PATH and in ~/.cargo): install the Rust toolchain with rustup first"

# The venv is rebuilt whole when its pins change or it no longer imports (say, the
# interpreter it was made from is gone); the stamp is written last, so a half-built venv
# is never taken for a finished one.
venv=${VMT_TEST_STATE:-/var/tmp/vmtelemetry-test}/venv
reqs=$here/../tests/api/support/requirements.txt
stamp=$venv/.vmtelemetry-requirements.txt
if ! { cmp -s "$reqs" "$stamp" && "$venv/bin/python" -I -c 'import datafusion, pyarrow' 2>/dev/null; }; then
    # Debian's python3 (with python3-venv) rather than whatever python3 is first on PATH.
    python=/usr/bin/python3
    [[ -x $python ]] || python=$(command -v python3) || die "python3 not found: install python3 and python3-venv"
    log "building $venv (DataFusion for the InfluxDB 3 stand-in) with $python"
    rm -rf "$venv"
    mkdir -p "${venv%/*}"
    "$python" -m venv "$venv" || die "$python -m venv $venv failed: is python3-venv installed?"
    "$venv/bin/python" -m pip install --disable-pip-version-check --no-input --quiet \
        --only-binary=:all: --requirement "$reqs" || die "pip could not install $reqs into $venv"
    cp "$reqs" "$stamp"
fi
