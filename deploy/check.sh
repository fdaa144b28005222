#!/usr/bin/env bash
# Checks of the deployment kit in deploy/: linters and schemas for every manifest, then the real
# vmtelemetry binary started with exactly the configuration and environment each manifest gives
# it (see deploy/README.md, "Checks"). Prints one PASS/FAIL/SKIP line per check and ends with
# "N passed, M failed"; exits 1 when any check failed.
#
# Needs, and installs when missing (Debian 12, as root): systemd (systemd-analyze), shellcheck,
# libvirt0, python3 with venv, etcd-server (the central replicas' etcd); Python tools from PyPI
# into $VMT_TEST_STATE/deploy-venv (deploy/checks/requirements.txt). Uses kubectl's built-in
# kustomize when kubectl is there.
#
# Environment:
#   VMT_BIN        the vmtelemetry binary to run (default target/debug/vmtelemetry, built with
#                  cargo when missing)
#   VMT_TEST_STATE state directory (default /var/tmp/vmtelemetry-test)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
state=${VMT_TEST_STATE:-/var/tmp/vmtelemetry-test}
venv=$state/deploy-venv
bin=${VMT_BIN:-$root/target/debug/vmtelemetry}
requirements=$here/checks/requirements.txt

passed=0
failed=0
skipped=0
pass() {
    printf 'PASS: %s\n' "$1"
    passed=$((passed + 1))
}
fail() {
    printf 'FAIL: %s -- %s\n' "$1" "$2"
    failed=$((failed + 1))
}
skip() {
    printf 'SKIP: %s -- %s\n' "$1" "$2"
    skipped=$((skipped + 1))
}
note() { printf '%s\n' "check.sh: $*" >&2; }

