// vmtelemetry dashboard: the fleet's tiles, the VM table (sorted, filtered and paged by the API)
// with one VM's view beside it (its figures and history charts, uPlot), each host's collection
// and the writer's state, and the actor panel.
// Every value from the API reaches the DOM through textContent, attributes or `new Option`,
// never through innerHTML: VM names hold quotes, `<`, `&` and any unicode.
"use strict";

(function () {
  const VMS_EVERY_MS = 2000;
  const SUMMARY_EVERY_MS = 2000;
  const PAGE_SIZE = 100;
  const STATUS_EVERY_MS = 2000;
  const ACTORS_EVERY_MS = 2000;
  // Without a valid token, or with the endpoints disabled, asking every 2 s only fills logs;
  // typing a token asks at once anyway.
  const ACTORS_REFUSED_EVERY_MS = 30000;
  const NAME_DEBOUNCE_MS = 250;
  const TOKEN_KEY = "vmtelemetry.adminToken";
  // Three charts, the VM's figures and the tiles fit a 1000 px high window.
  const CHART_HEIGHT = 110;
  // `every` keeps a range to a few hundred points (samples come every 5 s by default); a
  // longer range changes slowly, so it is also fetched again less often. `denseEvery` is for a
  // service polling so often that the raw samples exceed the API's limit.
  const RANGES = {
    "15m": { start: "-15m", every: null, denseEvery: "3s", refreshMs: 5000 },
    "1h": { start: "-1h", every: "15s", refreshMs: 15000 },
    "6h": { start: "-6h", every: "1m", refreshMs: 60000 },
    "24h": { start: "-24h", every: "5m", refreshMs: 60000 },
  };

  const $ = (selector) => document.querySelector(selector);

  const state = {
    vms: new Map(), // key -> the VM as listed on this page
    // The table's order and page; filters live in their controls.
    sort: "host",
    order: "asc",
    offset: 0,
    actorsEveryMs: ACTORS_EVERY_MS,
    selected: null, // {host, uuid, name}
    charts: null,
  };

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status; // 0: no answer at all
      this.code = code;
    }
  }

  // The answer's body, null for a 304.
  async function call(path, options = {}) {
    let response;
    try {
      response = await fetch(path, {
        cache: "no-store",
        ...options,
        headers: { Accept: "application/json", ...options.headers },
      });
    } catch (error) {
      throw new ApiError(0, "network", `no answer from the service (${error.message})`);
    }
    if (response.status === 304) return { response, body: null };
    let body = null;
    try {
      body = await response.json();
    } catch {
      // Not JSON (a proxy's error page): the status line says enough.
    }
    if (!response.ok) {
      const error = (body && body.error) || {};
      throw new ApiError(
        response.status,
        error.code || `http_${response.status}`,
        error.message || `${response.status} ${response.statusText}`,
      );
    }
    return { response, body };
  }

  async function api(path, options = {}) {
    return (await call(path, options)).body;
  }

  // The last answer of each kind with its ETag: polling the same path again sends
  // If-None-Match, and a 304 (no body) reuses the answer held. `changed` is false then.
  const validated = new Map();

  async function apiValidated(kind, path) {
    const last = validated.get(kind);
    const same = last !== undefined && last.path === path;
    const headers = same ? { "If-None-Match": last.etag } : {};
    const { response, body } = await call(path, { headers });
    if (response.status === 304 && same) return { body: last.body, changed: false };
    const etag = response.headers.get("ETag");
    if (etag && body) validated.set(kind, { path, etag, body });
    else validated.delete(kind);
    return { body, changed: true };
  }

  // Runs `task` now and again `intervalMs()` after each run ends, so slow answers never pile
  // up. Calling the returned function runs it at once (or right after the run in progress).
  function poll(intervalMs, task) {
    let timer = null;
    let running = false;
    let again = false;
    async function run() {
      clearTimeout(timer);
      if (running) {
        again = true;
        return;
      }
      running = true;
      try {
        await task();
      } catch (error) {
        console.error(error);
      } finally {
        running = false;
        if (again) {
          again = false;
          run();
        } else {
          timer = setTimeout(run, intervalMs());
        }
      }
    }
    run();
    return run;
  }

  function debounce(ms, fn) {
    let timer = null;
    return () => {
      clearTimeout(timer);
      timer = setTimeout(fn, ms);
    };
  }

  function setText(element, text) {
    if (element.textContent !== text) element.textContent = text;
  }

  function setStatus(element, kind, text) {
    element.dataset.state = kind;
    setText(element, text);
  }

  const integer = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });

  function isNumber(value) {
    return typeof value === "number" && Number.isFinite(value);
  }

  function fixed(value, digits) {
    return isNumber(value) ? value.toFixed(digits) : "—";
  }

  function humanKiB(kib) {
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

  function exactKiB(kib) {
    return isNumber(kib) ? `${integer.format(kib)} KiB` : "—";
  }

  // Seconds since the epoch. Date.parse keeps milliseconds only; the nanoseconds of an RFC 3339
  // timestamp are kept for the CPU usage of samples taken a fraction of a second apart.
  function parseTime(text) {
    const match = /^(.*T\d\d:\d\d:\d\d)(\.\d+)?(.*)$/.exec(text);
    if (!match) return Date.parse(text) / 1000;
    return Date.parse(match[1] + match[3]) / 1000 + (match[2] ? parseFloat(match[2]) : 0);
  }

  // Brings `tbody` to one row per item, in order, keyed by `key(item)`. Rows already in place
  // are not moved, so a click under way is not lost.
  function syncRows(tbody, items, key, newRow, fillRow) {
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

  // A row of empty cells of these classes, with a state badge in the cell at `badgeAt`.
  function newRow(cells, badgeAt) {
    const tr = document.createElement("tr");
    for (const cell of cells) {
      const td = document.createElement("td");
      td.className = cell;
      tr.appendChild(td);
    }
    const badge = document.createElement("span");
    badge.className = "badge";
    tr.cells[badgeAt].appendChild(badge);
    return tr;
  }

  // ---------------------------------------------------------------- fleet tiles

  function percent(part, whole) {
    return whole > 0 ? `${Math.round((part / whole) * 100)} %` : "—";
  }

  const TILES = [
    ["tile-hosts", "Hosts"],
    ["tile-vms", "VMs"],
    ["tile-vcpus", "vCPUs allocated"],
    ["tile-memory", "Memory allocated"],
    ["tile-writer", "InfluxDB writer"],
  ];

  function buildTiles() {
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

  function fillTile(id, kind, value, detail) {
    const tile = $(`#${id}`);
    tile.dataset.state = kind;
    setText(tile.querySelector(".value"), value);
    setText(tile.querySelector(".detail"), detail);
    tile.querySelector(".detail").title = detail;
  }

  async function refreshSummary() {
    try {
      const { body, changed } = await apiValidated("summary", "/api/telemetry/summary");
      if (changed) renderSummary(body);
    } catch (error) {
      fillTile("tile-hosts", "error", "—", `Summary unavailable: ${error.message}`);
    }
  }

  function renderSummary({ hosts, vms, capacity, writer }) {
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

  // ---------------------------------------------------------------- VM table

  function vmKey(vm) {
    return `${vm.host}\n${vm.uuid}`;
  }

  const FILTERS = [
    ["#filter-host", "host"],
    ["#filter-state", "state"],
    ["#filter-name", "name"],
  ];

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
  async function refreshVms() {
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

  function newVmRow(vm) {
    const tr = newRow(VM_CELLS, 2);
    tr.dataset.uuid = vm.uuid;
    tr.dataset.host = vm.host;
    tr.tabIndex = 0;
    const bar = document.createElement("span");
    bar.className = "bar";
    const text = document.createElement("span");
    tr.cells[5].append(text, bar);
    return tr;
  }

  // Bytes per second, in the units `ls -h` and iostat use.
  function humanRate(bytes) {
    if (!isNumber(bytes)) return "—";
    return bytes < 1024 ? `${bytes.toFixed(0)} B/s` : `${humanKiB(bytes / 1024)}/s`;
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
    setText(cpu, fixed(vm.cpu_usage_percent, 1));
    setText(memory.firstChild, `${humanKiB(vm.memory_used_kb)} / ${humanKiB(vm.memory_max_kb)}`);
    memory.title = `${exactKiB(vm.memory_used_kb)} of ${exactKiB(vm.memory_max_kb)}`;
    const share = vm.memory_max_kb > 0 ? Math.min(1, vm.memory_used_kb / vm.memory_max_kb) : 0;
    memory.lastChild.style.setProperty("--share", String(share));
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

  // Text columns start A to Z, figures from the largest.
  const TEXT_COLUMNS = new Set(["host", "name", "state"]);

  function sortBy(column) {
    if (state.sort === column) state.order = state.order === "asc" ? "desc" : "asc";
    else state.order = TEXT_COLUMNS.has(column) ? "asc" : "desc";
    state.sort = column;
    state.offset = 0;
    showSort();
    saveHash();
  }

  function showSort() {
    for (const th of document.querySelectorAll("#vm-table th[data-sort]")) {
      if (th.dataset.sort === state.sort) {
        th.setAttribute("aria-sort", state.order === "asc" ? "ascending" : "descending");
      } else {
        th.removeAttribute("aria-sort");
      }
    }
  }

  function syncHostOptions(hosts) {
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

  // ---------------------------------------------------------------- charts

  function chartWidth(element) {
    return Math.max(280, element.clientWidth);
  }

  // Memory ticks at 256 MiB, 512 MiB… rather than uPlot's decimal 244.1 MiB, 488.3 MiB…
  const KIB_INCREMENTS = [1, 1024, 1024 ** 2, 1024 ** 3].flatMap((unit) =>
    [1, 2, 4, 8, 16, 32, 64, 128, 256, 512].map((m) => unit * m),
  );

  const legendTime = uPlot.fmtDate("{YYYY}-{MM}-{DD} {HH}:{mm}:{ss}");

  // A legend shows the hovered point, else the latest one.
  function legend(format) {
    return (chart, value, seriesIndex, index) => {
      if (index !== null && index !== undefined) return format(value, false);
      const values = chart.data[seriesIndex] || [];
      return format(values.length ? values[values.length - 1] : null, true);
    };
  }

  const timeLegend = legend((t, latest) =>
    isNumber(t) ? `${legendTime(new Date(t * 1000))}${latest ? " (latest)" : ""}` : "—",
  );

  // The axes in the page's colours, light or dark.
  function axis(options) {
    const style = getComputedStyle(document.documentElement);
    const line = style.getPropertyValue("--line").trim();
    return {
      stroke: style.getPropertyValue("--muted").trim(),
      grid: { stroke: line },
      ticks: { stroke: line },
      ...options,
    };
  }

  function makeChart(element, series, yAxis, yRange, yIncrements) {
    const options = {
      width: chartWidth(element),
      height: CHART_HEIGHT,
      cursor: { sync: { key: "vmtelemetry" } },
      scales: { x: { time: true }, y: yRange ? { range: yRange } : {} },
      series: [{ value: timeLegend }, ...series],
      axes: [axis({ space: 80 }), axis({ size: 80, values: (chart, splits) => splits.map(yAxis) })],
    };
    if (yIncrements) options.axes[1].incrs = yIncrements;
    return new uPlot(options, [[], ...series.map(() => [])], element);
  }

  function ensureCharts() {
    if (state.charts) return state.charts;
    const fromZero = (chart, min, max) => [0, isNumber(max) && max > 0 ? max * 1.05 : 1];
    const memory = makeChart(
      $("#chart-memory"),
      [
        { label: "used", stroke: "#2563eb", fill: "rgba(37, 99, 235, 0.12)", width: 2, value: legend(exactKiB) },
        { label: "max", stroke: "#94a3b8", dash: [6, 4], points: { show: false }, value: legend(exactKiB) },
      ],
      humanKiB,
      fromZero,
      KIB_INCREMENTS,
    );
    const cpu = makeChart(
      $("#chart-cpu"),
      [{ label: "CPU", stroke: "#d97706", fill: "rgba(217, 119, 6, 0.12)", width: 2, value: legend((v) => (isNumber(v) ? `${v.toFixed(1)} %` : "—")) }],
      (v) => `${v} %`,
      (chart, min, max) => [0, isNumber(max) && max > 100 ? max * 1.05 : 100],
    );
    const rate = makeChart(
      $("#chart-rate"),
      [{ label: "rate", stroke: "#059669", width: 2, value: legend((v) => (isNumber(v) ? `${v.toFixed(1)} KiB/s` : "—")) }],
      (v) => `${v}`,
      null,
    );
    state.charts = { memory, cpu, rate };
    window.vmtCharts = state.charts; // for the browser test and the console
    new ResizeObserver(() => {
      for (const [id, chart] of [
        ["#chart-memory", memory],
        ["#chart-cpu", cpu],
        ["#chart-rate", rate],
      ]) {
        const width = chartWidth($(id));
        if (chart.width !== width) chart.setSize({ width, height: CHART_HEIGHT });
      }
    }).observe($("#charts"));
    return state.charts;
  }

  // Δcputime_ns / (Δt_ns × cpu_count) × 100; none across a restart (cputime going back), nor
  // from a negative counter (an average that overflowed in InfluxDB).
  function cpuPercent(previous, point) {
    const elapsedNs = (point.t - previous.t) * 1e9;
    const usedNs = point.cputime_ns - previous.cputime_ns;
    if (!(elapsedNs > 0) || !(point.cpu_count > 0) || !isNumber(usedNs)) return null;
    if (usedNs < 0 || previous.cputime_ns < 0) return null;
    return (usedNs / (elapsedNs * point.cpu_count)) * 100;
  }

  function value(point, field) {
    return isNumber(point[field]) ? point[field] : null;
  }

  // Samples (history points or in-memory samples) to the three charts' uPlot data.
  function chartData(metrics, features) {
    const points = metrics.map((p) => ({
      t: parseTime(p.time || p.timestamp),
      memory_used_kb: value(p, "memory_used_kb"),
      memory_max_kb: value(p, "memory_max_kb"),
      cputime_ns: value(p, "cputime_ns"),
      cpu_count: value(p, "cpu_count"),
    }));
    const t = points.map((p) => p.t);
    return {
      memory: [t, points.map((p) => p.memory_used_kb), points.map((p) => p.memory_max_kb)],
      cpu: [t, points.map((p, i) => (i === 0 ? null : cpuPercent(points[i - 1], p)))],
      rate: [
        features.map((p) => parseTime(p.time || p.timestamp)),
        features.map((p) => value(p, "memory_rate_kb_per_sec")),
      ],
    };
  }

  const NO_DATA = { memory: [[], [], []], cpu: [[], []], rate: [[], []] };

  function drawCharts(data) {
    const charts = ensureCharts();
    for (const name of ["memory", "cpu", "rate"]) charts[name].setData(data[name]);
  }

  function setNotice(kind, text, detail) {
    const notice = $("#history-notice");
    notice.hidden = !text;
    notice.dataset.state = kind;
    setText(notice, text);
    notice.title = detail || "";
  }

  function historyUrl(vm, measurement, fields, start, every) {
    const params = new URLSearchParams({ vm: vm.uuid, host: vm.host, measurement, fields, start });
    if (every) params.set("every", every);
    return `/api/telemetry/history?${params}`;
  }

  async function fetchHistory(vm, range, every) {
    const [metrics, features] = await Promise.all([
      api(historyUrl(vm, "vm_metrics", "memory_used_kb,memory_max_kb,cputime_ns,cpu_count", range.start, every)),
      api(historyUrl(vm, "vm_features", "memory_rate_kb_per_sec", range.start, every)),
    ]);
    // The API answers the oldest `limit` points: averaged buckets bring the range up to now.
    const truncated = metrics.points.length >= metrics.limit || features.points.length >= features.limit;
    if (truncated && !every && range.denseEvery) return fetchHistory(vm, range, range.denseEvery);
    return [metrics, features];
  }

  async function loadHistory(vm, range, detail) {
    try {
      const [metrics, features] = await fetchHistory(vm, range, range.every);
      const empty = metrics.points.length === 0;
      return {
        data: chartData(metrics.points, features.points),
        notice: empty ? ["empty", "No sample of this VM in InfluxDB for this range yet."] : ["", ""],
      };
    } catch (error) {
      // Only a failing InfluxDB (5xx) or no answer at all has the in-memory samples as a fallback.
      if (error.status !== 0 && error.status < 500) {
        return { data: NO_DATA, notice: ["error", `No history: ${error.message}`] };
      }
      return loadRecent(detail, error);
    }
  }

  // `detail`: the VM as the service holds it, with its recent samples; null if unknown.
  function loadRecent(detail, historyError) {
    if (!detail) {
      return { data: NO_DATA, notice: ["error", `No history (${historyError.message}) and no recent samples`] };
    }
    const { recent } = detail;
    return {
      data: chartData(recent, recent.filter((s) => isNumber(s.memory_rate_kb_per_sec))),
      notice: [
        "fallback",
        `InfluxDB unavailable — showing the last ${recent.length} samples held in memory`,
        historyError.message,
      ],
    };
  }

  const GONE = "gone";

  // The VM from the service's memory: GONE when no host lists it any more, null when the
  // service did not say.
  async function lookupVm(vm) {
    const path = `/api/telemetry/stats/${encodeURIComponent(vm.uuid)}?${new URLSearchParams({ host: vm.host })}`;
    try {
      return await api(path);
    } catch (error) {
      return error.status === 404 ? GONE : null;
    }
  }

  async function refreshCharts() {
    const vm = state.selected;
    if (!vm) return;
    const rangeKey = $("#range").value;
    const detail = await lookupVm(vm);
    if (state.selected !== vm) return;
    showGone(detail === GONE ? vm : null);
    if (detail === GONE) return;
    if (detail) fillFacts(vm, detail.vm);
    const { data, notice } = await loadHistory(vm, RANGES[rangeKey], detail);
    // Another VM or range was chosen meanwhile: its own run follows at once.
    if (state.selected !== vm || $("#range").value !== rangeKey) return;
    setNotice(...notice);
    drawCharts(data);
  }

  // A VM that vanished keeps its name in the title, and a notice replaces its figures.
  function showGone(vm) {
    const notice = $("#vm-gone");
    notice.hidden = vm === null;
    if (vm === null) return;
    setText(notice, `This VM is gone: ${vm.host} no longer lists ${vm.uuid}. Choose another VM in the table.`);
    $("#vm-facts").hidden = true;
    $("#charts").hidden = true;
    setNotice("", "");
  }

  function fillFacts(vm, view) {
    if (vm.name !== view.name) {
      vm.name = view.name;
      setText($("#vm-title"), `— ${view.name} on ${view.host}`);
    }
    const facts = [
      ["State", view.state],
      ["vCPUs", String(view.cpu_count)],
      ["CPU", isNumber(view.cpu_usage_percent) ? `${view.cpu_usage_percent.toFixed(1)} %` : "—"],
      ["Memory", `${humanKiB(view.memory_used_kb)} of ${humanKiB(view.memory_max_kb)}`],
      ["Disk read / write", `${humanRate(view.disk_read_bytes_per_sec)} / ${humanRate(view.disk_write_bytes_per_sec)}`],
      ["Network rx / tx", `${humanRate(view.net_rx_bytes_per_sec)} / ${humanRate(view.net_tx_bytes_per_sec)}`],
      ["UUID", view.uuid],
    ];
    // A term and its value in a <div> each: one cell of the grid.
    const list = $("#vm-facts");
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
    $("#charts").hidden = false;
  }

  let runCharts = null;

  function selectVm(vm) {
    state.selected = { host: vm.host, uuid: vm.uuid, name: vm.name };
    document.body.classList.add("has-selection");
    for (const tr of $("#vm-table tbody").rows) markSelected(tr);
    setText($("#vm-title"), `— ${vm.name} on ${vm.host}`);
    saveHash();
    // The page scrolled past the table's top: the view beside it is brought back in full.
    const detail = $("#detail").getBoundingClientRect();
    if (detail.top < 0 || detail.bottom > window.innerHeight) $("#detail").scrollIntoView({ block: "nearest" });
    $("#vm-facts").hidden = true;
    $("#charts").hidden = false;
    setNotice("loading", "Loading…");
    drawCharts(NO_DATA); // never show the previous VM's points under this one's name
    runCharts();
  }

  // The view lives in the address (VM, range, filters, order, page), so a reload or a shared
  // link shows the same.
  function saveHash() {
    const params = new URLSearchParams();
    if (state.selected) {
      params.set("vm", state.selected.uuid);
      params.set("host", state.selected.host);
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

  const SORTABLE = new Set([...document.querySelectorAll("#vm-table th[data-sort]")].map((th) => th.dataset.sort));

  // Sets the controls and state from the address; returns the VM it names, if any.
  function loadHash() {
    const params = new URLSearchParams(location.hash.slice(1));
    if (params.get("range") in RANGES) $("#range").value = params.get("range");
    const host = params.get("filter-host");
    if (host) syncHostOptions([host]);
    for (const [id, key] of FILTERS) {
      const value = params.get(`filter-${key}`);
      if (value !== null) $(id).value = value;
    }
    if (SORTABLE.has(params.get("sort"))) state.sort = params.get("sort");
    if (["asc", "desc"].includes(params.get("order"))) state.order = params.get("order");
    const offset = Number.parseInt(params.get("offset") || "0", 10);
    state.offset = Number.isSafeInteger(offset) && offset > 0 ? offset - (offset % PAGE_SIZE) : 0;
    const uuid = params.get("vm");
    return uuid ? { uuid, host: params.get("host") || "", name: uuid } : null;
  }

  // ---------------------------------------------------------------- collection

  async function refreshCollection() {
    const writer = $("#writer-status");
    try {
      const body = await api("/api/telemetry/status");
      syncRows($("#hosts-table tbody"), body.hosts, (host) => host.uri, newHostRow, fillHostRow);
      syncHostOptions(body.hosts.map((host) => host.host).filter(Boolean));
      fillWriter(writer, body.writer);
      fillSpool($("#spool-status"), body.writer.spool);
      fillCoordination($("#coordination-status"), body.coordination);
    } catch (error) {
      setStatus(writer, "error", `Status unavailable: ${error.message}. Retrying…`);
    }
  }

  function clock(text) {
    return text ? new Date(text).toLocaleTimeString() : "—";
  }

  function milliseconds(seconds) {
    return isNumber(seconds) ? `${(seconds * 1000).toFixed(1)} ms` : "—";
  }

  function newHostRow({ uri }) {
    const cells = ["name", "connection", "vms num", "cycle", "cycles num", "failed num", "error"];
    const tr = newRow([...cells, "stats", "stats-error error"], 1);
    tr.dataset.uri = uri;
    return tr;
  }

  function fillHostRow(tr, host) {
    const [name, connection, vms, cycle, cycles, failed, error, stats, statsError] = tr.cells;
    setText(name, host.host || host.uri);
    name.title = host.uri;
    const [kind, text] = connectionState(host);
    connection.firstChild.dataset.state = kind;
    setText(connection.firstChild, text);
    setText(vms, integer.format(host.vms_monitored));
    setText(
      cycle,
      host.last_collection_time
        ? `${clock(host.last_collection_time)} · ${milliseconds(host.last_collection_duration_sec)}`
        : "—",
    );
    setText(cycles, integer.format(host.total_collections));
    setText(failed, integer.format(host.total_errors));
    setText(error, host.last_error || "—");
    error.title = host.last_error_time ? `at ${host.last_error_time}` : "";
    setText(stats, statsCalls(host));
    setText(statsError, host.last_stats_error || "—");
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

  const size = new Intl.NumberFormat("en-US", { maximumFractionDigits: 1 });

  function mebibytes(bytes) {
    return `${size.format(bytes / 1048576)} MiB`;
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

  // ---------------------------------------------------------------- actors

  function authHeaders() {
    const token = $("#admin-token").value;
    return token ? { Authorization: `Bearer ${token}` } : {};
  }

  async function refreshActors() {
    const token = $("#admin-token").value;
    const status = $("#admin-status");
    try {
      const body = await api("/api/admin/actors", { headers: authHeaders() });
      if (token !== $("#admin-token").value) return;
      renderActors(body.actors);
      setStatus(status, "ok", `${body.actors.length} actors`);
      state.actorsEveryMs = ACTORS_EVERY_MS;
    } catch (error) {
      if (token !== $("#admin-token").value) return;
      renderActors([]);
      const refused = error.status === 401 || error.status === 403;
      state.actorsEveryMs = refused ? ACTORS_REFUSED_EVERY_MS : ACTORS_EVERY_MS;
      if (error.status === 403) {
        setStatus(status, "disabled", "Admin endpoints disabled (no admin token is configured)");
      } else if (error.status === 401) {
        if (token) setStatus(status, "wrong-token", "Wrong token");
        else setStatus(status, "token-needed", "Admin token needed: enter it to see the actors");
      } else {
        setStatus(status, "error", `Actors unavailable: ${error.message}`);
      }
    }
  }

  function renderActors(actors) {
    syncRows($("#actors-table tbody"), actors, (actor) => actor.name, newActorRow, fillActorRow);
    $("#actors-table").hidden = actors.length === 0;
  }

  function newActorRow({ name }) {
    const tr = newRow(["name", "kind", "state", "restarts num", "queue num", "error", "action"], 2);
    tr.dataset.actor = name;
    const button = document.createElement("button");
    button.type = "button";
    button.className = "restart";
    button.dataset.actor = name;
    button.textContent = "Restart";
    tr.cells[6].appendChild(button);
    return tr;
  }

  function fillActorRow(tr, actor) {
    const [name, kind, stateCell, restarts, queue, error] = tr.cells;
    setText(name, actor.name);
    setText(kind, actor.kind);
    stateCell.firstChild.dataset.state = actor.state;
    setText(stateCell.firstChild, actor.state);
    setText(restarts, String(actor.restarts));
    setText(queue, isNumber(actor.queue_depth) ? integer.format(actor.queue_depth) : "—");
    setText(error, actor.last_error || "—");
    error.title = actor.last_error_time ? `at ${actor.last_error_time}` : "";
  }

  async function restartActor(button, runActors) {
    const name = button.dataset.actor;
    const message = $("#admin-message");
    button.disabled = true;
    try {
      const body = await api(`/api/admin/actors/${encodeURIComponent(name)}/restart`, {
        method: "POST",
        headers: authHeaders(),
      });
      setStatus(message, "ok", `${name}: ${body.status}`);
    } catch (error) {
      setStatus(message, "error", `Restart of ${name} failed: ${error.message}`);
    } finally {
      button.disabled = false;
      runActors();
    }
  }

  // ---------------------------------------------------------------- wiring

  function wireTable(runVms) {
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
      if (vm) selectVm(vm);
    };
    tbody.addEventListener("click", chooseRow);
    tbody.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        chooseRow(event);
      }
    });
  }

  function start() {
    buildTiles();
    const wanted = loadHash();
    showSort();
    runCharts = poll(() => RANGES[$("#range").value].refreshMs, refreshCharts);
    if (wanted) selectVm(wanted);
    poll(() => SUMMARY_EVERY_MS, refreshSummary);
    const runVms = poll(() => VMS_EVERY_MS, async () => {
      if (await refreshVms()) runVms();
    });
    wireTable(runVms);
    $("#range").addEventListener("change", () => {
      saveHash();
      if (!state.selected) return;
      setNotice("loading", "Loading…");
      drawCharts(NO_DATA);
      runCharts();
    });

    poll(() => STATUS_EVERY_MS, refreshCollection);

    const tokenInput = $("#admin-token");
    tokenInput.value = sessionStorage.getItem(TOKEN_KEY) || "";
    const runActors = poll(() => state.actorsEveryMs, refreshActors);
    const tokenChanged = debounce(NAME_DEBOUNCE_MS, runActors);
    tokenInput.addEventListener("input", () => {
      if (tokenInput.value) sessionStorage.setItem(TOKEN_KEY, tokenInput.value);
      else sessionStorage.removeItem(TOKEN_KEY);
      tokenChanged();
    });
    $("#admin-form").addEventListener("submit", (event) => {
      event.preventDefault();
      runActors();
    });
    $("#actors-table tbody").addEventListener("click", (event) => {
      const button = event.target.closest("button.restart");
      if (button && !button.disabled) restartActor(button, runActors);
    });
  }

  start();
})();
