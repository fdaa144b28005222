// What the insights say: the fleet's "needs attention" tile and list, and one VM's conditions
// with their evidence, its model (trained or learning), each signal's score, its right-sizing
// and its forecasts.

import { api } from "./api.js";
import { forecastText } from "./forecast.js";
import { CLASSES } from "./rightsizing.js";
import { fillTile } from "./tiles.js";
import { state } from "./state.js";
import { $, chooseRows, clock, duration, fillTable, integer, isNumber, setStatus, setText, syncRows, newRow } from "./util.js";

// The first VMs of the fleet's list shown; the tile counts them all.
const ATTENTION_SHOWN = 20;

export const CONDITIONS = {
  cpu_saturated: "CPU saturated",
  cpu_contention: "CPU contention",
  memory_pressure: "Memory pressure",
  disk_latency: "Disk latency",
  disk_errors: "Disk errors",
  network_drops: "Network drops",
};

function number(value) {
  if (!isNumber(value)) return "—";
  return Math.abs(value) >= 100 ? integer.format(value) : value.toFixed(1);
}

// "CPU saturated: cpu_percent 100.0 ≥ 90.0 for 2 min (since 12:01:03)"
export function conditionText(condition) {
  const { signal, value, threshold } = condition.evidence;
  const name = CONDITIONS[condition.kind] || condition.kind;
  return `${name}: ${signal} ${number(value)} ≥ ${number(threshold)} for ${duration(condition.held_sec)} (since ${clock(condition.since)})`;
}

function rateText(rate) {
  return isNumber(rate) ? `${(rate * 100).toFixed(1)} %` : "—";
}

// ---------------------------------------------------------------- the fleet

function needsAttention(vm) {
  return vm.conditions.length > 0 || vm.anomalous_signals.length > 0 || vm.peer_outlier_signals.length > 0;
}

// The tile, the list, and the hosts' insights for the host panel.
export async function refreshAttention() {
  try {
    const fleet = await api(`/api/telemetry/insights?limit=${ATTENTION_SHOWN}`);
    state.insights = fleet;
    renderAttention(fleet);
  } catch (error) {
    state.insights = null;
    const off = error.code === "insights_disabled";
    const why = off ? "Insights are off (insights = false)." : `Insights unavailable: ${error.message}`;
    fillTile("tile-attention", off ? "ok" : "error", "—", why);
    setStatus($("#attention-summary"), off ? "" : "error", why);
    $("#attention-table").hidden = true;
  }
}

function renderAttention(fleet) {
  const counts = Object.entries(fleet.conditions).filter(([, n]) => n > 0);
  const detail = counts.map(([kind, n]) => `${integer.format(n)} ${CONDITIONS[kind] || kind}`);
  if (fleet.vms_learning > 0) detail.push(`${integer.format(fleet.vms_learning)} learning`);
  fillTile(
    "tile-attention",
    fleet.needs_attention > 0 ? "warn" : "ok",
    `${integer.format(fleet.needs_attention)} of ${integer.format(fleet.vms)} VMs`,
    detail.join(" · ") || "no condition, no anomaly",
  );
  const shown = fleet.attention.filter(needsAttention);
  $("#attention-table").hidden = shown.length === 0;
  setStatus($("#attention-summary"), fleet.needs_attention > 0 ? "fallback" : "", attentionSummary(fleet, shown.length));
  syncRows($("#attention-table tbody"), shown, (vm) => `${vm.uri}\n${vm.uuid}`, newAttentionRow, fillAttentionRow);
}

function attentionSummary(fleet, shown) {
  const learning = fleet.vms_learning > 0 ? ` · ${integer.format(fleet.vms_learning)} still learning` : "";
  if (fleet.needs_attention === 0 && shown === 0) {
    return `None of the ${integer.format(fleet.vms)} VMs has a condition or an anomaly now${learning}.`;
  }
  const first = shown < fleet.needs_attention ? ` — the first ${integer.format(shown)} here` : "";
  return `${integer.format(fleet.needs_attention)} of ${integer.format(fleet.vms)} VMs need attention${first}${learning}.`;
}

function newAttentionRow(vm) {
  const tr = newRow(["name", "host", "conditions", "signals", "rate num"]);
  tr.dataset.uuid = vm.uuid;
  tr.dataset.host = vm.host;
  tr.tabIndex = 0;
  return tr;
}

