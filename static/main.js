// vmtelemetry dashboard: the fleet's tiles and what needs attention, the VM table (sorted,
// filtered and paged by the API) with one VM or one host beside it, each host's collection and
// the writer's state, and the actor panel. This file only wires the parts together.

import { restoreToken, actorsEveryMs, refreshActors, wireActors } from "./actors.js";
import { loadHash, saveHash } from "./address.js";
import { poll } from "./api.js";
import { syncHostOptions } from "./controls.js";
import { refreshCollection, refreshHost, reloadHost, selectHost, wireHosts } from "./hosts.js";
import { refreshAttention, wireAttention } from "./insights.js";
import { openRightsizing, refreshRightsizing, wireRightsizing } from "./rightsizing.js";
import { range, showPanel, state } from "./state.js";
import { filterByHost, markAllSelected, refreshVms, showSort, wireTable } from "./table.js";
import { buildTiles, refreshSummary } from "./tiles.js";
import { $, debounce } from "./util.js";
import { refreshVm, reload, selectVm, wireVmView } from "./vmview.js";

const VMS_EVERY_MS = 2000;
const SUMMARY_EVERY_MS = 2000;
const STATUS_EVERY_MS = 2000;
// The insights change once a cycle (5 s by default); the list is the first VMs only.
const ATTENTION_EVERY_MS = 5000;
// Recommendations change slowly (VPA's minute samples).
const RIGHTSIZING_EVERY_MS = 10000;
const TOKEN_DEBOUNCE_MS = 250;

// A tile that opens its pane beside the table, by click or keyboard.
function wireTile(id, open) {
  const tile = $(`#${id}`);
  tile.tabIndex = 0;
  tile.setAttribute("role", "button");
  tile.addEventListener("click", open);
  tile.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      open();
    }
  });
}

function start() {
  buildTiles();
  const wanted = loadHash();
  showSort();
  wireVmView(poll(() => range().refreshMs, refreshVm));
  const runHost = poll(() => range().refreshMs, refreshHost);
  poll(() => SUMMARY_EVERY_MS, refreshSummary);
  // The rest of the page asks once the table's first page is in: the first paint comes first.
  let rest = startRest;
  const runVms = poll(() => VMS_EVERY_MS, async () => {
    if (await refreshVms()) runVms();
    rest();
    rest = () => {};
  });
  wireTable(runVms, selectVm);
  wireHosts(runHost, (host) => {
    syncHostOptions([host]);
    filterByHost(host, runVms);
  });
  wireAttention(selectVm);
  const runRightsizing = poll(() => RIGHTSIZING_EVERY_MS, refreshRightsizing);
  wireRightsizing(runRightsizing, selectVm);
  if (wanted && wanted.vm) selectVm(wanted.vm);
  else if (wanted && wanted.host) selectHost(wanted.host);
  else if (wanted && wanted.rightsizing) openRightsizing(runRightsizing);
  else showPanel("attention");
  wireTile("tile-attention", () => {
    showPanel("attention");
    markAllSelected();
    saveHash();
  });
  wireTile("tile-rightsizing", () => {
    openRightsizing(runRightsizing);
    markAllSelected();
  });
  $("#range").addEventListener("change", () => {
    saveHash();
    if (state.selected) reload();
    if (state.host !== null) reloadHost();
  });

  restoreToken();
}

function startRest() {
  poll(() => ATTENTION_EVERY_MS, refreshAttention);
  poll(() => STATUS_EVERY_MS, refreshCollection);
  const runActors = poll(actorsEveryMs, refreshActors);
  wireActors(runActors, debounce(TOKEN_DEBOUNCE_MS, runActors));
}

start();
