#!/usr/bin/env python3
"""Checks that the deployment kit in deploy/ matches what vmtelemetry really reads.

Run by deploy/check.sh, in its venv (PyYAML, dockerfile-parse):

    deploycheck.py static                 the manifests against each other, the Dockerfile and
                                          the configuration keys of config/default.toml
    deploycheck.py runtime --bin PATH --state DIR
                                          the real binary, started with exactly the configuration
                                          and environment each manifest gives it

Each check prints one line: "PASS: what", "FAIL: what -- why" or "SKIP: what -- why". The exit
status is 1 when a check failed. Every process started here is a child of this one and is stopped
by its pid before exit, whatever happens.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import re
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable

import yaml
from dockerfile_parse import DockerfileParser

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "kubernetes"
PREFIX = "VMTELEMETRY_"
# Variables the service reads besides VMTELEMETRY_*, and the entrypoint's own.
OTHER_SERVICE_VARS = {"INFLUX_TOKEN", "RUST_LOG"}
ENTRYPOINT_VARS = {"INFLUX_TOKEN_FILE", "ADMIN_TOKEN_FILE"}
# Sample values for the downward API, as the kubelet would fill them in.
NODE_NAME = "hv-node-7"


# ------------------------------------------------------------------------------------ reporting


class Report:
    def __init__(self) -> None:
        self.failed = 0

    def ok(self, what: str) -> None:
        print(f"PASS: {what}", flush=True)

    def fail(self, what: str, why: str) -> None:
        self.failed += 1
        print(f"FAIL: {what} -- {why}", flush=True)

    def skip(self, what: str, why: str) -> None:
        print(f"SKIP: {what} -- {why}", flush=True)

    def check(self, what: str, problems: list[str]) -> bool:
        """PASS when `problems` is empty, else FAIL listing them."""
        if problems:
            self.fail(what, "; ".join(problems))
            return False
        self.ok(what)
        return True


R = Report()


class CheckError(Exception):
    """A manifest is not shaped as a check expects: reported as a FAIL of that check."""


def guarded(what: str, body: Callable[[], list[str]]) -> None:
    """Runs a check body returning its problems; an exception is a FAIL too, not a crash."""
    try:
        R.check(what, body())
    except Exception as error:  # noqa: BLE001 - any surprise in a manifest is that check's failure
        R.fail(what, f"{type(error).__name__}: {error}")


# ------------------------------------------------------------------------------ configuration


def config_keys() -> set[str]:
    """The service's keys: those config/default.toml sets, and those it shows commented out."""
    text = (ROOT / "config" / "default.toml").read_text()
    keys = set(tomllib.loads(text))
    keys |= set(re.findall(r"^#\s*([a-z][a-z0-9_]*)\s*=", text, re.M))
    return keys


KEYS = config_keys()


def env_problems(origin: str, names: list[str], entrypoint: bool = True) -> list[str]:
    """Variables that are no key. `entrypoint`: the image's entrypoint runs (it reads *_FILE)."""
    problems = []
    for name in names:
        if name.startswith(PREFIX):
            key = name[len(PREFIX) :].lower()
            if key not in KEYS:
                problems.append(f"{origin} sets {name}, but `{key}` is no configuration key")
        elif name in ENTRYPOINT_VARS and not entrypoint:
            problems.append(f"{origin} sets {name}, which only the image's entrypoint reads")
    return problems


def toml_problems(origin: str, text: str) -> list[str]:
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        return [f"{origin} is not TOML: {error}"]
    return [f"{origin} sets `{key}`, no configuration key" for key in table if key not in KEYS]


def port_of(listen: str) -> int:
    return int(listen.rsplit(":", 1)[1])


def effective(key: str, env: dict[str, str], toml_text: str | None) -> Any:
    """A key's value as the service resolves it: environment, then file, then defaults."""
    if PREFIX + key.upper() in env:
        return env[PREFIX + key.upper()]
    if toml_text is not None:
        table = tomllib.loads(toml_text)
        if key in table:
            return table[key]
    return tomllib.loads((ROOT / "config" / "default.toml").read_text()).get(key)


def seconds(text: str | int | float) -> float:
    """`15s`, `1m30s`, `15` as seconds (Compose and systemd durations)."""
    if isinstance(text, (int, float)):
        return float(text)
    total = 0.0
    for number, unit in re.findall(r"([\d.]+)\s*(ms|s|m|h|)", text.strip()):
        total += float(number) * {"ms": 0.001, "s": 1, "": 1, "m": 60, "h": 3600}[unit]
    return total


def grace_problems(origin: str, grace: float, env: dict[str, str],
                   toml_text: str | None) -> list[str]:
    """The orchestrator must wait longer than the service's own shutdown flush before KILL."""
    if "shutdown_timeout" not in KEYS:
        return []
    flush = float(effective("shutdown_timeout", env, toml_text))
    if grace <= flush:
        return [f"{origin} kills after {grace:g}s, within shutdown_timeout ({flush:g}s)"]
    return []


