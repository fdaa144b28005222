//! VPA's estimators (`pkg/recommender/logic`): a percentile of each histogram, a 15 % safety
//! margin, the confidence multipliers for short histories, then the minimums. Amounts are whole
//! millicores and bytes, truncated at every step as VPA's `ResourceAmount` is.

use serde::Serialize;
use utoipa::ToSchema;

use super::histogram::{CPU_BUCKETS, DecayingHistogram, MEMORY_BUCKETS};

const TARGET_PERCENTILE: f64 = 0.9;
const LOWER_PERCENTILE: f64 = 0.5;
const UPPER_PERCENTILE: f64 = 0.95;
const SAFETY_MARGIN: f64 = 0.15;
/// VPA's `pod-recommendation-min-cpu-millicores` and `-min-memory-mb` (in MiB, as VPA reads it).
pub const MIN_MILLICORES: i64 = 25;
pub const MIN_MEMORY_BYTES: i64 = 250 * 1024 * 1024;
/// VPA's `MaxResourceAmount`.
const MAX_AMOUNT: i64 = 100_000_000_000_000;
/// VPA's confidence counts samples at one a minute.
pub const MINUTES_PER_DAY: f64 = 24.0 * 60.0;

/// Lower bound, target and upper bound of one resource: millicores or bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct Estimate {
    pub lower: i64,
    pub target: i64,
    pub upper: i64,
}

/// How much history a VM's histograms hold, as VPA measures it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct History {
    /// How long VPA's day is (shorter only in tests).
    pub day_ns: i64,
    pub first_sample_ns: i64,
    pub last_sample_ns: i64,
    pub samples: u64,
}

impl History {
    /// In days: the shorter of the span sampled and the samples at one a minute.
    pub fn confidence(&self) -> f64 {
        let span = (self.last_sample_ns - self.first_sample_ns) as f64 / self.day_ns as f64;
        let samples = self.samples as f64 / MINUTES_PER_DAY;
        span.min(samples)
    }
}

/// VPA's `resourceAmountFromFloat`: capped, never negative, truncated.
fn amount(value: f64) -> i64 {
    if value > MAX_AMOUNT as f64 {
        return MAX_AMOUNT;
    }
    value.max(0.0) as i64
}

fn scale(value: i64, factor: f64) -> i64 {
    amount(value as f64 * factor)
}

/// One resource's three estimates from its percentiles (in millicores or bytes), margin,
/// confidence and minimum. None when the history gives no confidence yet (VPA's upper bound
/// would be infinite).
fn estimate(percentile: impl Fn(f64) -> i64, confidence: f64, minimum: i64) -> Option<Estimate> {
    // Not above zero, or NaN.
    if confidence.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
        return None;
    }
    let with_margin = |p| {
        let base = percentile(p);
        base + scale(base, SAFETY_MARGIN)
    };
    let upper = scale(with_margin(UPPER_PERCENTILE), 1.0 + 1.0 / confidence);
    let lower = scale(
        with_margin(LOWER_PERCENTILE),
        (1.0 + 0.001 / confidence).powf(-2.0),
    );
    Some(Estimate {
        lower: lower.max(minimum),
        target: with_margin(TARGET_PERCENTILE).max(minimum),
        upper: upper.max(minimum),
    })
}

/// CPU in millicores from the CPU histogram (in cores).
pub fn cpu(histogram: &DecayingHistogram, history: &History) -> Option<Estimate> {
    let millicores = |p| amount(histogram.percentile(&CPU_BUCKETS, p) * 1000.0);
    estimate(millicores, history.confidence(), MIN_MILLICORES)
}

/// Memory in bytes from the histogram of daily peaks (in bytes). The confidence is the CPU
/// samples' (VPA counts only those).
pub fn memory(histogram: &DecayingHistogram, history: &History) -> Option<Estimate> {
    if histogram.is_empty() {
        return None;
    }
    let bytes = |p| amount(histogram.percentile(&MEMORY_BUCKETS, p));
    estimate(bytes, history.confidence(), MIN_MEMORY_BYTES)
}
