//! The per-shard blob log: eblob-format data and index files, checksums, recovery, defrag.
//!
//! One [`BlobLog`] per backend per shard. It is used by one thread from many tasks at once,
//! so every method takes `&self` and state lives in `Cell`/`RefCell` (never borrowed across
//! an `.await`). File I/O on the data path goes through [`crate::io::IoFile`]; opening,
//! renaming and truncating files are rare metadata calls done with `std::fs`.
//!
//! Files for prefix `P` and shard `S` (shard 0 gives eblob's names):
//!
//! | file              | content                                                   |
//! |-------------------|-----------------------------------------------------------|
//! | `P-S.N`           | records back to back: header, ext header, data, slack, footer |
//! | `P-S.N.index`     | one 96-byte header per record, in write order (open file) |
//! | `P-S.N.index.sorted` | the same headers sorted by key: a sealed file's one index |
//! | `P-S.lock`        | exclusive lock of the log                                 |
//! | `P-S.synced`      | how much of the open file is durable ([`checkpoint`])     |
//!
//! Under periodic sync the open data file may end in zeros past its last record (written
//! ahead so that appends are stores into cached pages); closing the file cuts them, and so
//! does recovery after a crash.
//!
//! The layouts are in [`disk_control`], [`ext_header`] and [`footer`].

pub mod checkpoint;
pub mod disk_control;
pub mod error;
pub mod ext_header;
pub mod footer;
pub mod hot_index;
pub mod index;
pub mod key_files;
pub mod key_hash;
pub mod murmur;
pub mod sealed;
pub mod segment;
pub mod sync;

mod dedupe;
mod defrag;
mod defrag_commit;
mod defrag_copy;
mod defrag_merge;
pub mod defrag_state;
mod durability;
mod load;
mod loc;
mod log;
mod open;
mod page_map;
mod pending;
mod prefetch;
mod prepare;
mod read;
mod recovery;
mod sealed_open;
mod sealed_walk;
mod sort;
pub mod stream;
mod stream_read;
mod stream_table;
mod write;
mod write_now;

pub use defrag::DefragStop;
pub use defrag_state::{DefragLevel, DefragSchedule, DefragStatus};
pub use error::BlobError;
pub use log::BlobLog;
pub use stream::streamable;
pub use stream_read::{ReadOpen, ReadOpened};

use crate::protocol::DnetTime;
use std::path::PathBuf;

/// `blob_flags` bit: records get no footer and the NOCSUM flag.
pub const BLOB_FLAG_NO_FOOTER: u64 = 8;

/// Configuration of one blob log (the backend's `data`, `sync`, `blob_*` options).
#[derive(Debug, Clone)]
pub struct BlobOptions {
    /// Path prefix `P`: files are `P-<shard>.<N>`.
    pub data_prefix: PathBuf,
    pub shard: u32,
    /// 0: acknowledge after fdatasync (group commit); N > 0: the owner syncs every N s.
    pub sync_s: i64,
    pub blob_flags: u64,
    /// Rotate to a new data file once this many bytes are used.
    pub blob_size_bytes: u64,
    /// Rotate to a new data file once it holds this many records.
    pub records_in_blob: u64,
    /// Refuse writes (-ENOSPC) beyond this many bytes over all files; 0 = no limit.
    pub blob_size_limit_bytes: u64,
    /// Defragment a closed file once this share (percent) of its bytes is removed.
    pub defrag_percentage: u32,
    pub read_only: bool,
}

impl BlobOptions {
    /// Defaults of the Elliptics test backend (sync 0 here), for `data_prefix`.
    pub fn new(data_prefix: impl Into<PathBuf>) -> BlobOptions {
        BlobOptions {
            data_prefix: data_prefix.into(),
            shard: 0,
            sync_s: 0,
            blob_flags: 0,
            blob_size_bytes: 10 << 20,
            records_in_blob: 10_000_000,
            blob_size_limit_bytes: 0,
            defrag_percentage: 25,
            read_only: false,
        }
    }
}

/// What a write, read or lookup reports about a record (the `dnet_file_info` fields).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordInfo {
    /// The blob file holding the record.
    pub path: std::sync::Arc<str>,
    /// Offset of the user data in that file (after the 96-byte header and the ext header).
    pub data_offset: u64,
    /// User data size.
    pub size: u64,
    pub timestamp: DnetTime,
    pub user_flags: u64,
    pub record_flags: u64,
    /// sha512 of the user data, when asked for.
    pub checksum: Option<[u8; 64]>,
}

/// What a READ reply tells of its record: [`RecordInfo`] without the file's path (a read
/// served from the map does not touch the path's reference count).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValueMeta {
    /// User data size.
    pub size: u64,
    pub timestamp: DnetTime,
    pub user_flags: u64,
    pub record_flags: u64,
}

impl RecordInfo {
    pub fn meta(&self) -> ValueMeta {
        ValueMeta {
            size: self.size,
            timestamp: self.timestamp,
            user_flags: self.user_flags,
            record_flags: self.record_flags,
        }
    }
}

/// A read: the record's metadata and the bytes asked for.
#[derive(Debug, Clone)]
pub struct ReadOutcome {
    pub info: RecordInfo,
    /// Offset within the value the data starts at.
    pub offset: u64,
    pub data: Vec<u8>,
}

impl ReadOutcome {
    /// The bytes read.
    pub fn value(&self) -> &[u8] {
        &self.data
    }
}

/// In-memory metadata of a live record, for iterators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordMeta {
    pub file: u32,
    pub position: u64,
    /// User data size.
    pub size: u64,
    pub record_flags: u64,
}

/// Counters of a log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BlobStats {
    /// Live records (uncommitted included).
    pub records: u64,
    /// Removed records still occupying space.
    pub removed: u64,
    /// Bytes used in data files.
    pub bytes: u64,
    pub files: u64,
    /// Bytes of removed records still in the data files (what defragmentation frees).
    pub removed_bytes: u64,
    /// A defragmentation is running.
    pub defragmenting: bool,
    /// Writes acknowledged since open.
    pub writes: u64,
    /// fdatasync calls since open.
    pub fsyncs: u64,
    /// Group-commit (and explicit) sync rounds since open.
    pub sync_rounds: u64,
}

/// What a defrag pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DefragStats {
    pub files_rewritten: u64,
    pub records_kept: u64,
    pub records_dropped: u64,
    pub bytes_before: u64,
    pub bytes_after: u64,
    /// Live records of small files written again at the end of the open file.
    pub records_moved: u64,
}
