//! Replays the signals `benches/insights.sh` recorded from real guests through each detector
//! compared, and prints one table row per detector: detection delay per workload, anomalies per
//! 1,000 steady VM-signal-samples, CPU per VM-signal update and state per VM-signal.
//!
//!     insights_eval RECORDING.jsonl ONSETS.json LEARNING_SAMPLES
//!
//! RECORDING: one line per VM and cycle, `{"t": unix seconds, "vm": name, "values": [16 values or
//! null, in `Signal::ALL` order], "anomalous": [signal names], "conditions": [kinds]}` (the
//! service's API). ONSETS: `{"truths": [{"vm", "workload", "onset", "signals", "condition",
//! "condition_from"}], "steady": [vm names]}`. Detectors, each from its own past per VM-signal:
//! - `robust z (shipped)`: `SignalModel`, replayed with the service's defaults but LEARNING;
//! - `service (live)`: the same detector's verdicts as the running service gave them;
//! - `k·MAD, moving median`: |x − median| > 3 × 1.4826 × MAD of the last 60 values (the rule of
//!   InfluxDB 3's MAD plugin), from LEARNING values on;
//! - `k-means k=2 (Netdata-like)`: Netdata's per-metric recipe, one model: the mean of the last 3
//!   values, differenced, with 5 lags (6 dimensions); 2-means trained once on the first LEARNING
//!   vectors; a sample is anomalous when its distance to the nearer centre, scaled by the least
//!   and greatest training distances, reaches 0.99.

use std::collections::{BTreeMap, VecDeque};
use std::hint::black_box;
use std::time::Instant;

use serde::Deserialize;
use vmtelemetry::insights::detector::{DetectorSettings, SignalModel, Verdict};
use vmtelemetry::insights::signals::{SIGNALS, Signal};

#[derive(Deserialize)]
struct Row {
    t: f64,
    vm: String,
    values: Vec<Option<f64>>,
    anomalous: Vec<String>,
    conditions: Vec<String>,
}

#[derive(Deserialize)]
struct Truth {
    vm: String,
    workload: String,
    onset: f64,
    signals: Vec<String>,
    condition: String,
}

#[derive(Deserialize)]
struct Onsets {
    truths: Vec<Truth>,
    steady: Vec<String>,
}

/// One VM-signal's detector state.
trait Detector {
    /// None while it learns.
    fn step(&mut self, x: f64, floor: f64) -> Option<bool>;
    /// Its state's bytes once trained, heap included.
    fn bytes(&self) -> usize;
}

struct Robust(SignalModel, DetectorSettings);

impl Detector for Robust {
    fn step(&mut self, x: f64, floor: f64) -> Option<bool> {
        match self.0.observe(x, floor, &self.1)? {
            Verdict::Scored { anomalous, .. } => Some(anomalous),
            Verdict::Learning | Verdict::Resumed => None,
        }
    }
    fn bytes(&self) -> usize {
        size_of::<SignalModel>()
    }
}

const MAD_WINDOW: usize = 60;
const MAD_K: f64 = 3.0;

struct Mad {
    window: VecDeque<f64>,
    learning: usize,
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    (values[(n - 1) / 2] + values[n / 2]) / 2.0
}

impl Detector for Mad {
    fn step(&mut self, x: f64, _floor: f64) -> Option<bool> {
        let verdict = (self.window.len() >= self.learning).then(|| {
            let mut sorted: Vec<f64> = self.window.iter().copied().collect();
            let m = median(&mut sorted);
            let mut deviations: Vec<f64> = sorted.iter().map(|v| (v - m).abs()).collect();
            let mad = median(&mut deviations);
            (x - m).abs() > MAD_K * 1.4826 * mad
        });
        if self.window.len() == MAD_WINDOW {
            self.window.pop_front();
        }
        self.window.push_back(x);
        verdict
    }
    fn bytes(&self) -> usize {
        size_of::<Self>() + MAD_WINDOW * size_of::<f64>()
    }
}

const SMOOTH: usize = 3;
const DIMS: usize = 6;
type Point = [f64; DIMS];

/// Netdata's features and one k-means model.
struct KMeans {
    raw: VecDeque<f64>,
    previous_smoothed: Option<f64>,
    lags: VecDeque<f64>,
    training: Vec<Point>,
    learning: usize,
    /// The centres, and the least and greatest training distances.
    model: Option<([Point; 2], f64, f64)>,
}

fn distance(a: &Point, b: &Point) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f64>()
        .sqrt()
}

fn nearest(centres: &[Point; 2], p: &Point) -> (usize, f64) {
    let (d0, d1) = (distance(&centres[0], p), distance(&centres[1], p));
    if d0 <= d1 { (0, d0) } else { (1, d1) }
}

