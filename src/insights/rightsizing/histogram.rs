//! VPA's decaying histogram (`pkg/recommender/util`): exponential buckets, each `RATIO` times
//! wider than the one before, and weights that grow by 2 every half-life instead of old ones
//! shrinking (the same ratios, one multiplication per sample). Kept sparse: only the buckets a
//! VM has used, which is what makes 10,000 VMs' histograms fit in memory.

use serde::{Deserialize, Serialize};

/// Every bucket is 5 % wider than the one before (VPA's `HistogramBucketSizeGrowth`).
pub const RATIO: f64 = 1.05;
/// The smallest weight kept (VPA: `0.001 * minSampleWeight`).
pub const EPSILON: f64 = 0.001 * MIN_SAMPLE_WEIGHT;
/// The weight of every CPU sample, before decay (VPA's `minSampleWeight`).
pub const MIN_SAMPLE_WEIGHT: f64 = 0.1;
/// Weights are renormalised before they reach 2^100 (VPA's `maxDecayExponent`).
const MAX_DECAY_EXPONENT: i64 = 100;

/// Exponential bucket boundaries: bucket `i` starts at `first * (RATIO^i - 1) / (RATIO - 1)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Buckets {
    pub first: f64,
    pub count: usize,
}

/// CPU in cores: 0.01 core first, up to 1000 cores.
pub const CPU_BUCKETS: Buckets = Buckets::exponential(1000.0, 0.01);
/// Memory in bytes: 10 MB first, up to 1 TB.
pub const MEMORY_BUCKETS: Buckets = Buckets::exponential(1e12, 1e7);

impl Buckets {
    /// `ceil(log_RATIO(max * (RATIO - 1) / first + 1)) + 1` buckets, as VPA counts them; both
    /// histograms have 176 (computed at compile time by search, as `log` is not `const`).
    pub const fn exponential(max: f64, first: f64) -> Buckets {
        let target = max * (RATIO - 1.0) / first + 1.0;
        let (mut n, mut power) = (0, 1.0);
        while power < target {
            power *= RATIO;
            n += 1;
        }
        Buckets {
            first,
            count: n + 1,
        }
    }

    pub fn find(&self, value: f64) -> usize {
        if value.is_nan() || value < self.first {
            return 0;
        }
        let bucket = ((value * (RATIO - 1.0) / self.first + 1.0).ln() / RATIO.ln()) as usize;
        bucket.min(self.count - 1)
    }

    pub fn start(&self, bucket: usize) -> f64 {
        if bucket == 0 {
            return 0.0;
        }
        self.first * (RATIO.powi(bucket as i32) - 1.0) / (RATIO - 1.0)
    }
}

/// A decaying histogram: `(bucket, weight)` in bucket order, the total weight, and the time
/// from which weights are counted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DecayingHistogram {
    weights: Vec<(u16, f64)>,
    total: f64,
    /// Nanoseconds since the Unix epoch, a whole number of half-lives; None before any sample.
    reference_ns: Option<i64>,
}

impl DecayingHistogram {
    pub fn add(&mut self, buckets: &Buckets, value: f64, weight: f64, t_ns: i64, half_life: i64) {
        let weight = weight * self.decay_factor(t_ns, half_life);
        let bucket = buckets.find(value) as u16;
        match self.weights.binary_search_by_key(&bucket, |(b, _)| *b) {
            Ok(i) => self.weights[i].1 += weight,
            Err(i) => {
                // Exact growth: a new bucket is rare once a VM's range is seen, and doubling
                // left a third of 10,000 VMs' histograms unused.
                self.weights.reserve_exact(1);
                self.weights.insert(i, (bucket, weight));
            }
        }
        self.total += weight;
        self.trim();
    }

    /// Takes back a sample added at `t_ns` (a day's memory peak that a higher one replaces).
    pub fn subtract(
        &mut self,
        buckets: &Buckets,
        value: f64,
        weight: f64,
        t_ns: i64,
        half_life: i64,
    ) {
        let weight = weight * self.decay_factor(t_ns, half_life);
        let bucket = buckets.find(value) as u16;
        self.total = safe_subtract(self.total, weight);
        if let Ok(i) = self.weights.binary_search_by_key(&bucket, |(b, _)| *b) {
            self.weights[i].1 = safe_subtract(self.weights[i].1, weight);
        }
        self.trim();
    }

