//! INDEXES_UPDATE (an object's index list, and the index tables it adds the object to or
//! drops it from) and INDEXES_INTERNAL (one index table's object list).
//!
//! UPDATE, on the shard owning the object table: set (flags 0) replaces the list and
//! inserts or removes the object in the index tables whose entry changed; UPDATE_ONLY
//! merges into the list and REMOVE_ONLY drops from it, touching only the list (the client
//! sends the INTERNAL requests itself). The reply names each index table changed here.

use super::super::cross;
use super::super::forward::{self, Target};
use super::super::reply::{Frames, Replies};
use super::super::shard::Shard;
use super::{key_lock, store};
use crate::key::RawId;
use crate::protocol::{
    cmd_flags, command, decode_indexes_reply, encode_indexes_reply, errno, index_entry_flags,
    index_request_flags, index_shard_of, index_table_id, CmdHeader, IndexTable, IndexesReplyEntry,
    IndexesRequest, IndexesRequestEntry, TableEntry,
};
use crate::routing::shard_of;
use std::net::SocketAddr;
use std::rc::Rc;

/// One change to an index table: add (or re-data) or drop `object` there.
#[derive(Debug, Clone)]
struct TableChange {
    table: RawId,
    object: RawId,
    data: Vec<u8>,
    action: u64,
    shard_id: u32,
    shard_count: u32,
}

/// Status of a cross-shard table change; a lost call is its error status.
#[derive(Debug)]
struct Status(i32);

/// INDEXES_UPDATE: runs on the shard owning the object table (`header.id`).
pub async fn update(
    shard: &Rc<Shard>,
    header: CmdHeader,
    request: IndexesRequest,
    shard_count: u32,
) -> Frames {
    let flags = request.flags;
    if flags & index_request_flags::UPDATE_ONLY != 0
        && flags & index_request_flags::REMOVE_ONLY != 0
    {
        let mut frames = Frames::new();
        frames.error(&header, errno::EINVAL);
        return frames;
    }
    let owner = shard_of(&header.id, shard.node.shard_count);
    cross::call(shard, owner, move |s| async move {
        update_here(&s, header, request, shard_count).await
    })
    .await
    .unwrap_or_else(|e| e.answer(&header))
}

async fn update_here(
    shard: &Rc<Shard>,
    header: CmdHeader,
    request: IndexesRequest,
    shard_count: u32,
) -> Frames {
    let group = header.group_id;
    let shard_id = index_shard_of(&header.id, shard_count);
    let mut wanted: Vec<TableEntry> = request
        .entries
        .into_iter()
        .map(|e| TableEntry {
            id: e.id,
            data: e.data,
            time: crate::protocol::DnetTime { tsec: 0, tnsec: 0 },
        })
        .collect();
    wanted.sort_by(|a, b| a.id.cmp(&b.id).then_with(|| a.data.cmp(&b.data)));
    wanted.dedup_by(|b, a| a.id == b.id);

    let _held = key_lock::lock(header.id).await;
    let old_bytes = match store::read(shard, group, &header.id).await {
        Ok(bytes) => bytes,
        Err(status) => return finish(&header, &[], status),
    };
    let old = old_bytes
        .as_deref()
        .and_then(|b| IndexTable::decode(b).ok())
        .unwrap_or_default();
    let partial =
        request.flags & (index_request_flags::UPDATE_ONLY | index_request_flags::REMOVE_ONLY) != 0;
    let entries = if request.flags & index_request_flags::UPDATE_ONLY != 0 {
        merge(&wanted, &old.entries)
    } else if request.flags & index_request_flags::REMOVE_ONLY != 0 {
        old.entries
            .iter()
            .filter(|e| wanted.binary_search_by(|w| w.id.cmp(&e.id)).is_err())
            .cloned()
            .collect()
    } else {
        wanted.clone()
    };
    let new = IndexTable {
        entries,
        shard_id,
        shard_count,
    }
    .encode();
    if old_bytes.as_deref() == Some(new.as_slice()) {
        return finish(&header, &[], 0);
    }
    if let Err(status) = store::write(shard, group, &header.id, new).await {
        return finish(&header, &[], status);
    }
    if partial {
        return finish(&header, &[], 0);
    }

    let change = |e: &TableEntry, action: u64| TableChange {
        table: index_table_id(&e.id, shard_id, shard_count),
        object: request.id,
        data: e.data.clone(),
        action,
        shard_id,
        shard_count,
    };
    // Inserted: new or with other data; removed: in the old list only.
    let inserted = wanted
        .iter()
        .filter(|w| {
            let kept = old.search(&w.id).ok().and_then(|at| old.entries.get(at));
            kept.is_none_or(|o| o.data != w.data)
        })
        .map(|e| change(e, index_entry_flags::INSERT));
    let removed = old
        .entries
        .iter()
        .filter(|o| wanted.binary_search_by(|w| w.id.cmp(&o.id)).is_err())
        .map(|e| change(e, index_entry_flags::REMOVE));
    let changes: Vec<TableChange> = inserted.chain(removed).collect();
    // The tables are different keys, most on other shards or nodes: change them all at
    // once (their writes share the owners' commit rounds), report each in list order.
    let tables: Vec<RawId> = changes.iter().map(|c| c.table).collect();
    let statuses = futures::future::join_all(
        changes
            .into_iter()
            .map(|c| change_on_owner(shard, group, c)),
    )
    .await;
    let status = statuses.iter().copied().find(|s| *s != 0).unwrap_or(0);
    let results: Vec<IndexesReplyEntry> = tables
        .into_iter()
        .zip(statuses)
        .map(|(id, status)| IndexesReplyEntry { id, status })
        .collect();
    finish(&header, &results, status)
}