/// Lloyd's 2-means from the first point and the one farthest from it.
fn two_means(points: &[Point]) -> [Point; 2] {
    let far = points
        .iter()
        .max_by(|a, b| distance(&points[0], a).total_cmp(&distance(&points[0], b)))
        .unwrap();
    let mut centres = [points[0], *far];
    for _ in 0..100 {
        let mut sums = [[0.0; DIMS]; 2];
        let mut counts = [0usize; 2];
        for p in points {
            let (c, _) = nearest(&centres, p);
            counts[c] += 1;
            sums[c].iter_mut().zip(p).for_each(|(s, v)| *s += v);
        }
        let mut next = centres;
        for c in 0..2 {
            if counts[c] > 0 {
                next[c] = sums[c].map(|s| s / counts[c] as f64);
            }
        }
        if next == centres {
            break;
        }
        centres = next;
    }
    centres
}

impl KMeans {
    fn features(&mut self, x: f64) -> Option<Point> {
        self.raw.push_back(x);
        if self.raw.len() > SMOOTH {
            self.raw.pop_front();
        }
        let smoothed = self.raw.iter().sum::<f64>() / self.raw.len() as f64;
        let diff = smoothed - self.previous_smoothed.replace(smoothed)?;
        self.lags.push_front(diff);
        self.lags.truncate(DIMS);
        (self.lags.len() == DIMS).then(|| std::array::from_fn(|i| self.lags[i]))
    }
}

impl Detector for KMeans {
    fn step(&mut self, x: f64, _floor: f64) -> Option<bool> {
        let p = self.features(x)?;
        let Some((centres, low, high)) = self.model else {
            self.training.push(p);
            if self.training.len() >= self.learning {
                let centres = two_means(&self.training);
                let d = self.training.iter().map(|p| nearest(&centres, p).1);
                let (low, high) = d.fold((f64::MAX, 0.0_f64), |(l, h), d| (l.min(d), h.max(d)));
                self.model = Some((centres, low, high));
                self.training = Vec::new();
            }
            return None;
        };
        let score = (nearest(&centres, &p).1 - low) / (high - low).max(f64::MIN_POSITIVE);
        Some(score >= 0.99)
    }
    fn bytes(&self) -> usize {
        size_of::<Self>() + (SMOOTH + DIMS) * size_of::<f64>()
    }
}

type Factory = fn(usize) -> Box<dyn Detector>;

