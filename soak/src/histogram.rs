//! A lock-free log-linear latency histogram (about 3% relative precision), shared by all
//! subscriber tasks, and a shared counter. Both keep per-thread shards: each thread
//! writes its own cache lines, readers sum the shards.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Shards per histogram or counter; threads beyond it share shards (still exact).
const SHARDS: usize = 8;

/// The shard of the calling thread.
fn shard() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SHARD: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
    }
    SHARD.with(|s| *s)
}

/// One atomic on a cache line of its own (128 bytes: adjacent-line prefetching).
#[derive(Debug, Default)]
#[repr(align(128))]
struct Padded(AtomicU64);

/// A counter that threads add to without sharing a cache line.
#[derive(Debug, Default)]
pub struct Sum {
    shards: [Padded; SHARDS],
}

impl Sum {
    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.shards[shard()].0.fetch_add(n, Ordering::Relaxed);
    }

    /// The total.
    pub fn get(&self) -> u64 {
        self.shards
            .iter()
            .map(|s| s.0.load(Ordering::Relaxed))
            .sum()
    }
}

/// Sub-buckets per power of two (2^5 = 32: relative error below 1/32).
const SUB_BITS: u32 = 5;
const SUB: u64 = 1 << SUB_BITS;
/// Highest power of two tracked; larger values land in the last bucket.
const MAX_EXP: u32 = 44;
const BUCKETS: usize = (SUB + (MAX_EXP as u64 + 1 - SUB_BITS as u64) * SUB) as usize;

/// Values (microseconds here) counted in log-linear buckets.
#[derive(Debug)]
pub struct Histogram {
    shards: Box<[Shard]>,
}

/// One thread's part of a [`Histogram`].
#[derive(Debug)]
#[repr(align(128))]
struct Shard {
    buckets: Box<[AtomicU64]>,
    count: AtomicU64,
    max: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram::new()
    }
}

/// The bucket of `v`.
fn index(v: u64) -> usize {
    if v < SUB {
        return v as usize;
    }
    let exp = 63 - v.leading_zeros();
    if exp > MAX_EXP {
        return BUCKETS - 1;
    }
    let mantissa = (v >> (exp - SUB_BITS)) & (SUB - 1);
    (SUB + u64::from(exp - SUB_BITS) * SUB + mantissa) as usize
}

/// The largest value that falls into bucket `i`.
fn upper(i: usize) -> u64 {
    let i = i as u64;
    if i < SUB {
        return i;
    }
    let exp = (i - SUB) / SUB + u64::from(SUB_BITS);
    let mantissa = (i - SUB) % SUB;
    let low = (SUB + mantissa) << (exp - u64::from(SUB_BITS));
    low + (1 << (exp - u64::from(SUB_BITS))) - 1
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Histogram {
        Histogram {
            shards: (0..SHARDS)
                .map(|_| Shard {
                    buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
                    count: AtomicU64::new(0),
                    max: AtomicU64::new(0),
                })
                .collect(),
        }
    }

    /// Counts one value.
    pub fn record(&self, v: u64) {
        let s = &self.shards[shard()];
        s.buckets[index(v)].fetch_add(1, Ordering::Relaxed);
        s.count.fetch_add(1, Ordering::Relaxed);
        if v > s.max.load(Ordering::Relaxed) {
            s.max.fetch_max(v, Ordering::Relaxed);
        }
    }

    /// Values counted.
    pub fn count(&self) -> u64 {
        self.shards
            .iter()
            .map(|s| s.count.load(Ordering::Relaxed))
            .sum()
    }

    /// The largest value counted (exact).
    pub fn max(&self) -> u64 {
        self.shards
            .iter()
            .map(|s| s.max.load(Ordering::Relaxed))
            .max()
            .unwrap_or(0)
    }

    /// The count of bucket `i`, over all shards.
    fn bucket(&self, i: usize) -> u64 {
        self.shards
            .iter()
            .map(|s| s.buckets[i].load(Ordering::Relaxed))
            .sum()
    }

    /// The value at quantile `q` (0..=1): the upper bound of the bucket holding the
    /// `ceil(q * count)`-th smallest value, capped at the exact maximum. 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        let buckets: Vec<u64> = (0..BUCKETS).map(|i| self.bucket(i)).collect();
        let total: u64 = buckets.iter().sum();
        if total == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, b) in buckets.iter().enumerate() {
            seen += b;
            if seen >= rank {
                return upper(i).min(self.max());
            }
        }
        self.max()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_consistent() {
        for v in (0..100_000u64).chain([1 << 40, (1 << 44) - 1, (1 << 45) - 1]) {
            let i = index(v);
            assert!(upper(i) >= v, "v={v} i={i} upper={}", upper(i));
            if i > 0 && i < BUCKETS - 1 {
                assert!(upper(i - 1) < v, "v={v}");
            }
            // Relative width below 1/32.
            assert!(upper(i) - v <= v / 32 + 1, "v={v}");
        }
    }

    #[test]
    fn percentiles_of_uniform_values() {
        let h = Histogram::new();
        assert_eq!(h.quantile(0.5), 0);
        for v in 1..=10_000 {
            h.record(v);
        }
        let near = |got: u64, want: u64| {
            let err = got.abs_diff(want) as f64 / want as f64;
            assert!(err < 0.035, "got {got}, want {want}");
        };
        near(h.quantile(0.5), 5000);
        near(h.quantile(0.9), 9000);
        near(h.quantile(0.99), 9900);
        assert_eq!(h.quantile(1.0), 10_000);
        assert_eq!(h.max(), 10_000);
        assert_eq!(h.count(), 10_000);
    }

    #[test]
    fn small_and_skewed() {
        let h = Histogram::new();
        for _ in 0..99 {
            h.record(3);
        }
        h.record(1_000_000);
        assert_eq!(h.quantile(0.5), 3);
        assert_eq!(h.quantile(0.99), 3);
        assert_eq!(h.quantile(0.999), 1_000_000);
    }

    #[test]
    fn shards_of_threads_add_up() {
        let h = Histogram::new();
        let sum = Sum::default();
        std::thread::scope(|s| {
            for t in 0..(SHARDS as u64 + 3) {
                let (h, sum) = (&h, &sum);
                s.spawn(move || {
                    for v in 1..=1000 {
                        h.record(v + t);
                        sum.add(2);
                    }
                });
            }
        });
        let n = (SHARDS as u64 + 3) * 1000;
        assert_eq!((h.count(), sum.get()), (n, 2 * n));
        assert_eq!(h.max(), 1000 + SHARDS as u64 + 2);
        assert_eq!(h.quantile(0.0), 1);
    }
}
