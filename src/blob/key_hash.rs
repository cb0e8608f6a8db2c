//! A keyed hash of 64-byte keys for the in-memory tables ([`super::hot_index::HotIndex`],
//! [`super::sync::KeyLocks`]).
//!
//! Keys are chosen by clients, so the hash covers every byte and is keyed by seeds drawn
//! from the OS per table: a client cannot aim keys at one probe run. Each 16-byte pair of
//! words is mixed by a folded 64x64->128 multiply with its own seeds (the construction of
//! foldhash); the four results are folded together the same way.

use crate::key::RawId;
use std::hash::{BuildHasher, Hasher};

/// Multiply as 128 bits and fold the halves together.
#[inline]
fn fold(x: u64, y: u64) -> u64 {
    let p = u128::from(x) * u128::from(y);
    (p as u64) ^ ((p >> 64) as u64)
}

/// The seeds of one table (see the module header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyHasher {
    seeds: [u64; 10],
}

impl Default for KeyHasher {
    fn default() -> Self {
        Self::random()
    }
}

impl KeyHasher {
    /// Seeds from the OS; if it cannot answer, from the clock and an address (still
    /// differing per process and table).
    pub fn random() -> Self {
        let mut bytes = [0u8; 80];
        if getrandom::getrandom(&mut bytes).is_err() {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            let a = &bytes as *const _ as u64;
            let mut x = t ^ a.rotate_left(32) ^ 0x243F_6A88_85A3_08D3;
            for b in bytes.iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = x as u8;
            }
        }
        let mut seeds = [0u64; 10];
        for (s, c) in seeds.iter_mut().zip(bytes.chunks_exact(8)) {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            // An odd multiplier never zeroes a product on its own.
            *s = u64::from_le_bytes(w) | 1;
        }
        KeyHasher { seeds }
    }

    /// Fixed seeds (tests that need to know where keys land).
    pub fn with_seeds(seeds: [u64; 10]) -> Self {
        KeyHasher { seeds }
    }

    /// Hash of a whole key.
    #[inline]
    pub fn hash(&self, key: &RawId) -> u64 {
        let mut w = [0u64; 8];
        for (d, c) in w.iter_mut().zip(key.0.chunks_exact(8)) {
            let mut b = [0u8; 8];
            b.copy_from_slice(c);
            *d = u64::from_le_bytes(b);
        }
        let s = &self.seeds;
        let a = fold(w[0] ^ s[0], w[1] ^ s[1]);
        let b = fold(w[2] ^ s[2], w[3] ^ s[3]);
        let c = fold(w[4] ^ s[4], w[5] ^ s[5]);
        let d = fold(w[6] ^ s[6], w[7] ^ s[7]);
        fold(a ^ c ^ s[8], b ^ d ^ s[9])
    }
}

/// [`KeyHasher`] for std maps keyed by [`RawId`].
#[derive(Debug, Clone, Copy)]
pub struct KeyHashState {
    hasher: KeyHasher,
    value: u64,
}

impl Hasher for KeyHashState {
    fn finish(&self) -> u64 {
        self.value
    }

    fn write(&mut self, bytes: &[u8]) {
        if let Ok(k) = <[u8; 64]>::try_from(bytes) {
            self.value ^= self.hasher.hash(&RawId(k));
            return;
        }
        for c in bytes.chunks(8) {
            let mut b = [0u8; 8];
            for (d, s) in b.iter_mut().zip(c) {
                *d = *s;
            }
            let s = &self.hasher.seeds;
            self.value = fold(self.value ^ u64::from_le_bytes(b) ^ s[0], s[1]);
        }
    }

    /// Length prefixes of fixed-size keys carry nothing.
    fn write_usize(&mut self, _len: usize) {}
}

impl BuildHasher for KeyHasher {
    type Hasher = KeyHashState;
    fn build_hasher(&self) -> KeyHashState {
        KeyHashState {
            hasher: *self,
            value: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_byte_changes_the_hash_and_seeds_differ_per_table() {
        let h = KeyHasher::random();
        let base = RawId([3u8; 64]);
        let h0 = h.hash(&base);
        for i in 0..64 {
            let mut k = base;
            k.0[i] ^= 1;
            assert_ne!(h.hash(&k), h0, "byte {i}");
        }
        assert_ne!(KeyHasher::random(), KeyHasher::random());
        let via_map = h.hash_one(base);
        assert_eq!(via_map, h0);
    }
}