function fillAttentionRow(tr, vm) {
  const [name, host, conditions, signals, rate] = tr.cells;
  setText(host, vm.host);
  setText(name, vm.name);
  setText(conditions, vm.conditions.map(conditionText).join("; ") || "—");
  const parts = [];
  if (vm.anomalous_signals.length > 0) parts.push(`anomalous: ${vm.anomalous_signals.join(", ")}`);
  if (vm.peer_outlier_signals.length > 0) parts.push(`departs from its peers: ${vm.peer_outlier_signals.join(", ")}`);
  setText(signals, parts.join(" · ") || "—");
  setText(rate, vm.model === "learning" ? "learning" : rateText(vm.anomaly_rate));
}

// `choose(vm)`: a VM of the list was chosen, by click or keyboard.
export function wireAttention(choose) {
  chooseRows($("#attention-table tbody"), choose);
}

// ---------------------------------------------------------------- one VM

// {body} when known, else {off} or {error} to say why not.
export async function loadVmInsights(vm) {
  const path = `/api/telemetry/insights/${encodeURIComponent(vm.uuid)}?${new URLSearchParams({ host: vm.host })}`;
  try {
    return { body: await api(path) };
  } catch (error) {
    if (error.code === "insights_disabled") return { off: true };
    // Listed, but its first cycle has not reached the insights yet.
    if (error.status === 404) return { error: "not scored yet: its first cycle is on its way" };
    return { error: error.message };
  }
}

export function fillVmInsights({ body, off, error }) {
  const list = $("#vm-conditions");
  const conditions = body ? body.conditions : [];
  list.replaceChildren(...conditions.map((condition) => {
    const item = document.createElement("li");
    item.dataset.kind = condition.kind;
    item.textContent = conditionText(condition);
    return item;
  }));
  list.hidden = conditions.length === 0;
  $("#vm-insights").hidden = false;
  const model = $("#vm-model");
  if (off) setStatus(model, "off", "Insights are off (insights = false).");
  else if (error) setStatus(model, "error", `Insights: ${error}`);
  else setStatus(model, body.model, modelText(body));
  fillTable($("#signals-table"), ["Signal", "Value", "Score", "Own past", "Peers"], body ? signalRows(body) : []);
  $("#signals-table").hidden = !body;
  const outlook = body ? [recommendationText(body.recommendation), ...body.forecasts.map(forecastText)] : [];
  const items = $("#vm-outlook");
  items.replaceChildren(...outlook.map((text) => {
    const item = document.createElement("li");
    item.textContent = text;
    return item;
  }));
  items.hidden = outlook.length === 0;
}

// "Right-sizing: over-provisioned · vCPUs 4 → 1 (1..2), 3 reclaimable · memory … · 2.5 h of history"
function recommendationText(r) {
  if (!r) return "Right-sizing: learning (VPA needs CPU samples a minute apart)";
  const part = (name, s, unit) => {
    const back = s.reclaimable < 0 ? `needs ${integer.format(-s.reclaimable)} more` : `${integer.format(s.reclaimable)} reclaimable`;
    return `${name} ${integer.format(s.current)} → ${integer.format(s.target)}${unit} (${integer.format(s.lower)}..${integer.format(s.upper)}), ${back}`;
  };
  const parts = [`Right-sizing: ${CLASSES[r.class] || r.class}`, part("vCPUs", r.cpu, "")];
  if (r.memory) parts.push(part("memory", r.memory, " MiB"));
  parts.push(`${r.history_hours.toFixed(1)} h of history`);
  return parts.join(" · ");
}

function modelText(body) {
  const anomalous = body.anomalous_signals.length;
  const parts = [
    body.model === "trained" ? "Model trained" : "Model learning: no score yet",
    `anomaly rate ${rateText(body.anomaly_rate)} over ${duration(body.window_sec)}`,
    `${anomalous} signal${anomalous === 1 ? "" : "s"} anomalous now`,
  ];
  if (body.conditions.length === 0) parts.push("no condition");
  return parts.join(" · ");
}

// The signals this VM has, the anomalous first.
function signalRows(body) {
  return body.signals
    .filter((s) => s.value !== null)
    .sort((a, b) => (b.score ?? -1) - (a.score ?? -1))
    .map((s) => [
      s.signal,
      number(s.value),
      s.model === "learning" ? "learning" : isNumber(s.score) ? s.score.toFixed(2) : "—",
      s.anomalous ? "anomalous" : "normal",
      s.peer_outlier ? "departs" : "—",
    ]);
}