def quantity(text: str) -> float:
    """A Kubernetes quantity (`2Gi`, `500M`) in bytes."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|K|M|G|T)?", str(text).strip())
    if not match:
        raise CheckError(f"cannot read the quantity {text!r}")
    units = {None: 1, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 1e3, "K": 1e3,
             "M": 1e6, "G": 1e9, "T": 1e12}
    return float(match.group(1)) * units[match.group(2)]


def spool_fits(origin: str, size: float, env: dict[str, str], toml_text: str | None) -> list[str]:
    """A state volume of `size` bytes must hold the spool the service may fill (spool_max_bytes)."""
    if "spool_max_bytes" not in KEYS or not str(effective("spool_dir", env, toml_text) or ""):
        return []
    spool = float(effective("spool_max_bytes", env, toml_text))
    if size <= spool:
        return [f"{origin} ({size / 2**30:g} GiB) cannot hold spool_max_bytes "
                f"({spool / 2**30:g} GiB)"]
    return []


# ---------------------------------------------------------------------------------- Dockerfile


@dataclass
class Image:
    stages: list[list[tuple[str, str]]]
    env: dict[str, str]
    user: str
    cmd: list[str]
    entrypoint: list[str]
    healthcheck: str
    expose: list[str]
    volumes: list[str]
    copies: dict[str, str]  # destination in the image -> source in the build context

    def source_of(self, path: str) -> Path:
        if path not in self.copies:
            raise CheckError(f"the Dockerfile copies nothing to {path}")
        return ROOT / self.copies[path]


def exec_form(value: str) -> list[str]:
    value = value.strip()
    if value.startswith("["):
        return json.loads(value)
    return ["/bin/sh", "-c", value]


def load_image() -> Image:
    parser = DockerfileParser(fileobj=io.BytesIO((DEPLOY / "Dockerfile").read_bytes()))
    stages: list[list[tuple[str, str]]] = []
    for item in parser.structure:
        instruction, value = item["instruction"], item["value"]
        if instruction == "FROM":
            stages.append([])
        if instruction != "COMMENT" and stages:
            stages[-1].append((instruction, value))
    final = stages[-1]

    def last(name: str) -> str:
        values = [v for i, v in final if i == name]
        return values[-1] if values else ""

    copies = {}
    for instruction, value in final:
        if instruction != "COPY":
            continue
        words = [w for w in shlex.split(value) if not w.startswith("--")]
        if any(w.startswith("--from") for w in shlex.split(value)):
            continue
        *sources, dest = words
        for source in sources:
            copies[dest] = source
    volumes: list[str] = []
    for instruction, value in final:
        if instruction == "VOLUME":
            v = value.strip()
            volumes += json.loads(v) if v.startswith("[") else v.split()
    return Image(
        stages=stages,
        env=dict(parser.envs),
        user=last("USER"),
        cmd=exec_form(last("CMD")) if last("CMD") else [],
        entrypoint=exec_form(last("ENTRYPOINT")) if last("ENTRYPOINT") else [],
        healthcheck=last("HEALTHCHECK"),
        expose=[p for i, v in final if i == "EXPOSE" for p in v.split()],
        volumes=volumes,
        copies=copies,
    )


def apt_packages(run: str) -> set[str]:
    packages: set[str] = set()
    for command in re.split(r"&&|;", run):
        words = command.split()
        if "apt-get" in words and "install" in words:
            after = words[words.index("install") + 1 :]
            packages |= {w for w in after if not w.startswith("-")}
    return packages


def check_dockerfile(image: Image) -> None:
    def body() -> list[str]:
        p = []
        if len(image.stages) != 2:
            p.append(f"{len(image.stages)} stages, expected build + runtime")
            return p
        build, runtime = image.stages
        if not re.fullmatch(r"rust:1-bookworm\s+AS\s+\S+", build[0][1], re.I):
            p.append(f"build stage is FROM {build[0][1]}, expected rust:1-bookworm AS …")
        if runtime[0][1] != "debian:bookworm-slim":
            p.append(f"runtime stage is FROM {runtime[0][1]}, expected debian:bookworm-slim")
        build_apt = set().union(*[apt_packages(v) for i, v in build if i == "RUN"])
        if not {"libvirt-dev", "pkg-config"} <= build_apt:
            p.append(f"build stage installs {sorted(build_apt)}, needs libvirt-dev and pkg-config")
        if not any("cargo build --release --locked" in v for i, v in build if i == "RUN"):
            p.append("no `cargo build --release --locked` in the build stage")
        runtime_apt = set().union(*[apt_packages(v) for i, v in runtime if i == "RUN"])
        if runtime_apt != {"libvirt0", "ca-certificates"}:
            p.append(f"runtime installs {sorted(runtime_apt)}, "
                     "expected libvirt0 and ca-certificates")
        return p

    guarded("Dockerfile: two stages, rust:1-bookworm build (libvirt-dev, pkg-config, "
            "--locked) and debian:bookworm-slim runtime (libvirt0, ca-certificates only)", body)

    def identity() -> list[str]:
        p = []
        uid = image.user.split(":")[0]
        if not uid.isdigit() or int(uid) == 0:
            p.append(f"USER {image.user!r} is not a numeric non-root uid")
        elif uid != "10001":
            p.append(f"USER {image.user}: expected uid 10001")
        runtime_runs = " ".join(v for i, v in image.stages[-1] if i == "RUN")
        if f"--uid {uid}" not in runtime_runs:
            p.append(f"no account is created with uid {uid}")
        return p

    guarded("Dockerfile: runs as the non-root uid 10001, created in the image", identity)

    def surface() -> list[str]:
        p = []
        listen = image.env.get(PREFIX + "LISTEN", "")
        if not listen.startswith("0.0.0.0:"):
            p.append(f"ENV {PREFIX}LISTEN={listen!r}: containers must listen on 0.0.0.0")
        elif str(port_of(listen)) not in [e.split("/")[0] for e in image.expose]:
            p.append(f"EXPOSE {image.expose} does not include the listen port {port_of(listen)}")
        if image.env.get(PREFIX + "LOG_FORMAT") != "json":
            p.append(f"ENV {PREFIX}LOG_FORMAT is {image.env.get(PREFIX + 'LOG_FORMAT')!r}, "
                     "expected json")
        if "/var/lib/vmtelemetry" not in image.volumes:
            p.append(f"VOLUME {image.volumes} lacks /var/lib/vmtelemetry")
        p += env_problems("Dockerfile ENV", list(image.env))
        return p

    guarded("Dockerfile: ENV listen 0.0.0.0 on the EXPOSEd port, JSON logs, "
            "VOLUME /var/lib/vmtelemetry, only real keys", surface)

    def healthcheck() -> list[str]:
        p = []
        words = image.healthcheck.split()
        if not words or words[0].upper() == "NONE":
            return ["no HEALTHCHECK"]
        command = exec_form(image.healthcheck[image.healthcheck.index("CMD") + 3 :])
        script = image.source_of(command[0])
        if "/health" not in script.read_text():
            p.append(f"{script.relative_to(ROOT)} does not GET /health")
        return p

    guarded("Dockerfile: HEALTHCHECK runs a script the image ships, which GETs /health",
            healthcheck)

    def files() -> list[str]:
        p = []
        ignored = [
            line.strip().rstrip("/")
            for line in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
            if line.strip() and not line.startswith("#")
        ]
        for dest, source in image.copies.items():
            if source == ".":
                continue
            if not (ROOT / source).is_file():
                p.append(f"COPY source {source} does not exist")
            if any(source == i or source.startswith(i + "/") for i in ignored):
                p.append(f"COPY source {source} is excluded by Dockerfile.dockerignore")
        if "--config" not in image.cmd:
            p.append(f"CMD {image.cmd} gives no --config")
        else:
            config = image.source_of(image.cmd[image.cmd.index("--config") + 1])
            p += toml_problems(str(config.relative_to(ROOT)), config.read_text())
        if not image.entrypoint:
            p.append("no ENTRYPOINT")
        else:
            image.source_of(image.entrypoint[0])
        return p

    guarded("Dockerfile: --config names the shipped deploy/vmtelemetry.container.toml; "
            "every COPY source exists and is in the build context", files)


# ------------------------------------------------------------------------------------ compose


@dataclass
class Mount:
    source: str
    target: str
    read_only: bool


def compose_mounts(service: dict) -> list[Mount]:
    mounts = []
    for item in service.get("volumes", []):
        if isinstance(item, str) and ":" not in item:
            mounts.append(Mount("", item, False))  # an anonymous volume
        elif isinstance(item, str):
            parts = item.split(":")
            mounts.append(Mount(parts[0], parts[1], len(parts) > 2 and "ro" in parts[2]))
        else:
            mounts.append(Mount(item.get("source", ""), item["target"],
                                bool(item.get("read_only"))))
    return mounts


def compose_env(service: dict) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def inside(path: str, mount: Mount) -> str | None:
    """`path` relative to the mount's target, if the mount holds it."""
    rel = os.path.relpath(path, mount.target)
    return None if rel.startswith("..") else rel


def cli_options(args: list[str]) -> dict[str, str]:
    options: dict[str, str] = {}
    for i, arg in enumerate(args):
        if arg.startswith("--"):
            if "=" in arg:
                name, value = arg.split("=", 1)
            else:
                name = arg
                nxt = args[i + 1] if i + 1 < len(args) else ""
                value = "" if nxt.startswith("--") else nxt
            options[name] = value
    return options


@dataclass
class Compose:
    doc: dict
    collector: str
    influx: str
    init: str

    def service(self, name: str) -> dict:
        return self.doc["services"][name]


def load_compose() -> Compose:
    doc = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    services = doc["services"]
    collector = next(n for n, s in services.items()
                     if isinstance(s.get("build"), dict)
                     and s["build"].get("dockerfile") == "deploy/Dockerfile")
    influx = next(n for n, s in services.items()
                  if str(s.get("image", "")).startswith("influxdb:3-core")
                  and "serve" in (s.get("command") or []))
    init = next(n for n, c in services[influx].get("depends_on", {}).items()
                if c.get("condition") == "service_completed_successfully")
    return Compose(doc, collector, influx, init)


