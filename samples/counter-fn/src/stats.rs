//! In-process counters and a latency histogram, shared by all server threads.
//!
//! The benchmark reads them through `GET /stats` and clears them with `POST /stats/reset`.
//! Everything is a relaxed atomic: the hot path never takes a lock, and a reset racing with
//! traffic only blurs the counts of that instant (the benchmark resets while idle).
//!
//! [`Histogram`] is log-bucketed: values below 32 get a bucket each, and every power of two
//! above is split into 32 equal sub-buckets, so a reported quantile is within about 1.6 % of
//! the true value, for any value up to `u64::MAX`, in 1920 buckets.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// Sub-buckets per power of two (a power of two itself).
const SUB_BUCKETS: u64 = 32;
/// log2(SUB_BUCKETS).
const SUB_BITS: u32 = 5;
/// Number of buckets: exact values below 32, then 59 octaves of 32 sub-buckets.
const BUCKETS: usize = ((64 - SUB_BITS as usize) + 1) * SUB_BUCKETS as usize;

/// A concurrent log-bucketed histogram of `u64` values (microseconds here).
pub struct Histogram {
    buckets: Box<[AtomicU64]>,
    max: AtomicU64,
}

/// Quantiles of a [`Histogram`] at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Summary {
    pub count: u64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub max: u64,
}

impl Default for Histogram {
    fn default() -> Histogram {
        Histogram::new()
    }
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Histogram {
        Histogram {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            max: AtomicU64::new(0),
        }
    }

    /// The bucket holding `value`.
    fn index(value: u64) -> usize {
        if value < SUB_BUCKETS {
            return value as usize;
        }
        let exponent = 63 - value.leading_zeros(); // >= SUB_BITS
        let mantissa = (value >> (exponent - SUB_BITS)) & (SUB_BUCKETS - 1);
        ((exponent - SUB_BITS + 1) as u64 * SUB_BUCKETS + mantissa) as usize
    }

    /// The smallest value and the width of bucket `index`.
    fn bounds(index: usize) -> (u64, u64) {
        let index = index as u64;
        if index < SUB_BUCKETS {
            return (index, 1);
        }
        let exponent = index / SUB_BUCKETS + u64::from(SUB_BITS) - 1;
        let mantissa = index % SUB_BUCKETS;
        let shift = exponent - u64::from(SUB_BITS);
        ((SUB_BUCKETS + mantissa) << shift, 1u64 << shift)
    }

    /// Adds one value.
    pub fn record(&self, value: u64) {
        self.buckets[Histogram::index(value)].fetch_add(1, Ordering::Relaxed);
        self.max.fetch_max(value, Ordering::Relaxed);
    }

    /// Forgets every value.
    pub fn reset(&self) {
        for bucket in self.buckets.iter() {
            bucket.store(0, Ordering::Relaxed);
        }
        self.max.store(0, Ordering::Relaxed);
    }

    /// p50, p90, p99 (bucket midpoints, capped at the exact max) and the exact max.
    pub fn summary(&self) -> Summary {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|bucket| bucket.load(Ordering::Relaxed))
            .collect();
        let count: u64 = counts.iter().sum();
        let max = self.max.load(Ordering::Relaxed);
        if count == 0 {
            return Summary::default();
        }
        let quantile = |q: f64| -> u64 {
            let rank = ((q * count as f64).ceil() as u64).clamp(1, count);
            let mut seen = 0u64;
            for (index, bucket_count) in counts.iter().enumerate() {
                seen += bucket_count;
                if seen >= rank {
                    let (low, width) = Histogram::bounds(index);
                    return low.saturating_add(width / 2).min(max);
                }
            }
            max
        };
        Summary {
            count,
            p50: quantile(0.50),
            p90: quantile(0.90),
            p99: quantile(0.99),
            max,
        }
    }
}

/// Everything `GET /stats` reports.
#[derive(Default)]
pub struct Stats {
    /// Messages (invocations) processed by `counter` and `echo`.
    pub messages: AtomicU64,
    /// Invocation batches processed (negotiation replies excluded).
    pub batches: AtomicU64,
    /// HTTP requests answered, of any kind.
    pub requests: AtomicU64,
    /// Distinct connections that carried at least one function request since the last reset.
    pub connections_used: AtomicU64,
    /// Connections accepted since the last reset.
    pub connections_accepted: AtomicU64,
    /// Bumped by each reset, so connections can tell whether they were counted already.
    pub epoch: AtomicU64,
    /// Send-to-process latency of `eddy.bench/ping` messages, in microseconds.
    pub latency_us: Histogram,
}

