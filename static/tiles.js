// The fleet's tiles: hosts, VMs by state, vCPUs and memory against the hosts', the writer, what
// right-sizing would reclaim, and what needs attention (filled by insights.js).

import { apiValidated } from "./api.js";
import { $, humanKiB, integer, isNumber, percent, setText } from "./util.js";

const TILES = [
  ["tile-hosts", "Hosts"],
  ["tile-vms", "VMs"],
  ["tile-attention", "Needs attention"],
  ["tile-vcpus", "vCPUs allocated"],
  ["tile-memory", "Memory allocated"],
  ["tile-writer", "InfluxDB writer"],
  ["tile-rightsizing", "Right-sizing would reclaim"],
];

export function buildTiles() {
  for (const [id, title] of TILES) {
    const tile = document.createElement("div");
    tile.className = "tile";
    tile.id = id;
    tile.dataset.state = "loading";
    const [heading, value, detail] = ["h2", "p", "p"].map((tag) => document.createElement(tag));
    heading.textContent = title;
    value.className = "value";
    value.textContent = "—";
    detail.className = "detail";
    tile.append(heading, value, detail);
    $("#fleet").appendChild(tile);
  }
}

export function fillTile(id, kind, value, detail) {
  const tile = $(`#${id}`);
  tile.dataset.state = kind;
  setText(tile.querySelector(".value"), value);
  setText(tile.querySelector(".detail"), detail);
  tile.querySelector(".detail").title = detail;
}

export async function refreshSummary() {
  try {
    const { body, changed } = await apiValidated("summary", "/api/telemetry/summary");
    if (changed) renderSummary(body);
  } catch (error) {
    fillTile("tile-hosts", "error", "—", `Summary unavailable: ${error.message}`);
  }
}

function renderSummary({ hosts, vms, capacity, writer, rightsizing }) {
  fillRightsizingTile(rightsizing);
  const hostsKind = hosts.failing > 0 ? "bad" : hosts.connected < hosts.total ? "warn" : "ok";
  fillTile(
    "tile-hosts",
    hostsKind,
    `${integer.format(hosts.connected)} of ${integer.format(hosts.total)} connected`,
    hosts.failing > 0 ? `${integer.format(hosts.failing)} failing` : "none failing",
  );
  const states = Object.entries(vms.by_state).map(([name, n]) => `${integer.format(n)} ${name}`);
  fillTile("tile-vms", "ok", integer.format(vms.vms), states.join(" · ") || "none");
  const cpus = capacity.cpus;
  fillTile(
    "tile-vcpus",
    "ok",
    isNumber(cpus) ? `${integer.format(vms.vcpus)} of ${integer.format(cpus)}` : integer.format(vms.vcpus),
    isNumber(cpus) ? `${(vms.vcpus / Math.max(1, cpus)).toFixed(1)} per host CPU` : "the hosts' CPUs are unknown",
  );
  const total = capacity.memory_total_kb;
  fillTile(
    "tile-memory",
    isNumber(total) && vms.memory_max_kb > total ? "warn" : "ok",
    isNumber(total) ? `${humanKiB(vms.memory_max_kb)} of ${humanKiB(total)}` : humanKiB(vms.memory_max_kb),
    isNumber(total)
      ? `${percent(vms.memory_max_kb, total)} of the hosts' · ${humanKiB(vms.memory_used_kb)} in use`
      : `${humanKiB(vms.memory_used_kb)} in use · the hosts' memory is unknown`,
  );
  const dropped = writer.dropped_lines > 0 ? `${integer.format(writer.dropped_lines)} lines dropped` : "no line dropped";
  if (writer.healthy) fillTile("tile-writer", writer.dropped_lines > 0 ? "warn" : "ok", "healthy", dropped);
  else fillTile("tile-writer", "bad", "failing", `${writer.trouble} · ${dropped}`);
}

const gib = (value) => `${value.toFixed(1)} GiB`;

// The summary's `rightsizing` (null with insights off).
function fillRightsizingTile(totals) {
  if (!totals) {
    fillTile("tile-rightsizing", "ok", "—", "Insights are off (insights = false).");
    return;
  }
  const learning = totals.vms - totals.vms_recommended;
  if (totals.vms_recommended === 0) {
    fillTile("tile-rightsizing", "ok", "—", `no recommendation yet: ${integer.format(learning)} VMs learning`);
    return;
  }
  const needs = totals.under_provisioned > 0
    ? `${integer.format(totals.under_provisioned)} VMs need more (${integer.format(totals.vcpus_needed)} vCPUs, ${gib(totals.memory_needed_gib)})`
    : "no VM needs more";
  const parts = [`${integer.format(totals.over_provisioned)} over-provisioned`, needs];
  if (learning > 0) parts.push(`${integer.format(learning)} learning`);
  fillTile(
    "tile-rightsizing",
    totals.under_provisioned > 0 ? "warn" : "ok",
    `${integer.format(totals.reclaimable_vcpus)} vCPUs · ${gib(totals.reclaimable_memory_gib)}`,
    parts.join(" · "),
  );
}
