// Time charts (uPlot): one per figure of the page, synced cursors, the page's colours, and the
// anomalies of a VM marked as red bands.
/* global uPlot */

import { $, exactKiB, humanKiB, isNumber } from "./util.js";

// Three charts, the VM's figures and the tiles fit a 1000 px high window.
const CHART_HEIGHT = 110;
// The score from which a signal is anomalous (0.5 at the detector's threshold: README).
export const ANOMALOUS_SCORE = 0.5;

export function chartWidth(element) {
  return Math.max(280, element.clientWidth);
}

// Memory ticks at 256 MiB, 512 MiB… rather than uPlot's decimal 244.1 MiB, 488.3 MiB…
const KIB_INCREMENTS = [1, 1024, 1024 ** 2, 1024 ** 3].flatMap((unit) =>
  [1, 2, 4, 8, 16, 32, 64, 128, 256, 512].map((m) => unit * m),
);

const legendTime = uPlot.fmtDate("{YYYY}-{MM}-{DD} {HH}:{mm}:{ss}");

// A legend shows the hovered point, else the latest one.
export function legend(format) {
  return (chart, value, seriesIndex, index) => {
    if (index !== null && index !== undefined) return format(value, false);
    // The latest value a series has: one padded with nulls for a forecast after it has none.
    const values = chart.data[seriesIndex] || [];
    const latest = values.findLast((v) => v !== null && v !== undefined);
    return format(latest === undefined ? null : latest, true);
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

// Draws `chart.anomalies` (times, in seconds) as translucent red bands behind the lines.
const anomalyBands = {
  hooks: {
    drawClear: [
      (chart) => {
        const times = chart.anomalies || [];
        if (times.length === 0) return;
        const { ctx, bbox } = chart;
        const width = Math.max(3 * devicePixelRatio, bbox.width / 300);
        ctx.save();
        ctx.fillStyle = "rgba(220, 38, 38, 0.28)";
        for (const t of times) {
          const x = chart.valToPos(t, "x", true);
          if (x >= bbox.left && x <= bbox.left + bbox.width) {
            ctx.fillRect(x - width / 2, bbox.top, width, bbox.height);
          }
        }
        ctx.restore();
      },
    ],
  },
};

export const fromZero = (chart, min, max) => [0, isNumber(max) && max > 0 ? max * 1.05 : 1];

export const percentRange = (chart, min, max) => [0, isNumber(max) && max > 100 ? max * 1.05 : 100];

// `spec`: { series, yAxis (a tick's text), yRange, yIncrements, bands }.
function makeChart(element, spec) {
  const options = {
    width: chartWidth(element),
    height: CHART_HEIGHT,
    cursor: { sync: { key: "vmtelemetry" } },
    scales: { x: { time: true }, y: spec.yRange ? { range: spec.yRange } : {} },
    series: [{ value: timeLegend }, ...spec.series],
    axes: [axis({ space: 80 }), axis({ size: 80, values: (chart, splits) => splits.map(spec.yAxis) })],
    plugins: [anomalyBands],
  };
  if (spec.yIncrements) options.axes[1].incrs = spec.yIncrements;
  if (spec.bands) options.bands = spec.bands;
  const chart = new uPlot(options, [[], ...spec.series.map(() => [])], element);
  chart.anomalies = [];
  return chart;
}

// The charts of `specs` ({name: spec}) in the elements `#chart-<name>`, kept as wide as their
// container.
export function makeCharts(container, specs) {
  const charts = {};
  for (const [name, spec] of Object.entries(specs)) charts[name] = makeChart($(`#chart-${name}`), spec);
  new ResizeObserver(() => {
    for (const [name, chart] of Object.entries(charts)) {
      const width = chartWidth($(`#chart-${name}`));
      if (chart.width !== width) chart.setSize({ width, height: CHART_HEIGHT });
    }
  }).observe(container);
  return charts;
}

// New points, and anomaly bands (times) if given; an empty data set for a chart missing.
export function draw(charts, data, anomalies = {}) {
  for (const [name, chart] of Object.entries(charts)) {
    chart.anomalies = anomalies[name] || [];
    chart.setData(data[name] || [[], ...chart.series.slice(1).map(() => [])]);
  }
}

// One colour per role, readable on the light and the dark theme.
export const COLOURS = {
  cpu: "#d97706",
  memory: "#2563eb",
  max: "#94a3b8",
  rate: "#059669",
  read: "#7c3aed",
  write: "#db2777",
  rx: "#0891b2",
  tx: "#65a30d",
  steal: "#dc2626",
};

export function line(label, colour, format, extra = {}) {
  return { label, stroke: colour, width: 2, value: legend(format), ...extra };
}

// Memory in use (filled) under its bound (dashed), in KiB.
export function memorySpec(used, bound) {
  return {
    series: [
      line(used, COLOURS.memory, exactKiB, { fill: "rgba(37, 99, 235, 0.12)" }),
      line(bound, COLOURS.max, exactKiB, { width: 1, dash: [6, 4], points: { show: false } }),
    ],
    yAxis: humanKiB,
    yRange: fromZero,
    yIncrements: KIB_INCREMENTS,
  };
}
