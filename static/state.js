// What the page shows now: the table's order and page, the chosen VM or host, and the ranges
// the charts can cover. The filters live in their controls.

import { $, setText } from "./util.js";

export const PAGE_SIZE = 100;

// `every` keeps a range to a few hundred points (samples come every 5 s by default); a
// longer range changes slowly, so it is also fetched again less often. `denseEvery` is for a
// service polling so often that the raw samples exceed the API's limit.
export const RANGES = {
  "15m": { start: "-15m", seconds: 900, every: null, denseEvery: "3s", refreshMs: 5000 },
  "1h": { start: "-1h", seconds: 3600, every: "15s", refreshMs: 15000 },
  "6h": { start: "-6h", seconds: 21600, every: "1m", refreshMs: 60000 },
  "24h": { start: "-24h", seconds: 86400, every: "5m", refreshMs: 60000 },
};

export const state = {
  vms: new Map(), // key -> the VM as listed on this page
  sort: "host",
  order: "asc",
  offset: 0,
  selected: null, // the VM view's {host, uuid, name}
  host: null, // the host panel's host name
  rightsizing: false, // the right-sizing table is the pane shown
  insights: null, // the fleet's latest insights, for the host panel
};

export function vmKey(vm) {
  return `${vm.host}\n${vm.uuid}`;
}

export function range() {
  return RANGES[$("#range").value];
}

const PANEL_NAMES = { vm: "VM", host: "Host", attention: "Needs attention", rightsizing: "Right-sizing" };

// The pane beside the table shows one VM, one host, the right-sizing table, or (nothing
// chosen) what needs attention.
export function showPanel(kind) {
  $("#vm-view").hidden = kind !== "vm";
  $("#host-view").hidden = kind !== "host";
  $("#attention-view").hidden = kind !== "attention";
  $("#rightsizing-view").hidden = kind !== "rightsizing";
  state.rightsizing = kind === "rightsizing";
  setText($("#detail-kind"), PANEL_NAMES[kind]);
  if (kind === "attention" || kind === "rightsizing") setText($("#vm-title"), "— choose a VM here or in the table");
  if (kind !== "vm") state.selected = null;
  if (kind !== "host") state.host = null;
}
