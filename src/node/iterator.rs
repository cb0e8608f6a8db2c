//! ITERATOR and SEND on the node.
//!
//! ITERATOR START walks the keys of the request's backend (DIRECT_BACKEND) or of every local
//! backend of the request's group, on every shard, filtered by key ranges (KEY_RANGE) and
//! time range (TS_RANGE), and streams one `dnet_iterator_response` per key in key order
//! (`dnet_recovery` relies on the order to copy while it iterates) (queued on the
//! connection in batches of up to 256 responses) (with the value
//! when DATA is set; user_flags and timestamp zeroed with NO_META), a keepalive (status 1)
//! every 10 000 skipped keys, then the final ack (-ENOEXEC after CANCEL, as in Elliptics).
//! A connection with many unwritten frames holds the iterator back. PAUSE / CONTINUE / CANCEL find the running
//! iterator by id from any connection through the node-wide
//! [`Registry`](super::running_iterators::Registry).
//! SEND (server-send) streams into the connection the same way; it lives in `server_send`.

use super::cross;
use super::outbox::Outbox;
use super::reply::{Frames, InPlace, Replies};
use super::shard::Shard;
use crate::blob::ValueMeta;
use crate::key::RawId;
use crate::protocol::{
    cmd_flags, command, errno, iflags, iterator_action, CmdHeader, DnetTime, IteratorRequest,
    IteratorResponse,
};
use crate::routing::shard_of;
use bytes::{Bytes, BytesMut};
use std::rc::Rc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// A keepalive response goes out after this many skipped keys.
const KEEPALIVE_SKIPPED_KEYS: u64 = 10_000;
/// Responses gathered before they are queued on the connection as one part.
const BATCH_RESPONSES_MAX: usize = 256;
/// Bytes gathered before they are queued (values make responses large).
const BATCH_BYTES_MAX: usize = 256 * 1024;
/// How often a paused iterator checks for CONTINUE or CANCEL.
const PAUSE_POLL_MS: u64 = 20;
/// An iterator stops producing while its connection has more frame parts queued than this.
const QUEUED_PARTS_MAX: usize = 64;
/// How often a producer held back by a full connection checks it again.
const DRAIN_POLL_MS: u64 = 1;
/// -EINTR: the iterator stopped because its requester disconnected.
const EINTR: i32 = crate::protocol::errno::EINTR;

use super::running_iterators::{CANCELLED, PAUSED, RUNNING};

/// Serve ITERATOR, which streams into the connection; `false` for other commands.
pub fn intercept(shard: &Rc<Shard>, out: &Rc<Outbox>, header: &CmdHeader, payload: &Bytes) -> bool {
    if header.cmd != command::ITERATOR {
        return false;
    }
    let (s, h, p) = (shard.clone(), *header, payload.clone());
    spawn_streaming(out, move |o| async move { iterate(&s, &o, h, &p).await });
    true
}

/// Run a request that streams its replies into `out` as its own task, counted in flight
/// on the connection until it ends.
pub(super) fn spawn_streaming<F, Fut>(out: &Rc<Outbox>, serve: F)
where
    F: FnOnce(Rc<Outbox>) -> Fut,
    Fut: std::future::Future<Output = ()> + 'static,
{
    out.request_started();
    let o = out.clone();
    let fut = serve(out.clone());
    crate::runtime::spawn(async move {
        fut.await;
        o.request_finished();
    });
}

/// Local backend ids a request covers.
pub(super) fn backend_ids(shard: &Shard, header: &CmdHeader) -> Vec<u32> {
    if header.flags & cmd_flags::DIRECT_BACKEND != 0 {
        return u32::try_from(header.backend_id).into_iter().collect();
    }
    shard
        .backends
        .iter()
        .filter(|b| b.group == header.group_id)
        .map(|b| b.backend_id)
        .collect()
}

fn in_ranges(req: &IteratorRequest, key: &RawId) -> bool {
    req.flags & iflags::KEY_RANGE == 0
        || req
            .ranges
            .iter()
            .any(|r| r.key_begin <= *key && *key <= r.key_end)
}

/// Every live key of `backends` on shard `s`, with its metadata: from the page-cache map
/// where it can be read at once, else with a read of the record's header.
async fn shard_keys(s: Rc<Shard>, backends: Vec<u32>) -> Vec<(RawId, u32, ValueMeta)> {
    let mut out = Vec::new();
    for b in s
        .backends
        .iter()
        .filter(|b| backends.contains(&b.backend_id))
    {
        let Some(log) = b.log() else { continue };
        for (key, _) in log.iter_meta() {
            let meta = match log.read_now(&key, 0, 1, false, |meta, _| *meta) {
                Some(found) => found.ok(),
                None => log.lookup(&key, false).await.ok().map(|i| i.meta()),
            };
            if let Some(meta) = meta {
                out.push((key, b.backend_id, meta));
            }
        }
    }
    out
}

async fn read_value(
    shard: &Rc<Shard>,
    backend_id: u32,
    key: RawId,
) -> Result<Option<Vec<u8>>, cross::CrossError> {
    cross::call(
        shard,
        shard_of(&key, shard.node.shard_count),
        move |s| async move {
            let log = s
                .backends
                .iter()
                .find(|b| b.backend_id == backend_id)?
                .log()?;
            log.read(&key, 0, 0, true).await.ok().map(|o| o.data)
        },
    )
    .await
}

/// Answer `header` with `status` alone.
fn answer(out: &Outbox, header: &CmdHeader, status: i32) {
    let mut frames = Frames::new();
    frames.error(header, status);
    out.push(frames);
}

