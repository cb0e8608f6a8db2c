//! Errors of the blob log, each mapped to the negative errno Elliptics 2.26 answers with.

use crate::protocol::errno;
use std::io;

/// What a blob log operation can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BlobError {
    #[error("no such record")]
    NotFound,
    #[error("offset {offset} is at or past the record size {size_bytes}")]
    OffsetPastEnd { offset: u64, size_bytes: u64 },
    #[error("checksum mismatch in {path} at record offset {position}, chunk {chunk}")]
    ChecksumMismatch {
        path: String,
        position: u64,
        chunk: u64,
    },
    #[error("operation not permitted on this record: {0}")]
    NotPermitted(&'static str),
    #[error("commit size {commit_bytes} exceeds the reserved {capacity_bytes} bytes")]
    CommitTooLarge {
        commit_bytes: u64,
        capacity_bytes: u64,
    },
    #[error("compare-and-swap failed: {0}")]
    CasMismatch(&'static str),
    #[error("the blob log is read-only")]
    ReadOnly,
    #[error("no space left: {0}")]
    NoSpace(String),
    #[error("database is locked: {path}")]
    Locked { path: String },
    #[error("an earlier fsync failed; the log refuses writes until reopened")]
    Poisoned,
    #[error("corrupt blob file {path}: {reason}")]
    Corrupt { path: String, reason: String },
    #[error("invalid argument: {0}")]
    Invalid(&'static str),
    #[error("i/o error on {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
}

impl BlobError {
    /// Wrap an I/O error with the file it happened on; ENOSPC becomes [`BlobError::NoSpace`].
    pub fn io(path: &str, source: io::Error) -> BlobError {
        if source.raw_os_error() == Some(libc::ENOSPC) {
            return BlobError::NoSpace(format!("{path}: {source}"));
        }
        BlobError::Io {
            path: path.to_string(),
            source,
        }
    }

    /// The negative errno carried in `cmd.status` for this error.
    pub fn errno(&self) -> i32 {
        match self {
            BlobError::NotFound => errno::ENOENT,
            BlobError::OffsetPastEnd { .. } => errno::E2BIG,
            BlobError::ChecksumMismatch { .. } => errno::EILSEQ,
            BlobError::NotPermitted(_) => errno::EPERM,
            BlobError::CommitTooLarge { .. } => errno::ERANGE,
            BlobError::CasMismatch(_) => errno::EBADFD,
            BlobError::ReadOnly => errno::EROFS,
            BlobError::NoSpace(_) => errno::ENOSPC,
            BlobError::Locked { .. } => errno::EALREADY,
            BlobError::Invalid(_) => errno::EINVAL,
            BlobError::Poisoned | BlobError::Corrupt { .. } | BlobError::Io { .. } => errno::EIO,
        }
    }
}
