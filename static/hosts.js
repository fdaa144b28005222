// Hosts: the collection table (each host's connection and cycles, the writer and the spool),
// and one host's panel beside the VM table: its VMs (the table filtered by it), its collection
// state, its insights and its host_metrics charts.

import { saveHash } from "./address.js";
import { api, historyUrl } from "./api.js";
import { COLOURS, draw, fromZero, line, makeCharts, memorySpec } from "./charts.js";
import { syncHostOptions } from "./controls.js";
import { CONDITIONS } from "./insights.js";
import { range, showPanel, state } from "./state.js";
import {
  $, clock, fillFactList, integer, isNumber, mebibytes, milliseconds, newRow,
  parseTime, setStatus, setText, syncRows,
} from "./util.js";

let status = null; // the latest /api/telemetry/status
// What the chosen host's history said last: shown unless the host is not configured at all.
let historyNotice = ["loading", "Loading…"];
let charts = null;
let runHost = () => {};

// ---------------------------------------------------------------- the collection table

export async function refreshCollection() {
  const writer = $("#writer-status");
  try {
    status = await api("/api/telemetry/status");
    syncRows($("#hosts-table tbody"), status.hosts, (host) => host.uri, newHostRow, fillHostRow);
    syncHostOptions(status.hosts.map((host) => host.host).filter(Boolean));
    fillWriter(writer, status.writer);
    fillSpool($("#spool-status"), status.writer.spool);
    fillCoordination($("#coordination-status"), status.coordination);
    if (state.host !== null) fillHostFacts();
  } catch (error) {
    setStatus(writer, "error", `Status unavailable: ${error.message}. Retrying…`);
  }
}

function newHostRow({ uri }) {
  const cells = ["name", "connection", "vms num", "cycle", "cycles num", "failed num", "error"];
  const tr = newRow([...cells, "stats", "stats-error error"], 1);
  tr.dataset.uri = uri;
  const open = document.createElement("button");
  open.type = "button";
  open.className = "link open-host";
  tr.cells[0].appendChild(open);
  return tr;
}

function fillHostRow(tr, host) {
  const [name, connection, vms, cycle, cycles, failed, error, stats, statsError] = tr.cells;
  setText(name.firstChild, host.host || host.uri);
  name.firstChild.dataset.host = host.host || "";
  name.firstChild.disabled = !host.host;
  name.title = host.uri;
  const [kind, text] = connectionState(host);
  connection.firstChild.dataset.state = kind;
  setText(connection.firstChild, text);
  setText(vms, integer.format(host.vms_monitored));
  setText(cycle, lastCycle(host));
  setText(cycles, integer.format(host.total_collections));
  setText(failed, integer.format(host.total_errors));
  setText(error, host.last_error || "—");
  error.title = host.last_error_time ? `at ${host.last_error_time}` : "";
  setText(stats, statsCalls(host));
  setText(statsError, host.last_stats_error || "—");
}

// Its last cycle, and the ticks that found a cycle still running or just ended: a count that
// grows says the poll interval is too short for this host.
function lastCycle(host) {
  if (!host.last_collection_time) return "—";
  const last = `${clock(host.last_collection_time)} · ${milliseconds(host.last_collection_duration_sec)}`;
  if (!host.overrun_ticks) return last;
  return `${last} · ${integer.format(host.overrun_ticks)} ticks late`;
}

// A host blocked in a call shows that first: no new connection is opened meanwhile.
function connectionState(host) {
  if (host.stuck_call_since) {
    return ["stuck", `stuck in a libvirt call since ${clock(host.stuck_call_since)}`];
  }
  if (host.connection === "disconnected" && host.next_attempt_time) {
    return ["disconnected", `disconnected · next attempt ${clock(host.next_attempt_time)}`];
  }
  return [host.connection, host.connection];
}

// The bulk stats calls (the extended groups): the cycles that lost rows to a failed call, the
// last calls' time, and the calls still held by a guest whose QEMU does not answer.
function statsCalls(host) {
  if (host.stats_collections === 0) return "—";
  const parts = [
    `${integer.format(host.stats_errors)} of ${integer.format(host.stats_collections)} failed`,
    milliseconds(host.last_stats_duration_sec),
  ];
  if (host.stats_calls_left_behind > 0) {
    parts.push(`${integer.format(host.stats_calls_left_behind)} left behind`);
  }
  return parts.join(" · ");
}

