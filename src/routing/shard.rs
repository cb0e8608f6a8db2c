//! Which shard of a node owns a key, and the record of the shard count in the data
//! directory.
//!
//! The whole ring is cut into `shard_count` equal slices by the id's first 8 bytes read as
//! a big-endian u64. Ring points are uniform random ids and keys are sha512 hashes, so any
//! owned range, however it falls, spreads its keys evenly over the shards, and a node with
//! a single ring point still uses every core.
//!
//! `<dir>/shards` (text, written atomically at first start):
//!
//! | bytes | content |
//! |---|---|
//! | 0..n | the shard count in ASCII decimal |
//! | n | `\n` |

use crate::history::write_file_atomically;
use crate::key::RawId;
use std::path::{Path, PathBuf};

/// Name of the file in the data directory that records the shard count.
pub const SHARDS_FILE_NAME: &str = "shards";
/// Longest `shards` file accepted: a decimal count and a newline.
const SHARDS_FILE_BYTES_MAX: u64 = 32;

/// The shard (0..shard_count) that serves `id`. A `shard_count` of 0 is treated as 1.
pub fn shard_of(id: &RawId, shard_count: usize) -> usize {
    let prefix = id.prefix_u64();
    let slice = (u128::from(prefix) * shard_count.max(1) as u128) >> 64;
    // The product of a u64 and a usize shifted down by 64 is below shard_count.
    slice as usize
}

/// Why the shard layout of a data directory cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LayoutError {
    /// Reading or writing the `shards` file failed.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file does not hold a positive decimal count.
    #[error("{}: expected a shard count, found {content:?}", path.display())]
    Corrupt { path: PathBuf, content: String },
    /// The data was laid out for another shard count.
    #[error(
        "{}: the data here was written by {recorded} shards but the configuration asks for \
         {configured}; set options.shard_count to {recorded} to use this data",
        path.display()
    )]
    Mismatch {
        path: PathBuf,
        recorded: usize,
        configured: usize,
    },
    /// A shard count of zero was asked for.
    #[error("shard count must be at least 1")]
    ZeroShards,
}

/// Record `shard_count` in `<dir>/shards` at first start; later, accept only the same
/// count. `dir` must exist.
pub fn record_shard_count(dir: &Path, shard_count: usize) -> Result<(), LayoutError> {
    if shard_count == 0 {
        return Err(LayoutError::ZeroShards);
    }
    let path = dir.join(SHARDS_FILE_NAME);
    match read_recorded(&path)? {
        Some(recorded) if recorded == shard_count => Ok(()),
        Some(recorded) => Err(LayoutError::Mismatch {
            path,
            recorded,
            configured: shard_count,
        }),
        None => {
            let text = format!("{shard_count}\n");
            write_file_atomically(&path, text.as_bytes())
                .map_err(|source| LayoutError::Io { path, source })
        }
    }
}

fn read_recorded(path: &Path) -> Result<Option<usize>, LayoutError> {
    let io_error = |source| LayoutError::Io {
        path: path.to_path_buf(),
        source,
    };
    let size_bytes = match std::fs::metadata(path) {
        Ok(meta) => meta.len(),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(io_error(err)),
    };
    if size_bytes > SHARDS_FILE_BYTES_MAX {
        return Err(LayoutError::Corrupt {
            path: path.to_path_buf(),
            content: format!("{size_bytes} bytes"),
        });
    }
    let content = std::fs::read_to_string(path).map_err(io_error)?;
    match content.trim().parse::<usize>() {
        Ok(count) if count > 0 => Ok(Some(count)),
        _ => Err(LayoutError::Corrupt {
            path: path.to_path_buf(),
            content,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id_with_prefix(prefix: u64) -> RawId {
        let mut bytes = [0u8; 64];
        bytes[..8].copy_from_slice(&prefix.to_be_bytes());
        RawId(bytes)
    }

    #[test]
    fn ring_is_cut_into_equal_slices_by_the_prefix() {
        assert_eq!(shard_of(&RawId::ZERO, 4), 0);
        assert_eq!(shard_of(&RawId::MAX, 4), 3);
        assert_eq!(shard_of(&id_with_prefix(1 << 62), 4), 1);
        assert_eq!(shard_of(&id_with_prefix((1 << 62) - 1), 4), 0);
        assert_eq!(shard_of(&id_with_prefix(u64::MAX / 2 + 1), 2), 1);
        assert_eq!(shard_of(&RawId::MAX, 1), 0);
        assert_eq!(shard_of(&RawId::MAX, 0), 0);
    }

    #[test]
    fn hashed_keys_spread_evenly_over_shards() {
        let shard_count = 6;
        let key_count = 60_000;
        let mut per_shard = vec![0usize; shard_count];
        for n in 0..key_count {
            per_shard[shard_of(&RawId::from_key(format!("key{n}").as_bytes()), shard_count)] += 1;
        }
        let expected = key_count / shard_count;
        for count in per_shard {
            assert!(
                count.abs_diff(expected) < expected / 20,
                "{count} vs {expected}"
            );
        }
    }

    #[test]
    fn shard_count_is_recorded_once_and_a_different_count_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        record_shard_count(dir.path(), 4).unwrap();
        record_shard_count(dir.path(), 4).unwrap();
        let message = record_shard_count(dir.path(), 2).unwrap_err().to_string();
        assert!(message.contains("shards: the data here was written by 4 shards"));
        assert!(message.contains("asks for 2"));
        assert!(message.contains(&dir.path().display().to_string()));
    }

    #[test]
    fn garbage_shards_file_is_reported_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(SHARDS_FILE_NAME), "four\n").unwrap();
        let err = record_shard_count(dir.path(), 4).unwrap_err();
        assert!(matches!(err, LayoutError::Corrupt { .. }), "{err}");
        assert!(matches!(
            record_shard_count(dir.path(), 0),
            Err(LayoutError::ZeroShards)
        ));
    }
}