def check_compose(image: Image) -> None:
    try:
        compose = load_compose()
    except Exception as error:  # noqa: BLE001
        R.fail("docker-compose.yml: collector (build deploy/Dockerfile), influxdb:3-core serve "
               "and its token init service", f"{type(error).__name__}: {error}")
        return
    collector = compose.service(compose.collector)
    influx = compose.service(compose.influx)
    init = compose.service(compose.init)
    env = {**image.env, **compose_env(collector)}
    # The image's own configuration file, which compose does not replace.
    shipped = image.source_of(image.cmd[image.cmd.index("--config") + 1]).read_text()

    def influxdb() -> list[str]:
        p = []
        opts = cli_options(influx["command"])
        want = {"--object-store": "file", "--data-dir": "/var/lib/influxdb3"}
        for name, value in want.items():
            if opts.get(name) != value:
                p.append(f"influxdb3 serve {name}={opts.get(name)!r}, expected {value}")
        if not opts.get("--node-id"):
            p.append("influxdb3 serve has no --node-id")
        if not any(inside("/var/lib/influxdb3", m) == "." for m in compose_mounts(influx)):
            p.append("no volume holds --data-dir")
        # The token: init writes TOKEN_DIR/admin-token.json into a volume that influxdb3 mounts
        # where --admin-token-file points, and TOKEN_DIR/influx-token where the collector's
        # INFLUX_TOKEN_FILE points.
        token_file = opts.get("--admin-token-file")
        init_env = compose_env(init)
        token_dir = init_env.get("TOKEN_DIR", "")
        for side, service, path, name in [
            (compose.influx, influx, token_file, "admin-token.json"),
            (compose.collector, collector, env.get("INFLUX_TOKEN_FILE"), "influx-token"),
        ]:
            if not path:
                p.append(f"{side}: no token file is given")
                continue
            volume = next((m.source for m in compose_mounts(service) if inside(path, m)), None)
            init_mount = next((m for m in compose_mounts(init) if m.source == volume), None)
            if volume is None or init_mount is None:
                p.append(f"{side}: {path} is on no volume the init service writes")
                continue
            if init_mount.target != token_dir:
                p.append(f"init writes {token_dir}, but mounts {volume} at {init_mount.target}")
            mount = next(m for m in compose_mounts(service) if m.source == volume)
            if inside(path, mount) != name:
                p.append(f"{side} reads {path}, but the init service writes {name} there")
            if not mount.read_only:
                p.append(f"{side} mounts the token volume writable")
        entry = init.get("entrypoint", [])
        script = next((m for m in compose_mounts(init) if m.target in entry), None)
        if script is None or not (DEPLOY / script.source).is_file():
            p.append(f"the init service runs {entry}, not a script mounted from deploy/")
        deps = collector.get("depends_on", {})
        if deps.get(compose.influx, {}).get("condition") != "service_healthy":
            p.append("the collector does not wait for influxdb3 to be healthy")
        return p

    guarded("docker-compose.yml: influxdb:3-core serves with a file object store and the admin "
            "token the init service creates, which the collector reads", influxdb)

    def collector_wiring() -> list[str]:
        p = []
        url = str(effective("influx_url", env, shipped))
        if url != f"http://{compose.influx}:8181":
            p.append(f"influx_url {url!r}, expected http://{compose.influx}:8181")
        if effective("influx_api", env, shipped) != "v3":
            p.append(f"influx_api {effective('influx_api', env, shipped)!r}, expected v3")
        listen = str(effective("listen", env, shipped))
        published = [str(x) for x in collector.get("ports", [])]
        if published != [f"127.0.0.1:8080:{port_of(listen)}"]:
            p.append(f"ports {published}: expected 127.0.0.1:8080:{port_of(listen)} "
                     f"(listen is {listen})")
        mounts = compose_mounts(collector)
        for socket_path in ["/var/run/libvirt/libvirt-sock-ro", "/var/run/libvirt/libvirt-sock"]:
            held = [(m, inside(socket_path, m)) for m in mounts if inside(socket_path, m)]
            if not held or os.path.normpath(os.path.join(held[0][0].source, held[0][1])) \
                    not in (socket_path, socket_path.replace("/var/run", "/run")):
                p.append(f"the host's {socket_path} is not mounted at the same path")
        if not any(m.target == "/var/lib/vmtelemetry" and not m.read_only for m in mounts):
            p.append("no writable volume at /var/lib/vmtelemetry")
        if collector.get("read_only") is not True:
            p.append("the root filesystem is not read-only")
        if not collector.get("group_add"):
            p.append("no group_add for the host's libvirt group")
        p += grace_problems("compose stop_grace_period",
                            seconds(collector.get("stop_grace_period", "10s")), env, shipped)
        context = (DEPLOY / collector["build"]["context"]).resolve()
        if not (context / "Cargo.toml").is_file():
            p.append(f"build context {context} holds no Cargo.toml")
        p += env_problems(f"service {compose.collector}", list(env))
        for name, service in compose.doc["services"].items():
            if name != compose.collector:
                p += [x for x in env_problems(f"service {name}", list(compose_env(service)))
                      if PREFIX in x]
        return p

    guarded("docker-compose.yml: the collector writes to http://influxdb3:8181 (v3), publishes "
            "8080 on 127.0.0.1 only, mounts the libvirt sockets, only real keys", collector_wiring)


def check_compose_central(image: Image) -> None:
    """Profile `central`, checked on paper: no container engine runs here, and its images
    (quay.io's etcd, Docker Hub's influxdb:3-core and rust) come from registries not reached."""
    compose = load_compose()
    services = compose.doc["services"]
    shipped = image.source_of(image.cmd[image.cmd.index("--config") + 1]).read_text()

    def central() -> list[str]:
        p = []
        profile = {n: s for n, s in services.items() if "central" in s.get("profiles", [])}
        image_name = services[compose.collector].get("image")
        replicas = [n for n, s in profile.items() if s.get("image") == image_name]
        if len(replicas) != 1:
            return [f"profile central has {len(replicas)} services of {image_name}, expected 1"]
        name, service = replicas[0], profile[replicas[0]]
        env = {**image.env, **compose_env(service)}
        if effective("coordination", env, shipped) != "etcd":
            p.append(f"{name}: coordination is not etcd")
        if int(effective("shard_count", env, shipped)) != 1:
            p.append(f"{name}: shard_count is not 1 (etcd spreads the hosts)")
        if PREFIX + "MEMBER_NAME" in env:
            p.append(f"{name}: one member_name for every replica (leave <hostname>-<pid>)")
        count = service.get("deploy", {}).get("replicas")
        if not isinstance(count, int) or count < 1:
            p.append(f"{name}: deploy.replicas {count!r} is not the one number to scale by")
        for clash in ("ports", "container_name", "hostname"):
            if clash in service:
                p.append(f"{name}: {clash} would be the same for every replica")
        if not any(m.target == "/var/lib/vmtelemetry" and not m.source
                   for m in compose_mounts(service)):
            p.append(f"{name}: /var/lib/vmtelemetry is not an anonymous volume per replica")
        endpoints = str(effective("etcd_endpoints", env, shipped) or "").split(",")
        for url in filter(None, endpoints):
            parts = urllib.parse.urlsplit(url)
            etcd = profile.get(parts.hostname or "")
            if etcd is None:
                p.append(f"{name}: etcd endpoint {url} names no service of the profile")
                continue
            listen = cli_options(etcd.get("command") or []).get("--listen-client-urls", "")
            if not listen.endswith(f":{parts.port}"):
                p.append(f"{name}: etcd endpoint {url}, {parts.hostname} listens on {listen!r}")
            if not etcd.get("healthcheck"):
                p.append(f"service {parts.hostname} has no healthcheck")
            condition = service.get("depends_on", {}).get(parts.hostname, {}).get("condition")
            if condition != "service_healthy":
                p.append(f"{name}: starts before {parts.hostname} is healthy")
        if not effective("hosts", env, shipped):
            p.append(f"{name}: no hosts")
        p += env_problems(f"service {name}", list(compose_env(service)))
        return p

    guarded("docker-compose.yml profile central: replicas of the collector's image on the "
            "profile's etcd (healthy first), scaled by deploy.replicas alone, nothing per-replica "
            "shared (name, port, state volume)", central)


