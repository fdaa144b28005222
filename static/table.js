// The VM table: sorted, filtered and paged by the API (so it holds at 10,000 VMs), each row
// with its CPU's recent trend as tiny bars and its memory's share as a thin bar.

import { saveHash } from "./address.js";
import { apiValidated } from "./api.js";
import { FILTERS } from "./controls.js";
import { PAGE_SIZE, state, vmKey } from "./state.js";
import {
  $, debounce, exactKiB, fixed, humanKiB, humanRate, integer, isNumber, newRow, setStatus, setText,
  syncRows,
} from "./util.js";

const NAME_DEBOUNCE_MS = 250;
// Text columns start A to Z, figures from the largest.
const TEXT_COLUMNS = new Set(["host", "name", "state"]);
// The trend's bars (the API gives up to 12: a minute at the default 5 s poll), 2 units wide
// with a gap of 1, 0 to 100 % as 0 to 16 units high.
const TREND_BARS = 12;
const SVG = "http://www.w3.org/2000/svg";

function vmQuery() {
  const params = new URLSearchParams();
  for (const [id, key] of FILTERS) {
    const value = $(id).value;
    if (value !== "") params.set(key, value);
  }
  params.set("sort", state.sort);
  params.set("order", state.order);
  params.set("limit", String(PAGE_SIZE));
  params.set("offset", String(state.offset));
  return `/api/telemetry/vms?${params}`;
}

// Returns true when the page asked for lies past the end and another run is needed.
export async function refreshVms() {
  const query = vmQuery();
  const status = $("#vms-status");
  try {
    const { body, changed } = await apiValidated("vms", query);
    // Filters, order or page changed while waiting: their own run follows at once.
    if (query !== vmQuery()) return false;
    setStatus(status, "ok", `Updated ${new Date().toLocaleTimeString()}`);
    if (body.vms.length === 0 && body.count > 0 && state.offset > 0) {
      // Fewer VMs match now: the last page that has some.
      state.offset = Math.floor((body.count - 1) / PAGE_SIZE) * PAGE_SIZE;
      saveHash();
      return true;
    }
    if (changed) renderVms(body);
  } catch (error) {
    setStatus(status, "error", `VM list unavailable: ${error.message}. Retrying…`);
  }
  return false;
}

function renderVms({ vms, count }) {
  state.vms = new Map(vms.map((vm) => [vmKey(vm), vm]));
  syncRows($("#vm-table tbody"), vms, vmKey, newVmRow, fillVmRow);
  setText($("#vm-count"), `(${integer.format(count)})`);
  const first = vms.length > 0 ? state.offset + 1 : 0;
  const last = state.offset + vms.length;
  setText($("#page-range"), `${integer.format(first)}–${integer.format(last)} of ${integer.format(count)}`);
  $("#page-prev").disabled = state.offset === 0;
  $("#page-next").disabled = last >= count;
  $("#vm-empty").hidden = vms.length > 0;
}

const VM_CELLS = [
  "host", "name", "state", "cpus num", "cpu num", "memory num", "rate num",
  "disk-read num", "disk-write num", "net-rx num", "net-tx num",
];

// A figure with a bar under it showing its share (0 to 1) in `--share`.
function withBar(cell) {
  const text = document.createElement("span");
  const bar = document.createElement("span");
  bar.className = "bar";
  cell.append(text, bar);
}

function fillBar(cell, text, share) {
  setText(cell.firstChild, text);
  cell.lastChild.style.setProperty("--share", String(Math.max(0, Math.min(1, share))));
}

// A figure with its recent trend beside it: tiny bars, the latest on the right.
function withTrend(cell) {
  const text = document.createElement("span");
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("class", "trend");
  svg.setAttribute("viewBox", `0 0 ${TREND_BARS * 3 - 1} 16`);
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("aria-hidden", "true");
  svg.append(document.createElementNS(SVG, "path"));
  cell.append(text, svg);
}

// `trend`: whole percents, oldest first, null where a pair of samples gave none.
function fillTrend(cell, text, trend) {
  setText(cell.firstChild, text);
  const bars = (trend || []).slice(-TREND_BARS);
  const from = TREND_BARS - bars.length;
  const d = bars
    .map((v, i) => (isNumber(v) ? `M${(from + i) * 3} 16h2v-${Math.max(0.5, (v * 16) / 100)}h-2z` : ""))
    .join("");
  cell.lastChild.firstChild.setAttribute("d", d);
  cell.title = bars.length > 0
    ? `CPU over its last ${bars.length} samples: ${bars.map((v) => (isNumber(v) ? `${v} %` : "—")).join(", ")}`
    : "";
}

