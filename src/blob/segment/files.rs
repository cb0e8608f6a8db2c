//! Naming, creation, locking and listing of a log's files: `<prefix>-<shard>.<N>`, its
//! companions (`….<N>.index`, `….<N>.index.sorted`, …) and `<prefix>-<shard>.lock`.

use crate::blob::error::BlobError;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

/// Suffix of a sealed file's index, sorted by key (eblob's layout).
pub const SORTED_SUFFIX: &str = ".index.sorted";

/// Path of data file `num`.
pub fn data_path(prefix: &Path, shard: u32, num: u32) -> PathBuf {
    PathBuf::from(format!("{}-{}.{}", prefix.display(), shard, num))
}

/// Path of a companion file of data file `num` (`suffix` like ".index").
pub fn side_path(prefix: &Path, shard: u32, num: u32, suffix: &str) -> PathBuf {
    PathBuf::from(format!("{}-{}.{}{}", prefix.display(), shard, num, suffix))
}

/// Path of the lock file.
pub fn lock_path(prefix: &Path, shard: u32) -> PathBuf {
    PathBuf::from(format!("{}-{}.lock", prefix.display(), shard))
}

/// Take the exclusive lock of a log; a second holder gets [`BlobError::Locked`].
pub fn lock(prefix: &Path, shard: u32) -> Result<File, BlobError> {
    let path = lock_path(prefix, shard);
    let shown = path.display().to_string();
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| BlobError::io(&shown, e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(BlobError::Locked { path: shown }),
        Err(std::fs::TryLockError::Error(e)) => Err(BlobError::io(&shown, e)),
    }
}

/// The directory holding the log.
pub fn dir_of(prefix: &Path) -> PathBuf {
    match prefix.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// fsync the directory holding the log, so that created and renamed files persist.
pub fn sync_dir(prefix: &Path) -> Result<(), BlobError> {
    let dir = dir_of(prefix);
    File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| BlobError::io(&dir.display().to_string(), e))
}

/// Data file numbers present for `prefix`/`shard`, ascending.
pub fn list_files(prefix: &Path, shard: u32) -> Result<Vec<u32>, BlobError> {
    let dir = match prefix.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let stem = prefix
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let want = format!("{stem}-{shard}.");
    let shown = dir.display().to_string();
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).map_err(|e| BlobError::io(&shown, e))? {
        let entry = entry.map_err(|e| BlobError::io(&shown, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(rest) = name.strip_prefix(&want) {
            if !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()) {
                if let Ok(n) = rest.parse::<u32>() {
                    out.push(n);
                }
            }
        }
    }
    out.sort_unstable();
    Ok(out)
}

pub(crate) fn open_rw(path: &Path, read_only: bool) -> Result<File, BlobError> {
    OpenOptions::new()
        .read(true)
        .write(!read_only)
        .create(!read_only)
        .truncate(false)
        .open(path)
        .map_err(|e| BlobError::io(&path.display().to_string(), e))
}
