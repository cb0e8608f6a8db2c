//! A fixed-size log-linear latency histogram (HDR style): exact below 128 ns, then 64
//! linear sub-buckets per power of two, so every recorded value is kept within 1/64
//! (1.6 %) of its true value across the whole `u64` range. Recording is one
//! leading-zero count, a shift and an increment: no allocation after construction.
//!
//! ```text
//! index         0..128        : value == index (ns)
//! index 128 + (e-1)*64 + s    : value in [(64+s) << e, (65+s) << e), e = msb - 6 >= 1
//! ```

/// Values below this are stored exactly.
const EXACT_LIMIT: u64 = 128;
/// Linear sub-buckets per power of two above the exact range.
const SUB_BUCKETS: u64 = 64;
/// Total buckets: the exact range plus 57 exponents of 64 sub-buckets.
const BUCKET_COUNT: usize = 128 + 57 * 64;

/// Latency histogram in nanoseconds.
#[derive(Clone)]
pub struct Histogram {
    counts: Box<[u64; BUCKET_COUNT]>,
    total: u64,
    sum_ns: u128,
    max_ns: u64,
    min_ns: u64,
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram")
            .field("total", &self.total)
            .field("max_ns", &self.max_ns)
            .finish()
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

fn index_of(value_ns: u64) -> usize {
    if value_ns < EXACT_LIMIT {
        return value_ns as usize;
    }
    let msb = 63 - u64::from(value_ns.leading_zeros());
    let e = msb - 6;
    let sub = (value_ns >> e) - SUB_BUCKETS;
    (EXACT_LIMIT + (e - 1) * SUB_BUCKETS + sub) as usize
}

/// The middle of bucket `index`, in ns.
fn value_of(index: usize) -> u64 {
    let i = index as u64;
    if i < EXACT_LIMIT {
        return i;
    }
    let e = (i - EXACT_LIMIT) / SUB_BUCKETS + 1;
    let m = (i - EXACT_LIMIT) % SUB_BUCKETS + SUB_BUCKETS;
    (m << e).saturating_add((1u64 << e) / 2)
}

impl Histogram {
    /// An empty histogram (allocates its buckets once, here).
    pub fn new() -> Histogram {
        Histogram {
            counts: Box::new([0; BUCKET_COUNT]),
            total: 0,
            sum_ns: 0,
            max_ns: 0,
            min_ns: u64::MAX,
        }
    }

    /// Record one latency.
    #[inline]
    pub fn record(&mut self, value_ns: u64) {
        if let Some(c) = self.counts.get_mut(index_of(value_ns)) {
            *c += 1;
        }
        self.total += 1;
        self.sum_ns += u128::from(value_ns);
        self.max_ns = self.max_ns.max(value_ns);
        self.min_ns = self.min_ns.min(value_ns);
    }

    /// Add every sample of `other`.
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a += *b;
        }
        self.total += other.total;
        self.sum_ns += other.sum_ns;
        self.max_ns = self.max_ns.max(other.max_ns);
        self.min_ns = self.min_ns.min(other.min_ns);
    }

    /// Forget every sample (the buckets stay allocated).
    pub fn reset(&mut self) {
        self.counts.fill(0);
        self.total = 0;
        self.sum_ns = 0;
        self.max_ns = 0;
        self.min_ns = u64::MAX;
    }

    /// Number of samples.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// Largest sample, 0 when empty.
    pub fn max_ns(&self) -> u64 {
        self.max_ns
    }

    /// Mean in ns, 0 when empty.
    pub fn mean_ns(&self) -> u64 {
        if self.total == 0 {
            return 0;
        }
        u64::try_from(self.sum_ns / u128::from(self.total)).unwrap_or(u64::MAX)
    }

    /// The value at `quantile` (0.0..=1.0), clamped to the recorded min and max; 0 when empty.
    pub fn quantile_ns(&self, quantile: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let q = quantile.clamp(0.0, 1.0);
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0u64;
        for (i, c) in self.counts.iter().enumerate() {
            seen += *c;
            if seen >= rank {
                return value_of(i).clamp(self.min_ns, self.max_ns);
            }
        }
        self.max_ns
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_maps_back_within_one_sixty_fourth() {
        let mut v = 1u64;
        while v < u64::MAX / 3 {
            for x in [v, v + 1, v * 3 / 2] {
                let back = value_of(index_of(x));
                let err = back.abs_diff(x) as f64 / x as f64;
                assert!(err <= 1.0 / 64.0, "{x} -> {back}");
            }
            v = v * 2 + 1;
        }
        assert!(index_of(u64::MAX) < BUCKET_COUNT);
    }

    #[test]
    fn percentiles_of_a_uniform_run_land_on_their_ranks() {
        let mut h = Histogram::new();
        for us in 1..=10_000u64 {
            h.record(us * 1000);
        }
        let p50 = h.quantile_ns(0.5) as f64;
        let p99 = h.quantile_ns(0.99) as f64;
        assert!((p50 / 5_000_000.0 - 1.0).abs() < 0.02, "{p50}");
        assert!((p99 / 9_900_000.0 - 1.0).abs() < 0.02, "{p99}");
        assert_eq!(h.quantile_ns(1.0), 10_000_000);
        assert_eq!(h.count(), 10_000);
        assert_eq!(h.mean_ns(), 5_000_500);
    }

    #[test]
    fn merge_adds_and_reset_empties() {
        let mut a = Histogram::new();
        let mut b = Histogram::new();
        a.record(100);
        b.record(1_000_000);
        a.merge(&b);
        assert_eq!(a.count(), 2);
        assert_eq!(a.max_ns(), 1_000_000);
        a.reset();
        assert_eq!(a.count(), 0);
        assert_eq!(a.quantile_ns(0.5), 0);
    }
}
