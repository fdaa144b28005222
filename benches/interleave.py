"""The service's cycles and the exporter's scrapes in rounds, against the same libvirtd.

One after the other, minutes apart, the two were measured on machines whose speed drifts by up
to 2x within an hour. Here each round times one of each, a scrape half way between two of the
service's cycles, so that both see the same machine. Per round: read the service's status (the
cycle just done), read CPU counters, scrape, read them again, sleep until the next cycle is done.
libvirtd's CPU is split between the two by those windows (per-thread schedstat, in ns); the
service's and the exporter's own CPU is each process's user + system time over all rounds (they
idle while the other works). A round whose scrape overlapped a cycle of the service is counted.

QEMU's CPU (when BENCH_QEMU_PIDS names the guests' QEMU processes, comma-separated) is split by
the same windows, less its idle rate (BENCH_QEMU_IDLE_MS_PER_S, measured before) over each
window's length: the CPU QEMU spends answering the calls.

Usage: interleave.py STATUS_URL EXPORTER_URL METRICS_FILE SERVICE_PID LIBVIRTD_PID EXPORTER_PID
       POLL_SECONDS ROUNDS WITH_STATS(0|1)
Prints one JSON object of figures (times in ms).
"""

import glob
import json
import os
import statistics
import sys
import time
import urllib.request
from datetime import datetime

HZ = os.sysconf("SC_CLK_TCK")


def process_cpu_ms(pid):
    """User + system time of a process, threads that exited included."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / HZ


def threads_cpu_ms(pid):
    """Time on CPU of a process's live threads, in ns precision (libvirtd's pool lives on)."""
    total = 0
    for path in glob.glob(f"/proc/{pid}/task/*/schedstat"):
        try:
            with open(path) as f:
                total += int(f.read().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total / 1e6


def qemu_cpu_ms(pids):
    return sum(threads_cpu_ms(pid) for pid in pids)


def epoch(rfc3339):
    head, _, fraction = rfc3339.rstrip("Z").partition(".")
    seconds = datetime.fromisoformat(head + "+00:00").timestamp()
    return seconds + (float("0." + fraction) if fraction else 0.0)


def main():
    status_url, exporter_url, metrics_file = sys.argv[1:4]
    service, libvirtd, exporter = (int(p) for p in sys.argv[4:7])
    poll, rounds, with_stats = float(sys.argv[7]), int(sys.argv[8]), sys.argv[9] == "1"
    qemu = [int(p) for p in os.environ.get("BENCH_QEMU_PIDS", "").split(",") if p]
    qemu_idle = float(os.environ.get("BENCH_QEMU_IDLE_MS_PER_S") or 0) / 1000  # per ms

    def host():
        with urllib.request.urlopen(status_url) as reply:
            return json.load(reply)["hosts"][0]

    def done(h):
        return (h["total_collections"], h["stats_collections"] if with_stats else 0)

    def scrape():
        started = time.time()
        with urllib.request.urlopen(exporter_url) as reply:
            body = reply.read()
        ended = time.time()
        with open(metrics_file, "wb") as f:
            f.write(body)
        return started, ended

    # Warm up: the service past its first cycles, the exporter past its first scrape.
    deadline = time.time() + 120
    while True:
        cycles, stats = done(host())
        if cycles >= 2 and (stats >= 2 or not with_stats):
            break
        if time.time() > deadline:
            sys.exit("the service did not complete two cycles")
        time.sleep(0.1)
    scrape()

    service_walls, scrape_walls = [], []
    libvirtd_for_service = libvirtd_for_exporter = 0.0
    qemu_for_service = qemu_for_exporter = 0.0
    overlaps = irregular = 0
    previous = None  # (counts, scrape window, libvirtd CPU after the scrape)
    service_cpu0 = exporter_cpu0 = None
    cycles = 0
    while len(scrape_walls) < rounds:
        h = host()
        counts = done(h)
        # The extended groups' calls run right after the seed's, in the same cycle: the cycle
        # ends (last_collection_time) after both.
        cycle_end = epoch(h["last_collection_time"])
        wall = h["last_collection_duration_sec"]
        if with_stats:
            wall += h["last_stats_duration_sec"]
        cycle_start = cycle_end - wall
        libvirtd_before = threads_cpu_ms(libvirtd)
        qemu_before, before_at = qemu_cpu_ms(qemu), time.time()
        if previous is not None:
            before_counts, (scrape_start, scrape_end), libvirtd_after_scrape, qemu_after = previous
            new = [a - b for a, b in zip(counts, before_counts)]
            cycles += new[0]
            libvirtd_for_service += libvirtd_before - libvirtd_after_scrape
            qemu_for_service += qemu_before - qemu_after[0]
            qemu_for_service -= qemu_idle * (before_at - qemu_after[1]) * 1000
            if new[0] == 1 and (not with_stats or new[1] == 1):
                service_walls.append(wall * 1000)
            else:
                irregular += 1
            if cycle_start < scrape_end and cycle_end > scrape_start:
                overlaps += 1
        window = scrape()
        libvirtd_after = threads_cpu_ms(libvirtd)
        qemu_after = (qemu_cpu_ms(qemu), time.time())
        if previous is None:
            service_cpu0, exporter_cpu0 = process_cpu_ms(service), process_cpu_ms(exporter)
        else:
            libvirtd_for_exporter += libvirtd_after - libvirtd_before
            qemu_for_exporter += qemu_after[0] - qemu_before
            qemu_for_exporter -= qemu_idle * (qemu_after[1] - before_at) * 1000
            scrape_walls.append((window[1] - window[0]) * 1000)
        previous = (counts, window, libvirtd_after, qemu_after)
        # Half way between the next cycle's end and the one after: the next cycle starts one poll
        # after this one did.
        next_read = cycle_start + poll * 1.5
        while next_read < time.time() + 0.01:
            next_read += poll
        time.sleep(next_read - time.time())
    service_cpu = process_cpu_ms(service) - service_cpu0
    exporter_cpu = process_cpu_ms(exporter) - exporter_cpu0
    scrapes = len(scrape_walls)
    print(json.dumps({
        "rounds": scrapes,
        "cycles": cycles,
        "irregular_rounds": irregular,
        "overlapping_rounds": overlaps,
        "service_wall_ms": statistics.median(service_walls) if service_walls else 0,
        "service_cpu_ms": service_cpu / cycles if cycles else 0,
        "service_libvirtd_cpu_ms": libvirtd_for_service / cycles if cycles else 0,
        "exporter_wall_ms": statistics.median(scrape_walls),
        "exporter_cpu_ms": exporter_cpu / scrapes,
        "exporter_libvirtd_cpu_ms": libvirtd_for_exporter / scrapes,
        "service_qemu_cpu_ms": qemu_for_service / cycles if cycles else 0,
        "exporter_qemu_cpu_ms": qemu_for_exporter / scrapes,
    }))


if __name__ == "__main__":
    main()
