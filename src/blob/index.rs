//! The in-memory key index: one packed location per live (or uncommitted) key.
//!
//! Keys are sha512 outputs, so the map hashes them by their first 8 bytes instead of
//! running SipHash over 64 bytes. Removed keys are not kept: a tombstone on disk is enough.

use crate::key::RawId;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Where a record lives and what its header says (40 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loc {
    /// Offset of the record header in the data file.
    pub position: u64,
    /// Client bytes including the ext header.
    pub data_size: u64,
    /// Bytes the record occupies in the data file.
    pub disk_size: u64,
    /// Data file number N.
    pub file: u32,
    /// Entry number in the file's `.index`.
    pub index_slot: u32,
    /// `record_flags::*` (all defined flags fit in 32 bits).
    pub flags: u32,
}

/// Hashes a [`RawId`] by its first 8 bytes (ids are already uniformly distributed).
#[derive(Debug, Default, Clone, Copy)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for (i, b) in bytes.iter().take(8).enumerate() {
            self.0 ^= u64::from(*b) << (8 * i);
        }
        self.0 = self.0.rotate_left(5) ^ bytes.len() as u64;
    }
}

/// Map from key to location.
pub type KeyIndex = HashMap<RawId, Loc, BuildHasherDefault<IdHasher>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_stays_forty_bytes() {
        assert_eq!(std::mem::size_of::<Loc>(), 40);
    }

    #[test]
    fn index_finds_keys_that_share_a_prefix() {
        let mut idx = KeyIndex::default();
        let mut a = [1u8; 64];
        let b = [1u8; 64];
        a[63] = 2;
        let loc = Loc {
            position: 1,
            data_size: 2,
            disk_size: 3,
            file: 0,
            index_slot: 0,
            flags: 0,
        };
        idx.insert(RawId(a), loc);
        idx.insert(RawId(b), Loc { position: 9, ..loc });
        assert_eq!(idx.get(&RawId(a)).map(|l| l.position), Some(1));
        assert_eq!(idx.get(&RawId(b)).map(|l| l.position), Some(9));
    }
}
