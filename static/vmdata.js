// A VM's history (points from /api/telemetry/history) turned into the VM view's chart data:
// CPU % from the cputime counter, sums over disks and interfaces, vCPU steal from each vCPU's
// delay counter, and the times each chart's signals were anomalous.

import { ANOMALOUS_SCORE } from "./charts.js";
import { isNumber, parseTime } from "./util.js";

// The signals (of vm_anomalies, `<signal>_score`) each chart shows.
export const CHART_SIGNALS = {
  cpu: ["cpu_percent"],
  memory: ["memory_used_percent"],
  rate: ["memory_rate_kb_per_sec"],
  disk: ["disk_read_bytes_per_sec", "disk_write_bytes_per_sec"],
  net: ["net_rx_bytes_per_sec", "net_tx_bytes_per_sec"],
  steal: ["cpu_steal_percent"],
};

export const SCORE_FIELDS = Object.values(CHART_SIGNALS).flat().map((s) => `${s}_score`);

function value(point, field) {
  return isNumber(point[field]) ? point[field] : null;
}

function time(point) {
  return parseTime(point.time || point.timestamp);
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

// Seed samples (history points or the in-memory ones) and features to the first three charts.
export function seedData(metrics, features) {
  const points = metrics.map((p) => ({
    t: time(p),
    memory_used_kb: value(p, "memory_used_kb"),
    memory_max_kb: value(p, "memory_max_kb"),
    cputime_ns: value(p, "cputime_ns"),
    cpu_count: value(p, "cpu_count"),
  }));
  const t = points.map((p) => p.t);
  return {
    memory: [t, points.map((p) => p.memory_used_kb), points.map((p) => p.memory_max_kb)],
    cpu: [t, points.map((p, i) => (i === 0 ? null : cpuPercent(points[i - 1], p)))],
    rate: [features.map(time), features.map((p) => value(p, "memory_rate_kb_per_sec"))],
  };
}

// Points of several devices to one series per field, summed over the devices at each time.
function summed(points, fields) {
  const byTime = new Map();
  for (const point of points) {
    const t = time(point);
    const sums = byTime.get(t) || fields.map(() => null);
    fields.forEach((field, i) => {
      const v = value(point, field);
      if (v !== null) sums[i] = (sums[i] || 0) + v;
    });
    byTime.set(t, sums);
  }
  const times = [...byTime.keys()].sort((a, b) => a - b);
  return [times, ...fields.map((_, i) => times.map((t) => byTime.get(t)[i]))];
}

// Per vCPU: Δvcpu_delay_ns / Δt as a share of that vCPU's time, averaged over the vCPUs
// read at each time. None across a counter that went back.
function steal(points) {
  const byVcpu = new Map();
  for (const point of points) {
    if (point.vcpu === undefined || !isNumber(point.vcpu_delay_ns)) continue;
    if (!byVcpu.has(point.vcpu)) byVcpu.set(point.vcpu, []);
    byVcpu.get(point.vcpu).push({ t: time(point), delay: point.vcpu_delay_ns });
  }
  const shares = new Map();
  for (const samples of byVcpu.values()) {
    samples.sort((a, b) => a.t - b.t);
    for (let i = 1; i < samples.length; i += 1) {
      const dt = samples[i].t - samples[i - 1].t;
      const delayed = samples[i].delay - samples[i - 1].delay;
      if (!(dt > 0) || delayed < 0) continue;
      const share = shares.get(samples[i].t) || [];
      share.push((delayed / (dt * 1e9)) * 100);
      shares.set(samples[i].t, share);
    }
  }
  const times = [...shares.keys()].sort((a, b) => a - b);
  return [times, times.map((t) => shares.get(t).reduce((a, b) => a + b, 0) / shares.get(t).length)];
}

// One disk's allocation and capacity over time (bytes), for its forecast's chart: the points
// that read them (its sizes have a cadence of their own, its counters' points carry none).
export function diskFill(points, device) {
  const sized = (p) => p.device === device && isNumber(p.capacity_bytes);
  const mine = points.filter(sized).sort((a, b) => time(a) - time(b));
  return [mine.map(time), mine.map((p) => value(p, "allocation_bytes")), mine.map((p) => value(p, "capacity_bytes"))];
}

// The extended charts: disk and network rates summed over the devices, and steal.
export function extendedData(disk, net, cpu) {
  return {
    disk: summed(disk, ["read_bytes_per_sec", "write_bytes_per_sec"]),
    net: summed(net, ["rx_bytes_per_sec", "tx_bytes_per_sec"]),
    steal: steal(cpu),
  };
}

// Per chart, the times one of its signals scored anomalous.
export function anomalyTimes(points) {
  const times = {};
  for (const [chart, signals] of Object.entries(CHART_SIGNALS)) {
    times[chart] = points
      .filter((p) => signals.some((s) => value(p, `${s}_score`) >= ANOMALOUS_SCORE))
      .map(time);
  }
  return times;
}