# --------------------------------------------------------------------------------- kubernetes


def k8s_documents() -> list[tuple[Path, dict]]:
    documents = []
    for path in sorted(K8S.rglob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                documents.append((path, doc))
    return documents


def k8s_find(kind: str, name: str, near: Path) -> dict:
    """The object of that kind and name in deploy/kubernetes (`near`: who asks, for errors)."""
    candidates = [d for p, d in k8s_documents()
                  if d["kind"] == kind and d["metadata"]["name"] == name]
    if not candidates:
        raise CheckError(f"{near.name} refers to {kind} {name}, which deploy/kubernetes lacks")
    return candidates[0]


def secret_data(secret: dict) -> dict[str, str]:
    data = dict(secret.get("stringData", {}))
    for key, value in secret.get("data", {}).items():
        data[key] = base64.b64decode(value).decode()
    return replaced_placeholders(data)


# What an operator puts in place of the kit's placeholders: the binary refuses those for
# admin_token (negative_control shows it).
PLACEHOLDER = "REPLACE_WITH"
FILLED_TOKEN = "deploycheck-" + "5e0f" * 8


def replaced_placeholders(env: dict[str, str]) -> dict[str, str]:
    return {k: FILLED_TOKEN if PLACEHOLDER in v else v for k, v in env.items()}


@dataclass
class PodRun:
    """How a workload starts the binary: its configuration file and environment."""

    workload: dict
    container: dict
    config_text: str
    config_origin: str
    secret_env: dict[str, str]
    literal_env: dict[str, str] = field(default_factory=dict)
    field_env: dict[str, str] = field(default_factory=dict)  # variable -> fieldPath

    def env(self, image: Image, fields: dict[str, str]) -> dict[str, str]:
        """The environment the container gets: image, then envFrom, then env (later wins)."""
        env = {**image.env, **self.secret_env, **self.literal_env}
        for name, path in self.field_env.items():
            if path not in fields:
                raise CheckError(f"{name} comes from {path}, which this check cannot fill in")
            env[name] = fields[path]
        return env


def pod_run(path: Path) -> PodRun:
    workload = yaml.safe_load(path.read_text())
    spec = workload["spec"]["template"]["spec"]
    container = next(c for c in spec["containers"] if c["name"] == "vmtelemetry")
    args = container.get("args", [])
    if "--config" not in args:
        raise CheckError(f"{path.name}: the container's args give no --config")
    config_path = args[args.index("--config") + 1]
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    text = origin = None
    for mount in container.get("volumeMounts", []):
        volume = volumes.get(mount["name"], {})
        if "configMap" not in volume:
            continue
        if mount.get("subPath"):
            key = mount["subPath"] if config_path == mount["mountPath"] else None
        else:
            rel = os.path.relpath(config_path, mount["mountPath"])
            key = None if rel.startswith("..") else rel
        if key:
            configmap = k8s_find("ConfigMap", volume["configMap"]["name"], path)
            if key not in configmap.get("data", {}):
                raise CheckError(f"ConfigMap {volume['configMap']['name']} has no key {key}")
            text = configmap["data"][key]
            origin = f"ConfigMap {volume['configMap']['name']} ({key})"
    if text is None:
        raise CheckError(f"{path.name}: no ConfigMap is mounted where --config {config_path} is")
    secret_env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "secretRef" in source:
            secret_env.update(secret_data(k8s_find("Secret", source["secretRef"]["name"], path)))
        elif "configMapRef" in source:
            secret_env.update(k8s_find("ConfigMap", source["configMapRef"]["name"], path)["data"])
    run = PodRun(workload, container, text, origin, secret_env)
    for item in container.get("env", []):
        if "value" in item:
            run.literal_env[item["name"]] = str(item["value"])
        elif "fieldRef" in item.get("valueFrom", {}):
            run.field_env[item["name"]] = item["valueFrom"]["fieldRef"]["fieldPath"]
        else:
            raise CheckError(f"{item['name']}: only value and fieldRef are understood here")
    return run


def pod_fields(index: int) -> dict[str, str]:
    return {
        "spec.nodeName": NODE_NAME,
        "metadata.name": f"vmtelemetry-{index}",
        "metadata.namespace": "vmtelemetry",
        "metadata.labels['apps.kubernetes.io/pod-index']": str(index),
    }


def check_workload(image: Image, path: Path, kind: str) -> PodRun | None:
    rel = path.relative_to(DEPLOY)
    try:
        run = pod_run(path)
    except Exception as error:  # noqa: BLE001
        R.fail(f"{rel}: configuration and secrets resolve", f"{type(error).__name__}: {error}")
        return None
    workload, container = run.workload, run.container
    spec = workload["spec"]["template"]["spec"]
    if workload["kind"] != kind:
        R.fail(f"{rel}: is a {kind}", f"it is a {workload['kind']}")
        return None

    def wiring() -> list[str]:
        p = toml_problems(run.config_origin, run.config_text)
        env = run.env(image, pod_fields(0))
        p += env_problems(str(rel), list(env), entrypoint="command" not in container)
        listen = str(effective("listen", env, run.config_text))
        port = port_of(listen)
        if not listen.startswith(("0.0.0.0:", "[::]:")):
            p.append(f"listen {listen} is not reachable from the kubelet")
        ports = {x.get("name"): x["containerPort"] for x in container.get("ports", [])}
        if port not in ports.values():
            p.append(f"containerPort {sorted(ports.values())} lacks the listen port {port}")
        for probe, want in [("livenessProbe", "/health"), ("readinessProbe", "/ready")]:
            get = container.get(probe, {}).get("httpGet", {})
            probe_port = ports.get(get.get("port"), get.get("port"))
            if get.get("path") != want or probe_port != port:
                p.append(f"{probe} GETs {get.get('path')} on {get.get('port')}, "
                         f"expected {want} on {port}")
        for required in ["INFLUX_TOKEN", PREFIX + "ADMIN_TOKEN"]:
            if required not in run.secret_env:
                p.append(f"no {required} from a Secret")
        p += grace_problems("terminationGracePeriodSeconds",
                            seconds(spec.get("terminationGracePeriodSeconds", 30)), env,
                            run.config_text)
        resources = container.get("resources", {})
        for part in ["requests", "limits"]:
            if not {"cpu", "memory"} <= set(resources.get(part, {})):
                p.append(f"resources.{part} lacks cpu or memory")
        return p

    guarded(f"{rel}: ConfigMap and env name real keys; port and probes (/health, /ready) "
            "match listen; secrets and resources set", wiring)

    def hardening() -> list[str]:
        p = []
        pod_sc = spec.get("securityContext", {})
        sc = container.get("securityContext", {})
        uid = image.user.split(":")[0]
        if pod_sc.get("runAsNonRoot") is not True:
            p.append("runAsNonRoot is not true")
        if str(sc.get("runAsUser", pod_sc.get("runAsUser"))) != uid:
            p.append(f"runAsUser is not the image's uid {uid}")
        if sc.get("readOnlyRootFilesystem") is not True:
            p.append("the root filesystem is writable")
        if sc.get("allowPrivilegeEscalation") is not False:
            p.append("allowPrivilegeEscalation is not false")
        state = [m for m in container.get("volumeMounts", [])
                 if m["mountPath"] == "/var/lib/vmtelemetry" and not m.get("readOnly")]
        if not state:
            p.append("no writable volume at /var/lib/vmtelemetry")
            return p
        env = run.env(image, pod_fields(0))
        volume = {v["name"]: v for v in spec.get("volumes", [])}.get(state[0]["name"], {})
        claims = {t["metadata"]["name"]: t for t in
                  workload["spec"].get("volumeClaimTemplates", [])}
        if "emptyDir" in volume:
            limit = volume["emptyDir"].get("sizeLimit")
            if limit:
                p += spool_fits("the state emptyDir's sizeLimit", quantity(limit), env,
                                run.config_text)
        elif state[0]["name"] in claims:
            size = claims[state[0]["name"]]["spec"]["resources"]["requests"]["storage"]
            p += spool_fits("the state volume claim", quantity(size), env, run.config_text)
        return p

    guarded(f"{rel}: non-root uid of the image, read-only root, writable "
            "/var/lib/vmtelemetry", hardening)
    return run


def check_daemonset(image: Image) -> None:
    path = K8S / "daemonset.yaml"
    run = check_workload(image, path, "DaemonSet")
    if run is None:
        return
    spec = run.workload["spec"]["template"]["spec"]

    def node() -> list[str]:
        p = []
        if run.field_env.get(PREFIX + "HOST_NAME") != "spec.nodeName":
            p.append(f"{PREFIX}HOST_NAME does not come from spec.nodeName")
        if "hosts" in tomllib.loads(run.config_text):
            p.append("the ConfigMap sets hosts, which host_name cannot name")
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        libvirt = [m for m in run.container.get("volumeMounts", [])
                   if volumes.get(m["name"], {}).get("hostPath", {}).get("path") in
                   ("/var/run/libvirt", "/run/libvirt")
                   and m["mountPath"] == "/var/run/libvirt"]
        if not libvirt:
            p.append("the host's /var/run/libvirt is not mounted at /var/run/libvirt")
        if not spec.get("nodeSelector") or not spec.get("tolerations"):
            p.append("no nodeSelector or tolerations for hypervisor nodes")
        return p

    guarded("kubernetes/daemonset.yaml: host tag from spec.nodeName, hostPath /var/run/libvirt, "
            "hypervisor nodeSelector and tolerations", node)


def check_statefulset(image: Image) -> None:
    path = K8S / "central" / "statefulset.yaml"
    run = check_workload(image, path, "StatefulSet")
    if run is None:
        return
    workload = run.workload

    def coordinated() -> list[str]:
        p = []
        if run.field_env.get(PREFIX + "MEMBER_NAME") != "metadata.name":
            p.append(f"{PREFIX}MEMBER_NAME does not come from metadata.name")
        env = run.env(image, pod_fields(0))
        if effective("coordination", env, run.config_text) != "etcd":
            p.append("coordination is not etcd")
        if int(effective("shard_count", env, run.config_text)) != 1:
            p.append("shard_count is not 1 (etcd spreads the hosts)")
        endpoints = effective("etcd_endpoints", env, run.config_text) or []
        if not endpoints:
            p.append("no etcd_endpoints")
        for url in endpoints:
            parts = urllib.parse.urlsplit(url)
            try:
                etcd = k8s_find("Service", parts.hostname or "", path)
            except CheckError:
                p.append(f"etcd endpoint {url} names no Service of deploy/kubernetes")
                continue
            if parts.port not in [x["port"] for x in etcd["spec"]["ports"]]:
                p.append(f"etcd endpoint {url}: Service {parts.hostname} has no port {parts.port}")
        service = k8s_find("Service", workload["spec"]["serviceName"], path)
        if service["spec"].get("clusterIP") != "None":
            p.append(f"Service {service['metadata']['name']} is not headless")
        labels = workload["spec"]["template"]["metadata"]["labels"]
        if not set(service["spec"]["selector"].items()) <= set(labels.items()):
            p.append("the governing Service does not select the pods")
        claims = [t["metadata"]["name"] for t in workload["spec"].get("volumeClaimTemplates", [])]
        state = [m["name"] for m in run.container["volumeMounts"]
                 if m["mountPath"] == "/var/lib/vmtelemetry"]
        if not state or state[0] not in claims:
            p.append("/var/lib/vmtelemetry is not a per-replica volume claim")
        if not tomllib.loads(run.config_text).get("hosts"):
            p.append("the ConfigMap lists no hosts")
        return p

    guarded("kubernetes/central/statefulset.yaml: coordination = etcd through a Service of the "
            "kit, member_name from the pod's name, headless Service, per-replica state claim",
            coordinated)


def check_kustomizations() -> None:
    def body() -> list[str]:
        p = []
        used: set[Path] = set()
        for kustomization in sorted(K8S.rglob("kustomization.yaml")):
            doc = yaml.safe_load(kustomization.read_text())
            for resource in doc.get("resources", []):
                target = (kustomization.parent / resource).resolve()
                if target.is_dir():
                    if not (target / "kustomization.yaml").is_file():
                        p.append(f"{kustomization.relative_to(DEPLOY)}: {resource} has no "
                                 "kustomization.yaml")
                elif target.is_file():
                    used.add(target)
                else:
                    p.append(f"{kustomization.relative_to(DEPLOY)}: {resource} does not exist")
        for path, _ in k8s_documents():
            if path.resolve() not in used:
                p.append(f"{path.relative_to(DEPLOY)} is in no kustomization")
        return p

    guarded("kubernetes: every kustomization resource exists and every manifest is used", body)


# ------------------------------------------------------------------------------------ systemd


def unit_directives(path: Path) -> dict[str, list[str]]:
    directives: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        name, value = line.split("=", 1)
        directives.setdefault(name.strip(), []).append(value.strip())
    return directives


def env_file(path: Path, commented: bool) -> dict[str, str]:
    """An EnvironmentFile's assignments; with `commented`, also the `#NAME=value` examples."""
    env = {}
    pattern = r"^(#)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$" if commented else r"^()([A-Za-z_]\w*)=(.*)$"
    for line in path.read_text().splitlines():
        match = re.match(pattern, line.strip())
        if match:
            value = match.group(3).strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            env[match.group(2)] = value
    return replaced_placeholders(env)


def check_systemd() -> None:
    unit = DEPLOY / "systemd" / "vmtelemetry.service"

    def body() -> list[str]:
        d = unit_directives(unit)
        p = []
        want = {
            "ExecStart": "/usr/local/bin/vmtelemetry --config /etc/vmtelemetry/vmtelemetry.toml",
            "NoNewPrivileges": "yes",
            "ProtectSystem": "strict",
            "ProtectHome": "yes",
            "PrivateTmp": "yes",
            "StateDirectory": "vmtelemetry",
            "ReadWritePaths": "/var/lib/vmtelemetry",
            "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
            "Restart": "on-failure",
            "SupplementaryGroups": "libvirt",
            "EnvironmentFile": "-/etc/vmtelemetry/vmtelemetry.env",
        }
        for name, value in want.items():
            if value not in d.get(name, []):
                p.append(f"{name}={d.get(name)}, expected {value}")
        for name in ["RestartSec", "User", "Group"]:
            if not d.get(name):
                p.append(f"no {name}=")
        env = env_file(DEPLOY / "systemd" / "vmtelemetry.env.example", commented=False)
        p += grace_problems("TimeoutStopSec", seconds(d.get("TimeoutStopSec", ["90s"])[-1]), env,
                            (DEPLOY / "systemd" / "vmtelemetry.toml").read_text())
        sysusers = (DEPLOY / "systemd" / "vmtelemetry.sysusers").read_text()
        users = re.findall(r"^u\s+(\S+)", sysusers, re.M)
        if d.get("User", [""])[-1] not in users:
            p.append(f"User={d.get('User')} is not created by vmtelemetry.sysusers ({users})")
        return p

    guarded("systemd/vmtelemetry.service: hardening, state directory, restart policy, "
            "dedicated user (created by vmtelemetry.sysusers), env file, ExecStart", body)

    def config() -> list[str]:
        toml = DEPLOY / "systemd" / "vmtelemetry.toml"
        p = toml_problems("systemd/vmtelemetry.toml", toml.read_text())
        env = env_file(DEPLOY / "systemd" / "vmtelemetry.env.example", commented=True)
        p += env_problems("systemd/vmtelemetry.env.example", list(env), entrypoint=False)
        for name in env:
            if not name.startswith(PREFIX) and name not in OTHER_SERVICE_VARS:
                p.append(f"vmtelemetry.env.example sets {name}, which the service does not read")
        return p

    guarded("systemd: vmtelemetry.toml and every assignment of vmtelemetry.env.example "
            "(commented examples too) name real keys", config)


def static() -> None:
    try:
        image = load_image()
    except Exception as error:  # noqa: BLE001
        R.fail("Dockerfile parses", f"{type(error).__name__}: {error}")
        return
    check_dockerfile(image)
    check_compose(image)
    check_compose_central(image)
    check_daemonset(image)
    check_statefulset(image)
    check_kustomizations()
    check_systemd()

    def no_spool() -> list[str]:
        hits = []
        for path in DEPLOY.rglob("*"):
            if path.is_file() and path.suffix in (".toml", ".yaml", ".yml", ".example") \
                    and re.search(r"^\s*spool_dir\s*=|VMTELEMETRY_SPOOL_DIR", path.read_text(),
                                  re.M):
                hits.append(str(path.relative_to(DEPLOY)))
        return [f"{h} sets spool_dir, which the service rejects" for h in hits]

    guarded("no manifest sets spool_dir: the spool goes where the service's default puts it, "
            "under the state volume /var/lib/vmtelemetry", no_spool)


# ------------------------------------------------------------------------------------ runtime


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(port: int, path: str, timeout: float = 2.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except (urllib.error.URLError, OSError) as error:
        return 0, str(error)


class Service:
    """One vmtelemetry process, a child of this one; stopped by its pid."""

    running: list["Service"] = []

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log: Path):
        self.name, self.log = name, log
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT, cwd=log.parent)
        Service.running.append(self)

    def tail(self, lines: int = 5) -> str:
        text = self.log.read_text(errors="replace").strip().splitlines()
        return " | ".join(text[-lines:]) or "(no output)"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_health(self, port: int, timeout: float = 30.0) -> str | None:
        """None once /health answers 200; else why not."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                return f"exited with {self.proc.returncode}: {self.tail()}"
            if http_get(port, "/health", 1.0)[0] == 200:
                return None
            time.sleep(0.1)
        return f"/health did not answer 200 within {timeout:.0f}s: {self.tail()}"

    def stop(self) -> None:
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self in Service.running:
            Service.running.remove(self)

    @classmethod
    def stop_all(cls) -> None:
        """TERM to every one first, so that their shutdowns overlap; then wait for each."""
        for service in list(cls.running):
            if service.alive():
                service.proc.send_signal(signal.SIGTERM)
        for service in list(cls.running):
            service.stop()


def wait_for(predicate: Callable[[], Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def status_of(port: int) -> dict:
    code, body = http_get(port, "/api/telemetry/status")
    return json.loads(body) if code == 200 else {}


def connected_hosts(port: int) -> list[dict]:
    hosts = status_of(port).get("hosts", [])
    if hosts and all(h.get("connection") == "connected" for h in hosts):
        return hosts
    return []


class FakeInflux:
    """Answers InfluxDB 3's write endpoint with 204 and remembers what it was sent."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length", 0))
                self.rfile.read(length)
                url = urllib.parse.urlsplit(self.path)
                fake.requests.append({
                    "path": url.path,
                    "query": urllib.parse.parse_qs(url.query),
                    "authorization": self.headers.get("Authorization"),
                })
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def base_env(work: Path) -> dict[str, str]:
    """What any process starts from: nothing of the caller's vmtelemetry settings."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
    env["HOME"] = str(work / "home")
    (work / "home").mkdir(exist_ok=True)
    return env


def overrides(listen_port: int, influx_url: str, **more: str) -> dict[str, str]:
    return {
        PREFIX + "LISTEN": f"127.0.0.1:{listen_port}",
        PREFIX + "INFLUX_URL": influx_url,
        **{PREFIX + k.upper(): v for k, v in more.items()},
    }


STATE_DIR = "/var/lib/vmtelemetry"


def keep_state_in(state: Path, env: dict[str, str], config_text: str | None) -> dict[str, str]:
    """The manifests' state volume, /var/lib/vmtelemetry, is `state` here: when the service has
    a spool_dir key, the spool it would open under the volume opens under `state` instead, and
    one anywhere else is moved there too, so a check never writes outside its scratch directory.
    """
    if "spool_dir" not in KEYS:
        return {}
    spool = str(effective("spool_dir", env, config_text) or "")
    if not spool:
        return {}
    state.mkdir(parents=True, exist_ok=True)
    rel = os.path.relpath(spool, STATE_DIR)
    moved = state / (rel if not rel.startswith("..") else "spool")
    return {PREFIX + "SPOOL_DIR": str(moved)}


FAKE_INFLUXDB3 = r"""#!/bin/sh
# Stand-in for `influxdb3 create token --admin --offline --output-file FILE` (InfluxDB 3.4+),
# writing the documented offline admin token file: {"token": "apiv3_…", "name": "_admin"}.
echo "$*" >>"$FAKE_LOG"
[ "$1 $2 $3 $4" = "create token --admin --offline" ] || { echo "unexpected: $*" >&2; exit 64; }
[ "$5" = "--output-file" ] && [ -n "$6" ] || { echo "no --output-file" >&2; exit 64; }
token="apiv3_$(head -c 48 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
if [ "${FAKE_FORMAT:-pretty}" = compact ]; then
    printf '{"token":"%s","name":"_admin","expiry_millis":null}' "$token" >"$6"