impl Stats {
    /// Zeroes every counter and the histogram.
    pub fn reset(&self) {
        self.epoch.fetch_add(1, Ordering::Relaxed);
        self.messages.store(0, Ordering::Relaxed);
        self.batches.store(0, Ordering::Relaxed);
        self.requests.store(0, Ordering::Relaxed);
        self.connections_used.store(0, Ordering::Relaxed);
        self.connections_accepted.store(0, Ordering::Relaxed);
        self.latency_us.reset();
    }

    /// Counts a connection once per epoch; `seen_epoch` is that connection's own marker
    /// (`u64::MAX` for a connection not yet counted).
    pub fn note_connection(&self, seen_epoch: &AtomicU64) {
        let epoch = self.epoch.load(Ordering::Relaxed);
        if seen_epoch.swap(epoch, Ordering::Relaxed) != epoch {
            self.connections_used.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The stats as a JSON object.
    pub fn to_json(&self) -> String {
        let latency = self.latency_us.summary();
        let mut out = String::with_capacity(256);
        // Writing to a String cannot fail.
        let _ = write!(
            out,
            "{{\"messages\":{},\"batches\":{},\"requests\":{},\"connections_used\":{},\
             \"connections_accepted\":{},\"latency_us\":{{\"count\":{},\"p50\":{},\"p90\":{},\"p99\":{},\"max\":{}}}}}",
            self.messages.load(Ordering::Relaxed),
            self.batches.load(Ordering::Relaxed),
            self.requests.load(Ordering::Relaxed),
            self.connections_used.load(Ordering::Relaxed),
            self.connections_accepted.load(Ordering::Relaxed),
            latency.count,
            latency.p50,
            latency.p90,
            latency.p99,
            latency.max,
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_contain_their_values() {
        let mut previous_end = 0u64;
        for index in 0..BUCKETS {
            let (low, width) = Histogram::bounds(index);
            assert_eq!(
                low, previous_end,
                "bucket {index} starts where the last ended"
            );
            assert_eq!(Histogram::index(low), index);
            assert_eq!(Histogram::index(low + (width - 1)), index);
            previous_end = low.wrapping_add(width);
        }
        assert_eq!(previous_end, 0, "the last bucket ends at u64::MAX");
        assert_eq!(Histogram::index(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn quantiles_are_close() {
        let histogram = Histogram::new();
        for value in 1..=10_000u64 {
            histogram.record(value);
        }
        let summary = histogram.summary();
        assert_eq!(summary.count, 10_000);
        assert_eq!(summary.max, 10_000);
        for (got, want) in [
            (summary.p50, 5_000),
            (summary.p90, 9_000),
            (summary.p99, 9_900),
        ] {
            let error = (got as f64 - want as f64).abs() / want as f64;
            assert!(error < 0.02, "got {got}, want about {want}");
        }
    }

    #[test]
    fn small_values_are_exact_and_empty_is_zero() {
        let histogram = Histogram::new();
        assert_eq!(histogram.summary(), Summary::default());
        histogram.record(7);
        let summary = histogram.summary();
        assert_eq!((summary.p50, summary.p99, summary.max), (7, 7, 7));
        histogram.reset();
        assert_eq!(histogram.summary(), Summary::default());
    }

    #[test]
    fn json_has_every_field() {
        let stats = Stats::default();
        stats.messages.fetch_add(3, Ordering::Relaxed);
        stats.latency_us.record(100);
        let json = stats.to_json();
        assert!(json.starts_with("{\"messages\":3,"), "{json}");
        assert!(json.contains("\"latency_us\":{\"count\":1,"), "{json}");
        let marker = AtomicU64::new(u64::MAX);
        stats.note_connection(&marker);
        stats.note_connection(&marker);
        assert_eq!(stats.connections_used.load(Ordering::Relaxed), 1);
        stats.reset();
        stats.note_connection(&marker);
        assert_eq!(stats.connections_used.load(Ordering::Relaxed), 1);
        assert_eq!(stats.messages.load(Ordering::Relaxed), 0);
    }
}