fn detectors() -> [(&'static str, Factory); 3] {
    [
        ("robust z (shipped)", |learning| {
            let settings = DetectorSettings {
                learning_samples: learning as u16,
                baseline_samples: 360,
                threshold: 5.0,
            };
            Box::new(Robust(SignalModel::default(), settings))
        }),
        ("k·MAD, moving median", |learning| {
            Box::new(Mad {
                window: VecDeque::new(),
                learning,
            })
        }),
        ("k-means k=2 (Netdata-like)", |learning| {
            Box::new(KMeans {
                raw: VecDeque::new(),
                previous_smoothed: None,
                lags: VecDeque::new(),
                training: Vec::new(),
                learning,
                model: None,
            })
        }),
    ]
}

/// Per VM, per signal: (t, verdict) of every sample scored.
type Verdicts = BTreeMap<String, Vec<Vec<(f64, bool)>>>;

/// Runs one detector over every VM-signal; the verdicts, the updates and their seconds.
fn replay(
    series: &BTreeMap<String, Vec<&Row>>,
    make: Factory,
    learning: usize,
) -> (Verdicts, usize, f64) {
    let mut verdicts = Verdicts::new();
    let (mut updates, started) = (0, Instant::now());
    for (vm, rows) in series {
        let mut states: Vec<Box<dyn Detector>> = (0..SIGNALS).map(|_| make(learning)).collect();
        let mut per_signal = vec![Vec::new(); SIGNALS];
        for row in rows {
            for (s, signal) in Signal::ALL.into_iter().enumerate() {
                let Some(x) = row.values.get(s).copied().flatten() else {
                    continue;
                };
                updates += 1;
                if let Some(anomalous) = black_box(states[s].step(x, signal.floor())) {
                    per_signal[s].push((row.t, anomalous));
                }
            }
        }
        verdicts.insert(vm.clone(), per_signal);
    }
    (verdicts, updates, started.elapsed().as_secs_f64())
}

/// The service's own verdicts: every present value of a trained signal was scored.
fn live(series: &BTreeMap<String, Vec<&Row>>, learning: usize) -> Verdicts {
    let mut verdicts = Verdicts::new();
    for (vm, rows) in series {
        let mut per_signal = vec![Vec::new(); SIGNALS];
        for (s, signal) in Signal::ALL.into_iter().enumerate() {
            let present = rows
                .iter()
                .filter(|r| r.values.get(s).copied().flatten().is_some());
            for row in present.skip(learning) {
                let anomalous = row.anomalous.iter().any(|a| a == signal.name());
                per_signal[s].push((row.t, anomalous));
            }
        }
        verdicts.insert(vm.clone(), per_signal);
    }
    verdicts
}

/// Seconds from each truth's onset to its first anomalous sample on its signals.
fn delays(verdicts: &Verdicts, onsets: &Onsets) -> Vec<String> {
    onsets
        .truths
        .iter()
        .map(|truth| {
            let per_signal = &verdicts[&truth.vm];
            let first = Signal::ALL
                .into_iter()
                .filter(|s| truth.signals.iter().any(|n| n == s.name()))
                .filter_map(|s| {
                    per_signal[s as usize]
                        .iter()
                        .find(|(t, anomalous)| *t >= truth.onset && *anomalous)
                })
                .map(|(t, _)| t - truth.onset)
                .reduce(f64::min);
            first.map_or("missed".to_owned(), |d| format!("{d:.1}"))
        })
        .collect()
}

/// (anomalous, scored) samples of the steady guests and of every guest before its onset.
fn steady_counts(verdicts: &Verdicts, onsets: &Onsets) -> (usize, usize) {
    let mut counts = (0, 0);
    for (vm, per_signal) in verdicts {
        let end = match onsets.truths.iter().find(|t| &t.vm == vm) {
            Some(truth) => truth.onset,
            None if onsets.steady.contains(vm) => f64::INFINITY,
            None => continue,
        };
        for (_, anomalous) in per_signal.iter().flatten().filter(|(t, _)| *t < end) {
            counts.0 += usize::from(*anomalous);
            counts.1 += 1;
        }
    }
    counts
}

/// Seconds from each truth's onset to the service naming its condition.
fn condition_delays(series: &BTreeMap<String, Vec<&Row>>, onsets: &Onsets) -> Vec<String> {
    let named = |truth: &Truth| {
        let rows = series.get(&truth.vm)?;
        let row = rows
            .iter()
            .find(|r| r.t >= truth.onset && r.conditions.contains(&truth.condition))?;
        Some(format!("{} {:.1}", truth.condition, row.t - truth.onset))
    };
    let missed = |truth: &Truth| format!("{} missed", truth.condition);
    onsets
        .truths
        .iter()
        .map(|truth| named(truth).unwrap_or_else(|| missed(truth)))
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    assert_eq!(
        args.len(),
        4,
        "usage: insights_eval RECORDING.jsonl ONSETS.json LEARNING"
    );
    let text = std::fs::read_to_string(&args[1]).expect("the recording");
    let rows: Vec<Row> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("a recorded row"))
        .collect();
    let onsets: Onsets =
        serde_json::from_str(&std::fs::read_to_string(&args[2]).expect("the onsets")).unwrap();
    let learning: usize = args[3].parse().expect("LEARNING_SAMPLES");
    let mut series: BTreeMap<String, Vec<&Row>> = BTreeMap::new();
    for row in &rows {
        series.entry(row.vm.clone()).or_default().push(row);
    }
    let workloads: Vec<&str> = onsets.truths.iter().map(|t| t.workload.as_str()).collect();
    println!(
        "| detector | delay (s): {} | anomalies per 1,000 steady VM-signal-samples | µs per VM-signal update | bytes per VM-signal |",
        workloads.join(" / ")
    );
    println!("|---|---|---|---|---|");
    let row = |name: &str, verdicts: &Verdicts, cost: String, bytes: String| {
        let (anomalous, scored) = steady_counts(verdicts, &onsets);
        let rate = 1000.0 * anomalous as f64 / scored.max(1) as f64;
        println!(
            "| {name} | {} | {rate:.2} ({anomalous} of {scored}) | {cost} | {bytes} |",
            delays(verdicts, &onsets).join(" / ")
        );
    };
    row(
        "service (live), robust z",
        &live(&series, learning),
        "see the 1,000-VM table".into(),
        "24".into(),
    );
    for (name, make) in detectors() {
        let (verdicts, updates, _) = replay(&series, make, learning);
        // Cost: the replay again, enough times to time it.
        let rounds = (2_000_000 / updates.max(1)).max(1);
        let started = Instant::now();
        for _ in 0..rounds {
            black_box(replay(&series, make, learning));
        }
        let micros = started.elapsed().as_secs_f64() * 1e6 / (rounds * updates) as f64;
        row(
            name,
            &verdicts,
            format!("{micros:.3}"),
            make(learning).bytes().to_string(),
        );
    }
    println!(
        "\nConditions named by the service, seconds after each onset: {}",
        condition_delays(&series, &onsets).join(", ")
    );
}
