//! SEND with OVERWRITE (what `dnet_recovery` sends), a window of keys at a time on the shard
//! that owns them: the window's values are read (from the page-cache map where they can be:
//! one copy, checksum verified), then each destination peer gets all the window's WRITEs as
//! one batch on this shard's link ([`forward::request_batch`]), and a destination on this
//! node gets them one by one (`KEYS_IN_FLIGHT` at once). A window holds at most `WINDOW_KEYS` keys and about
//! `WINDOW_BYTES` of values, so a part of large values is never in memory whole.
//!
//! Without OVERWRITE every key first looks its destination up, which stays per key
//! (`super::send_key`).

use super::{final_status, on_owner, response, Job, KEYS_IN_FLIGHT};
use crate::blob::ValueMeta;
use crate::key::RawId;
use crate::node::forward::{self, Outgoing, Target};
use crate::node::shard::Shard;
use crate::protocol::{cmd_flags, command, errno, CmdHeader, IoAttr, IteratorResponse};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;

/// Keys read, then written, at a time on one shard for one part.
const WINDOW_KEYS: usize = 1024;
/// Value bytes a window stops taking keys at.
const WINDOW_BYTES: usize = 8 << 20;

/// A key read from a local backend, ready to be written out.
struct Found {
    n: u64,
    key: RawId,
    meta: ValueMeta,
    value: Bytes,
    backend_id: u32,
}

/// Copy `keys` (all owned by this shard) to every group of `job`, a window at a time; one
/// response per key.
pub(super) async fn send_part(
    shard: &Rc<Shard>,
    job: &Job,
    keys: Vec<(u64, RawId)>,
) -> Vec<IteratorResponse> {
    let mut out = Vec::with_capacity(keys.len());
    let mut rest = keys.into_iter().peekable();
    while rest.peek().is_some() {
        let mut window = Vec::with_capacity(WINDOW_KEYS.min(rest.len()));
        let mut bytes = 0usize;
        while window.len() < WINDOW_KEYS && bytes < WINDOW_BYTES {
            let Some((n, key)) = rest.next() else { break };
            match read_key(shard, job, n, key).await {
                Some(found) => {
                    bytes += found.value.len();
                    window.push(found);
                }
                None => out.push(IteratorResponse {
                    status: errno::ENOENT,
                    ..response(job, n, key)
                }),
            }
        }
        copy_window(shard, job, window, &mut out).await;
    }
    out
}

/// `key` from the first of the job's backends here that holds it.
async fn read_key(shard: &Rc<Shard>, job: &Job, n: u64, key: RawId) -> Option<Found> {
    for lb in shard
        .backends
        .iter()
        .filter(|lb| job.backends.contains(&lb.backend_id))
    {
        let Some(log) = lb.log() else { continue };
        let read = match log.read_now(&key, 0, 0, true, |meta, data| {
            (*meta, Bytes::copy_from_slice(data))
        }) {
            Some(now) => now,
            None => log
                .read(&key, 0, 0, true)
                .await
                .map(|o| (o.info.meta(), Bytes::from(o.data))),
        };
        if let Ok((meta, value)) = read {
            return Some(Found {
                n,
                key,
                meta,
                value,
                backend_id: lb.backend_id,
            });
        }
    }
    None
}

/// The WRITE of `found` to its owner in `group`.
fn write_header(key: RawId, group: u32) -> CmdHeader {
    CmdHeader {
        id: key,
        group_id: group,
        cmd: command::WRITE,
        flags: cmd_flags::NEED_ACK,
        ..CmdHeader::default()
    }
}

/// The `dnet_io_attr` that writes `found` with its timestamp and user flags.
fn io_attr(found: &Found) -> IoAttr {
    IoAttr {
        parent: found.key,
        id: found.key,
        size: found.value.len() as u64,
        timestamp: found.meta.timestamp,
        user_flags: found.meta.user_flags,
        ..IoAttr::default()
    }
}

/// Keep the first error of a key.
fn merge_status(slot: &mut i32, status: i32) {
    if *slot == 0 && status != 0 {
        *slot = status;
    }
}

/// Write every key of `window` to every group of the job: one batch per destination peer,
/// all at once; then remove the sources with MOVE, and answer each key.
async fn copy_window(
    shard: &Rc<Shard>,
    job: &Job,
    window: Vec<Found>,
    out: &mut Vec<IteratorResponse>,
) {
    let mut statuses = vec![0i32; window.len()];
    let writes = window.len() * job.groups.len();
    let mut heads = BytesMut::with_capacity(writes * crate::protocol::IO_ATTR_SIZE_BYTES);
    let mut peers: HashMap<SocketAddr, (Vec<usize>, Vec<Outgoing>)> = HashMap::new();
    let mut local: Vec<(usize, CmdHeader, Bytes)> = Vec::new();
    for (i, found) in window.iter().enumerate() {
        for group in &job.groups {
            let header = write_header(found.key, *group);
            heads.extend_from_slice(&io_attr(found).encode());
            let head = heads.split().freeze();
            match forward::target(shard, &header) {
                Target::Peer(peer) => {
                    let (index, requests) = peers.entry(peer).or_default();
                    index.push(i);
                    requests.push(Outgoing {
                        header,
                        head,
                        value: found.value.clone(),
                    });
                }
                Target::Local => local.push((i, header, head)),
                Target::Refuse(status) => merge_status(&mut statuses[i], status),
            }
        }
    }
    let remote = peers
        .into_iter()
        .map(|(peer, (index, requests))| async move {
            let done = forward::request_batch(shard, peer, requests, job.timeout_ms).await;
            index.into_iter().zip(done).collect::<Vec<_>>()
        });
    let window_ref = &window;
    let here = futures::stream::iter(local)
        .map(|(i, header, head)| async move {
            let parts = [head, window_ref[i].value.clone()];
            let status = final_status(&on_owner(shard, header, &parts, job.timeout_ms).await);
            (i, status)
        })
        .buffer_unordered(KEYS_IN_FLIGHT)
        .collect::<Vec<_>>();
    let (remote, here) = futures::join!(futures::future::join_all(remote), here);
    for (i, status) in remote.into_iter().flatten().chain(here) {
        merge_status(&mut statuses[i], status);
    }
    for (found, status) in window.iter().zip(statuses) {
        out.push(answer(shard, job, found, status).await);
    }
}

/// The response for a key written with `status`, after removing its source under MOVE.
async fn answer(shard: &Rc<Shard>, job: &Job, found: &Found, status: i32) -> IteratorResponse {
    let mut resp = IteratorResponse {
        status,
        timestamp: found.meta.timestamp,
        user_flags: found.meta.user_flags,
        size: found.meta.size,
        record_flags: found.meta.record_flags,
        ..response(job, found.n, found.key)
    };
    if resp.status == 0 && job.move_source {
        let log = shard
            .backends
            .iter()
            .find(|b| b.backend_id == found.backend_id)
            .and_then(|b| b.log());
        match log {
            Some(log) if log.remove(&found.key).await.is_ok() => {}
            _ => resp.status = errno::EIO,
        }
    }
    resp
}
