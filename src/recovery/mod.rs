//! `dnet_recovery` over the Rust client.
//!
//! - **merge** (inside each group): every key found on a backend that is not its ring owner
//!   is copied to the owner when the owner lacks it or holds an older timestamp or another
//!   size, then removed from the wrong backend (kept with `safe`).
//! - **dc** (across groups): the replicas of every key are compared by (timestamp, size) as
//!   the iterators report them, and the newest one is copied to every given group that lacks
//!   it or holds an older one: in key-ordered batches, many in flight, node to node with
//!   SEND where the source node takes it (`copy`). An interrupted dc run restarted with the
//!   same arguments continues after the last finished batch (`resume`).
//!
//! Copies keep the source's timestamp and user_flags. Every step is idempotent (copy before
//! remove, compare before copy), so an interrupted run is finished by running again, and a
//! second run copies nothing.

mod copy;
mod ops;
mod resume;

pub use ops::{KeyMeta, Place};
pub use resume::StateFile;

use copy::Task;
use resume::Tracker;

use crate::client::{ClientError, Node};
use crate::key::RawId;
use crate::protocol::DnetTime;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Why recovery could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecoveryError {
    #[error("iterating {0} failed: {1}")]
    Iterate(SocketAddr, ClientError),
    #[error("no backend of groups {0:?} is known; check -r and -g")]
    NoRoutes(Vec<u32>),
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

/// Run `work` over `items` on `opts.workers` threads, reporting progress.
fn run_parallel<T: Sync>(
    opts: &Options,
    items: &[T],
    progress: Progress<'_>,
    work: impl Fn(&T) + Sync,
) {
    let done = AtomicU64::new(0);
    let total = items.len() as u64;
    let workers = opts.workers.max(1);
    let chunk = items.len().div_ceil(workers).max(1);
    std::thread::scope(|s| {
        for part in items.chunks(chunk) {
            let (done, work) = (&done, &work);
            s.spawn(move || {
                for item in part {
                    work(item);
                    progress(done.fetch_add(1, Ordering::Relaxed) + 1, total);
                }
            });
        }
    });
}

fn copy_one(
    node: &Node,
    from: &Place,
    to: &Place,
    key: RawId,
    timeout: Duration,
) -> Result<(), ClientError> {
    let (io, data) = ops::read(node, from, key, timeout)?;
    ops::write(node, to, key, &io, &data, timeout)
}

/// merge: move every key of the given groups to its ring owner.
pub fn merge(
    node: &Node,
    opts: &Options,
    progress: Progress<'_>,
) -> Result<Summary, RecoveryError> {
    let summary = Summary::default();
    let (routes, places) = ops::routes(node, &opts.groups);
    if places.is_empty() {
        return Err(RecoveryError::NoRoutes(opts.groups.clone()));
    }
    let mut misplaced: Vec<(Place, Place, KeyMeta)> = Vec::new();
    for place in places.iter().filter(|p| selected(opts, p)) {
        for meta in ops::iterate(node, place, opts.since, None, opts.timeout)? {
            summary.scanned.fetch_add(1, Ordering::Relaxed);
            let Ok(owner) = routes.owner(place.group, &meta.key) else {
                continue;
            };
            if owner != place && wanted(opts, &meta.key) {
                misplaced.push((*place, *owner, meta));
            }
        }
    }
    run_parallel(opts, &misplaced, progress, |(from, to, meta)| {
        let result = (|| -> Result<(), ClientError> {
            let there = ops::lookup(node, to, meta.key, opts.timeout)?;
            let stale = there.is_none_or(|(ts, size)| {
                ts < meta.timestamp || (ts == meta.timestamp && size != meta.size)
            });
            if stale {
                if !opts.dry_run {
                    copy_one(node, from, to, meta.key, opts.timeout)?;
                }
                summary.copied.fetch_add(1, Ordering::Relaxed);
            }
            if !opts.safe {
                if !opts.dry_run {
                    ops::remove(node, from, meta.key, opts.timeout)?;
                }
                summary.removed.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        })();
        if let Err(e) = result {
            tracing::warn!(key = %meta.key.short_hex(), from = %from.addr, to = %to.addr, "merge failed: {e}");
            summary.failed.fetch_add(1, Ordering::Relaxed);
        }
    });
    Ok(summary)
}

/// dc: make every given group hold the newest replica of every key.
pub fn dc(node: &Node, opts: &Options, progress: Progress<'_>) -> Result<Summary, RecoveryError> {
    let summary = Summary::default();
    let (routes, places) = ops::routes(node, &opts.groups);
    if places.is_empty() {
        return Err(RecoveryError::NoRoutes(opts.groups.clone()));
    }
    let file = match (&opts.state_dir, opts.dry_run) {
        (Some(dir), false) => Some(StateFile::new(dir, "dc", &opts.arguments)),
        _ => None,
    };
    let base = file.as_ref().and_then(StateFile::load).unwrap_or_default();
    let after = base.after();
    summary.resumed.store(base.keys_done, Ordering::Relaxed);
    // key -> group -> (place, meta) of the newest replica seen in that group.
    let mut replicas: HashMap<RawId, HashMap<u32, (Place, KeyMeta)>> = HashMap::new();
    for place in places.iter().filter(|p| selected(opts, p)) {
        for meta in ops::iterate(node, place, opts.since, after, opts.timeout)? {
            summary.scanned.fetch_add(1, Ordering::Relaxed);
            if !wanted(opts, &meta.key) || after.is_some_and(|a| meta.key <= a) {
                continue;
            }
            let per_group = replicas.entry(meta.key).or_default();
            let slot = per_group.entry(place.group).or_insert((*place, meta));
            if (meta.timestamp, meta.size) > (slot.1.timestamp, slot.1.size) {
                *slot = (*place, meta);
            }
        }
    }
    // With -o/-i only part of the groups was scanned: look the others up at their owners.
    let partial = opts.node.is_some() || opts.backend_id.is_some();
    let mut tasks: Vec<Task> = Vec::new();
    for (key, per_group) in replicas {
        let Some((src, newest)) = per_group
            .values()
            .max_by_key(|(_, m)| (m.timestamp, m.size))
            .copied()
        else {
            continue;
        };
        let targets: Vec<Place> = opts
            .groups
            .iter()
            .filter_map(|g| routes.owner(*g, &key).ok().map(|o| (*g, *o)))
            .filter(|(g, _)| {
                per_group
                    .get(g)
                    .is_none_or(|(_, m)| (m.timestamp, m.size) != (newest.timestamp, newest.size))
            })
            .map(|(_, owner)| owner)
            .collect();
        if !targets.is_empty() {
            tasks.push(Task {
                key,
                src,
                newest,
                targets,
            });
        }
    }
    tasks.sort_unstable_by_key(|t| t.key);
    let batches: Vec<&[Task]> = tasks.chunks(opts.batch.max(1)).collect();
    let last_keys = batches
        .iter()
        .filter_map(|b| b.last().map(|t| t.key))
        .collect();
    let tracker = Mutex::new(Tracker::new(file, last_keys, base));
    let lock = || tracker.lock().unwrap_or_else(|p| p.into_inner());
    let total = lock().counts().keys_done + tasks.len() as u64;
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..opts.workers.max(1) {
            s.spawn(|| loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some(batch) = batches.get(index) else {
                    return;
                };
                let done = copy::copy_batch(node, opts, partial, batch);
                let keys_done = {
                    let mut t = lock();
                    t.finished(index, batch.len() as u64, done.copied, done.failed);
                    t.counts().keys_done
                };
                progress(keys_done, total);
            });
        }
    });
    let mut t = lock();
    summary.copied.store(t.counts().copied, Ordering::Relaxed);
    summary.failed.store(t.counts().failed, Ordering::Relaxed);
    t.complete();
    Ok(summary)
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
