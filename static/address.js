// The view lives in the address (VM or host, range, filters, order, page), so a reload or a
// shared link shows the same. Whatever the address holds, the page keeps working: an unknown
// value is ignored, and the page's defaults stand.

import { FILTERS, SORTABLE, syncHostOptions } from "./controls.js";
import { PAGE_SIZE, RANGES, state } from "./state.js";
import { $ } from "./util.js";

const STATES = new Set([...document.querySelectorAll("#filter-state option")].map((o) => o.value));

export function saveHash() {
  const params = new URLSearchParams();
  if (state.selected) {
    params.set("vm", state.selected.uuid);
    params.set("host", state.selected.host);
  } else if (state.host !== null) {
    params.set("hostview", state.host);
  } else if (state.rightsizing) {
    params.set("view", "rightsizing");
  }
  params.set("range", $("#range").value);
  for (const [id, key] of FILTERS) {
    if ($(id).value !== "") params.set(`filter-${key}`, $(id).value);
  }
  params.set("sort", state.sort);
  params.set("order", state.order);
  if (state.offset > 0) params.set("offset", String(state.offset));
  history.replaceState(null, "", `#${params}`);
}

// Sets the controls and state from the address; returns what the pane beside the table
// should show: {vm}, {host} or {rightsizing}, or null.
export function loadHash() {
  let params;
  try {
    params = new URLSearchParams(location.hash.slice(1));
  } catch {
    return null;
  }
  if (Object.hasOwn(RANGES, params.get("range"))) $("#range").value = params.get("range");
  const host = params.get("filter-host");
  if (host) syncHostOptions([host]);
  if (host !== null) $("#filter-host").value = host;
  if (STATES.has(params.get("filter-state"))) $("#filter-state").value = params.get("filter-state");
  $("#filter-name").value = (params.get("filter-name") || "").slice(0, 256);
  if (SORTABLE.has(params.get("sort"))) state.sort = params.get("sort");
  if (["asc", "desc"].includes(params.get("order"))) state.order = params.get("order");
  const offset = Number(params.get("offset") || "0");
  state.offset = Number.isSafeInteger(offset) && offset > 0 ? offset - (offset % PAGE_SIZE) : 0;
  const uuid = params.get("vm");
  if (uuid) return { vm: { uuid, host: params.get("host") || "", name: uuid } };
  const hostView = params.get("hostview");
  if (hostView) return { host: hostView };
  return params.get("view") === "rightsizing" ? { rightsizing: true } : null;
}
