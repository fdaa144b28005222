// One VM beside the table: its figures, conditions, charts (seed and extended, its anomalies
// marked, its forecasts drawn on), disks and interfaces, and its insights; a notice when it is
// gone.

import { saveHash } from "./address.js";
import { api, historyUrl } from "./api.js";
import {
  COLOURS, draw, fromZero, legend, line, makeCharts, memorySpec, percentRange,
} from "./charts.js";
import { forecastBands, forecastSeries, forecastText, showForecast, withForecast } from "./forecast.js";
import { fillVmInsights, loadVmInsights } from "./insights.js";
import { range, showPanel, state } from "./state.js";
import { markAllSelected } from "./table.js";
import { SCORE_FIELDS, anomalyTimes, diskFill, extendedData, seedData } from "./vmdata.js";
import {
  $, exactKiB, fillFactList, fillTable, humanBytes, humanKiB, humanRate, integer, isNumber, setText,
} from "./util.js";

const GONE = "gone";
const NO_DATA = {};
let charts = null;
let runVm = () => {};

const percentText = (v) => (isNumber(v) ? `${v.toFixed(1)} %` : "—");
const rateText = (v) => humanRate(v);

function ensureCharts() {
  if (charts) return charts;
  charts = makeCharts($("#vm-view"), {
    cpu: { series: [line("CPU", COLOURS.cpu, percentText)], yAxis: (v) => `${v} %`, yRange: percentRange },
    memory: withForecastSpec(memorySpec("used", "max"), exactKiB),
    rate: { series: [line("rate", COLOURS.rate, (v) => (isNumber(v) ? `${v.toFixed(1)} KiB/s` : "—"))], yAxis: (v) => `${v}` },
    disk: {
      series: [line("read", COLOURS.read, rateText), line("write", COLOURS.write, rateText)],
      yAxis: humanRate,
      yRange: fromZero,
    },
    net: {
      series: [line("rx", COLOURS.rx, rateText), line("tx", COLOURS.tx, rateText)],
      yAxis: humanRate,
      yRange: fromZero,
    },
    steal: { series: [line("steal", COLOURS.steal, percentText)], yAxis: (v) => `${v} %`, yRange: fromZero },
    fill: withForecastSpec({
      series: [
        line("allocated", COLOURS.memory, humanBytes, { fill: "rgba(37, 99, 235, 0.12)" }),
        line("capacity", COLOURS.max, humanBytes, { width: 1, dash: [6, 4], points: { show: false } }),
      ],
      yAxis: humanBytes,
      yRange: fromZero,
    }, humanBytes),
  });
  window.vmtCharts = charts; // for the browser test and the console
  return charts;
}

// A chart's spec with a forecast's three series after its own, and its interval's band.
function withForecastSpec(spec, format) {
  const series = [...spec.series, ...forecastSeries(legend(format))];
  return { ...spec, series, bands: forecastBands(series.length + 1) };
}

export function setNotice(kind, text, detail) {
  const notice = $("#history-notice");
  notice.hidden = !text;
  notice.dataset.state = kind;
  setText(notice, text);
  notice.title = detail || "";
}

export function wireVmView(run) {
  runVm = run;
}

export function selectVm(vm) {
  showPanel("vm");
  state.selected = { host: vm.host, uuid: vm.uuid, name: vm.name };
  markAllSelected();
  setText($("#vm-title"), `— ${vm.name} on ${vm.host}`);
  saveHash();
  // The page scrolled past the table's top: the view beside it is brought back in full.
  const detail = $("#detail").getBoundingClientRect();
  if (detail.top < 0 || detail.bottom > window.innerHeight) $("#detail").scrollIntoView({ block: "nearest" });
  for (const id of ["#vm-facts", "#vm-conditions", "#io-charts", "#fill-figure", "#vm-devices", "#vm-insights"]) {
    $(id).hidden = true;
  }
  $("#charts").hidden = false;
  reload();
}

// Shows "Loading…" and no points (never the previous VM's or range's under this title), then
// asks again at once.
export function reload() {
  setNotice("loading", "Loading…");
  draw(ensureCharts(), NO_DATA);
  runVm();
}

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

// The poll's task: everything about the chosen VM, drawn only if it is still the one chosen.
export async function refreshVm() {
  const vm = state.selected;
  if (!vm) return;
  const rangeKey = $("#range").value;
  const detail = await lookupVm(vm);
  if (state.selected !== vm) return;
  showGone(detail === GONE ? vm : null);
  if (detail === GONE) return;
  const [history, insights] = await Promise.all([loadHistory(vm, range(), detail), loadVmInsights(vm)]);
  // Another VM or range was chosen meanwhile: its own run follows at once.
  if (state.selected !== vm || $("#range").value !== rangeKey) return;
  if (detail) {
    fillFacts(vm, detail.vm);
    fillDevices(detail);
  }
  fillVmInsights(insights);
  setNotice(...history.notice);
  $("#io-charts").hidden = !history.extended && !(detail && hasDevices(detail));
  const forecasts = insights.body ? insights.body.forecasts : [];
  draw(ensureCharts(), forecastData(history, forecasts), history.anomalies);
  showForecast(charts.memory, forecasts.some((f) => f.resource === "memory"));
}

