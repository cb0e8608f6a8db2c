//! Secondary indexes (INDEXES_UPDATE, INDEXES_INTERNAL, INDEXES_FIND), as 2.26 serves them.
//!
//! The tables are ordinary values (layouts in [`crate::protocol::IndexTable`]): an object's
//! index list under its object-table id, each index's object list per index shard under an
//! index-table id. Every table is read, changed and written only on the shard that owns its
//! key: UPDATE runs on the owner of the object table and reaches each index table's owner
//! through a cross-shard call, INTERNAL entries run on their tables' owners, FIND reads each
//! table on its owner. A per-key lock local to that shard ([`key_lock`]) orders the updates
//! of one table; no state is shared between shards.
//!
//! Replies follow the original byte for byte: UPDATE and INTERNAL answer a
//! `dnet_indexes_reply` flagged MORE then a final ack; FIND answers one msgpack result per
//! index shard (MORE on all but the last request's) and a final ack only when the last
//! shard had no result.

mod find;
mod key_lock;
mod store;
mod update;

use super::reply::{Frames, Replies};
use super::shard::Shard;
use crate::protocol::{command, errno, CmdHeader, IndexesRequest};
use bytes::Bytes;
use std::rc::Rc;

/// Serve one INDEXES_* command that arrived on `shard`; returns all its frames.
pub async fn serve(shard: &Rc<Shard>, mut header: CmdHeader, payload: Bytes) -> Frames {
    let mut frames = Frames::new();
    // The replies name the backend that holds the group's tables.
    match shard
        .backend_for(&header)
        .ok()
        .and_then(|b| shard.backends.get(b))
        .and_then(|b| i32::try_from(b.backend_id).ok())
    {
        Some(backend_id) => header.backend_id = backend_id,
        None => {
            frames.error(&header, errno::ENXIO);
            return frames;
        }
    }
    let shard_count = shard_count(shard);
    match header.cmd {
        command::INDEXES_UPDATE => match IndexesRequest::decode(&payload) {
            Ok(request) => update::update(shard, header, request, shard_count).await,
            Err(e) => refuse(header, &e),
        },
        command::INDEXES_INTERNAL => match IndexesRequest::decode(&payload) {
            Ok(request) => update::internal(shard, header, request).await,
            Err(e) => refuse(header, &e),
        },
        command::INDEXES_FIND => match IndexesRequest::decode_chain(&payload) {
            Ok(requests) => find::find(shard, header, requests).await,
            Err(e) => refuse(header, &e),
        },
        _ => {
            frames.error(&header, errno::ENOTSUP);
            frames
        }
    }
}

/// The node's `indexes_shard_count` (announced in the handshake).
fn shard_count(shard: &Shard) -> u32 {
    u32::try_from(shard.node.config.options.indexes_shard_count)
        .unwrap_or(1)
        .max(1)
}

fn refuse(header: CmdHeader, e: &crate::protocol::DecodeError) -> Frames {
    tracing::debug!(cmd = header.cmd, error = %e, "bad indexes request");
    let mut frames = Frames::new();
    frames.error(&header, errno::EINVAL);
    frames
}
