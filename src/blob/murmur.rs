//! MurmurHash64A (Austin Appleby), the hash of eblob's chunked footer (`CHUNKED_CSUM`).

const M: u64 = 0xc6a4_a793_5bd1_e995;
const R: u32 = 47;

/// MurmurHash64A of `data` with `seed` (eblob uses seed 0).
pub fn murmur64a(data: &[u8], seed: u64) -> u64 {
    let mut h = seed ^ (data.len() as u64).wrapping_mul(M);
    let mut blocks = data.chunks_exact(8);
    for block in &mut blocks {
        let mut w = [0u8; 8];
        w.copy_from_slice(block);
        let mut k = u64::from_le_bytes(w);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    let tail = blocks.remainder();
    if !tail.is_empty() {
        for (i, b) in tail.iter().enumerate() {
            h ^= u64::from(*b) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^= h >> R;
    h
}

#[cfg(test)]
mod tests {
    use super::murmur64a;

    #[test]
    fn murmur64a_matches_published_vectors() {
        assert_eq!(murmur64a(b"", 0), 0);
        assert_eq!(murmur64a(b"fransisco", 1), 0x083f_daf4_a6d0_d3d9);
        assert_eq!(murmur64a(b"aaaa", 0x9747_b28c), 0x41da_53fd_abaf_04c8);
        assert_eq!(murmur64a(b"zhenhao", 0x1234), 0xe232_aca9_9097_2561);
        assert_eq!(murmur64a(b"hash me", 22), 15_828_218_858_260_124_487);
    }
}
