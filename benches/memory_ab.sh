#!/usr/bin/env bash
# Resident memory of two release binaries side by side, a benchmark, not a test: the memory step
# of benches/libvirt.sh (10,000 libvirt test-driver VMs, 1 s poll, insights off, the spool on),
# run for binary A, then B, BENCH_RUNS (3) times in turn, so that the page cache and the load
# weigh on both alike; each run the median of 20 VmRSS readings over 5 s after 65 cycles. Writes
# to the InfluxDB 1.x that scripts/test-env.sh up leaves on VMT_TEST_INFLUX_PORT (18086).
# Extra NAME=VALUE arguments after the binaries go to both services' environment.
# Prints a Markdown table of the runs and the medians.
# Usage: benches/memory_ab.sh A B [NAME=VALUE...]   (stops every process it starts itself)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here/.."
# shellcheck source=benches/node_xml.sh
. benches/node_xml.sh
# shellcheck source=benches/memory_step.sh
. benches/memory_step.sh

a=$1 b=$2
shift 2
RUNS=${BENCH_RUNS:-3}
api_port=${BENCH_API_PORT:-18393}
work=$(mktemp -d /tmp/vmt-memory-ab.XXXXXX)
pid=
trap '[[ -z $pid ]] || kill -KILL "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
node_xml 10000 "$work/node.xml"

# run BINARY [NAME=VALUE...]: sets rss, the median VmRSS (KiB) at steady state.
run() {
    memory_step_start "$1" "$work/node.xml" bench_memory_ab "$api_port" "$work" "${@:2}"
    rss=$(resident)
    kill -TERM "$pid"
    wait "$pid" || true
    pid=
}

echo "| run | A: $a (KiB) | B: $b (KiB) | load |"
echo "|---|---|---|---|"
all_a=() all_b=()
for i in $(seq "$RUNS"); do
    run "$a" "$@"
    all_a+=("$rss")
    run "$b" "$@"
    all_b+=("$rss")
    echo "| $i | ${all_a[-1]} | $rss | $(cut -d' ' -f1 /proc/loadavg) |"
done
ma=$(printf '%s\n' "${all_a[@]}" | median) mb=$(printf '%s\n' "${all_b[@]}" | median)
echo "| median | $ma | $mb | B − A: $((mb - ma)) KiB |"