function fillWriter(element, writer) {
  const where = writer.spooled ? "on disk" : "in memory";
  const parts = [`${integer.format(writer.queue_depth)} lines queued ${where}`];
  if (writer.dropped_lines > 0) parts.push(`${integer.format(writer.dropped_lines)} dropped`);
  if (writer.rejected_lines > 0) {
    parts.push(`${integer.format(writer.rejected_lines)} refused as invalid`);
  }
  const details = parts.join(" · ");
  element.title = writer.url;
  if (writer.auth_failing) {
    setStatus(element, "failing", `InfluxDB refuses the token · ${details}`);
  } else if (writer.consecutive_failures > 0) {
    const failures = integer.format(writer.consecutive_failures);
    const error = writer.last_error || "no answer";
    setStatus(element, "failing", `InfluxDB writes failing (${failures} in a row): ${error} · ${details}`);
  } else {
    const last = writer.last_write_time ? `, the last at ${clock(writer.last_write_time)}` : "";
    const written = `${integer.format(writer.total_metrics_written)} lines written${last}`;
    const lost = writer.dropped_lines > 0 || writer.rejected_lines > 0;
    setStatus(element, lost ? "losing" : "ok", `InfluxDB: ${written} · ${details}`);
  }
}

// The durable spool: its lines and disk, the oldest dropped for room, a failing file and what
// memory holds meanwhile, damaged files set aside.
function fillSpool(element, spool) {
  element.hidden = !spool;
  if (!spool) return;
  const parts = [
    `${integer.format(spool.lines)} lines (${mebibytes(spool.line_bytes)} of ${mebibytes(spool.allowed_bytes)} allowed)`,
    `file ${mebibytes(spool.file_bytes)} on disk, ${mebibytes(spool.free_bytes)} free`,
  ];
  if (spool.evicted_lines > 0) parts.push(`${integer.format(spool.evicted_lines)} oldest dropped for room`);
  if (spool.errors > 0) parts.push(`${integer.format(spool.errors)} errors, reopened ${integer.format(spool.reopens)} times`);
  if (spool.damaged_files > 0) {
    parts.push(`${integer.format(spool.damaged_files)} damaged files set aside (${integer.format(spool.salvaged_lines)} lines read back)`);
  }
  if (spool.empty_files > 0) parts.push(`${integer.format(spool.empty_files)} found empty`);
  const details = parts.join(" · ");
  if (spool.state === "failing") {
    const held = `${integer.format(spool.lines_in_memory)} lines held in memory`;
    setStatus(element, "failing", `Spool failing: ${spool.last_error || "no error recorded"} · ${held} · ${details}`);
  } else {
    setStatus(element, spool.state, `Spool${spool.state === "full" ? " full" : ""}: ${details}`);
  }
}

// Replicas on etcd: this one's standing, each member's share, when the assignment moved.
const COORDINATION = {
  member: "Coordination (etcd)",
  joining: "Coordination: not a member yet",
  lost: "Coordination: lease lost, collecting nothing",
};

function fillCoordination(element, coordination) {
  element.hidden = !coordination;
  if (!coordination) return;
  const share = (member) => `${member.name}${member.draining ? " (draining)" : ""} ${member.hosts.length}`;
  const parts = [
    `member ${coordination.member}${coordination.draining ? ", draining" : ""}`,
    `collecting ${integer.format(coordination.collecting.length)} of ${integer.format(coordination.hosts.length)} hosts`,
    `members: ${coordination.members.map(share).join(", ") || "none seen"}`,
    `assignment changed at ${clock(coordination.assignment_changed_at)}`,
  ];
  if (coordination.etcd_unreachable_since) {
    parts.push(`etcd unreachable since ${clock(coordination.etcd_unreachable_since)}`);
  }
  if (coordination.state !== "member" && coordination.last_error) parts.push(coordination.last_error);
  setStatus(element, coordination.state, `${COORDINATION[coordination.state]}: ${parts.join(" · ")}`);
}

// ---------------------------------------------------------------- one host's panel

function ensureCharts() {
  if (charts) return charts;
  const count = (v) => (isNumber(v) ? integer.format(v) : "—");
  charts = makeCharts($("#host-view"), {
    "host-memory": memorySpec("in use", "total"),
    "host-domains": {
      series: [
        line("running", COLOURS.rate, count),
        line("paused", COLOURS.cpu, count),
        line("stopped", COLOURS.max, count),
      ],
      yAxis: (v) => `${v}`,
      yRange: fromZero,
    },
    "host-cycle": {
      series: [line("cycle", COLOURS.read, milliseconds)],
      yAxis: milliseconds,
      yRange: fromZero,
    },
  });
  window.vmtHostCharts = charts; // for the browser test and the console
  return charts;
}

