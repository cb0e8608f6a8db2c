//! The history `ids` file: a backend's ring points, read, validated, or generated atomically.
//!
//! This module owns `<history>/ids` and nothing else in the history directory. It never
//! creates the directory: a missing one is a configuration error the operator must fix.
//!
//! `<history>/ids` (no header, no checksum, as Elliptics 2.26 writes it):
//!
//! | offset | size | content |
//! |---:|---:|---|
//! | 64·i | 64 | ring point i (`dnet_raw_id`), any byte values |
//!
//! The size must be a positive multiple of 64. When the file is missing, Elliptics
//! generates `free bytes of the file system / 100 GiB + 1` random points; we do the same,
//! from the OS RNG, and write them with tmp file, fsync, rename, fsync of the directory.

use crate::key::{RawId, ID_SIZE_BYTES};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// File name of the ring points inside a history directory.
pub const IDS_FILE_NAME: &str = "ids";
/// One generated point per this many free bytes (plus one), as `dnet_ids_generate` does.
pub const FREE_BYTES_PER_ID: u64 = 100 << 30;
/// Most ring points accepted from one ids file (64 MiB of ids).
pub const IDS_COUNT_MAX: usize = 1 << 20;

/// Why a history directory's ids could not be loaded or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HistoryError {
    /// The history directory is missing or not a directory.
    #[error("history directory {} does not exist; create it or fix backends[].history", path.display())]
    DirMissing { path: PathBuf },
    /// The ids file is empty or not a multiple of 64 bytes.
    #[error(
        "{}: size {size_bytes} bytes is not a positive multiple of {ID_SIZE_BYTES} \
         (one ring id); fix or remove the file",
        path.display()
    )]
    BadSize { path: PathBuf, size_bytes: u64 },
    /// The ids file holds more points than accepted.
    #[error("{}: {size_bytes} bytes is more than {IDS_COUNT_MAX} ring ids", path.display())]
    TooLarge { path: PathBuf, size_bytes: u64 },
    /// Writing an empty id list was asked for.
    #[error("{}: refusing to write an empty ids file", path.display())]
    Empty { path: PathBuf },
    /// A file system call failed.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The OS random source failed.
    #[error("cannot read random bytes for new ring ids: {0}")]
    Random(getrandom::Error),
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> HistoryError + '_ {
    move |source| HistoryError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn require_dir(history_dir: &Path) -> Result<(), HistoryError> {
    if history_dir.is_dir() {
        Ok(())
    } else {
        Err(HistoryError::DirMissing {
            path: history_dir.to_path_buf(),
        })
    }
}

/// Read `<history_dir>/ids`. `Ok(None)` when the file does not exist.
pub fn load_ids(history_dir: &Path) -> Result<Option<Vec<RawId>>, HistoryError> {
    require_dir(history_dir)?;
    let path = history_dir.join(IDS_FILE_NAME);
    let file = match std::fs::File::open(&path) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(io_error(&path)(err)),
    };
    let size_bytes = file.metadata().map_err(io_error(&path))?.len();
    let id_size_bytes = ID_SIZE_BYTES as u64;
    if size_bytes == 0 || size_bytes % id_size_bytes != 0 {
        return Err(HistoryError::BadSize { path, size_bytes });
    }
    if size_bytes / id_size_bytes > IDS_COUNT_MAX as u64 {
        return Err(HistoryError::TooLarge { path, size_bytes });
    }
    // Bounded above, so the cast and the allocation are safe; read one byte more than
    // expected to notice a file that grew meanwhile.
    let mut bytes = Vec::with_capacity(size_bytes as usize);
    file.take(size_bytes + 1)
        .read_to_end(&mut bytes)
        .map_err(io_error(&path))?;
    if bytes.len() as u64 != size_bytes {
        let size_bytes = bytes.len() as u64;
        return Err(HistoryError::BadSize { path, size_bytes });
    }
    Ok(Some(ids_from_bytes(&bytes)))
}

fn ids_from_bytes(bytes: &[u8]) -> Vec<RawId> {
    bytes
        .chunks_exact(ID_SIZE_BYTES)
        .map(|chunk| {
            let mut id = RawId::ZERO;
            id.0.copy_from_slice(chunk);
            id
        })
        .collect()
}