function newVmRow(vm) {
  const tr = newRow(VM_CELLS, 2);
  tr.dataset.uuid = vm.uuid;
  tr.dataset.host = vm.host;
  tr.tabIndex = 0;
  withTrend(tr.cells[4]);
  withBar(tr.cells[5]);
  return tr;
}

function fillVmRow(tr, vm) {
  const [host, name, stateCell, cpus, cpu, memory, rate, ...io] = tr.cells;
  setText(host, vm.host);
  setText(name, vm.name);
  name.title = `${vm.uuid}${vm.vmid && vm.vmid !== "-" ? ` · id ${vm.vmid}` : ""}`;
  const badge = stateCell.firstChild;
  badge.dataset.state = vm.state;
  setText(badge, vm.state);
  setText(cpus, isNumber(vm.cpu_count) ? String(vm.cpu_count) : "—");
  fillTrend(cpu, fixed(vm.cpu_usage_percent, 1), vm.cpu_trend);
  fillBar(
    memory,
    `${humanKiB(vm.memory_used_kb)} / ${humanKiB(vm.memory_max_kb)}`,
    vm.memory_max_kb > 0 ? vm.memory_used_kb / vm.memory_max_kb : 0,
  );
  memory.title = `${exactKiB(vm.memory_used_kb)} of ${exactKiB(vm.memory_max_kb)}`;
  setText(rate, fixed(vm.memory_rate_kb_per_sec, 1));
  const rates = [vm.disk_read_bytes_per_sec, vm.disk_write_bytes_per_sec, vm.net_rx_bytes_per_sec, vm.net_tx_bytes_per_sec];
  rates.forEach((value, i) => setText(io[i], humanRate(value)));
  markSelected(tr);
}

function markSelected(tr) {
  const selected = state.selected !== null && vmKey(state.selected) === tr.dataset.key;
  tr.classList.toggle("selected", selected);
  tr.setAttribute("aria-selected", String(selected));
}

export function markAllSelected() {
  for (const tr of $("#vm-table tbody").rows) markSelected(tr);
}

function sortBy(column) {
  if (state.sort === column) state.order = state.order === "asc" ? "desc" : "asc";
  else state.order = TEXT_COLUMNS.has(column) ? "asc" : "desc";
  state.sort = column;
  state.offset = 0;
  showSort();
  saveHash();
}

export function showSort() {
  for (const th of document.querySelectorAll("#vm-table th[data-sort]")) {
    if (th.dataset.sort === state.sort) {
      th.setAttribute("aria-sort", state.order === "asc" ? "ascending" : "descending");
    } else {
      th.removeAttribute("aria-sort");
    }
  }
}

// Shows only the VMs of `host` ("" for all), from the first page.
export function filterByHost(host, runVms) {
  $("#filter-host").value = host;
  state.offset = 0;
  runVms();
}

// `choose(vm)`: a row was chosen by click or keyboard.
export function wireTable(runVms, choose) {
  const changed = () => {
    state.offset = 0;
    saveHash();
    runVms();
  };
  $("#filters").addEventListener("submit", (event) => event.preventDefault());
  $("#filter-host").addEventListener("change", changed);
  $("#filter-state").addEventListener("change", changed);
  $("#filter-name").addEventListener("input", debounce(NAME_DEBOUNCE_MS, changed));
  $("#vm-table thead").addEventListener("click", (event) => {
    const th = event.target.closest("th[data-sort]");
    if (!th) return;
    sortBy(th.dataset.sort);
    runVms();
  });
  const turn = (step) => {
    state.offset = Math.max(0, state.offset + step * PAGE_SIZE);
    saveHash();
    runVms();
  };
  $("#page-prev").addEventListener("click", () => turn(-1));
  $("#page-next").addEventListener("click", () => turn(1));

  const tbody = $("#vm-table tbody");
  const chooseRow = (event) => {
    const tr = event.target.closest("tr[data-key]");
    const vm = tr && state.vms.get(tr.dataset.key);
    if (vm) choose(vm);
  };
  tbody.addEventListener("click", chooseRow);
  tbody.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      chooseRow(event);
    }
  });
}