// The memory forecast on the memory chart; the disk filling first (a growing one before one
// not growing) on its own chart, shown only for a VM with a disk forecast.
function forecastData(history, forecasts) {
  const horizon = range().seconds;
  const memory = forecasts.find((f) => f.resource === "memory");
  const disks = forecasts
    .filter((f) => f.resource.startsWith("disk:"))
    .sort((a, b) => (a.seconds_to_full ?? Infinity) - (b.seconds_to_full ?? Infinity));
  const disk = disks[0];
  setText($("#forecast-memory"), memory ? ` · forecast ${forecastText(memory)}` : "");
  setText($("#forecast-disk"), disk ? ` · ${forecastText(disk)}` : "");
  $("#fill-figure").hidden = !disk;
  const data = { ...history.data };
  if (data.memory) data.memory = withForecast(data.memory, memory, 1024, horizon);
  if (disk) data.fill = withForecast(diskFill(history.disk || [], disk.resource.slice(5)), disk, 1, horizon);
  return data;
}

function hasDevices(detail) {
  return detail.disks.length > 0 || detail.interfaces.length > 0;
}

function vmHistory(vm, measurement, fields, every) {
  return api(historyUrl({ vm: vm.uuid, host: vm.host, measurement, fields, start: range().start, every }));
}

async function fetchHistory(vm, rangeSpec, every) {
  const asked = [
    ["vm_metrics", "memory_used_kb,memory_max_kb,cputime_ns,cpu_count"],
    ["vm_features", "memory_rate_kb_per_sec"],
    ["vm_disk", "read_bytes_per_sec,write_bytes_per_sec,allocation_bytes,capacity_bytes"],
    ["vm_net", "rx_bytes_per_sec,tx_bytes_per_sec"],
    ["vm_cpu", "vcpu_delay_ns"],
    ["vm_anomalies", SCORE_FIELDS.join(",")],
  ];
  const answers = await Promise.all(asked.map(([m, fields]) => vmHistory(vm, m, fields, every)));
  // The API answers the oldest `limit` points: averaged buckets bring the range up to now.
  const truncated = answers.some((answer) => answer.points.length >= answer.limit);
  if (truncated && !every && rangeSpec.denseEvery) return fetchHistory(vm, rangeSpec, rangeSpec.denseEvery);
  return answers.map((answer) => answer.points);
}

async function loadHistory(vm, rangeSpec, detail) {
  try {
    const [metrics, features, disk, net, cpu, anomalies] = await fetchHistory(vm, rangeSpec, rangeSpec.every);
    const empty = metrics.length === 0;
    return {
      data: { ...seedData(metrics, features), ...extendedData(disk, net, cpu) },
      disk,
      anomalies: anomalyTimes(anomalies),
      extended: disk.length + net.length + cpu.length > 0,
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
    data: seedData(recent, recent.filter((s) => isNumber(s.memory_rate_kb_per_sec))),
    notice: [
      "fallback",
      `InfluxDB unavailable — showing the last ${recent.length} samples held in memory`,
      historyError.message,
    ],
  };
}

// A VM that vanished keeps its name in the title, and a notice replaces its figures.
function showGone(vm) {
  const notice = $("#vm-gone");
  notice.hidden = vm === null;
  if (vm === null) return;
  setText(notice, `This VM is gone: ${vm.host} no longer lists ${vm.uuid}. Choose another VM in the table.`);
  for (const id of ["#vm-facts", "#vm-conditions", "#charts", "#io-charts", "#fill-figure", "#vm-devices", "#vm-insights"]) {
    $(id).hidden = true;
  }
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
  fillFactList($("#vm-facts"), facts);
  $("#charts").hidden = false;
}

function fillDevices(detail) {
  $("#vm-devices").hidden = !hasDevices(detail);
  const count = (device, name) => (isNumber(device.counters[name]) ? integer.format(device.counters[name]) : "—");
  fillTable(
    $("#disks-table"),
    ["Disk", "Read", "Write", "Read IOPS", "Write IOPS", "Errors", "Capacity"],
    detail.disks.map((d) => [
      d.name,
      humanRate(d.rates.read_bytes_per_sec),
      humanRate(d.rates.write_bytes_per_sec),
      isNumber(d.rates.read_iops) ? d.rates.read_iops.toFixed(1) : "—",
      isNumber(d.rates.write_iops) ? d.rates.write_iops.toFixed(1) : "—",
      count(d, "errors"),
      humanBytes(d.counters.capacity_bytes),
    ]),
  );
  fillTable(
    $("#interfaces-table"),
    ["Interface", "Received", "Sent", "Packets in / out", "Drops", "Errors"],
    detail.interfaces.map((i) => [
      i.name,
      humanRate(i.rates.rx_bytes_per_sec),
      humanRate(i.rates.tx_bytes_per_sec),
      `${isNumber(i.rates.rx_packets_per_sec) ? i.rates.rx_packets_per_sec.toFixed(1) : "—"} / ${
        isNumber(i.rates.tx_packets_per_sec) ? i.rates.tx_packets_per_sec.toFixed(1) : "—"}`,
      `${count(i, "rx_drops")} / ${count(i, "tx_drops")}`,
      `${count(i, "rx_errors")} / ${count(i, "tx_errors")}`,
    ]),
  );
  $("#disks-table").hidden = detail.disks.length === 0;
  $("#interfaces-table").hidden = detail.interfaces.length === 0;
}
