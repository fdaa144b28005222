"""The kit's Prometheus side. deploy/grafana/vmtelemetry.json against the real binary: valid
JSON, a Prometheus datasource variable that every panel and target uses, and every metric it
queries declared in a scrape of /metrics (the binary collecting test:///default, InfluxDB
absent). Every Kubernetes pod template: the prometheus.io annotations, on the `http` port.
Usage: prometheus.py BINARY. Prints one PASS/FAIL line per check; exits 1 on any failure."""

import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import yaml

DEPLOY = Path(__file__).resolve().parents[1]
DASHBOARD = DEPLOY / "grafana" / "vmtelemetry.json"
# A Prometheus metric name as PromQL writes one; only the service's families are checked.
NAME = re.compile(r"\b(?:vmtelemetry|libvirt|process)_[a-zA-Z0-9_]*")
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def scrape(binary: str) -> str:
    """The /metrics text of the binary, started for it and stopped after."""
    port = free_port()
    with tempfile.TemporaryDirectory() as spool:
        env = dict(
            os.environ,
            VMTELEMETRY_LIBVIRT_URI="test:///default",
            VMTELEMETRY_INFLUX_URL="http://127.0.0.1:1",
            VMTELEMETRY_SPOOL_DIR=spool,
            VMTELEMETRY_LISTEN=f"127.0.0.1:{port}",
            VMTELEMETRY_POLL_INTERVAL="0.2",
            RUST_LOG="error",
        )
        child = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 20
            while True:
                try:
                    url = f"http://127.0.0.1:{port}/metrics"
                    text = urllib.request.urlopen(url, timeout=5).read().decode()
                    # After a cycle, the host's histograms have a sample; the next scrape
                    # shows the requests before it.
                    if "vmtelemetry_host_cycle_duration_seconds_count{" in text:
                        return urllib.request.urlopen(url, timeout=5).read().decode()
                except OSError:
                    pass
                if time.monotonic() > deadline or child.poll() is not None:
                    raise SystemExit(f"FAIL: {binary} served no scrape with a cycle in it")
                time.sleep(0.2)
        finally:
            child.terminate()
            child.wait(timeout=15)


def declared(text: str) -> set[str]:
    """Every name a scrape can be queried by: each family's, and a histogram's series."""
    names = set()
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[:2] == ["#", "TYPE"]:
            name, kind = parts[2], parts[3]
            names.add(name)
            if kind == "histogram":
                names.update(name + suffix for suffix in HISTOGRAM_SUFFIXES)
    return names


def panels(dashboard: dict) -> list[dict]:
    found = []
    for panel in dashboard.get("panels", []):
        found.append(panel)
        found.extend(panel.get("panels", []))
    return found


def annotation_problems() -> list[str]:
    """Every pod template asks to be scraped, on its `http` port, at /metrics."""
    problems = []
    for path in sorted((DEPLOY / "kubernetes").rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            template = (doc or {}).get("spec", {}).get("template")
            if not template:
                continue
            notes = template["metadata"].get("annotations", {})
            ports = [p["containerPort"] for c in template["spec"]["containers"]
                     for p in c.get("ports", []) if p.get("name") == "http"]
            want = {"prometheus.io/scrape": "true", "prometheus.io/path": "/metrics",
                    "prometheus.io/port": str(ports[0]) if ports else "an http port"}
            problems.extend(f"{path.name}: {k} is {notes.get(k)!r}, not {v!r}"
                            for k, v in want.items() if notes.get(k) != v)
    return problems


def main() -> int:
    problems: dict[str, list[str]] = {
        "every Kubernetes pod template has the prometheus.io annotations of its http port":
            annotation_problems(),
    }
    try:
        dashboard = json.loads(DASHBOARD.read_text())
    except (OSError, ValueError) as error:
        print(f"FAIL: {DASHBOARD.name} is valid JSON -- {error}")
        return 1
    print(f"PASS: {DASHBOARD.name} is valid JSON")
    variables = dashboard.get("templating", {}).get("list", [])
    source = [v for v in variables if v.get("type") == "datasource" and v.get("query") == "prometheus"]
    wiring = problems.setdefault("a Prometheus datasource variable, used by every panel and target", [])
    if not source:
        wiring.append("no variable of type datasource with query prometheus")
    uid = "${%s}" % source[0]["name"] if source else None
    exprs = []
    for panel in panels(dashboard):
        if panel.get("type") == "row":
            continue
        for item in [panel, *panel.get("targets", [])]:
            if item.get("datasource", {}).get("uid") != uid:
                wiring.append(f"{panel.get('title')}: datasource is not {uid}")
        exprs.extend((panel.get("title"), t.get("expr", "")) for t in panel.get("targets", []))
    exprs.extend(("variable " + v["name"], v.get("definition", "")) for v in variables)
    if not exprs:
        wiring.append("no panel queries anything")
    known = declared(scrape(sys.argv[1]))
    missing = problems.setdefault("every metric the dashboard queries is in a scrape of the binary", [])
    for title, expr in exprs:
        missing.extend(f"{title}: {name}" for name in NAME.findall(expr) if name not in known)
    for what, found in problems.items():
        print(f"FAIL: {what} -- {'; '.join(found)}" if found else f"PASS: {what}")
    return 1 if any(problems.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