tmp=$(mktemp -d)
cleanup() { rm -rf "$tmp"; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# tool WHAT CMD...: PASS when CMD exits 0 and prints nothing unexpected, else FAIL with its output.
tool() {
    local what=$1 out=$tmp/tool.out
    shift
    if "$@" >"$out" 2>&1; then
        pass "$what"
    else
        sed 's/^/    /' "$out" | tail -n 40
        fail "$what" "$1 exited non-zero (output above)"
    fi
}

# tally FILE: counts the PASS/FAIL/SKIP lines a sub-check printed.
tally() {
    passed=$((passed + $(grep -c '^PASS: ' "$1" || true)))
    failed=$((failed + $(grep -c '^FAIL: ' "$1" || true)))
    skipped=$((skipped + $(grep -c '^SKIP: ' "$1" || true)))
}

############################################################## tools

install_apt() {
    local missing=() pkg
    command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
    command -v shellcheck >/dev/null 2>&1 || missing+=(shellcheck)
    command -v python3 >/dev/null 2>&1 || missing+=(python3)
    for pkg in libvirt0 python3-venv etcd-server; do
        [[ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)" == "install ok installed" ]] ||
            missing+=("$pkg")
    done
    ((${#missing[@]})) || return 0
    ((EUID == 0)) || { note "missing ${missing[*]}; run as root to install them"; return 1; }
    note "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
}

# The venv is rebuilt whenever requirements.txt or the Python changes.
install_venv() {
    local stamp want
    want=$({ cat "$requirements"; python3 --version; } | sha256sum | cut -d' ' -f1)
    stamp=$venv/.deploy-check-stamp
    if [[ -x $venv/bin/python && -f $stamp && "$(cat "$stamp")" == "$want" ]]; then
        return 0
    fi
    note "creating $venv"
    rm -rf "$venv"
    mkdir -p "$state"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$requirements"
    printf '%s\n' "$want" >"$stamp"
}

# The binary: VMT_BIN as given, or the debug build (built here when missing).
find_binary() {
    [[ -x $bin ]] && return 0
    if [[ -n ${VMT_BIN:-} ]]; then
        note "VMT_BIN=$VMT_BIN is not an executable"
        return 1
    fi
    if ! command -v cargo >/dev/null 2>&1 && [[ -f ${HOME:-/nonexistent}/.cargo/env ]]; then
        # shellcheck source=/dev/null
        . "$HOME/.cargo/env"
    fi
    command -v cargo >/dev/null 2>&1 || { note "no $bin and no cargo to build it"; return 1; }
    note "building $bin"
    (cd "$root" && cargo build --quiet --bin vmtelemetry)
}

if ! install_apt; then
    fail "install the Debian packages the checks need" "apt-get failed"
fi
if ! install_venv; then
    fail "install the Python tools (deploy/checks/requirements.txt)" "venv or pip failed"
    printf '%d passed, %d failed\n' "$passed" "$failed"
    exit 1
fi
bin_ok=true
find_binary || bin_ok=false
[[ $bin == /* ]] || bin=$PWD/$bin

cd "$root"
mapfile -t k8s_manifests < <(find deploy/kubernetes -name '*.yaml' ! -name kustomization.yaml | sort)

############################################################## linters and schemas

tool "shellcheck: deploy/check.sh and the image's and compose's scripts" \
    shellcheck -x deploy/check.sh deploy/docker/vmtelemetry-entrypoint.sh \
    deploy/docker/vmtelemetry-healthcheck.sh deploy/compose/influx-token-init.sh
tool "hadolint: deploy/Dockerfile (no finding, info level included)" \
    "$venv/bin/hadolint" --no-color --failure-threshold info deploy/Dockerfile
tool "yamllint --strict: every YAML file in deploy/" \
    "$venv/bin/yamllint" --strict -c deploy/checks/yamllint.yaml deploy
tool "docker-compose.yml validates against the Compose Specification schema" \
    "$venv/bin/check-jsonschema" --builtin-schema vendor.compose-spec deploy/docker-compose.yml
tool "kubernetes manifests validate (strict: no unknown field) against Kubernetes 1.28" \
    "$venv/bin/kubernetes-validate" --strict --quiet -k 1.28.0 "${k8s_manifests[@]}"
tool "kubernetes manifests validate (strict) against Kubernetes 1.37" \
    "$venv/bin/kubernetes-validate" --strict --quiet -k 1.37.0 "${k8s_manifests[@]}"
if command -v kubectl >/dev/null 2>&1; then
    for dir in deploy/kubernetes deploy/kubernetes/central; do
        out=$tmp/$(basename "$dir").yaml
        if kubectl kustomize "$dir" >"$out" 2>"$tmp/kustomize.err"; then
            tool "kubectl kustomize $dir builds; its output validates (strict, 1.28)" \
                "$venv/bin/kubernetes-validate" --strict --quiet -k 1.28.0 "$out"
        else
            sed 's/^/    /' "$tmp/kustomize.err"
            fail "kubectl kustomize $dir builds" "kustomize failed (output above)"
        fi
    done
else
    skip "kubectl kustomize deploy/kubernetes{,/central}" "no kubectl here (not in Debian 12)"
fi

############################################################## systemd

# systemd-analyze verify needs the ExecStart binary to exist: verify a copy pointing at the
# binary under test (same unit name; no PID-1 systemd needed). Any output is a finding: verify
# only warns about unknown directives.
verify_unit() {
    mkdir -p "$tmp/unit"
    sed "s|^ExecStart=/usr/local/bin/vmtelemetry |ExecStart=$bin |" \
        deploy/systemd/vmtelemetry.service >"$tmp/unit/vmtelemetry.service"
    local out
    out=$(systemd-analyze verify "$tmp/unit/vmtelemetry.service" 2>&1) || {
        printf '%s\n' "$out"
        return 1
    }
    [[ -z $out ]] || { printf '%s\n' "$out"; return 1; }
}
if $bin_ok; then
    tool "systemd-analyze verify deploy/systemd/vmtelemetry.service (ExecStart -> $bin)" verify_unit
    tool "systemd-analyze security --offline: exposure of vmtelemetry.service at most 2.0" \
        systemd-analyze security --offline=yes --threshold=20 "$tmp/unit/vmtelemetry.service"
else
    fail "systemd-analyze verify deploy/systemd/vmtelemetry.service" "no binary for ExecStart"
fi
sysusers_root() {
    mkdir -p "$tmp/sysroot/etc"
    # With --root, a relative path would be taken inside the root.
    systemd-sysusers --root="$tmp/sysroot" "$root/deploy/systemd/vmtelemetry.sysusers" &&
        grep -q '^vmtelemetry:.*:/var/lib/vmtelemetry:/usr/sbin/nologin$' "$tmp/sysroot/etc/passwd"
}
tool "systemd-sysusers creates the vmtelemetry account from vmtelemetry.sysusers (in a scratch root)" \
    sysusers_root

############################################################## manifests and the real binary

# sub NAME ARGS...: runs deploycheck.py, shows and tallies its lines; a crash is a failure too.
sub() {
    local name=$1 out=$tmp/$1.out rc=0
    shift
    "$venv/bin/python" deploy/checks/deploycheck.py "$@" >"$out" 2>&1 || rc=$?
    cat "$out"
    tally "$out"
    if ((rc != 0)) && ! grep -q '^FAIL: ' "$out"; then
        fail "deploycheck.py $name" "exited $rc without a FAIL line (crashed?)"
    fi
}
sub static static
if $bin_ok; then
    sub runtime runtime --bin "$bin" --state "$state"
    tool "deploy/grafana/vmtelemetry.json queries only what a scrape of the binary has; pods carry prometheus.io annotations" \
        "$venv/bin/python" deploy/checks/prometheus.py "$bin"
else
    fail "run the binary with each manifest's configuration" "no binary ($bin)"
fi

summary="$passed passed, $failed failed"
((skipped == 0)) || summary+=", $skipped skipped"
printf '%s\n' "$summary"
((failed == 0))
