//! dc: make every given group hold the newest replica of every key.
//!
//! One pipeline: the iterators of every backend stream in (`stream`), keys are decided as
//! soon as every iterator has passed them, decided keys are cut into batches of `-b` keys in
//! key order, and `-n` workers copy the batches (`copy`) while the iterators go on. Each
//! planned batch is registered with the [`Tracker`] first, so the state file's watermark
//! only passes keys whose batch finished.

use super::copy::{self, Task};
use super::ops::{self, KeyMeta, Place};
use super::resume::{StateFile, Tracker};
use super::stream::{self, Merge, Source};
use super::{selected, wanted, Options, Progress, RecoveryError, Summary};
use crate::client::{ClientError, Node};
use crate::key::RawId;
use crate::protocol::{
    errno, iflags, iterator_action, iterator_type, DnetTime, IteratorRange, IteratorRequest,
};
use crate::routing::Routes;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Mutex, MutexGuard};

/// A batch to copy: its index in the tracker and its tasks.
type Batch = (usize, Vec<Task>);

/// The ITERATOR request of a run: keys from `from` on, timestamps from `since` on.
pub(super) fn iterator_request(since: Option<DnetTime>, from: Option<RawId>) -> IteratorRequest {
    let mut req = IteratorRequest {
        action: iterator_action::START,
        itype: iterator_type::NETWORK,
        ..IteratorRequest::default()
    };
    if let Some(key_begin) = from {
        req.flags |= iflags::KEY_RANGE;
        req.ranges = vec![IteratorRange {
            key_begin,
            key_end: RawId([0xff; 64]),
        }];
    }
    if let Some(t) = since {
        req.flags |= iflags::TS_RANGE;
        req.time_begin = t;
        req.time_end = DnetTime {
            tsec: u64::MAX,
            tnsec: u64::MAX,
        };
    }
    req
}

/// Start one streaming iterator per place; their messages arrive on the receiver.
pub(super) fn start_iterators(
    node: &Node,
    places: &[Place],
    request: &IteratorRequest,
    opts: &Options,
) -> Result<Receiver<stream::Msg>, RecoveryError> {
    let (tx, rx) = sync_channel(stream::CHUNKS_QUEUED * places.len().max(1));
    let shards = i32::try_from(node.indexes_shard_count()).unwrap_or(i32::MAX);
    for (index, place) in places.iter().enumerate() {
        let source = Source {
            index,
            place: *place,
            request: request.clone(),
            timeout: opts.timeout,
            indexes_shard_count: shards,
        };
        stream::spawn(source, tx.clone()).map_err(|e| {
            RecoveryError::Iterate(place.addr, ClientError::new(errno::EIO, e.to_string()))
        })?;
    }
    Ok(rx)
}

/// The copy a key needs: the newest replica among `replicas` to every group's owner that
/// lacks it or holds another one.
fn decide(
    opts: &Options,
    routes: &Routes<Place>,
    key: RawId,
    replicas: &[(Place, KeyMeta)],
) -> Option<Task> {
    let rank = |m: &KeyMeta| (m.timestamp, m.size);
    let (src, newest) = replicas.iter().max_by_key(|(_, m)| rank(m)).copied()?;
    let targets: Vec<Place> = opts
        .groups
        .iter()
        .filter(|g| {
            !replicas
                .iter()
                .any(|(p, m)| p.group == **g && rank(m) == rank(&newest))
        })
        .filter_map(|g| routes.owner(*g, &key).ok().copied())
        .collect();
    (!targets.is_empty()).then_some(Task {
        key,
        src,
        newest,
        targets,
    })
}

fn lock(tracker: &Mutex<Tracker>) -> MutexGuard<'_, Tracker> {
    tracker.lock().unwrap_or_else(|p| p.into_inner())
}

/// Hand `tasks` (key-ordered, above every earlier batch) to the workers.
fn dispatch(tracker: &Mutex<Tracker>, tx: &SyncSender<Batch>, tasks: Vec<Task>) {
    let Some(last) = tasks.last().map(|t| t.key) else {
        return;
    };
    let index = lock(tracker).add_batch(last, tasks.len() as u64);
    let _ = tx.send((index, tasks));
}

/// Iterate, decide and hand out batches until every iterator ended.
fn plan(
    node: &Node,
    opts: &Options,
    (routes, sources): (&Routes<Place>, Vec<Place>),
    after: Option<RawId>,
    summary: &Summary,
    tracker: &Mutex<Tracker>,
    tx: SyncSender<Batch>,
) -> Result<(), RecoveryError> {
    let rx = start_iterators(node, &sources, &iterator_request(opts.since, after), opts)?;
    let mut merge = Merge::new(sources.clone());
    let batch_keys = opts.batch.max(1);
    let mut batch = Vec::with_capacity(batch_keys);
    stream::drive(
        &rx,
        &mut merge,
        sources.len(),
        &summary.scanned,
        |key, replicas| {
            if !wanted(opts, &key) || after.is_some_and(|a| key <= a) {
                return;
            }
            if let Some(task) = decide(opts, routes, key, &replicas) {
                batch.push(task);
                if batch.len() >= batch_keys {
                    let full = std::mem::replace(&mut batch, Vec::with_capacity(batch_keys));
                    dispatch(tracker, &tx, full);
                }
            }
        },
    )?;
    dispatch(tracker, &tx, batch);
    Ok(())
}

/// Copy batches until the planner is done.
fn work(
    node: &Node,
    opts: &Options,
    rx: &Mutex<Receiver<Batch>>,
    tracker: &Mutex<Tracker>,
    progress: Progress<'_>,
) {
    // With -o/-i only part of the groups was iterated: look the others up at their owners.
    let partial = opts.node.is_some() || opts.backend_id.is_some();
    loop {
        let next = rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
        let Ok((index, tasks)) = next else { return };
        let done = copy::copy_batch(node, opts, partial, &tasks);
        let (keys_done, planned) = {
            let mut t = lock(tracker);
            t.finished(index, tasks.len() as u64, done.copied, done.failed);
            (t.counts().keys_done, t.planned())
        };
        progress(keys_done, planned);
    }
}

/// dc over the groups of `opts`.
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
    let tracker = Mutex::new(Tracker::new(file, base));
    let workers = opts.workers.max(1);
    let (tx, rx) = sync_channel::<Batch>(workers * 2);
    let rx = Mutex::new(rx);
    let planned = std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| work(node, opts, &rx, &tracker, progress));
        }
        let sources = places.into_iter().filter(|p| selected(opts, p)).collect();
        plan(
            node,
            opts,
            (&routes, sources),
            after,
            &summary,
            &tracker,
            tx,
        )
    });
    let mut t = lock(&tracker);
    summary.copied.store(t.counts().copied, Ordering::Relaxed);
    summary.failed.store(t.counts().failed, Ordering::Relaxed);
    planned?;
    t.complete();
    Ok(summary)
}