else
    printf '{\n  "token": "%s",\n  "name": "_admin"\n}\n' "$token" >"$6"
fi
"""


def token_init(work: Path, compose: Compose, fmt: str) -> tuple[Path, list[str]]:
    """Runs the compose init service's script with a stand-in CLI; returns (token dir, problems)."""
    init = compose.service(compose.init)
    entry = init["entrypoint"]
    script_mount = next(m for m in compose_mounts(init) if m.target in entry)
    argv = [entry[0] if Path(entry[0]).exists() else "sh",
            *[str(DEPLOY / script_mount.source) if a == script_mount.target else a
              for a in entry[1:]]]
    fakebin = work / "fakebin"
    fakebin.mkdir(exist_ok=True)
    (fakebin / "influxdb3").write_text(FAKE_INFLUXDB3)
    (fakebin / "influxdb3").chmod(0o755)
    tokens = work / f"token-{fmt}"
    env = {**base_env(work), **compose_env(init), "TOKEN_DIR": str(tokens),
           "INFLUX_UID": str(os.getuid()), "COLLECTOR_UID": str(os.getuid()),
           "FAKE_LOG": str(work / f"influxdb3-{fmt}.log"), "FAKE_FORMAT": fmt,
           "PATH": f"{fakebin}:{os.environ.get('PATH', '/usr/bin:/bin')}"}
    p = []
    for attempt in (1, 2):
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=30)
        if done.returncode != 0:
            p.append(f"run {attempt} exited {done.returncode}: {done.stderr.strip()}")
            return tokens, p
        if attempt == 1:
            first = (tokens / "influx-token").read_text()
    raw = (tokens / "influx-token").read_text()
    document = json.loads((tokens / "admin-token.json").read_text())
    if raw.strip() != document["token"] or not raw.startswith("apiv3_"):
        p.append(f"influx-token {raw.strip()[:10]}… is not the file's token")
    if raw != first:
        p.append("a second run changed the token")
    calls = (work / f"influxdb3-{fmt}.log").read_text().splitlines()
    if len(calls) != 1:
        p.append(f"the CLI ran {len(calls)} times over two runs, expected once")
    for name in ("influx-token", "admin-token.json"):
        mode = stat.S_IMODE((tokens / name).stat().st_mode)
        if mode & 0o077:
            p.append(f"{name} has mode {mode:o}: readable by others")
    return tokens, p


