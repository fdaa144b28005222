//! The forecasts' methods compared on one recorded leak (benches/insights.sh): the guest's
//! memory in use, once a second, from the leak's onset until the guest ran out. At 25, 50 and
//! 75 % of that time, each method forecasts the time left from the points so far; two tables
//! give each one's error against the time the guest really took: forecasting the time to full
//! (what the service reports), and the time to the level where the guest ran out (known only
//! afterwards: the kernel's last free pages are in no balloon figure), which measures the
//! method's extrapolation alone.
//!
//!     forecast_eval RECORDING ONSET_SEC EXHAUSTED_SEC
//!
//! RECORDING: one line per reading, "seconds used_bytes capacity_bytes".

use vmtelemetry::insights::forecast::trend::Trend;

const FRACTIONS: [f64; 3] = [0.25, 0.5, 0.75];
/// The shipped trend's half-lives compared: the real-guest test's, and a longer one.
const HALF_LIVES: [f64; 2] = [5.0, 30.0];
/// Holt's smoothing factors: level and trend.
const HOLT: (f64, f64) = (0.5, 0.1);
const HORIZON: f64 = 365.0 * 86_400.0;

/// (seconds, used, capacity)
type Point = (f64, f64, f64);
/// A method: the time left it forecasts from the points so far.
type Method = Box<dyn Fn(&[Point]) -> Option<f64>>;

/// The shipped method: the decaying weighted least squares, with its hysteresis.
fn shipped(points: &[Point], half_life: f64) -> Option<f64> {
    let mut trend = Trend::default();
    let mut last = None;
    for &(t, used, capacity) in points {
        trend.observe((t * 1e9) as i64, used, capacity, half_life);
        last = trend.evaluate(capacity, HORIZON).to_full.map(|f| f.seconds);
    }
    last
}

/// Prometheus' `predict_linear`: ordinary least squares over every point since the onset.
fn least_squares(points: &[Point]) -> Option<f64> {
    let n = points.len() as f64;
    let mean_t = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    let c_ty: f64 = points.iter().map(|p| (p.0 - mean_t) * (p.1 - mean_y)).sum();
    let c_tt: f64 = points.iter().map(|p| (p.0 - mean_t).powi(2)).sum();
    let slope = c_ty / c_tt;
    let &(t, _, capacity) = points.last()?;
    let level = mean_y + slope * (t - mean_t);
    (slope > 0.0).then(|| (capacity - level).max(0.0) / slope)
}

/// Holt's double exponential smoothing (Prometheus' `double_exponential_smoothing`), its trend
/// per second from readings a second or so apart.
fn holt(points: &[Point]) -> Option<f64> {
    let (alpha, beta) = HOLT;
    let [first, second, ..] = points else {
        return None;
    };
    let (mut level, mut trend, mut t) = (
        second.1,
        (second.1 - first.1) / (second.0 - first.0),
        second.0,
    );
    for &(now, used, _) in &points[2..] {
        let dt = now - t;
        let previous = level;
        level = alpha * used + (1.0 - alpha) * (level + trend * dt);
        trend = beta * (level - previous) / dt + (1.0 - beta) * trend;
        t = now;
    }
    let capacity = points.last()?.2;
    (trend > 0.0).then(|| (capacity - level).max(0.0) / trend)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, path, onset, exhausted] = &args[..] else {
        panic!("usage: forecast_eval RECORDING ONSET_SEC EXHAUSTED_SEC");
    };
    let (onset, exhausted): (f64, f64) = (onset.parse().unwrap(), exhausted.parse().unwrap());
    let text = std::fs::read_to_string(path).unwrap();
    let points: Vec<Point> = text
        .lines()
        .filter_map(|line| {
            let v: Vec<f64> = line
                .split_whitespace()
                .filter_map(|w| w.parse().ok())
                .collect();
            (v.len() == 3 && v[0] >= onset).then(|| (v[0], v[1], v[2]))
        })
        .collect();
    let span = exhausted - onset;
    let (last, capacity) = points.last().map(|p| (p.1, p.2)).unwrap();
    println!(
        "Leak of {:.2} MiB/s from onset to exhaustion in {span:.0} s ({} readings); it ran out at \
         {:.1} of {:.1} MiB ({:.1} MiB short of the capacity).",
        (last - points[0].1) / span / 1048576.0,
        points.len(),
        last / 1048576.0,
        capacity / 1048576.0,
        (capacity - last) / 1048576.0,
    );
    let to_level: Vec<Point> = points.iter().map(|&(t, used, _)| (t, used, last)).collect();
    for (title, points) in [
        ("to full", &points),
        ("to the level where it ran out", &to_level),
    ] {
        println!("\nError of the forecast time left {title} (forecast / true − 1):\n");
        table(points, onset, exhausted);
    }
}

fn table(points: &[Point], onset: f64, exhausted: f64) {
    let span = exhausted - onset;
    println!("| method | at 25 % | at 50 % | at 75 % |");
    println!("|---|---|---|---|");
    let mut methods: Vec<(String, Method)> = HALF_LIVES
        .iter()
        .map(|&h| {
            let name = format!("shipped: decaying least squares, half-life {h} s");
            (name, Box::new(move |p: &[Point]| shipped(p, h)) as Box<_>)
        })
        .collect();
    methods.push((
        "predict_linear: least squares since the onset".into(),
        Box::new(least_squares),
    ));
    let (alpha, beta) = HOLT;
    methods.push((format!("Holt (α {alpha}, β {beta})"), Box::new(holt)));
    for (name, method) in &methods {
        let cells: Vec<String> = FRACTIONS
            .iter()
            .map(|f| {
                let at = onset + f * span;
                let seen: Vec<Point> = points.iter().copied().filter(|p| p.0 <= at).collect();
                let truth = exhausted - seen.last().map_or(at, |p| p.0);
                match method(&seen) {
                    Some(forecast) => format!("{:+.1} %", (forecast / truth - 1.0) * 100.0),
                    None => "none".into(),
                }
            })
            .collect();
        println!("| {name} | {} |", cells.join(" | "));
    }
}
