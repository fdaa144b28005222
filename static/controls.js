// The table's controls: its filters and sortable columns, shared by the table and the address.

import { $ } from "./util.js";

export const FILTERS = [
  ["#filter-host", "host"],
  ["#filter-state", "state"],
  ["#filter-name", "name"],
];

export const SORTABLE = new Set(
  [...document.querySelectorAll("#vm-table th[data-sort]")].map((th) => th.dataset.sort),
);

export function syncHostOptions(hosts) {
  const select = $("#filter-host");
  const present = new Set([...select.options].map((option) => option.value));
  for (const host of hosts) {
    if (present.has(host)) continue;
    present.add(host);
    // Sorted, after the "all hosts" option.
    const before = [...select.options].slice(1).find((option) => option.value > host);
    select.add(new Option(host, host), before || null);
  }
}
