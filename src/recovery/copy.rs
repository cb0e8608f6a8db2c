//! dc's copy phase, one batch of keys at a time (`-b` keys, in key order).
//!
//! Each batch is cut by source backend and destination groups; every part goes to its
//! source node as one SEND, which copies the keys node to node (the value never passes
//! through this process). A node that refuses SEND, and a key a SEND could not copy, are
//! copied through this process instead: all the batch's READs in flight at once, then all
//! its WRITEs. With `-o`/`-i` (only part of the replicas seen) the destinations are looked
//! up first, all at once, and only those holding an older or no replica are copied to.

use super::ops::{self, Pending, Place};
use super::{KeyMeta, Options};
use crate::client::Node;
use crate::key::RawId;
use crate::protocol::errno;
use std::collections::{BTreeMap, HashMap};

/// One key to copy: its newest replica and the owners that lack it.
#[derive(Debug, Clone)]
pub struct Task {
    pub key: RawId,
    pub src: Place,
    pub newest: KeyMeta,
    pub targets: Vec<Place>,
}

/// What one batch did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub copied: u64,
    pub failed: u64,
}

/// Copy every task of one batch. `partial`: the destinations were not all iterated.
pub fn copy_batch(node: &Node, opts: &Options, partial: bool, tasks: &[Task]) -> Outcome {
    let mut out = Outcome::default();
    let tasks: Vec<Task> = if partial {
        still_stale(node, opts, tasks, &mut out)
    } else {
        tasks.to_vec()
    };
    if opts.dry_run {
        out.copied += tasks.iter().map(|t| t.targets.len() as u64).sum::<u64>();
        return out;
    }
    // Cut by (source, destination groups): one SEND each.
    let mut parts: BTreeMap<(Place, Vec<u32>), Vec<&Task>> = BTreeMap::new();
    for t in &tasks {
        let groups = t.targets.iter().map(|p| p.group).collect();
        parts.entry((t.src, groups)).or_default().push(t);
    }
    let sent: Vec<(Vec<&Task>, Option<Pending>)> = parts
        .into_iter()
        .map(|((src, groups), part)| {
            let keys = part.iter().map(|t| t.key).collect();
            let pending = ops::start_server_send(node, &src, keys, &groups, true, opts.timeout);
            (part, pending.ok())
        })
        .collect();
    let mut by_client: Vec<&Task> = Vec::new();
    for (part, pending) in sent {
        let statuses: HashMap<RawId, i32> = match pending.map(ops::send_done) {
            Some(Ok(list)) => list.into_iter().collect(),
            Some(Err(e)) => {
                tracing::debug!(src = %part[0].src.addr, "SEND refused ({e}); copying through the client");
                HashMap::new()
            }
            None => HashMap::new(),
        };
        for t in part {
            match statuses.get(&t.key) {
                Some(0) => out.copied += t.targets.len() as u64,
                _ => by_client.push(t),
            }
        }
    }
    let fallback = copy_through_client(node, opts, &by_client);
    out.copied += fallback.copied;
    out.failed += fallback.failed;
    out
}

/// The tasks with only the destinations that hold an older replica or none (all looked up
/// at once); a failed lookup counts as a failure of that destination.
fn still_stale(node: &Node, opts: &Options, tasks: &[Task], out: &mut Outcome) -> Vec<Task> {
    let looked: Vec<Vec<Option<Pending>>> = tasks
        .iter()
        .map(|t| {
            t.targets
                .iter()
                .map(|to| ops::start_lookup(node, to, t.key, opts.timeout).ok())
                .collect()
        })
        .collect();
    let mut left = Vec::new();
    for (t, pendings) in tasks.iter().zip(looked) {
        let mut targets = Vec::new();
        for (to, pending) in t.targets.iter().zip(pendings) {
            match pending.map(ops::lookup_done) {
                Some(Ok(Some(there))) if there >= (t.newest.timestamp, t.newest.size) => {}
                Some(Ok(_)) => targets.push(*to),
                Some(Err(e)) => {
                    tracing::warn!(key = %t.key.short_hex(), to = %to.addr, "dc lookup failed: {e}");
                    out.failed += 1;
                }
                None => out.failed += 1,
            }
        }
        if !targets.is_empty() {
            left.push(Task {
                targets,
                ..t.clone()
            });
        }
    }
    left
}

/// Read each task's value from its source and write it to its destinations, every READ of
/// the batch in flight at once, then every WRITE.
pub(super) fn copy_through_client(node: &Node, opts: &Options, tasks: &[&Task]) -> Outcome {
    let mut out = Outcome::default();
    let reads: Vec<Option<Pending>> = tasks
        .iter()
        .map(|t| ops::start_read(node, &t.src, t.key, opts.timeout).ok())
        .collect();
    let mut writes: Vec<(&Task, Place, Option<Pending>)> = Vec::new();
    for (t, read) in tasks.iter().zip(reads) {
        match read.map(ops::read_done) {
            Some(Ok((io, data))) => {
                for to in &t.targets {
                    let w = ops::start_write(node, to, t.key, &io, &data, opts.timeout);
                    writes.push((t, *to, w.ok()));
                }
            }
            Some(Err(e)) => {
                tracing::warn!(key = %t.key.short_hex(), from = %t.src.addr, "dc read failed: {e}");
                out.failed += t.targets.len() as u64;
            }
            None => out.failed += t.targets.len() as u64,
        }
    }
    for (t, to, w) in writes {
        match w.map(ops::status_done) {
            Some(Ok(())) => out.copied += 1,
            Some(Err(e)) => {
                tracing::warn!(key = %t.key.short_hex(), to = %to.addr, "dc copy failed: {e}");
                out.failed += 1;
            }
            None => {
                tracing::warn!(key = %t.key.short_hex(), to = %to.addr, "dc copy failed: {}", errno::ENXIO);
                out.failed += 1;
            }
        }
    }
    out
}
