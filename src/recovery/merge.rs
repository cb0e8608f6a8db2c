//! merge: move every key of the given groups that sits on a backend other than its ring
//! owner to the owner, in batches of `-b` keys, `-n` batches at a time.
//!
//! Per batch, every request of a step is in flight at once:
//! 1. LOOKUP each key at its owner: an owner holding the same or a newer replica needs no
//!    copy.
//! 2. The others go as one SEND per (source backend, group): the source node copies them
//!    to the owner itself. SEND routes by the source node's view of the ring, so
//! 3. the owners are looked up again; a key still missing there (the node refused SEND, or
//!    sees another owner) is copied through this process, READ then WRITE, and looked up
//!    once more.
//! 4. Without `safe`, each key the owner was seen to hold is removed from its source.
//!
//! A key is removed only after its owner was seen holding it, so a run that stops at any
//! point loses nothing; running again finishes the job.

use super::copy::{self, Task};
use super::dc::{iterator_request, start_iterators};
use super::ops::{self, KeyMeta, Pending, Place};
use super::stream::Msg;
use super::{selected, wanted, Options, Progress, RecoveryError, Summary};
use crate::client::Node;
use crate::protocol::DnetTime;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// One key on a backend that does not own it.
#[derive(Debug, Clone, Copy)]
struct Move {
    from: Place,
    to: Place,
    meta: KeyMeta,
}

/// Whether the owner's (timestamp, size) leaves the source's replica still to be copied.
fn stale(there: Option<(DnetTime, u64)>, meta: &KeyMeta) -> bool {
    there
        .is_none_or(|(ts, size)| ts < meta.timestamp || (ts == meta.timestamp && size != meta.size))
}

/// Look every move's key up at its owner, all at once: `Some(true)` when the owner holds it
/// (or a newer one), `Some(false)` when not, `None` when the lookup failed.
fn at_owner(node: &Node, opts: &Options, moves: &[Move]) -> Vec<Option<bool>> {
    let pending: Vec<Option<Pending>> = moves
        .iter()
        .map(|m| ops::start_lookup(node, &m.to, m.meta.key, opts.timeout).ok())
        .collect();
    moves
        .iter()
        .zip(pending)
        .map(|(m, p)| match p.map(ops::lookup_done) {
            Some(Ok(there)) => Some(!stale(there, &m.meta)),
            Some(Err(e)) => {
                tracing::warn!(key = %m.meta.key.short_hex(), to = %m.to.addr, "merge lookup failed: {e}");
                None
            }
            None => None,
        })
        .collect()
}

/// Ask each source node to copy its moves to their owners (one SEND per source backend and
/// group); what they answer does not matter, the owners are looked up afterwards.
fn send_all(node: &Node, opts: &Options, moves: &[Move]) {
    let mut parts: BTreeMap<(Place, u32), Vec<crate::key::RawId>> = BTreeMap::new();
    for m in moves {
        parts
            .entry((m.from, m.to.group))
            .or_default()
            .push(m.meta.key);
    }
    let pending: Vec<Option<Pending>> = parts
        .into_iter()
        .map(|((from, group), keys)| {
            ops::start_server_send(node, &from, keys, &[group], true, opts.timeout).ok()
        })
        .collect();
    for p in pending.into_iter().flatten() {
        if let Err(e) = ops::send_done(p) {
            tracing::debug!("SEND refused ({e}); copying through the client");
        }
    }
}

/// Copy `moves` through this process.
fn copy_by_client(node: &Node, opts: &Options, moves: &[Move]) {
    let tasks: Vec<Task> = moves
        .iter()
        .map(|m| Task {
            key: m.meta.key,
            src: m.from,
            newest: m.meta,
            targets: vec![m.to],
        })
        .collect();
    let refs: Vec<&Task> = tasks.iter().collect();
    copy::copy_through_client(node, opts, &refs);
}