// `run`: asks for the chosen host's charts again; `filter(host)`: shows its VMs in the table.
let filterTable = () => {};

export function wireHosts(run, filter) {
  runHost = run;
  filterTable = filter;
  $("#hosts-table tbody").addEventListener("click", (event) => {
    const button = event.target.closest("button.open-host");
    if (button && button.dataset.host) selectHost(button.dataset.host);
  });
}

export function selectHost(host) {
  showPanel("host");
  state.host = host;
  setText($("#vm-title"), `— ${host}`);
  filterTable(host);
  saveHash();
  bringIntoSight();
  reloadHost();
  fillHostFacts();
}

// Chosen from the collection table, further down: the pane is brought back in full.
function bringIntoSight() {
  const detail = $("#detail").getBoundingClientRect();
  if (detail.top < 0 || detail.bottom > window.innerHeight) $("#detail").scrollIntoView({ block: "nearest" });
}

// Shows "Loading…" and no points, then asks again at once.
export function reloadHost() {
  historyNotice = ["loading", "Loading…"];
  setHostNotice(...historyNotice);
  draw(ensureCharts(), {});
  runHost();
}

function setHostNotice(kind, text) {
  const notice = $("#host-notice");
  notice.hidden = !text;
  notice.dataset.state = kind;
  setText(notice, text);
}

// Its collection state (from the status) and its insights (from the fleet's).
function fillHostFacts() {
  const host = status && status.hosts.find((h) => h.host === state.host);
  const facts = $("#host-facts");
  if (!host) {
    facts.hidden = true;
    if (status) setHostNotice("error", `No host named ${state.host} is configured.`);
    return;
  }
  setHostNotice(...historyNotice);
  const insight = state.insights && state.insights.hosts.find((h) => h.uri === host.uri);
  const ratio = (v, unit) => (isNumber(v) ? `${v.toFixed(2)} ${unit}` : "—");
  const inConditions = insight
    ? Object.entries(insight.conditions).filter(([, n]) => n > 0).map(([k, n]) => `${n} ${CONDITIONS[k] || k}`)
    : [];
  fillFactList(facts, [
    ["Connection", connectionState(host)[1]],
    ["URI", host.uri],
    ["VMs", integer.format(host.vms_monitored)],
    ["Last cycle", lastCycle(host)],
    ["Cycles / failed", `${integer.format(host.total_collections)} / ${integer.format(host.total_errors)}`],
    ["Last error", host.last_error || "—"],
    ["Stats calls", statsCalls(host)],
    ["vCPU overcommit", insight ? ratio(insight.vcpu_overcommit, "vCPUs per host CPU") : "—"],
    ["Memory overcommit", insight ? ratio(insight.memory_overcommit, "× the host's memory") : "—"],
    ["VMs in a condition", inConditions.join(" · ") || (insight ? "none" : "—")],
  ]);
}

const HOST_FIELDS = "memory_total_kb,memory_free_kb,domains_running,domains_paused,domains_stopped,collection_duration_sec";

export async function refreshHost() {
  const host = state.host;
  if (host === null) return;
  const rangeKey = $("#range").value;
  let data = {};
  let notice = ["", ""];
  try {
    const spec = range();
    const url = historyUrl({ measurement: "host_metrics", host, fields: HOST_FIELDS, start: spec.start, every: spec.every || spec.denseEvery });
    const { points } = await api(url);
    data = hostData(points);
    if (points.length === 0) notice = ["empty", "No host_metrics of this host in InfluxDB for this range (host_metrics = false?)."];
  } catch (error) {
    notice = ["error", `No host history: ${error.message}`];
  }
  if (state.host !== host || $("#range").value !== rangeKey) return;
  historyNotice = notice;
  fillHostFacts();
  draw(ensureCharts(), data);
}

function hostData(points) {
  const t = points.map((p) => parseTime(p.time));
  const field = (name) => points.map((p) => (isNumber(p[name]) ? p[name] : null));
  const used = points.map((p) => (isNumber(p.memory_total_kb) && isNumber(p.memory_free_kb) ? p.memory_total_kb - p.memory_free_kb : null));
  return {
    "host-memory": [t, used, field("memory_total_kb")],
    "host-domains": [t, field("domains_running"), field("domains_paused"), field("domains_stopped")],
    "host-cycle": [t, field("collection_duration_sec")],
  };
}
