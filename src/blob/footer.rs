//! Per-record checksum footers, at the very end of a record.
//!
//! A footer for `D` data bytes (ext header included) holds one 8-byte LE slot per 1 MiB
//! chunk of data and a final slot over the chunk slots:
//!
//! | off            | size | content                                         |
//! |---------------:|-----:|-------------------------------------------------|
//! | 0              | 8·n  | slot i = hash(data[i MiB .. min((i+1) MiB, D)]) |
//! | 8·n            | 8    | hash(bytes of slots 0..n)                       |
//!
//! n = (D − 1) / 1 MiB + 1, so the size is ((D − 1) / 1 MiB + 2) × 8 (0 when D = 0), and the
//! footer starts at `disk_size − size`. With `record_flags::CHUNKED_CSUM` (eblob) the hash is
//! MurmurHash64A seed 0; with our `record_flags::CRC32_CSUM` it is crc32 zero-extended.

use super::murmur::murmur64a;
use crate::protocol::record_flags;

/// Bytes covered by one footer slot.
pub const CHUNK_SIZE_BYTES: u64 = 1 << 20;

/// Which hash a record's footer uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FooterKind {
    Crc32,
    Murmur,
}

impl FooterKind {
    /// The footer a record with `flags` carries, if any is to be verified.
    pub fn of_flags(flags: u64) -> Option<FooterKind> {
        if flags & record_flags::NOCSUM != 0 {
            None
        } else if flags & record_flags::CRC32_CSUM != 0 {
            Some(FooterKind::Crc32)
        } else if flags & record_flags::CHUNKED_CSUM != 0 {
            Some(FooterKind::Murmur)
        } else {
            None
        }
    }

    fn hash(self, bytes: &[u8]) -> u64 {
        match self {
            FooterKind::Crc32 => u64::from(crc32fast::hash(bytes)),
            FooterKind::Murmur => murmur64a(bytes, 0),
        }
    }
}

/// Number of chunk slots for `data_bytes`.
pub fn chunk_count(data_bytes: u64) -> u64 {
    if data_bytes == 0 {
        0
    } else {
        (data_bytes - 1) / CHUNK_SIZE_BYTES + 1
    }
}

/// Footer size for `data_bytes` of data.
pub fn footer_size(data_bytes: u64) -> u64 {
    if data_bytes == 0 {
        0
    } else {
        (chunk_count(data_bytes) + 1) * 8
    }
}

/// Build the footer over all `data` of a record.
pub fn build(kind: FooterKind, data: &[u8]) -> Vec<u8> {
    build_parts(kind, &[data])
}

/// [`build`] over data given in pieces, as if they were joined (no copy for crc32).
pub fn build_parts(kind: FooterKind, parts: &[&[u8]]) -> Vec<u8> {
    let total_bytes: usize = parts.iter().map(|p| p.len()).sum();
    let mut out = Vec::with_capacity(usize::try_from(footer_size(total_bytes as u64)).unwrap_or(0));
    let _: Result<(), ()> = for_each_chunk_hash(kind, parts, |h| {
        out.extend_from_slice(&h.to_le_bytes());
        Ok(())
    });
    if total_bytes > 0 {
        let total = kind.hash(&out);
        out.extend_from_slice(&total.to_le_bytes());
    }
    out
}

/// A CRC32 footer built from a record's data (ext header first) given in pieces of any
/// size as they arrive, so a value streamed to the disk is never read back to checksum it.
#[derive(Debug, Default)]
pub struct FooterHasher {
    slots: Vec<u8>,
    chunk: crc32fast::Hasher,
    chunk_bytes: u64,
    total_bytes: u64,
}

impl FooterHasher {
    /// Take the next `bytes` of the record's data.
    pub fn update(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let room = usize::try_from(CHUNK_SIZE_BYTES - self.chunk_bytes).unwrap_or(usize::MAX);
            let (now, rest) = bytes.split_at(room.min(bytes.len()));
            self.chunk.update(now);
            self.chunk_bytes += now.len() as u64;
            self.total_bytes += now.len() as u64;
            bytes = rest;
            if self.chunk_bytes == CHUNK_SIZE_BYTES {
                self.close_chunk();
            }
        }
    }

    fn close_chunk(&mut self) {
        let crc = std::mem::take(&mut self.chunk).finalize();
        self.slots.extend_from_slice(&u64::from(crc).to_le_bytes());
        self.chunk_bytes = 0;
    }

    /// Data bytes taken so far.
    pub fn total_bytes(&self) -> u64 {
        self.total_bytes
    }

    /// The footer over everything taken ([`build`] of the joined pieces, crc32).
    pub fn finish(mut self) -> Vec<u8> {
        if self.chunk_bytes > 0 {
            self.close_chunk();
        }
        if self.total_bytes > 0 {
            let total = FooterKind::Crc32.hash(&self.slots);
            self.slots.extend_from_slice(&total.to_le_bytes());
        }
        self.slots
    }
}