/// Apply `c` where its table lives: on the owning shard here, or as an INDEXES_INTERNAL
/// to the peer node that owns the table's key in `group`.
async fn change_on_owner(shard: &Rc<Shard>, group: u32, c: TableChange) -> i32 {
    let probe = CmdHeader {
        id: c.table,
        group_id: group,
        cmd: command::WRITE,
        ..CmdHeader::default()
    };
    match forward::target(shard, &probe) {
        Target::Local => {
            let target = shard_of(&c.table, shard.node.shard_count);
            let Status(s) = cross::call(shard, target, move |s| async move {
                Status(change_table(&s, group, c).await)
            })
            .await
            .unwrap_or_else(|e| Status(e.errno()));
            s
        }
        Target::Peer(peer) => change_on_peer(shard, peer, group, c).await,
        Target::Refuse(status) => status,
    }
}

async fn change_on_peer(shard: &Rc<Shard>, peer: SocketAddr, group: u32, c: TableChange) -> i32 {
    let header = CmdHeader {
        id: c.table,
        group_id: group,
        cmd: command::INDEXES_INTERNAL,
        flags: cmd_flags::NEED_ACK,
        ..CmdHeader::default()
    };
    let body = IndexesRequest {
        id: c.object,
        group_id: group,
        shard_id: c.shard_id,
        shard_count: c.shard_count,
        entries: vec![IndexesRequestEntry {
            id: c.table,
            flags: c.action,
            shard_id: c.shard_id,
            shard_count: c.shard_count,
            data: c.data,
            ..IndexesRequestEntry::default()
        }],
        ..IndexesRequest::default()
    }
    .encode();
    let timeout_ms = shard.node.config.options.wait_timeout_s.max(1) * 1000;
    match forward::request(shard, peer, header, &body, timeout_ms).await {
        Err(status) => status,
        Ok(frames) => frames
            .iter()
            .map(|(h, payload)| match h.status {
                0 => decode_indexes_reply(payload)
                    .ok()
                    .and_then(|entries| entries.iter().map(|e| e.status).find(|s| *s != 0))
                    .unwrap_or(0),
                status => status,
            })
            .find(|s| *s != 0)
            .unwrap_or(0),
    }
}