async fn iterate(shard: &Rc<Shard>, out: &Outbox, header: CmdHeader, payload: &[u8]) {
    let Ok(req) = IteratorRequest::decode(payload) else {
        return answer(out, &header, errno::EINVAL);
    };
    let registry = &shard.node.iterators;
    let state = match req.action {
        iterator_action::START | iterator_action::CONTINUE => RUNNING,
        iterator_action::PAUSE => PAUSED,
        iterator_action::CANCEL => CANCELLED,
        _ => return answer(out, &header, errno::EINVAL),
    };
    if req.action != iterator_action::START {
        let found = registry.set(req.id, state);
        return answer(out, &header, if found { 0 } else { errno::ENOENT });
    }
    let (id, control) = registry.start();
    let end_status = match all_keys(shard, &header).await {
        Ok(keys) => stream_keys(shard, out, &header, &req, (id, &control), keys).await,
        Err(e) => {
            registry.finish(id);
            out.push(e.answer(&header));
            return;
        }
    };
    registry.finish(id);
    answer(out, &header, end_status);
}

/// Every key of the request's backends on every shard, in key order.
async fn all_keys(
    shard: &Rc<Shard>,
    header: &CmdHeader,
) -> Result<Vec<(RawId, u32, ValueMeta)>, cross::CrossError> {
    let backends = backend_ids(shard, header);
    let mut keys = Vec::new();
    for target in 0..shard.node.shard_count {
        let b = backends.clone();
        keys.extend(cross::call(shard, target, move |s| shard_keys(s, b)).await?);
    }
    keys.sort_unstable_by_key(|k| k.0);
    Ok(keys)
}

/// Stream one response per key (obeying PAUSE and CANCEL); the final status.
async fn stream_keys(
    shard: &Rc<Shard>,
    out: &Outbox,
    header: &CmdHeader,
    req: &IteratorRequest,
    (id, control): (u64, &AtomicU32),
    keys: Vec<(RawId, u32, ValueMeta)>,
) -> i32 {
    let total_keys = keys.len() as u64;
    let mut skipped = 0u64;
    let mut batch = Batch::default();
    for (n, (key, backend_id, info)) in keys.into_iter().enumerate() {
        if batch.is_full() || control.load(Ordering::Relaxed) != RUNNING {
            batch.flush(out);
        }
        while control.load(Ordering::Relaxed) == PAUSED {
            crate::runtime::sleep(Duration::from_millis(PAUSE_POLL_MS)).await;
        }
        if control.load(Ordering::Relaxed) == CANCELLED {
            // As Elliptics' flow control: a cancelled iterator ends with -ENOEXEC.
            batch.flush(out);
            return errno::ENOEXEC;
        }
        if !wait_for_room(out).await {
            // The requester is gone (Elliptics interrupts with -EINTR).
            return EINTR;
        }
        let mut resp = IteratorResponse {
            id,
            key,
            iterated_keys: n as u64 + 1,
            total_keys,
            ..IteratorResponse::default()
        };
        let ts_ok = req.flags & iflags::TS_RANGE == 0
            || (req.time_begin <= info.timestamp && info.timestamp <= req.time_end);
        if !ts_ok || !in_ranges(req, &key) {
            skipped += 1;
            if skipped.is_multiple_of(KEEPALIVE_SKIPPED_KEYS) {
                resp.status = 1;
                batch.add(header, &resp, &[]);
            }
            continue;
        }
        let data = describe(shard, req, &mut resp, backend_id, &info).await;
        batch.add(header, &resp, &data);
    }
    batch.flush(out);
    0
}

/// Fill `resp` with the key's metadata (as the request's flags ask); its value with DATA.
async fn describe(
    shard: &Rc<Shard>,
    req: &IteratorRequest,
    resp: &mut IteratorResponse,
    backend_id: u32,
    info: &ValueMeta,
) -> Vec<u8> {
    resp.size = info.size;
    resp.record_flags = info.record_flags;
    if req.flags & iflags::NO_META == 0 {
        resp.timestamp = info.timestamp;
        resp.user_flags = info.user_flags;
    } else {
        resp.timestamp = DnetTime { tsec: 0, tnsec: 0 };
    }
    if req.flags & iflags::DATA == 0 {
        return Vec::new();
    }
    match read_value(shard, backend_id, resp.key).await {
        Ok(Some(d)) => d,
        Ok(None) => {
            resp.status = errno::EIO;
            Vec::new()
        }
        Err(e) => {
            resp.status = e.errno();
            Vec::new()
        }
    }
}

/// Iterator responses gathered into one part of the connection's queue: one push per
/// batch instead of one per key.
#[derive(Default)]
pub(super) struct Batch {
    buf: BytesMut,
    responses: usize,
}

impl Batch {
    pub(super) fn add(&mut self, header: &CmdHeader, resp: &IteratorResponse, data: &[u8]) {
        InPlace::new(&mut self.buf).reply(header, &[&resp.encode(), data], true);
        self.responses += 1;
    }

    pub(super) fn is_full(&self) -> bool {
        self.responses >= BATCH_RESPONSES_MAX || self.buf.len() >= BATCH_BYTES_MAX
    }

    pub(super) fn flush(&mut self, out: &Outbox) {
        if self.responses == 0 {
            return;
        }
        let mut frames = Frames::new();
        frames.push_raw(self.buf.split().freeze());
        out.push(frames);
        self.responses = 0;
    }
}

/// Wait while the connection holds many unwritten frames, so a slow reader holds back the
/// iterator (and PAUSE takes effect mid-stream). `false` once the connection is closed.
async fn wait_for_room(out: &Outbox) -> bool {
    while out.queued_parts() > QUEUED_PARTS_MAX && !out.is_closed() {
        crate::runtime::sleep(Duration::from_millis(DRAIN_POLL_MS)).await;
    }
    !out.is_closed()
}
