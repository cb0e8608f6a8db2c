//! `dnet_recovery` over the Rust client.
//!
//! - **merge** (inside each group): every key found on a backend that is not its ring owner
//!   is copied to the owner when the owner lacks it or holds an older timestamp or another
//!   size, then removed from the wrong backend (kept with `safe`).
//! - **dc** (across groups): the replicas of every key are compared by (timestamp, size) as
//!   the iterators report them, and the newest one is copied to every given group that lacks
//!   it or holds an older one: in key-ordered batches, many in flight, node to node with
//!   SEND where the source node takes it (`copy`), while the iterators still stream in
//!   (`stream`, `dc`). An interrupted dc run restarted with the same arguments continues
//!   after the last finished batch (`resume`).
//!
//! Copies keep the source's timestamp and user_flags. Every step is idempotent (copy before
//! remove, compare before copy), so an interrupted run is finished by running again, and a
//! second run copies nothing.

mod copy;
mod dc;
mod merge;
mod ops;
mod resume;
mod stream;

pub use dc::dc;
pub use merge::merge;
pub use ops::{KeyMeta, Place};
pub use resume::StateFile;

use crate::client::ClientError;
use crate::key::RawId;
use crate::protocol::DnetTime;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Why recovery could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecoveryError {
    #[error("iterating {0} failed: {1}")]
    Iterate(SocketAddr, ClientError),
    #[error("no backend of groups {0:?} is known; check -r and -g")]
    NoRoutes(Vec<u32>),
    #[error("the iterator of {0} sent keys out of order after copies had begun; run again")]
    Unordered(SocketAddr),
}

/// What to recover.
#[derive(Debug, Clone)]
pub struct Options {
    pub groups: Vec<u32>,
    /// Only this node (`-o`).
    pub node: Option<SocketAddr>,
    /// Only this backend (`-i`).
    pub backend_id: Option<i32>,
    /// Only keys written since then (`-t`).
    pub since: Option<DnetTime>,
    /// Only these keys (`-f`).
    pub keys: Option<HashSet<RawId>>,
    /// Count, copy nothing (`-N`).
    pub dry_run: bool,
    /// merge: keep the source copy (`-S`).
    pub safe: bool,
    /// Batches in flight at once (`-n`).
    pub workers: usize,
    /// Keys per batch (`-b`): per SEND request and per step of the saved progress.
    pub batch: usize,
    /// Per-request timeout (`-w`).
    pub timeout: Duration,
    /// Where dc keeps the state file of an unfinished run (`-D`); `None`: no resuming.
    pub state_dir: Option<PathBuf>,
    /// The arguments that name the run: a run with the same ones resumes it.
    pub arguments: String,
}

/// What a run did.
#[derive(Debug, Default)]
pub struct Summary {
    pub scanned: AtomicU64,
    pub copied: AtomicU64,
    pub removed: AtomicU64,
    pub failed: AtomicU64,
    /// Keys an interrupted earlier run had already handled (dc resumed).
    pub resumed: AtomicU64,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "keys scanned: {}, copied: {}, removed: {}, failed: {}",
            self.scanned.load(Ordering::Relaxed),
            self.copied.load(Ordering::Relaxed),
            self.removed.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed)
        )?;
        match self.resumed.load(Ordering::Relaxed) {
            0 => Ok(()),
            n => write!(f, ", resumed after {n} keys"),
        }
    }
}

/// Progress callback: (keys processed, keys total).
pub type Progress<'a> = &'a (dyn Fn(u64, u64) + Sync);

fn selected(opts: &Options, place: &Place) -> bool {
    opts.node.is_none_or(|n| n == place.addr)
        && opts.backend_id.is_none_or(|b| b == place.backend_id)
}

fn wanted(opts: &Options, key: &RawId) -> bool {
    opts.keys.as_ref().is_none_or(|k| k.contains(key))
}

/// Parse a dump file: one hex id per line (blank lines and `#` comments skipped).
pub fn parse_dump(text: &str) -> Result<HashSet<RawId>, String> {
    let mut keys = HashSet::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.len() != 128 || !line.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("line {}: expected 128 hex digits", n + 1));
        }
        keys.insert(RawId::from_hex_lenient(line));
    }
    Ok(keys)
}