/// Write `ids` to `<history_dir>/ids` atomically (tmp file, fsync, rename, fsync dir).
pub fn write_ids(history_dir: &Path, ids: &[RawId]) -> Result<(), HistoryError> {
    require_dir(history_dir)?;
    let path = history_dir.join(IDS_FILE_NAME);
    if ids.is_empty() {
        return Err(HistoryError::Empty { path });
    }
    let bytes: Vec<u8> = ids.iter().flat_map(|id| id.0).collect();
    write_file_atomically(&path, &bytes).map_err(io_error(&path))
}

/// Load the ids, or generate and write `free bytes / 100 GiB + 1` of them when missing.
pub fn load_or_generate(history_dir: &Path) -> Result<Vec<RawId>, HistoryError> {
    if let Some(ids) = load_ids(history_dir)? {
        return Ok(ids);
    }
    let stats = rustix::fs::statvfs(history_dir).map_err(|errno| HistoryError::Io {
        path: history_dir.to_path_buf(),
        source: errno.into(),
    })?;
    let free_bytes = stats.f_bavail.saturating_mul(stats.f_frsize);
    let ids = generate_ids(ids_count_for_free_bytes(free_bytes))?;
    write_ids(history_dir, &ids)?;
    Ok(ids)
}

/// How many ring points Elliptics generates for a file system with `free_bytes` free,
/// capped at [`IDS_COUNT_MAX`].
pub fn ids_count_for_free_bytes(free_bytes: u64) -> usize {
    let count = free_bytes / FREE_BYTES_PER_ID + 1;
    usize::try_from(count).map_or(IDS_COUNT_MAX, |count| count.min(IDS_COUNT_MAX))
}

/// `count` random ring points from the OS RNG.
pub fn generate_ids(count: usize) -> Result<Vec<RawId>, HistoryError> {
    let mut ids = vec![RawId::ZERO; count.min(IDS_COUNT_MAX)];
    for id in &mut ids {
        getrandom::getrandom(&mut id.0).map_err(HistoryError::Random)?;
    }
    Ok(ids)
}

/// Replace `path` with `bytes` so that a crash leaves either the old or the new content:
/// write `<path>.tmp`, fsync it, rename it over `path`, fsync the directory.
pub fn write_file_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let tmp_path = path.with_file_name(tmp_name);
    let mut file = std::fs::File::create(&tmp_path)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp_path, path)?;
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_ids_file_is_none_and_missing_dir_is_named() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load_ids(dir.path()).unwrap().is_none());
        let gone = dir.path().join("nope");
        let message = load_ids(&gone).unwrap_err().to_string();
        assert!(message.contains(&gone.display().to_string()), "{message}");
    }

    #[test]
    fn written_ids_load_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let ids = [RawId::from_key(b"b"), RawId::from_key(b"a"), RawId::MAX];
        write_ids(dir.path(), &ids).unwrap();
        assert_eq!(load_ids(dir.path()).unwrap().unwrap(), ids);
        assert!(!dir.path().join("ids.tmp").exists());
        assert_eq!(
            std::fs::metadata(dir.path().join("ids")).unwrap().len(),
            192
        );
    }

    #[test]
    fn empty_or_ragged_ids_file_is_an_error_naming_file_and_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(IDS_FILE_NAME);
        for size in [0usize, 65, 127] {
            std::fs::write(&path, vec![7u8; size]).unwrap();
            let message = load_ids(dir.path()).unwrap_err().to_string();
            assert!(message.contains(&path.display().to_string()), "{message}");
            assert!(message.contains(&format!("size {size} bytes")), "{message}");
        }
    }

    #[test]
    fn missing_ids_are_generated_once_and_then_kept() {
        let dir = tempfile::tempdir().unwrap();
        let generated = load_or_generate(dir.path()).unwrap();
        assert!(!generated.is_empty());
        assert_ne!(generated[0], RawId::ZERO);
        assert_eq!(load_or_generate(dir.path()).unwrap(), generated);
    }

    #[test]
    fn id_count_follows_free_space_like_elliptics() {
        assert_eq!(ids_count_for_free_bytes(0), 1);
        assert_eq!(ids_count_for_free_bytes(FREE_BYTES_PER_ID - 1), 1);
        assert_eq!(ids_count_for_free_bytes(FREE_BYTES_PER_ID * 3), 4);
        assert_eq!(ids_count_for_free_bytes(u64::MAX), IDS_COUNT_MAX);
        assert!(matches!(
            write_ids(Path::new("."), &[]),
            Err(HistoryError::Empty { .. })
        ));
    }
}