/// The merge of UPDATE_ONLY: `wanted` wins over `old` for an id both hold; sorted by id.
fn merge(wanted: &[TableEntry], old: &[TableEntry]) -> Vec<TableEntry> {
    let mut out: Vec<TableEntry> = wanted.to_vec();
    out.extend(
        old.iter()
            .filter(|o| wanted.binary_search_by(|w| w.id.cmp(&o.id)).is_err())
            .cloned(),
    );
    out.sort_by_key(|e| e.id);
    out
}

/// The UPDATE reply (MORE, the table entries) and its final ack with `status`.
fn finish(header: &CmdHeader, results: &[IndexesReplyEntry], status: i32) -> Frames {
    let mut frames = Frames::new();
    let mut h = *header;
    h.flags |= cmd_flags::NEED_ACK;
    frames.reply(&h, &[&encode_indexes_reply(results)], true);
    frames.ack(&h, status);
    frames
}

/// INDEXES_INTERNAL: each entry is applied on the shard owning its table.
pub async fn internal(shard: &Rc<Shard>, header: CmdHeader, request: IndexesRequest) -> Frames {
    let mut frames = Frames::new();
    if request.entries.is_empty() {
        frames.error(&header, errno::EINVAL);
        return frames;
    }
    let group = header.group_id;
    let mut results = Vec::with_capacity(request.entries.len());
    let mut first_error = None;
    for e in request.entries {
        let table = e.id;
        let c = TableChange {
            table,
            object: request.id,
            data: e.data,
            action: e.flags,
            shard_id: request.shard_id,
            shard_count: request.shard_count,
        };
        let target = shard_of(&table, shard.node.shard_count);
        let Status(s) = cross::call(shard, target, move |s| async move {
            Status(change_table(&s, group, c).await)
        })
        .await
        .unwrap_or_else(|e| Status(e.errno()));
        if s != 0 && first_error.is_none() {
            first_error = Some(s);
        }
        results.push(IndexesReplyEntry {
            id: table,
            status: s,
        });
    }
    if results.iter().any(|r| r.status == 0) {
        frames.reply(&header, &[&encode_indexes_reply(&results)], true);
        frames.ack(&header, 0);
    } else {
        frames.error(&header, first_error.unwrap_or(errno::EINVAL));
    }
    frames
}

/// Apply one change to an index table; runs on the shard owning `c.table`.
async fn change_table(shard: &Shard, group: u32, c: TableChange) -> i32 {
    let action = c.action
        & (index_entry_flags::INSERT | index_entry_flags::REMOVE | index_entry_flags::REMOVE_ALL);
    let _held = key_lock::lock(c.table).await;
    match action {
        index_entry_flags::INSERT | index_entry_flags::REMOVE => {}
        index_entry_flags::REMOVE_ALL => {
            return store::remove(shard, group, &c.table)
                .await
                .err()
                .unwrap_or(0);
        }
        _ => return errno::EINVAL,
    }
    let old_bytes = match store::read(shard, group, &c.table).await {
        Ok(bytes) => bytes,
        Err(status) => return status,
    };
    let mut table = old_bytes
        .as_deref()
        .and_then(|b| IndexTable::decode(b).ok())
        .unwrap_or_default();
    match (table.search(&c.object), action) {
        (Ok(at), index_entry_flags::INSERT) => match table.entries.get_mut(at) {
            Some(e) if e.data == c.data => return 0,
            Some(e) => e.data = c.data,
            None => return 0,
        },
        (Err(at), index_entry_flags::INSERT) => table.entries.insert(
            at,
            TableEntry {
                id: c.object,
                data: c.data,
                time: crate::protocol::DnetTime { tsec: 0, tnsec: 0 },
            },
        ),
        (Ok(at), _) => {
            table.entries.remove(at);
        }
        (Err(_), _) => return 0,
    }
    table.shard_id = c.shard_id;
    table.shard_count = c.shard_count;
    let new = table.encode();
    if old_bytes.as_deref() == Some(new.as_slice()) {
        return 0;
    }
    store::write(shard, group, &c.table, new)
        .await
        .err()
        .unwrap_or(0)
}
