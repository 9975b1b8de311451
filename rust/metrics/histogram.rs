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

/// Observations in nanoseconds, exposed in µs. Each bucket counts only its own range (cumulated when
/// rendered; the count is the +Inf bucket), so an observation is two atomic adds and no lock.
pub struct Histogram {
    bounds_ns: [u64; BUCKETS],
    /// BUCKETS bounded buckets, then +Inf.
    buckets: [AtomicU64; BUCKETS + 1],
    sum_ns: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            bounds_ns: bucket_bounds().map(|us| us * 1000),
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_ns: AtomicU64::new(0),
        }
    }
}

/// What a histogram held at one moment, for exposition.
pub struct HistogramSnapshot {
    /// Cumulative counts for each bound, then +Inf.
    pub cumulative: [u64; BUCKETS + 1],
    pub sum_us: f64,
}

impl Histogram {
    pub fn observe_ns(&self, ns: u64) {
        // A value on a bound belongs to that bound's bucket (Prometheus's `le`).
        let bucket = self.bounds_ns.partition_point(|&bound| bound < ns);
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum_ns.fetch_add(ns, Ordering::Relaxed);
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
            sum_us: self.sum_ns.load(Ordering::Relaxed) as f64 / 1000.0,
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
}