/// The moves whose owner holds the key after copying what it lacked; failures are counted.
fn copy_missing(node: &Node, opts: &Options, moves: Vec<Move>, summary: &Summary) -> Vec<Move> {
    let mut done = Vec::new();
    let mut missing = Vec::new();
    for (m, held) in moves.iter().zip(at_owner(node, opts, &moves)) {
        match held {
            Some(true) => done.push(*m),
            Some(false) => missing.push(*m),
            None => {
                summary.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    if opts.dry_run {
        summary
            .copied
            .fetch_add(missing.len() as u64, Ordering::Relaxed);
        done.extend(missing);
        return done;
    }
    send_all(node, opts, &missing);
    let mut confirmed = Vec::new();
    let mut left = Vec::new();
    for (m, held) in missing.iter().zip(at_owner(node, opts, &missing)) {
        if held == Some(true) {
            confirmed.push(*m);
        } else {
            left.push(*m);
        }
    }
    if !left.is_empty() {
        copy_by_client(node, opts, &left);
        for (m, held) in left.iter().zip(at_owner(node, opts, &left)) {
            if held == Some(true) {
                confirmed.push(*m);
            } else {
                tracing::warn!(key = %m.meta.key.short_hex(), from = %m.from.addr, to = %m.to.addr, "merge copy failed");
                summary.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    summary
        .copied
        .fetch_add(confirmed.len() as u64, Ordering::Relaxed);
    done.extend(confirmed);
    done
}

/// Remove each of `moves` from its source, all at once.
fn remove_all(node: &Node, opts: &Options, moves: &[Move], summary: &Summary) {
    if opts.dry_run {
        summary
            .removed
            .fetch_add(moves.len() as u64, Ordering::Relaxed);
        return;
    }
    let pending: Vec<Option<Pending>> = moves
        .iter()
        .map(|m| ops::start_remove(node, &m.from, m.meta.key, opts.timeout).ok())
        .collect();
    for (m, p) in moves.iter().zip(pending) {
        match p.map(ops::status_done) {
            Some(Ok(())) => {
                summary.removed.fetch_add(1, Ordering::Relaxed);
            }
            other => {
                let why = other.and_then(Result::err).map(|e| e.to_string());
                tracing::warn!(key = %m.meta.key.short_hex(), from = %m.from.addr, "merge remove failed: {why:?}");
                summary.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Every key of the selected backends that another backend owns.
fn misplaced(
    node: &Node,
    opts: &Options,
    routes: &crate::routing::Routes<Place>,
    places: &[Place],
    summary: &Summary,
) -> Result<Vec<Move>, RecoveryError> {
    let sources: Vec<Place> = places
        .iter()
        .filter(|p| selected(opts, p))
        .copied()
        .collect();
    let rx = start_iterators(node, &sources, &iterator_request(opts.since, None), opts)?;
    let mut out = Vec::new();
    let mut open = sources.len();
    while open > 0 {
        match rx.recv() {
            Ok(Msg::Keys(index, keys)) => {
                summary
                    .scanned
                    .fetch_add(keys.len() as u64, Ordering::Relaxed);
                let from = sources[index];
                for meta in keys {
                    let Ok(to) = routes.owner(from.group, &meta.key) else {
                        continue;
                    };
                    if *to != from && wanted(opts, &meta.key) {
                        out.push(Move {
                            from,
                            to: *to,
                            meta,
                        });
                    }
                }
            }
            Ok(Msg::End(_, result)) => {
                result?;
                open -= 1;
            }
            Err(_) => break,
        }
    }
    Ok(out)
}

/// merge over the groups of `opts`.
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
    let moves = misplaced(node, opts, &routes, &places, &summary)?;
    let batches: Vec<&[Move]> = moves.chunks(opts.batch.max(1)).collect();
    let (next, done) = (AtomicUsize::new(0), AtomicU64::new(0));
    let total = moves.len() as u64;
    std::thread::scope(|s| {
        for _ in 0..opts.workers.max(1) {
            s.spawn(|| loop {
                let Some(batch) = batches.get(next.fetch_add(1, Ordering::Relaxed)) else {
                    return;
                };
                let held = copy_missing(node, opts, batch.to_vec(), &summary);
                if !opts.safe {
                    remove_all(node, opts, &held, &summary);
                }
                let n = done.fetch_add(batch.len() as u64, Ordering::Relaxed);
                progress(n + batch.len() as u64, total);
            });
        }
    });
    Ok(summary)
}