def node_files(work: Path, count: int) -> list[str]:
    """`count` test-driver nodes of one VM each, as in-process test:///PATH URIs."""
    nodes = work / "nodes"
    nodes.mkdir(exist_ok=True)
    uris = []
    for n in range(count):
        path = nodes / f"node{n}.xml"
        path.write_text(
            f"<node><domain type='test'><name>vm{n}</name>"
            f"<uuid>6695eb01-f6a4-8304-79aa-{n:012x}</uuid><memory unit='KiB'>1024</memory>"
            "<vcpu>1</vcpu><os><type>hvm</type></os></domain></node>\n")
        uris.append(f"test://{path}")
    return uris


def runtime(binary: Path, state: Path) -> None:
    state.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="deploycheck-", dir=state))
    bindir = work / "bin"
    bindir.mkdir()
    (bindir / "vmtelemetry").symlink_to(binary)
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    image = load_image()
    compose = load_compose()
    fake = FakeInflux()
    try:
        negative_control(binary, work, closed)
        container(image, compose, binary, bindir, work, fake)
        daemonset(image, binary, work, closed)
        systemd_service(binary, work, closed)
        central(image, binary, work, closed)
    finally:
        Service.stop_all()
        fake.close()
        shutil.rmtree(work, ignore_errors=True)


