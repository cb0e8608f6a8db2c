//! The synced point of the open file, so that start-up reads its data only past it.
//!
//! After a round made a file's data and `.index` durable together
//! ([`super::segment::Segment::sync_all`]), the log writes `P-S.synced`: that file's
//! number and how many `.index` entries (with their records) were durable then. At start
//! those entries of the open file are taken from the `.index` without reading the data
//! file; only later entries are checked against their data and footers, and the data past
//! them walked (see `recovery`).
//!
//! The file is written in place and never synced: a lost or torn write leaves an older
//! point (still true: a point only says what was durable once, and a file only grows) or
//! a checksum that fails, and then the whole file is checked, as without it. A remove
//! makes its `.index` mark durable before it is acknowledged, so an entry under the point
//! carries every acknowledged REMOVE.
//!
//! | off | size | field        | meaning                                          |
//! |----:|-----:|--------------|--------------------------------------------------|
//! |   0 |    8 | magic        | `ELSYNCD1`                                       |
//! |   8 |    4 | `file`       | data file number N                               |
//! |  12 |    4 | `entries`    | `.index` entries durable with their records      |
//! |  16 |    8 | `checksum`   | murmur64a of bytes 0..16, seed 0                 |
//!
//! Integers little-endian.

use super::murmur::murmur64a;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"ELSYNCD1";
const SIZE_BYTES: usize = 24;

/// Path of the synced point of log `prefix`, shard `shard`.
pub fn path(prefix: &Path, shard: u32) -> PathBuf {
    PathBuf::from(format!("{}-{}.synced", prefix.display(), shard))
}

fn encode(file: u32, entries: u32) -> [u8; SIZE_BYTES] {
    let mut out = [0u8; SIZE_BYTES];
    out[..8].copy_from_slice(MAGIC);
    out[8..12].copy_from_slice(&file.to_le_bytes());
    out[12..16].copy_from_slice(&entries.to_le_bytes());
    let sum = murmur64a(&out[..16], 0);
    out[16..].copy_from_slice(&sum.to_le_bytes());
    out
}

/// Record that `entries` entries of data file `file` are durable (not synced itself).
pub fn write(path: &Path, file: u32, entries: u32) -> std::io::Result<()> {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)?;
    f.write_all_at(&encode(file, entries), 0)
}

/// The durable entries of data file `file` that the point at `path` vouches for (0 when
/// it is missing, torn, or about another file).
pub fn durable_entries(path: &Path, file: u32) -> u32 {
    let Ok(bytes) = std::fs::read(path) else {
        return 0;
    };
    let Some(b) = bytes.get(..SIZE_BYTES) else {
        return 0;
    };
    let word = |r: std::ops::Range<usize>| b.get(r).unwrap_or(&[]).to_vec();
    let sum = u64::from_le_bytes(word(16..24).try_into().unwrap_or([0; 8]));
    if b.get(..8) != Some(&MAGIC[..]) || murmur64a(b.get(..16).unwrap_or(&[]), 0) != sum {
        return 0;
    }
    let num = u32::from_le_bytes(word(8..12).try_into().unwrap_or([0; 4]));
    let entries = u32::from_le_bytes(word(12..16).try_into().unwrap_or([0; 4]));
    if num == file {
        entries
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_point_reads_back_for_its_file_only_and_a_torn_one_vouches_for_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let p = path(&dir.path().join("data"), 0);
        assert_eq!(durable_entries(&p, 3), 0);
        write(&p, 3, 1234).unwrap();
        assert_eq!(durable_entries(&p, 3), 1234);
        assert_eq!(durable_entries(&p, 4), 0);
        let mut bytes = std::fs::read(&p).unwrap();
        bytes[13] ^= 1;
        std::fs::write(&p, bytes).unwrap();
        assert_eq!(durable_entries(&p, 3), 0);
    }
}
