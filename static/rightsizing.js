// Right-sizing: the table beside the VM table (/api/telemetry/recommendations: the fleet, or
// the host the table is filtered to), sorted by the API by what can be reclaimed or by name,
// with the totals per host and fleet; a row opens its VM. The tile is tiles.js'.

import { saveHash } from "./address.js";
import { api } from "./api.js";
import { showPanel, state } from "./state.js";
import { $, chooseRows, integer, isNumber, newRow, setStatus, setText, syncRows } from "./util.js";

// The VMs listed, the first ones in the order asked.
const SHOWN = 100;
export const CLASSES = {
  over_provisioned: "over-provisioned",
  right_sized: "right-sized",
  under_provisioned: "under-provisioned",
};
let sort = "reclaimable_vcpus";

const gib = (value) => `${value.toFixed(1)} GiB`;

function query() {
  const params = new URLSearchParams({ sort, limit: String(SHOWN) });
  const host = $("#filter-host").value;
  if (host !== "") params.set("host", host);
  return `/api/telemetry/recommendations?${params}`;
}

// The poll's task: only while the table is shown.
export async function refreshRightsizing() {
  if (!state.rightsizing) return;
  const path = query();
  const summary = $("#rightsizing-summary");
  try {
    const body = await api(path);
    if (path !== query() || !state.rightsizing) return;
    setStatus(summary, "", summaryText(body));
    renderRows(body.vms);
  } catch (error) {
    const off = error.code === "insights_disabled";
    setStatus(summary, off ? "" : "error", off ? "Insights are off (insights = false)." : `Right-sizing unavailable: ${error.message}`);
    renderRows([]);
  }
}

function totalsText(name, t) {
  return `${name}: ${integer.format(t.reclaimable_vcpus)} vCPUs and ${gib(t.reclaimable_memory_gib)} reclaimable from ${integer.format(
    t.over_provisioned,
  )} VMs; ${integer.format(t.under_provisioned)} need ${integer.format(t.vcpus_needed)} vCPUs and ${gib(t.memory_needed_gib)} more`;
}

function summaryText(body) {
  const hosts = body.hosts.map((h) => totalsText(h.host, h.totals));
  const host = $("#filter-host").value;
  const head = totalsText(host === "" ? "Fleet" : host, body.fleet);
  return [head, ...(host === "" && hosts.length > 1 ? hosts : [])].join(". ") + ".";
}

function renderRows(vms) {
  $("#rightsizing-table").hidden = vms.length === 0;
  syncRows($("#rightsizing-table tbody"), vms, (vm) => `${vm.host}\n${vm.uuid}`, newRightsizingRow, fillRightsizingRow);
}

function newRightsizingRow(vm) {
  const tr = newRow(["name", "host", "class", "vcpus num", "memory num", "reclaim-cpu num", "reclaim-memory num", "history num"]);
  tr.dataset.uuid = vm.uuid;
  tr.dataset.host = vm.host;
  tr.tabIndex = 0;
  return tr;
}

// "4 → 2 (1..3)": what it has, the target and VPA's bounds.
function sizing(s, unit) {
  return s ? `${integer.format(s.current)} → ${integer.format(s.target)} ${unit} (${integer.format(s.lower)}..${integer.format(s.upper)})` : "—";
}

function reclaimable(s, unit) {
  if (!s) return "—";
  return s.reclaimable < 0 ? `needs ${integer.format(-s.reclaimable)} ${unit}` : `${integer.format(s.reclaimable)} ${unit}`;
}

function fillRightsizingRow(tr, vm) {
  const [name, host, cls, vcpus, memory, cpuBack, memoryBack, history] = tr.cells;
  setText(name, vm.name);
  setText(host, vm.host);
  const r = vm.recommendation;
  tr.dataset.class = r ? r.class : "learning";
  setText(cls, r ? CLASSES[r.class] || r.class : "learning");
  setText(vcpus, r ? sizing(r.cpu, "") : `${integer.format(vm.cpu_count)} → —`);
  setText(memory, r ? sizing(r.memory, "MiB") : "—");
  setText(cpuBack, r ? reclaimable(r.cpu, "vCPUs") : "—");
  setText(memoryBack, r ? reclaimable(r.memory, "MiB") : "—");
  setText(history, r && isNumber(r.history_hours) ? `${r.history_hours.toFixed(1)} h` : "—");
}

function showSort() {
  for (const th of document.querySelectorAll("#rightsizing-table th[data-sort]")) {
    if (th.dataset.sort === sort) th.setAttribute("aria-sort", sort === "name" ? "ascending" : "descending");
    else th.removeAttribute("aria-sort");
  }
}

// Opens the table beside the VM table (the tile, or the address).
export function openRightsizing(run) {
  showPanel("rightsizing");
  saveHash();
  run();
}

// `choose(vm)`: a row was chosen by click or keyboard; `run`: refresh now.
export function wireRightsizing(run, choose) {
  showSort();
  $("#rightsizing-table thead").addEventListener("click", (event) => {
    const th = event.target.closest("th[data-sort]");
    if (!th) return;
    sort = th.dataset.sort;
    showSort();
    run();
  });
  $("#filter-host").addEventListener("change", () => run());
  chooseRows($("#rightsizing-table tbody"), choose);
}
