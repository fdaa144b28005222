// A VM's forecasts (its insights' `forecasts`: memory, disk:<device>) drawn on its charts: from
// now, the level growing as forecast until full (dashed), and the 80 % interval of the time to
// full as a band between the faster and the slower growth. The future shown is as long as the
// range shown, so the history keeps its half of the chart.

import { duration, humanBytes, isNumber } from "./util.js";

const BAND = "rgba(217, 119, 6, 0.16)";
const FORECAST = "#d97706";

// The three series a chart with a forecast adds after its own.
export function forecastSeries(format) {
  const thin = { width: 1, points: { show: false } };
  return [
    { label: "forecast", stroke: FORECAST, width: 2, dash: [8, 4], points: { show: false }, value: format },
    { label: "fast (80 %)", stroke: BAND, ...thin, value: format },
    { label: "slow (80 %)", stroke: BAND, ...thin, value: format },
  ];
}

// The band between the last two of `count` series (index 0 is time).
export function forecastBands(count) {
  return [{ series: [count - 2, count - 1], fill: BAND }];
}

// The level `seconds` from now at a rate filling `room` in `toFull` seconds (none: not growing).
function level(used, capacity, toFull, seconds) {
  if (!isNumber(toFull) || toFull <= 0) return used;
  return Math.min(capacity, used + ((capacity - used) * seconds) / toFull);
}

// `data` ([times, ...series]) with the forecast's points after it, every series of the chart's
// own padded with nulls there, and the forecast's three series null over the history. `scale`
// turns bytes into the chart's unit; `horizon`: the seconds of future shown.
export function withForecast(data, forecast, scale, horizon, now = Date.now() / 1000) {
  const [times, ...series] = data;
  const pad = (values, n) => [...values, ...new Array(n).fill(null)];
  if (!forecast) return [times, ...series, ...[0, 1, 2].map(() => times.map(() => null))];
  const used = forecast.used / scale;
  const capacity = forecast.capacity / scale;
  const bounds = [forecast.seconds_to_full, forecast.seconds_to_full_lower, forecast.seconds_to_full_upper];
  const offsets = [0, horizon, ...bounds.filter((s) => isNumber(s) && s > 0 && s < horizon)]
    .sort((a, b) => a - b)
    .filter((s, i, all) => i === 0 || s !== all[i - 1]);
  const growing = isNumber(forecast.seconds_to_full);
  // The slow bound none: the slower growth would not fill it at all.
  const slow = growing && !isNumber(forecast.seconds_to_full_upper) ? Infinity : forecast.seconds_to_full_upper;
  const lines = [forecast.seconds_to_full, forecast.seconds_to_full_lower, slow].map((toFull, i) =>
    offsets.map((s) => (i > 0 && !growing ? null : level(used, capacity, toFull, s))),
  );
  const future = offsets.map((s) => now + s);
  const n = future.length;
  return [
    [...times, ...future],
    ...series.map((values) => pad(values, n)),
    ...lines.map((values) => [...times.map(() => null), ...values]),
  ];
}

// Shows the last three series of `chart` (a forecast's), and their legend, only when there is
// a forecast.
export function showForecast(chart, shown) {
  const rows = chart.root.querySelectorAll(".u-legend .u-series");
  for (let i = chart.series.length - 3; i < chart.series.length; i += 1) {
    if (chart.series[i].show !== shown) chart.setSeries(i, { show: shown });
    if (rows[i]) rows[i].style.display = shown ? "" : "none";
  }
}

// "memory: 62 % of 1.0 GiB, growing 12.0 MiB/h, full in 3 h 20 min (2 h 5 min – 5 h)"
export function forecastText(forecast) {
  const share = forecast.capacity > 0 ? `${Math.round((forecast.used / forecast.capacity) * 100)} %` : "—";
  const head = `${forecast.resource}: ${share} of ${humanBytes(forecast.capacity)}`;
  if (!isNumber(forecast.seconds_to_full)) return `${head}, not growing`;
  const upper = isNumber(forecast.seconds_to_full_upper) ? duration(forecast.seconds_to_full_upper) : "never";
  const growth = `${humanBytes(Math.round(forecast.growth_per_hour))}/h`;
  return `${head}, growing ${growth}, full in ${duration(forecast.seconds_to_full)} (80 %: ${duration(
    forecast.seconds_to_full_lower,
  )} – ${upper})`;
}