def negative_control(binary: Path, work: Path, closed: str) -> None:
    """The checks below rely on the binary refusing an unknown key: show that it does."""
    env = {**base_env(work), **overrides(free_port(), closed, libvirt_uri="test:///default"),
           PREFIX + "DEPLOYCHECK_NO_SUCH_KEY": "1"}
    done = subprocess.run([str(binary)], env=env, capture_output=True, text=True, timeout=30)
    lines = done.stderr.strip().splitlines()
    R.check("binary: an unknown key (VMTELEMETRY_DEPLOYCHECK_NO_SUCH_KEY) stops start-up with "
            "exit 2 and one line naming it, so staying up below means every key is known",
            [] if done.returncode == 2 and len(lines) == 1
            and "deploycheck_no_such_key" in lines[0] else
            [f"exit {done.returncode}, stderr {done.stderr.strip()[:200]!r}"])
    secret = yaml.safe_load((K8S / "common" / "secret.yaml").read_text())
    shipped = secret["stringData"][PREFIX + "ADMIN_TOKEN"]
    env = {**env, PREFIX + "ADMIN_TOKEN": shipped}
    del env[PREFIX + "DEPLOYCHECK_NO_SUCH_KEY"]
    done = subprocess.run([str(binary)], env=env, capture_output=True, text=True, timeout=30)
    R.check("binary: the Secret's placeholder admin token, left in place, stops start-up with "
            "exit 2 naming admin_token (the runs below fill it in as an operator must)",
            [] if done.returncode == 2 and "admin_token" in done.stderr else
            [f"exit {done.returncode}, stderr {done.stderr.strip()[:200]!r}"])


def container(image: Image, compose: Compose, binary: Path, bindir: Path, work: Path,
              fake: FakeInflux) -> None:
    tokens = None
    for fmt in ("pretty", "compact"):
        try:
            tokens_fmt, problems = token_init(work, compose, fmt)
        except Exception as error:  # noqa: BLE001
            tokens_fmt, problems = None, [f"{type(error).__name__}: {error}"]
        R.check(f"compose init service: creates the admin token file and the bare token once, "
                f"private to their readers ({fmt} JSON from the CLI)", problems)
        if fmt == "pretty" and not problems:
            tokens = tokens_fmt
    if tokens is None:
        R.skip("container: the image's entrypoint, config and ENV", "no token from the init")
        return
    collector = compose.service(compose.collector)
    env = {**base_env(work), **image.env, **compose_env(collector)}
    # The compose volume's path in the collector is the init's token directory here.
    volume_mount = next(m for m in compose_mounts(collector) if inside(env["INFLUX_TOKEN_FILE"], m))
    env["INFLUX_TOKEN_FILE"] = str(tokens / inside(env["INFLUX_TOKEN_FILE"], volume_mount))
    port = free_port()
    env.update(overrides(port, f"http://127.0.0.1:{fake.port}", libvirt_uri="test:///default"))
    env["HOME"] = str(work / "home")  # the image's HOME is its state volume
    env["PATH"] = f"{bindir}:{env['PATH']}"
    config = image.source_of(image.cmd[image.cmd.index("--config") + 1])
    env.update(keep_state_in(work / "container-state", env, config.read_text()))
    args = [str(config) if a == image.cmd[image.cmd.index("--config") + 1] else a
            for a in image.cmd]
    entrypoint = image.source_of(image.entrypoint[0])
    what = ("container: the image's entrypoint + vmtelemetry.container.toml + Dockerfile ENV + "
            "compose environment")
    service = Service("container", ["sh", str(entrypoint), *args], env, work / "container.log")
    why = service.wait_health(port)
    if why:
        R.fail(f"{what}: starts and /health answers 200", why)
        return
    R.ok(f"{what}: starts and /health answers 200")
    token = (tokens / "influx-token").read_text().strip()
    hosts = wait_for(lambda: connected_hosts(port), 15)
    writes = wait_for(lambda: [r for r in fake.requests if r["path"] == "/api/v3/write_lp"], 15)
    p = []
    if [h["uri"] for h in hosts] != ["test:///default"]:
        p.append(f"hosts {[h.get('uri') for h in status_of(port).get('hosts', [])]}")
    if not writes:
        p.append("nothing was written to the InfluxDB stand-in")
    elif writes[0]["authorization"] != f"Bearer {token}" or writes[0]["query"].get("db") != \
            ["vmstats"]:
        p.append(f"the write carried {writes[0]['authorization'] and 'another token'} to "
                 f"db {writes[0]['query'].get('db')}")
    ready = wait_for(lambda: http_get(port, "/ready")[0] == 200, 10)
    if not ready:
        p.append(f"/ready is {http_get(port, '/ready')}")
    first = service.log.read_text().splitlines()[:1]
    try:
        json.loads(first[0])
    except (IndexError, ValueError):
        p.append(f"log_format json, but the first log line is {first!r}")
    R.check("container: collects test:///default, writes /api/v3/write_lp?db=vmstats with the "
            "token from INFLUX_TOKEN_FILE, /ready 200, JSON logs", p)

    health = DEPLOY / "docker" / "vmtelemetry-healthcheck.sh"
    good = subprocess.run(["bash", str(health)], env={**env, PREFIX + "LISTEN": f"0.0.0.0:{port}"},
                          capture_output=True, text=True, timeout=20)
    bad = subprocess.run(["bash", str(health)],
                         env={**env, PREFIX + "LISTEN": f"0.0.0.0:{free_port()}"},
                         capture_output=True, text=True, timeout=20)
    R.check("container: the HEALTHCHECK script passes against the running service and fails "
            "against a closed port",
            ([] if good.returncode == 0 else [f"healthy service: exit {good.returncode} "
                                              f"{good.stderr.strip()}"]) +
            ([] if bad.returncode == 1 else [f"closed port: exit {bad.returncode}"]))
    still = service.alive()
    service.stop()
    R.check("container: still running after the checks", [] if still else [service.tail()])

    missing = subprocess.run(["sh", str(entrypoint), *args],
                             env={**env, "INFLUX_TOKEN_FILE": str(work / "no-such-file")},
                             capture_output=True, text=True, timeout=20)
    R.check("container: the entrypoint refuses an unreadable INFLUX_TOKEN_FILE (exit 2)",
            [] if missing.returncode == 2 else [f"exit {missing.returncode}"])


