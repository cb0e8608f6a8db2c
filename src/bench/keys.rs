//! Key choice for the load generator: a small fast PRNG, uniform and zipf key
//! distributions over a pre-hashed key space, and the operation mix.
//!
//! Keys are the strings `<prefix><index>` hashed with sha512 once at start-up, so the
//! request path only copies a 64-byte id. Zipf uses a precomputed CDF and a binary search
//! (about 17 steps for 100k keys); hot ranks are the lowest key indexes.

use super::{BenchError, Op};
use crate::key::RawId;

/// Largest key space that is pre-hashed (64 bytes of id each, plus 8 of CDF for zipf).
pub const KEYSPACE_MAX: u64 = 4_000_000;

/// xorshift64*: one multiply per draw, good enough for picking keys.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (0 is replaced by a fixed odd constant).
    pub fn new(seed: u64) -> Rng {
        Rng(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (n > 0), by multiply-shift.
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in [0, 1).
    #[inline]
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// How keys are drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum KeyDistribution {
    Uniform,
    /// Zipf with exponent `s` (1.0 is the classic; 0.99 is YCSB's).
    Zipf {
        s: f64,
    },
}

/// The pre-hashed key space and its sampler.
#[derive(Debug)]
pub struct KeySpace {
    ids: Vec<RawId>,
    /// Zipf only: cumulative probability of ranks 0..=i.
    cdf: Vec<f64>,
}

impl KeySpace {
    /// Hash `count` keys `<prefix>0 .. <prefix>{count-1}`.
    pub fn new(prefix: &str, count: u64, dist: KeyDistribution) -> Result<KeySpace, BenchError> {
        if count == 0 || count > KEYSPACE_MAX {
            return Err(BenchError::Config(format!(
                "key space {count} must be between 1 and {KEYSPACE_MAX}"
            )));
        }
        let mut ids = Vec::with_capacity(count as usize);
        let mut name = String::with_capacity(prefix.len() + 20);
        for i in 0..count {
            name.clear();
            name.push_str(prefix);
            name.push_str(&i.to_string());
            ids.push(RawId::from_key(name.as_bytes()));
        }
        let cdf = match dist {
            KeyDistribution::Uniform => Vec::new(),
            KeyDistribution::Zipf { s } => {
                if !(s > 0.0 && s.is_finite()) {
                    return Err(BenchError::Config(format!("zipf exponent {s} must be > 0")));
                }
                let mut acc = 0.0f64;
                let mut cdf: Vec<f64> = (1..=count)
                    .map(|rank| {
                        acc += 1.0 / (rank as f64).powf(s);
                        acc
                    })
                    .collect();
                for c in &mut cdf {
                    *c /= acc;
                }
                cdf
            }
        };
        Ok(KeySpace { ids, cdf })
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Always false: a key space has at least one key.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Key id at `index` (wrapping).
    #[inline]
    pub fn id(&self, index: usize) -> &RawId {
        let n = self.ids.len().max(1);
        &self.ids[index % n]
    }

    /// Draw a key index.
    #[inline]
    pub fn sample(&self, rng: &mut Rng) -> usize {
        if self.cdf.is_empty() {
            return rng.below(self.ids.len() as u64) as usize;
        }
        let u = rng.unit();
        self.cdf.partition_point(|c| *c < u).min(self.ids.len() - 1)
    }
}

/// An operation mix: cumulative weights over [`Op::ALL`].
#[derive(Debug, Clone, PartialEq)]
pub struct Mix {
    cumulative: [u32; 5],
}

impl Mix {
    /// From percentages per op (must add up to 100).
    pub fn new(weights: &[(Op, u32)]) -> Result<Mix, BenchError> {
        let mut per = [0u32; 5];
        for (op, w) in weights {
            per[op.index()] += *w;
        }
        let total: u32 = per.iter().sum();
        if total != 100 {
            return Err(BenchError::Config(format!(
                "mix percentages add up to {total}, not 100"
            )));
        }
        let mut cumulative = [0u32; 5];
        let mut acc = 0;
        for (c, w) in cumulative.iter_mut().zip(per) {
            acc += w;
            *c = acc;
        }
        Ok(Mix { cumulative })
    }

    /// A mix of one operation.
    pub fn only(op: Op) -> Mix {
        let mut cumulative = [0u32; 5];
        for (i, c) in cumulative.iter_mut().enumerate() {
            *c = if i >= op.index() { 100 } else { 0 };
        }
        Mix { cumulative }
    }

    /// Parse "read=90,write=10".
    pub fn parse(text: &str) -> Result<Mix, BenchError> {
        let mut weights = Vec::new();
        for part in text.split(',').filter(|p| !p.is_empty()) {
            let (name, pct) = part
                .split_once('=')
                .or_else(|| part.split_once(':'))
                .ok_or_else(|| {
                    BenchError::Config(format!("mix entry '{part}': want op=percent"))
                })?;
            let op = Op::parse(name.trim())?;
            let pct: u32 = pct
                .trim()
                .trim_end_matches('%')
                .parse()
                .map_err(|_| BenchError::Config(format!("mix entry '{part}': bad percent")))?;
            weights.push((op, pct));
        }
        Mix::new(&weights)
    }

    /// Whether `op` has a non-zero share.
    pub fn contains(&self, op: Op) -> bool {
        let i = op.index();
        let below = if i == 0 { 0 } else { self.cumulative[i - 1] };
        self.cumulative[i] > below
    }

    /// Draw an operation.
    #[inline]
    pub fn sample(&self, rng: &mut Rng) -> Op {
        let r = rng.below(100) as u32;
        let i = self.cumulative.partition_point(|c| *c <= r);
        Op::ALL[i.min(4)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_draws_cover_the_key_space_evenly() {
        let ks = KeySpace::new("k", 10, KeyDistribution::Uniform).unwrap();
        let mut rng = Rng::new(7);
        let mut seen = [0u32; 10];
        for _ in 0..100_000 {
            seen[ks.sample(&mut rng)] += 1;
        }
        assert!(seen.iter().all(|c| (9_000..11_000).contains(c)), "{seen:?}");
    }

    #[test]
    fn zipf_makes_the_first_key_the_hottest() {
        let ks = KeySpace::new("k", 1000, KeyDistribution::Zipf { s: 1.0 }).unwrap();
        let mut rng = Rng::new(3);
        let mut seen = vec![0u32; 1000];
        for _ in 0..100_000 {
            seen[ks.sample(&mut rng)] += 1;
        }
        // H(1000) ~ 7.49, so rank 0 has ~13.4 % of the draws and rank 1 half of that.
        assert!((12_000..15_000).contains(&seen[0]), "{}", seen[0]);
        assert!(seen[0] > seen[1] && seen[1] > seen[10] && seen[10] > seen[500]);
    }

    #[test]
    fn mix_follows_its_percentages_and_rejects_bad_totals() {
        let mix = Mix::parse("read=90,write=10").unwrap();
        let mut rng = Rng::new(11);
        let reads = (0..100_000)
            .filter(|_| mix.sample(&mut rng) == Op::Read)
            .count();
        assert!((89_000..91_000).contains(&reads), "{reads}");
        assert!(mix.contains(Op::Write) && !mix.contains(Op::Exec));
        assert!(Mix::parse("read=90,write=20").is_err());
        assert!(Mix::parse("fly=100").is_err());
        assert_eq!(Mix::only(Op::Lookup).sample(&mut rng), Op::Lookup);
    }

    #[test]
    fn key_ids_are_sha512_of_prefixed_names() {
        let ks = KeySpace::new("bench-", 3, KeyDistribution::Uniform).unwrap();
        assert_eq!(*ks.id(2), RawId::from_key(b"bench-2"));
        assert!(KeySpace::new("x", 0, KeyDistribution::Uniform).is_err());
    }
}
