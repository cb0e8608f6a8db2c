//! A blocked bloom filter over the keys of one sealed file ([`super::sealed`]).
//!
//! Each key sets `BITS_PER_KEY_SET` bits inside one 512-bit block (one CPU cache line),
//! so a probe costs one cache miss whatever the filter's size. The block and the bits come
//! from the key's [`KeyHasher`] hash, keyed per filter: a client cannot aim keys at one
//! block. At [`BITS_PER_KEY`] bits of filter per key about 1% of absent keys pass.
//!
//! | word of a block | content                                |
//! |-----------------|----------------------------------------|
//! | 0-7             | 8 x 64 bits; bit `b` is word `b / 64`  |

use super::key_hash::KeyHasher;
use crate::key::RawId;

/// Filter bits per key.
pub const BITS_PER_KEY: usize = 12;

/// Bits set (and tested) per key, all in the key's block.
const BITS_PER_KEY_SET: u32 = 7;

/// One cache line of bits.
#[derive(Debug, Clone, Copy, Default)]
#[repr(C, align(64))]
struct Block([u64; 8]);

/// The filter (see the module header).
#[derive(Debug)]
pub struct Bloom {
    blocks: Vec<Block>,
    hasher: KeyHasher,
}

impl Bloom {
    /// An empty filter sized for `keys` keys.
    pub fn with_keys(keys: usize) -> Bloom {
        let blocks = (keys.saturating_mul(BITS_PER_KEY) / 512).max(1);
        Bloom {
            blocks: vec![Block::default(); blocks],
            hasher: KeyHasher::random(),
        }
    }

    /// The block of hash `h` and the bit numbers (0..512) in it.
    fn place(&self, h: u64) -> (usize, impl Iterator<Item = u32>) {
        let block = ((u128::from(h >> 32) * self.blocks.len() as u128) >> 32) as usize;
        // The low 32 bits and a second mix give 7 x 9 bits.
        let mut bits = (h & 0xffff_ffff) ^ (h.wrapping_mul(0x9E37_79B9_7F4A_7C15) << 32);
        let nums = (0..BITS_PER_KEY_SET).map(move |_| {
            let b = (bits & 511) as u32;
            bits = bits.rotate_right(9);
            b
        });
        (block, nums)
    }

    pub fn insert(&mut self, key: &RawId) {
        let (block, nums) = self.place(self.hasher.hash(key));
        if let Some(Block(words)) = self.blocks.get_mut(block) {
            for b in nums {
                if let Some(w) = words.get_mut((b / 64) as usize) {
                    *w |= 1 << (b % 64);
                }
            }
        }
    }

    /// `false`: `key` was never inserted; `true`: it probably was.
    pub fn may_contain(&self, key: &RawId) -> bool {
        let (block, mut nums) = self.place(self.hasher.hash(key));
        let Some(Block(words)) = self.blocks.get(block) else {
            return true;
        };
        nums.all(|b| {
            words
                .get((b / 64) as usize)
                .is_some_and(|w| w & (1 << (b % 64)) != 0)
        })
    }

    /// Start loading the block of `key` into the CPU cache (a hint).
    pub fn prefetch(&self, key: &RawId) {
        let (block, _) = self.place(self.hasher.hash(key));
        if let Some(b) = self.blocks.get(block) {
            crate::io::prefetch::prefetch(b);
        }
    }

    /// Bytes held.
    pub fn allocated_bytes(&self) -> usize {
        self.blocks.capacity() * std::mem::size_of::<Block>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inserted_keys_always_pass_and_few_absent_ones_do() {
        let n = 100_000u64;
        let mut f = Bloom::with_keys(n as usize);
        for i in 0..n {
            f.insert(&RawId::from_key(&i.to_le_bytes()));
        }
        for i in 0..n {
            assert!(f.may_contain(&RawId::from_key(&i.to_le_bytes())));
        }
        let passed = (n..2 * n)
            .filter(|i| f.may_contain(&RawId::from_key(&i.to_le_bytes())))
            .count();
        assert!(passed < (n as usize) / 50, "{passed} false positives");
        assert!(f.allocated_bytes() <= n as usize * BITS_PER_KEY / 8 + 64);
    }

    #[test]
    fn an_empty_filter_answers_no() {
        let f = Bloom::with_keys(0);
        assert!(!f.may_contain(&RawId::from_key(b"x")));
    }
}
