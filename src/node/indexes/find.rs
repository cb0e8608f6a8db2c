//! INDEXES_FIND: one request per index shard, each listing that shard's index tables.
//! INTERSECT keeps the objects present in every table (sorted by object id), UNITE the
//! objects present in any (in order of first appearance). Each table is read on the shard
//! that owns its key.
//!
//! A request with a result is answered with it (`cmd.id` = the command's id for the first
//! request, the request's own id after), MORE while more requests follow; a request whose
//! tables could not be read sends nothing. The transaction ends with the last request's
//! result, or, when that one had none, with an ack carrying 0 if any request had a result
//! and the first failure otherwise.

use super::super::cross;
use super::super::reply::{Frames, Replies};
use super::super::shard::Shard;
use super::store;
use crate::key::RawId;
use crate::protocol::{
    cmd_flags, encode_find_results, errno, index_request_flags, CmdHeader, FoundObject, IndexTable,
    IndexesRequest,
};
use crate::routing::shard_of;
use std::collections::HashMap;
use std::rc::Rc;

/// A table read on its owner: its bytes, `None` when missing, or the failure.
#[derive(Debug)]
struct Fetched(Result<Option<Vec<u8>>, i32>);

/// Serve INDEXES_FIND.
pub async fn find(
    shard: &Rc<Shard>,
    mut header: CmdHeader,
    requests: Vec<IndexesRequest>,
) -> Frames {
    let mut frames = Frames::new();
    let mut outcome: Option<i32> = None;
    for (i, request) in requests.iter().enumerate() {
        let more = request.flags & index_request_flags::MORE != 0;
        let reply_id = if i == 0 { header.id } else { request.id };
        let status = match find_one(shard, header.group_id, request).await {
            Ok(found) => {
                if !more {
                    // The last result is the final reply: no ack after it.
                    header.flags &= !cmd_flags::NEED_ACK;
                }
                let mut h = header;
                h.id = reply_id;
                frames.reply(&h, &[&encode_find_results(&found)], more);
                0
            }
            Err(status) => status,
        };
        outcome = match outcome {
            None => Some(status),
            Some(_) if status == 0 => Some(0),
            kept => kept,
        };
        if !more {
            break;
        }
    }
    frames.ack(&header, outcome.unwrap_or(errno::EINVAL));
    frames
}

async fn read_table(shard: &Rc<Shard>, group: u32, id: RawId) -> Result<IndexTable, i32> {
    let owner = shard_of(&id, shard.node.shard_count);
    let Fetched(got) = cross::call(shard, owner, move |s| async move {
        Fetched(store::read(&s, group, &id).await)
    })
    .await
    .unwrap_or_else(|e| Fetched(Err(e.errno())));
    match got? {
        Some(bytes) => Ok(IndexTable::decode(&bytes).unwrap_or_default()),
        None => Err(errno::ENOENT),
    }
}

/// The objects one request finds, or why it found nothing.
async fn find_one(
    shard: &Rc<Shard>,
    group: u32,
    request: &IndexesRequest,
) -> Result<Vec<FoundObject>, i32> {
    let intersect = request.flags & index_request_flags::INTERSECT != 0;
    let unite = request.flags & index_request_flags::UNITE != 0;
    if intersect == unite || request.entries.is_empty() {
        return Err(errno::EINVAL);
    }
    let mut result: Vec<FoundObject> = Vec::new();
    let mut position: HashMap<RawId, usize> = HashMap::new();
    let mut outcome: Option<i32> = None;
    for (i, entry) in request.entries.iter().enumerate() {
        let table = match read_table(shard, group, entry.id).await {
            Ok(table) => table,
            Err(status) if unite => {
                outcome.get_or_insert(status);
                continue;
            }
            Err(status) => return Err(status),
        };
        outcome = Some(0);
        if unite {
            for e in table.entries {
                let at = *position.entry(e.id).or_insert_with(|| {
                    result.push(FoundObject {
                        id: e.id,
                        indexes: Vec::new(),
                    });
                    result.len() - 1
                });
                if let Some(found) = result.get_mut(at) {
                    found.indexes.push((entry.id, e.data));
                }
            }
        } else if i == 0 {
            result = table
                .entries
                .into_iter()
                .map(|e| FoundObject {
                    id: e.id,
                    indexes: vec![(entry.id, e.data)],
                })
                .collect();
        } else {
            result.retain_mut(|found| match table.search(&found.id) {
                Ok(at) => {
                    let data = table
                        .entries
                        .get(at)
                        .map(|e| e.data.clone())
                        .unwrap_or_default();
                    found.indexes.push((entry.id, data));
                    true
                }
                Err(_) => false,
            });
        }
    }
    match outcome {
        Some(0) => Ok(result),
        Some(status) => Err(status),
        None => Err(errno::EINVAL),
    }
}