/// Call `f` with the hash of each 1 MiB chunk of the joined `parts`, in order; stops at
/// the first error of `f`.
fn for_each_chunk_hash<E>(
    kind: FooterKind,
    parts: &[&[u8]],
    mut f: impl FnMut(u64) -> Result<(), E>,
) -> Result<(), E> {
    let chunk_bytes = CHUNK_SIZE_BYTES as usize;
    let mut left_bytes: usize = parts.iter().map(|p| p.len()).sum();
    let mut pieces = parts.iter().copied().filter(|p| !p.is_empty());
    let mut current: &[u8] = &[];
    let mut scratch = Vec::new();
    while left_bytes > 0 {
        let mut need = chunk_bytes.min(left_bytes);
        left_bytes -= need;
        let mut crc = crc32fast::Hasher::new();
        let mut single: Option<&[u8]> = None;
        scratch.clear();
        let mut first = true;
        while need > 0 {
            if current.is_empty() {
                match pieces.next() {
                    Some(p) => current = p,
                    None => break,
                }
            }
            let take = need.min(current.len());
            let (piece, rest) = current.split_at(take);
            current = rest;
            need -= take;
            match kind {
                FooterKind::Crc32 => crc.update(piece),
                FooterKind::Murmur if first && need == 0 => single = Some(piece),
                FooterKind::Murmur => scratch.extend_from_slice(piece),
            }
            first = false;
        }
        f(match kind {
            FooterKind::Crc32 => u64::from(crc.finalize()),
            FooterKind::Murmur => murmur64a(single.unwrap_or(&scratch), 0),
        })?;
    }
    Ok(())
}

/// Verify the chunks of `data` (which starts at chunk `first_chunk` of the record) against
/// the record's `footer`. Returns the index of the first bad chunk. A short `data` is
/// allowed only for the record's last chunk.
pub fn verify(kind: FooterKind, footer: &[u8], first_chunk: u64, data: &[u8]) -> Result<(), u64> {
    verify_parts(kind, footer, first_chunk, &[data])
}

/// [`verify`] over data given in pieces, as if they were joined (no copy for crc32).
pub fn verify_parts(
    kind: FooterKind,
    footer: &[u8],
    first_chunk: u64,
    parts: &[&[u8]],
) -> Result<(), u64> {
    let n = footer.len() / 8;
    let total_bytes: usize = parts.iter().map(|p| p.len()).sum();
    if n == 0 {
        return if total_bytes == 0 {
            Ok(())
        } else {
            Err(first_chunk)
        };
    }
    let chunks_in_footer = (n - 1) as u64;
    let slots = footer.get(..(n - 1) * 8).unwrap_or(&[]);
    let total = footer.get((n - 1) * 8..n * 8).unwrap_or(&[]);
    if total != kind.hash(slots).to_le_bytes() {
        return Err(first_chunk);
    }
    let mut idx = first_chunk;
    for_each_chunk_hash(kind, parts, |got| {
        if idx >= chunks_in_footer {
            return Err(idx);
        }
        let off = usize::try_from(idx * 8).map_err(|_| idx)?;
        let slot = slots.get(off..off + 8).ok_or(idx)?;
        if slot != got.to_le_bytes() {
            return Err(idx);
        }
        idx += 1;
        Ok(())
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn footer_size_follows_the_eblob_formula() {
        assert_eq!(footer_size(0), 0);
        assert_eq!(footer_size(1), 16);
        assert_eq!(footer_size(CHUNK_SIZE_BYTES), 16);
        assert_eq!(footer_size(CHUNK_SIZE_BYTES + 1), 24);
    }

    #[test]
    fn footer_roundtrip_and_detects_corruption_in_any_chunk() {
        for kind in [FooterKind::Crc32, FooterKind::Murmur] {
            let mut data = vec![0x5au8; (2 * CHUNK_SIZE_BYTES + 10) as usize];
            let f = build(kind, &data);
            assert_eq!(f.len() as u64, footer_size(data.len() as u64));
            assert_eq!(verify(kind, &f, 0, &data), Ok(()));
            let second = &data[CHUNK_SIZE_BYTES as usize..2 * CHUNK_SIZE_BYTES as usize];
            assert_eq!(verify(kind, &f, 1, second), Ok(()));
            data[(CHUNK_SIZE_BYTES + 3) as usize] ^= 1;
            assert_eq!(verify(kind, &f, 0, &data), Err(1));
            let mut bad_footer = f.clone();
            bad_footer[0] ^= 1;
            assert!(verify(kind, &bad_footer, 2, &data[..10]).is_err());
        }
    }

    #[test]
    fn a_footer_hashed_piece_by_piece_equals_the_footer_of_the_joined_bytes() {
        let data: Vec<u8> = (0..(2 * CHUNK_SIZE_BYTES as usize + 777))
            .map(|i| (i % 253) as u8)
            .collect();
        for piece in [1usize, 48, 4096, CHUNK_SIZE_BYTES as usize, 3 << 20] {
            let mut h = FooterHasher::default();
            for p in data.chunks(piece) {
                h.update(p);
            }
            assert_eq!(h.total_bytes(), data.len() as u64);
            assert_eq!(
                h.finish(),
                build(FooterKind::Crc32, &data),
                "pieces of {piece}"
            );
        }
        assert!(FooterHasher::default().finish().is_empty());
    }

    #[test]
    fn verify_over_pieces_matches_verify_over_the_joined_bytes() {
        for kind in [FooterKind::Crc32, FooterKind::Murmur] {
            let mut data: Vec<u8> = (0..(CHUNK_SIZE_BYTES as usize + 300))
                .map(|i| (i % 251) as u8)
                .collect();
            let f = build(kind, &data);
            let cut = |d: &[u8], a: usize, b: usize| -> Vec<Vec<u8>> {
                vec![
                    d[..a].to_vec(),
                    d[a..b].to_vec(),
                    Vec::new(),
                    d[b..].to_vec(),
                ]
            };
            for (a, b) in [(48, 4096), (0, CHUNK_SIZE_BYTES as usize + 1), (7, 8)] {
                let parts = cut(&data, a, b);
                let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
                assert_eq!(verify_parts(kind, &f, 0, &refs), Ok(()), "{a} {b}");
            }
            data[CHUNK_SIZE_BYTES as usize + 5] ^= 0x40;
            let parts = cut(&data, 48, CHUNK_SIZE_BYTES as usize + 2);
            let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
            assert_eq!(verify_parts(kind, &f, 0, &refs), Err(1));
        }
    }
}
