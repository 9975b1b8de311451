//! Lock-free counters, gauges and OVMS's latency histogram: one relaxed atomic add per update.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// OVMS's bucket bounds in µs: floor(10·1.8^i), i = 0..32 (src/model_metric_reporter.cpp), then +Inf.
pub const BUCKETS: usize = 33;

pub fn bucket_bounds() -> [u64; BUCKETS] {
    std::array::from_fn(|i| (10.0 * 1.8f64.powi(i as i32)).floor() as u64)
}

#[derive(Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.add(1);
    }

    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[derive(Default)]
pub struct Gauge(AtomicI64);

impl Gauge {
    pub fn add(&self, n: i64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub fn set(&self, n: i64) {
        self.0.store(n, Ordering::Relaxed);
    }

    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// The dynamic batcher's rows per batch: every size up to 8, then ever coarser up to 1024 (33 bounds,
/// the shape of the latency histograms).
pub fn batch_size_bounds() -> [u64; BUCKETS] {
    [
        1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 20, 24, 28, 32, 40, 48, 56, 64, 80, 96, 112, 128,
        160, 192, 224, 256, 320, 384, 448, 512, 1024,
    ]
}

/// Observations in nanoseconds, exposed in µs (or, `sizes()`, plain counts). Each bucket counts only
/// its own range (cumulated when rendered; the count is the +Inf bucket), so an observation is two
/// atomic adds and no lock.
pub struct Histogram {
    /// The exposed bounds, and what one exposed unit is in observed units (1000: ns exposed as µs).
    bounds: [u64; BUCKETS],
    scale: u64,
    /// BUCKETS bounded buckets, then +Inf.
    buckets: [AtomicU64; BUCKETS + 1],
    sum: AtomicU64,
}

impl Default for Histogram {
    /// OVMS's latency histogram.
    fn default() -> Self {
        Histogram::with_bounds(bucket_bounds(), 1000)
    }
}

/// What a histogram held at one moment, for exposition.
pub struct HistogramSnapshot {
    /// Cumulative counts for each bound, then +Inf.
    pub cumulative: [u64; BUCKETS + 1],
    /// In exposed units (µs for the latency histograms).
    pub sum: f64,
}

impl Histogram {
    fn with_bounds(bounds: [u64; BUCKETS], scale: u64) -> Self {
        Histogram {
            bounds,
            scale,
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum: AtomicU64::new(0),
        }
    }

    /// Batch sizes (`batch_size_bounds`), observed and exposed as counts.
    pub fn sizes() -> Self {
        Histogram::with_bounds(batch_size_bounds(), 1)
    }

    /// The bounds as exposed (`le`).
    pub fn bounds(&self) -> &[u64; BUCKETS] {
        &self.bounds
    }

    pub fn observe_ns(&self, ns: u64) {
        self.observe(ns);
    }

    pub fn observe(&self, value: u64) {
        // A value on a bound belongs to that bound's bucket (Prometheus's `le`).
        let bucket = self
            .bounds
            .partition_point(|&bound| bound.saturating_mul(self.scale) < value);
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum.fetch_add(value, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut cumulative = [0; BUCKETS + 1];
        let mut total = 0;
        for (out, bucket) in cumulative.iter_mut().zip(&self.buckets) {
            total += bucket.load(Ordering::Relaxed);
            *out = total;
        }
        HistogramSnapshot {
            cumulative,
            sum: self.sum.load(Ordering::Relaxed) as f64 / self.scale as f64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_ovms_buckets() {
        let bounds = bucket_bounds();
        let documented = [
            10, 18, 32, 58, 104, 188, 340, 612, 1101, 1983, 3570, 6426, 11568,
        ];
        assert_eq!(bounds[..documented.len()], documented);
        assert_eq!(bounds[31..], [819308872, 1474755971]);
    }

    #[test]
    fn observations_land_in_le_buckets_and_cumulate() {
        let h = Histogram::default();
        h.observe_ns(10_000); // exactly 10 µs: le="10"
        h.observe_ns(10_001);
        h.observe_ns(u64::MAX / 4); // past the last bound: +Inf only
        let s = h.snapshot();
        assert_eq!(s.cumulative[0], 1);
        assert_eq!(s.cumulative[1], 2);
        assert_eq!(s.cumulative[BUCKETS - 1], 2);
        assert_eq!(s.cumulative[BUCKETS], 3);
    }

    #[test]
    fn size_histograms_count_rows() {
        let h = Histogram::sizes();
        h.observe(1);
        h.observe(3);
        h.observe(3);
        h.observe(2000);
        let s = h.snapshot();
        assert_eq!(
            (s.cumulative[0], s.cumulative[2], s.cumulative[BUCKETS]),
            (1, 3, 4)
        );
        assert_eq!(s.sum, 2007.0);
        assert!(h.bounds().windows(2).all(|w| w[0] < w[1]));
    }
}