    /// The end of the bucket where the cumulative weight reaches `p` of the total (the start of
    /// the last bucket, which has no end); 0 when empty.
    pub fn percentile(&self, buckets: &Buckets, p: f64) -> f64 {
        let Some(last) = self.weights.last() else {
            return 0.0;
        };
        let threshold = p * self.total;
        let mut sum = 0.0;
        let mut bucket = usize::from(last.0);
        for (b, w) in &self.weights {
            sum += w;
            if sum >= threshold {
                bucket = usize::from(*b);
                break;
            }
        }
        match bucket < buckets.count - 1 {
            true => buckets.start(bucket + 1),
            false => buckets.start(bucket),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.weights.is_empty()
    }

    /// Buckets held: the histogram's size is about 16 bytes each.
    pub fn buckets_held(&self) -> usize {
        self.weights.len()
    }

    /// `2^((t - reference) / half_life)`, moving the reference (and rescaling every weight by
    /// the same power of two) when the exponent would pass `MAX_DECAY_EXPONENT`.
    fn decay_factor(&mut self, t_ns: i64, half_life: i64) -> f64 {
        let limit = self
            .reference_ns
            .map(|r| r.saturating_add(half_life.saturating_mul(MAX_DECAY_EXPONENT)));
        if limit.is_none_or(|limit| t_ns > limit) {
            self.shift_reference(t_ns, half_life);
        }
        let reference = self.reference_ns.unwrap_or(t_ns);
        ((t_ns - reference) as f64 / half_life as f64).exp2()
    }

    fn shift_reference(&mut self, t_ns: i64, half_life: i64) {
        // Rounded to a whole number of half-lives, halves up (Go's `Time.Round`).
        let rounded = (t_ns as f64 / half_life as f64).round() as i64 * half_life;
        if let Some(old) = self.reference_ns {
            let exponent = ((old - rounded) as f64 / half_life as f64).round() as i32;
            let factor = 2f64.powi(exponent);
            self.weights.iter_mut().for_each(|(_, w)| *w *= factor);
            self.total *= factor;
            self.trim();
        }
        self.reference_ns = Some(rounded);
    }

    /// Drops the buckets below epsilon at either end, which VPA's percentiles skip as well.
    fn trim(&mut self) {
        while self.weights.last().is_some_and(|(_, w)| *w < EPSILON) {
            self.weights.pop();
        }
        let first = self
            .weights
            .iter()
            .take_while(|(_, w)| *w < EPSILON)
            .count();
        self.weights.drain(..first);
    }
}

fn safe_subtract(value: f64, sub: f64) -> f64 {
    let left = value - sub;
    if left < EPSILON { 0.0 } else { left }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000_000_000;
    /// Midnight, a whole number of half-lives since the epoch.
    const T0: i64 = 20_000 * DAY;

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-9 * b.abs().max(1.0), "{a} != {b}");
    }

    #[test]
    fn buckets_are_vpas_exponential_ones() {
        // ceil(log_1.05(1000 × 0.05 / 0.01 + 1)) + 1 = ceil(174.57) + 1.
        assert_eq!(CPU_BUCKETS.count, 176);
        assert_eq!(MEMORY_BUCKETS.count, 176);
        assert_eq!(CPU_BUCKETS.start(0), 0.0);
        close(CPU_BUCKETS.start(1), 0.01);
        // 0.01 × (1.05² − 1) / 0.05.
        close(CPU_BUCKETS.start(2), 0.0205);
        assert_eq!(CPU_BUCKETS.find(0.005), 0);
        // floor(ln(0.1 × 0.05 / 0.01 + 1) / ln 1.05) = floor(8.31).
        assert_eq!(CPU_BUCKETS.find(0.1), 8);
        assert_eq!(CPU_BUCKETS.find(1.0), 36);
        // 5,000 cores is beyond the last bucket (207): it goes in the last.
        assert_eq!(CPU_BUCKETS.find(5000.0), 175);
        assert_eq!(CPU_BUCKETS.find(f64::NAN), 0);
        assert_eq!(CPU_BUCKETS.find(-1.0), 0);
    }

    #[test]
    fn percentiles_are_the_end_of_the_bucket_reaching_the_share() {
        let mut h = DecayingHistogram::default();
        assert_eq!(h.percentile(&CPU_BUCKETS, 0.9), 0.0);
        for _ in 0..9 {
            h.add(&CPU_BUCKETS, 0.1, 1.0, T0, DAY);
        }
        h.add(&CPU_BUCKETS, 1.0, 1.0, T0, DAY);
        // Bucket 8 holds 9 of 10: p50 and p90 are its end, 0.01 × (1.05⁹ − 1) / 0.05.
        close(h.percentile(&CPU_BUCKETS, 0.5), 0.110_265_643_195_703_14);
        close(h.percentile(&CPU_BUCKETS, 0.9), 0.110_265_643_195_703_14);
        // p95 needs bucket 36: its end, 0.01 × (1.05³⁷ − 1) / 0.05.
        close(h.percentile(&CPU_BUCKETS, 0.95), 1.016_281_388_554_091_8);
        // The last bucket has no end: its start.
        h.add(&CPU_BUCKETS, 5000.0, 100.0, T0, DAY);
        close(h.percentile(&CPU_BUCKETS, 0.99), CPU_BUCKETS.start(175));
        assert_eq!(h.buckets_held(), 3);
    }

    #[test]
    fn a_sample_a_half_life_later_weighs_twice_as_much() {
        let mut h = DecayingHistogram::default();
        h.add(&CPU_BUCKETS, 0.1, 1.0, T0, DAY);
        h.add(&CPU_BUCKETS, 1.0, 1.0, T0 + DAY, DAY);
        // Weights 1 and 2: the median is now the 1-core bucket (without decay, 0.1 core's).
        close(h.total, 3.0);
        close(h.percentile(&CPU_BUCKETS, 0.5), CPU_BUCKETS.start(37));
        close(h.percentile(&CPU_BUCKETS, 0.3), CPU_BUCKETS.start(9));
        // The reference is the nearest whole half-life: an hour past midnight weighs 2^(1/24).
        let mut h = DecayingHistogram::default();
        h.add(&CPU_BUCKETS, 0.1, 1.0, T0 + DAY / 24, DAY);
        assert_eq!(h.reference_ns, Some(T0));
        close(h.total, 2f64.powf(1.0 / 24.0));
        // Past noon rounds up to the next midnight.
        let mut h = DecayingHistogram::default();
        h.add(&CPU_BUCKETS, 0.1, 1.0, T0 + DAY / 2, DAY);
        assert_eq!(h.reference_ns, Some(T0 + DAY));
    }

    #[test]
    fn after_a_hundred_half_lives_the_weights_are_renormalised() {
        let mut h = DecayingHistogram::default();
        h.add(&CPU_BUCKETS, 0.1, 1.0, T0, DAY);
        h.add(&CPU_BUCKETS, 0.1, 1.0, T0 + 100 * DAY, DAY);
        // Still within 2^100: no shift, the new weight is 2^100.
        assert_eq!(h.reference_ns, Some(T0));
        close(h.total, 1.0 + 2f64.powi(100));
        h.add(&CPU_BUCKETS, 1.0, 1.0, T0 + 101 * DAY, DAY);
        // Shifted by 101 half-lives: the 0.1-core bucket's 1 + 2^100 → 2^-101 + 0.5; the new 1.
        assert_eq!(h.reference_ns, Some(T0 + 101 * DAY));
        close(h.total, 2f64.powi(-101) + 0.5 + 1.0);
        assert_eq!(h.buckets_held(), 2);
        close(h.percentile(&CPU_BUCKETS, 0.5), CPU_BUCKETS.start(37));
    }

    #[test]
    fn subtracting_what_was_added_empties_it_and_weights_below_epsilon_go() {
        let mut h = DecayingHistogram::default();
        h.add(&MEMORY_BUCKETS, 5e8, 1.0, T0, DAY);
        h.subtract(&MEMORY_BUCKETS, 5e8, 1.0, T0, DAY);
        assert!(h.is_empty());
        assert_eq!(h.total, 0.0);
        h.add(&MEMORY_BUCKETS, 5e8, EPSILON / 2.0, T0, DAY);
        assert!(h.is_empty());
        // A bucket never added to, subtracted from: nothing breaks, nothing goes negative.
        h.subtract(&MEMORY_BUCKETS, 9e9, 1.0, T0, DAY);
        assert_eq!(h.total, 0.0);
    }
}
