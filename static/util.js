// Shared by every part of the page: finding and filling elements, formatting figures, and
// keeping a table's rows in step with a list.
// Every value from the API reaches the DOM through textContent, attributes or `new Option`,
// never through innerHTML: VM names hold quotes, `<`, `&` and any unicode.

export const $ = (selector) => document.querySelector(selector);

export function setText(element, text) {
  if (element.textContent !== text) element.textContent = text;
}

export function setStatus(element, kind, text) {
  element.dataset.state = kind;
  setText(element, text);
}

export function debounce(ms, fn) {
  let timer = null;
  return () => {
    clearTimeout(timer);
    timer = setTimeout(fn, ms);
  };
}

export const integer = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
const size = new Intl.NumberFormat("en-US", { maximumFractionDigits: 1 });

export function isNumber(value) {
  return typeof value === "number" && Number.isFinite(value);
}

export function fixed(value, digits) {
  return isNumber(value) ? value.toFixed(digits) : "—";
}

export function percent(part, whole) {
  return whole > 0 ? `${Math.round((part / whole) * 100)} %` : "—";
}

export function humanKiB(kib) {
  if (!isNumber(kib)) return "—";
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let value = kib;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  const digits = unit === 0 || Number.isInteger(value) ? 0 : 1;
  return `${value.toFixed(digits)} ${units[unit]}`;
}

export function exactKiB(kib) {
  return isNumber(kib) ? `${integer.format(kib)} KiB` : "—";
}

// Bytes per second, in the units `ls -h` and iostat use.
export function humanRate(bytes) {
  if (!isNumber(bytes)) return "—";
  return bytes < 1024 ? `${bytes.toFixed(0)} B/s` : `${humanKiB(bytes / 1024)}/s`;
}

export function humanBytes(bytes) {
  if (!isNumber(bytes)) return "—";
  return bytes < 1024 ? `${bytes} B` : humanKiB(bytes / 1024);
}

export function mebibytes(bytes) {
  return `${size.format(bytes / 1048576)} MiB`;
}

export function clock(text) {
  return text ? new Date(text).toLocaleTimeString() : "—";
}

export function milliseconds(seconds) {
  return isNumber(seconds) ? `${(seconds * 1000).toFixed(1)} ms` : "—";
}

// "3 min", "2 h 5 min", "3 d 4 h": how long a condition has held, or until a disk is full.
export function duration(seconds) {
  if (!isNumber(seconds)) return "—";
  if (seconds < 60) return `${Math.round(seconds)} s`;
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  return hours < 24 ? `${hours} h ${minutes % 60} min` : `${Math.floor(hours / 24)} d ${hours % 24} h`;
}

// Seconds since the epoch. Date.parse keeps milliseconds only; the nanoseconds of an RFC 3339
// timestamp are kept for the CPU usage of samples taken a fraction of a second apart.
export function parseTime(text) {
  const match = /^(.*T\d\d:\d\d:\d\d)(\.\d+)?(.*)$/.exec(text);
  if (!match) return Date.parse(text) / 1000;
  return Date.parse(match[1] + match[3]) / 1000 + (match[2] ? parseFloat(match[2]) : 0);
}

// Brings `tbody` to one row per item, in order, keyed by `key(item)`. Rows already in place
// are not moved, so a click under way is not lost.
export function syncRows(tbody, items, key, newRow, fillRow) {
  const rows = new Map([...tbody.rows].map((tr) => [tr.dataset.key, tr]));
  items.forEach((item, index) => {
    let tr = rows.get(key(item));
    if (tr) {
      rows.delete(key(item));
    } else {
      tr = newRow(item);
      tr.dataset.key = key(item);
    }
    fillRow(tr, item);
    if (tbody.rows[index] !== tr) tbody.insertBefore(tr, tbody.rows[index] || null);
  });
  for (const tr of rows.values()) tr.remove();
}

// A row of empty cells of these classes, with a state badge in the cell at `badgeAt` (if any).
export function newRow(cells, badgeAt) {
  const tr = document.createElement("tr");
  for (const cell of cells) {
    const td = document.createElement("td");
    td.className = cell;
    tr.appendChild(td);
  }
  if (badgeAt !== undefined) {
    const badge = document.createElement("span");
    badge.className = "badge";
    tr.cells[badgeAt].appendChild(badge);
  }
  return tr;
}

// A small table of `rows` (arrays of texts) under `headers`, replacing `element`'s content.
export function fillTable(table, headers, rows) {
  const head = document.createElement("tr");
  for (const header of headers) {
    const th = document.createElement("th");
    th.scope = "col";
    th.textContent = header;
    head.appendChild(th);
  }
  const body = rows.map((cells) => {
    const tr = document.createElement("tr");
    for (const text of cells) {
      const td = document.createElement("td");
      td.textContent = text;
      tr.appendChild(td);
    }
    return tr;
  });
  table.tHead.replaceChildren(head);
  table.tBodies[0].replaceChildren(...body);
}

// Rows of VMs (first cell: the name; `data-uuid`, `data-host`) chosen by click, Enter or space:
// `choose({uuid, host, name})`.
export function chooseRows(tbody, choose) {
  const chooseRow = (event) => {
    const tr = event.target.closest("tr[data-uuid]");
    if (tr) choose({ uuid: tr.dataset.uuid, host: tr.dataset.host, name: tr.cells[0].textContent });
  };
  tbody.addEventListener("click", chooseRow);
  tbody.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      chooseRow(event);
    }
  });
}

// A term and its value in a <div> each: one cell of the grid.
export function fillFactList(list, facts) {
  if (list.children.length !== facts.length) {
    list.replaceChildren(...facts.map(() => {
      const pair = document.createElement("div");
      pair.append(document.createElement("dt"), document.createElement("dd"));
      return pair;
    }));
  }
  facts.forEach(([term, text], i) => {
    setText(list.children[i].firstChild, term);
    setText(list.children[i].lastChild, text);
  });
  list.hidden = false;
}