def start_pod(name: str, run: PodRun, image: Image, binary: Path, work: Path, index: int,
              more: dict[str, str]) -> tuple[Service, int]:
    env = {**base_env(work), **run.env(image, pod_fields(index))}
    port = free_port()
    env.update(overrides(port, more.pop("influx_url"), **more))
    env.update(keep_state_in(work / f"{name}-state", env, run.config_text))
    config = work / f"{name}.toml"
    config.write_text(run.config_text)
    args = list(run.container.get("args", []))
    args[args.index("--config") + 1] = str(config)
    return Service(name, [str(binary), *args], env, work / f"{name}.log"), port


def daemonset(image: Image, binary: Path, work: Path, closed: str) -> None:
    what = "kubernetes DaemonSet: ConfigMap toml + pod env (node name, Secret)"
    try:
        run = pod_run(K8S / "daemonset.yaml")
        service, port = start_pod("daemonset", run, image, binary, work, 0,
                                  {"influx_url": closed, "libvirt_uri": "test:///default"})
    except Exception as error:  # noqa: BLE001
        R.fail(f"{what}: starts", f"{type(error).__name__}: {error}")
        return
    why = service.wait_health(port)
    if why:
        R.fail(f"{what}: starts and /health answers 200", why)
        return
    R.ok(f"{what}: starts and /health answers 200")
    hosts = wait_for(lambda: connected_hosts(port), 15)
    tags = [(h.get("uri"), h.get("host")) for h in hosts]
    R.check(f"kubernetes DaemonSet: /api/telemetry/status shows the host tag {NODE_NAME!r} "
            "(VMTELEMETRY_HOST_NAME from spec.nodeName)",
            [] if tags == [("test:///default", NODE_NAME)] and service.alive()
            else [f"hosts {tags or status_of(port).get('hosts')}"])
    service.stop()


def systemd_service(binary: Path, work: Path, closed: str) -> None:
    what = "systemd: vmtelemetry.toml + vmtelemetry.env.example (commented examples enabled too)"
    env = {**base_env(work),
           **env_file(DEPLOY / "systemd" / "vmtelemetry.env.example", commented=True)}
    port = free_port()
    env.update(overrides(port, closed, libvirt_uri="test:///default"))
    exec_start = unit_directives(DEPLOY / "systemd" / "vmtelemetry.service")["ExecStart"][-1]
    args = shlex.split(exec_start)[1:]
    args[args.index("--config") + 1] = str(DEPLOY / "systemd" / "vmtelemetry.toml")
    env.update(keep_state_in(work / "systemd-state", env,
                             (DEPLOY / "systemd" / "vmtelemetry.toml").read_text()))
    service = Service("systemd", [str(binary), *args], env, work / "systemd.log")
    why = service.wait_health(port)
    if why:
        R.fail(f"{what}: starts and /health answers 200", why)
        return
    hosts = wait_for(lambda: connected_hosts(port), 15)
    R.check(f"{what}: starts, /health 200, collects test:///default",
            [] if [h["uri"] for h in hosts] == ["test:///default"] and service.alive()
            else [f"hosts {status_of(port).get('hosts')}"])
    service.stop()


def start_etcd(work: Path) -> tuple[Service, str]:
    """A one-member etcd (Debian's etcd-server) on loopback, for the central replicas."""
    client, peer = f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"
    argv = ["/usr/bin/etcd", "--name=check", f"--data-dir={work / 'etcd'}",
            f"--listen-client-urls={client}", f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}", f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=check={peer}"]
    etcd = Service("etcd", argv, base_env(work), work / "etcd.log")
    why = etcd.wait_health(int(client.rsplit(":", 1)[1]))
    if why:
        raise CheckError(f"etcd: {why}")
    return etcd, client


def collecting(port: int) -> set[str] | None:
    """The hosts a replica collects, once it is a member."""
    coordination = status_of(port).get("coordination") or {}
    if coordination.get("state") != "member":
        return None
    return set(coordination.get("collecting", []))


def shared_out(ports: list[int], hosts: list[str]) -> list[set[str]] | None:
    shares = [collecting(port) for port in ports]
    if any(share is None for share in shares):
        return None
    every = [h for share in shares for h in share]
    return shares if sorted(every) == sorted(hosts) else None


def central(image: Image, binary: Path, work: Path, closed: str) -> None:
    what = "kubernetes StatefulSet"
    try:
        run = pod_run(K8S / "central" / "statefulset.yaml")
        replicas = run.workload["spec"]["replicas"]
        uris = node_files(work, 20)
        _, etcd = start_etcd(work)
        started = [start_pod(f"central-{i}", run, image, binary, work, i,
                             {"influx_url": closed, "hosts": ",".join(uris),
                              "etcd_endpoints": etcd})
                   for i in range(replicas)]
    except Exception as error:  # noqa: BLE001
        R.fail(f"{what}: replicas start", f"{type(error).__name__}: {error}")
        return
    problems = [f"replica {i}: {why}" for i, (service, port) in enumerate(started)
                if (why := service.wait_health(port))]
    if not R.check(f"{what}: {replicas} replicas (pods vmtelemetry-0..{replicas - 1}) with the "
                   "central ConfigMap, 20 test-driver hosts and an etcd start, /health 200",
                   problems):
        return
    ports = [port for _, port in started]
    shares = wait_for(lambda: shared_out(ports, uris), 30)
    R.check(f"{what}: every one of the 20 hosts is collected by exactly one of the {replicas} "
            "replicas, each a member with a share",
            [] if shares and all(shares) else
            [f"collecting: {[collecting(port) for port in ports]}"])
    started[0][0].stop()
    shares = wait_for(lambda: shared_out(ports[1:], uris), 30)
    R.check(f"{what}: replica 0 stopped (SIGTERM), the others take its hosts over",
            [] if shares else [f"collecting: {[collecting(port) for port in ports[1:]]}"])
    Service.stop_all()


# ---------------------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("static")
    run = sub.add_parser("runtime")
    run.add_argument("--bin", type=Path, required=True)
    run.add_argument("--state", type=Path, required=True)
    args = parser.parse_args()

    def stop(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        if args.command == "static":
            static()
        else:
            runtime(args.bin.resolve(), args.state)
    finally:
        Service.stop_all()
    return 1 if R.failed else 0


if __name__ == "__main__":
    sys.exit(main())
