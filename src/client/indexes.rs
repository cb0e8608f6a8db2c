//! Secondary indexes in the session API, sent as the 2.26 bindings send them.
//!
//! - `set_indexes`: one INDEXES_UPDATE per group to the object's object-table id; the node
//!   updates the index tables itself.
//! - `update_indexes` / `remove_indexes`: INDEXES_UPDATE with UPDATE_ONLY / REMOVE_ONLY per
//!   group, and for every index one INDEXES_INTERNAL (INSERT / REMOVE) per group to its
//!   index table in the object's index shard.
//! - `find_all_indexes` / `find_any_indexes`: one INDEXES_FIND per node holding index
//!   shards, one request per shard, group after group for the shards still unanswered;
//!   the index-table ids of the results are mapped back to the index names' hashes.
//! - `list_indexes`: a read_latest of the object table.
//!
//! Index names are keys: hashed with the session namespace, as `Session::id_of`.

use super::entry::{check, Key, Results};
use super::error::ClientError;
use super::result::{join_all, pending, AsyncResult, Completer};
use super::session::Session;
use crate::key::RawId;
use crate::protocol::{
    command, decode_find_results, decode_indexes_reply, errno, index_entry_flags,
    index_request_flags, index_shard_of, index_table_id, object_table_id, DecodeError, FoundObject,
    IndexTable, IndexesReplyEntry, IndexesRequest, IndexesRequestEntry,
};
use std::collections::HashMap;
use std::sync::Arc;

/// An index of an object: the hash of the index name and the object's data in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    pub index: RawId,
    pub data: Vec<u8>,
}

/// An object found by a find: its id and its data in each index searched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundIndexes {
    pub id: RawId,
    pub indexes: Vec<IndexEntry>,
}

fn decode_update(r: &super::conn::Reply) -> Result<Vec<IndexesReplyEntry>, DecodeError> {
    decode_indexes_reply(&r.payload)
}

fn decode_find(r: &super::conn::Reply) -> Result<Vec<FoundObject>, DecodeError> {
    decode_find_results(&r.payload).map_err(|_| DecodeError::InvalidValue {
        field: "INDEXES_FIND result",
        value: 0,
    })
}

/// The shard requests still unanswered and the results gathered, across groups.
struct FindState {
    tables: Vec<Vec<RawId>>,
    names: HashMap<RawId, RawId>,
    flags: u32,
    pending: Vec<usize>,
    found: Vec<FoundIndexes>,
    last_error: Option<ClientError>,
    answered: bool,
}

impl Session {
    fn index_names(&self, names: &[&str]) -> Vec<RawId> {
        names.iter().map(|n| self.id_of(&Key::from(*n))).collect()
    }

    /// Replace the object's indexes by `indexes` (name, data).
    pub fn set_indexes(
        &self,
        key: &Key,
        indexes: &[(&str, &[u8])],
    ) -> AsyncResult<Results<Vec<IndexesReplyEntry>>> {
        self.send_index_update(key, self.named(indexes), 0)
    }

    /// Add `indexes` (name, data) to the object, or change their data; keep the others.
    pub fn update_indexes(
        &self,
        key: &Key,
        indexes: &[(&str, &[u8])],
    ) -> AsyncResult<Results<Vec<IndexesReplyEntry>>> {
        self.send_index_update(key, self.named(indexes), index_request_flags::UPDATE_ONLY)
    }

    /// Drop the object from the indexes `names`; keep the others.
    pub fn remove_indexes(
        &self,
        key: &Key,
        names: &[&str],
    ) -> AsyncResult<Results<Vec<IndexesReplyEntry>>> {
        let entries = self
            .index_names(names)
            .into_iter()
            .map(|id| (id, Vec::new()))
            .collect();
        self.send_index_update(key, entries, index_request_flags::REMOVE_ONLY)
    }

    fn named(&self, indexes: &[(&str, &[u8])]) -> Vec<(RawId, Vec<u8>)> {
        indexes
            .iter()
            .map(|(name, data)| (self.id_of(&Key::from(*name)), data.to_vec()))
            .collect()
    }

    fn send_index_update(
        &self,
        key: &Key,
        entries: Vec<(RawId, Vec<u8>)>,
        flags: u32,
    ) -> AsyncResult<Results<Vec<IndexesReplyEntry>>> {
        let object = self.id_of(key);
        let table = object_table_id(&object);
        let mut parts = Vec::new();
        for &group in &self.groups {
            let request = IndexesRequest {
                id: object,
                group_id: group,
                flags,
                entries: entries
                    .iter()
                    .map(|(id, data)| IndexesRequestEntry {
                        id: *id,
                        data: data.clone(),
                        ..IndexesRequestEntry::default()
                    })
                    .collect(),
                ..IndexesRequest::default()
            };
            parts.push(self.send_keyed(
                group,
                table,
                command::INDEXES_UPDATE,
                0,
                request.encode(),
                decode_update,
            ));
        }
        if flags & (index_request_flags::UPDATE_ONLY | index_request_flags::REMOVE_ONLY) != 0 {
            let shard_count = self.node.indexes_shard_count();
            let shard_id = index_shard_of(&table, shard_count);
            let action = if flags & index_request_flags::UPDATE_ONLY != 0 {
                index_entry_flags::INSERT
            } else {
                index_entry_flags::REMOVE
            };
            for (name, data) in &entries {
                let index_table = index_table_id(name, shard_id, shard_count);
                let request = IndexesRequest {
                    id: object,
                    shard_id,
                    shard_count,
                    entries: vec![IndexesRequestEntry {
                        id: index_table,
                        flags: action,
                        shard_id,
                        shard_count,
                        data: data.clone(),
                        ..IndexesRequestEntry::default()
                    }],
                    ..IndexesRequest::default()
                };
                let body = request.encode();
                for &group in &self.groups {
                    parts.push(self.send_keyed(
                        group,
                        index_table,
                        command::INDEXES_INTERNAL,
                        0,
                        body.clone(),
                        decode_update,
                    ));
                }
            }
        }
        if parts.is_empty() {
            return AsyncResult::ready(Err(ClientError::new(
                errno::ENXIO,
                "set_indexes: groups list is empty: -6",
            )));
        }
        join_all(parts).map(|all| {
            let entries: Results<Vec<IndexesReplyEntry>> = all?
                .into_iter()
                .flat_map(|r| r.unwrap_or_default())
                .collect();
            check(entries)
        })
    }

    /// The objects present in every index of `names`.
    pub fn find_all_indexes(&self, names: &[&str]) -> AsyncResult<Vec<FoundIndexes>> {
        self.find_indexes(names, index_request_flags::INTERSECT)
    }

    /// The objects present in any index of `names`.
    pub fn find_any_indexes(&self, names: &[&str]) -> AsyncResult<Vec<FoundIndexes>> {
        self.find_indexes(names, index_request_flags::UNITE)
    }

    fn find_indexes(&self, names: &[&str], flags: u32) -> AsyncResult<Vec<FoundIndexes>> {
        let ids = self.index_names(names);
        if ids.is_empty() {
            return AsyncResult::ready(Ok(Vec::new()));
        }
        let shard_count = self.node.indexes_shard_count();
        let mut names_of = HashMap::new();
        let tables: Vec<Vec<RawId>> = (0..shard_count)
            .map(|shard| {
                ids.iter()
                    .map(|name| {
                        let t = index_table_id(name, shard, shard_count);
                        names_of.insert(t, *name);
                        t
                    })
                    .collect()
            })
            .collect();
        let state = FindState {
            pending: (0..tables.len()).collect(),
            tables,
            names: names_of,
            flags,
            found: Vec::new(),
            last_error: None,
            answered: false,
        };
        let (done, result) = pending();
        find_step(
            Arc::new(self.clone()),
            self.groups.clone().into_iter(),
            state,
            done,
        );
        result
    }

    /// The indexes of the object `key` (its object table, read from the newest group).
    pub fn list_indexes(&self, key: &Key) -> AsyncResult<Vec<IndexEntry>> {
        let table = object_table_id(&self.id_of(key));
        self.read_latest(&Key::Id(table), 0, 0).map(|r| {
            let entries = r?;
            let Some(read) = entries.iter().find_map(|e| e.payload.as_ref()) else {
                return Err(ClientError::from_status(errno::ENOENT));
            };
            let table = IndexTable::decode(&read.data)
                .map_err(|e| ClientError::new(errno::EINVAL, format!("list_indexes: {e}: -22")))?;
            Ok(table
                .entries
                .into_iter()
                .map(|e| IndexEntry {
                    index: e.id,
                    data: e.data,
                })
                .collect())
        })
    }
}

/// One group's round of a find: the pending shards go to their owners in `group`, the
/// shards of one node in one INDEXES_FIND; shards still unanswered go on to the next group.
#[allow(clippy::too_many_lines)] // Over the limit; to be split into named steps.
fn find_step(
    session: Arc<Session>,
    mut groups: std::vec::IntoIter<u32>,
    mut state: FindState,
    done: Completer<Vec<FoundIndexes>>,
) {
    let Some(group) = groups.next().filter(|_| !state.pending.is_empty()) else {
        let outcome = if state.answered {
            Ok(state.found)
        } else {
            Err(state
                .last_error
                .unwrap_or_else(|| ClientError::from_status(errno::ENXIO)))
        };
        done.complete(outcome);
        return;
    };
    // Consecutive shards owned by one node share a command.
    let mut batches: Vec<Vec<usize>> = Vec::new();
    let mut last_owner = None;
    for &shard in &state.pending {
        let first = state.tables.get(shard).and_then(|t| t.first()).copied();
        let owner = first.and_then(|id| session.node.route(group, &id).map(|(c, _)| c.addr));
        match batches.last_mut() {
            Some(batch) if owner.is_some() && owner == last_owner => batch.push(shard),
            _ => batches.push(vec![shard]),
        }
        last_owner = owner;
    }
    let mut parts = Vec::new();
    for batch in &batches {
        let mut body = Vec::new();
        for (i, &shard) in batch.iter().enumerate() {
            let tables = state.tables.get(shard).cloned().unwrap_or_default();
            let more = if i + 1 < batch.len() {
                index_request_flags::MORE
            } else {
                0
            };
            IndexesRequest {
                id: tables.first().copied().unwrap_or_default(),
                group_id: group,
                flags: state.flags | more,
                entries: tables
                    .iter()
                    .map(|t| IndexesRequestEntry {
                        id: *t,
                        ..IndexesRequestEntry::default()
                    })
                    .collect(),
                ..IndexesRequest::default()
            }
            .encode_into(&mut body);
        }
        let first = batch
            .first()
            .and_then(|s| state.tables.get(*s))
            .and_then(|t| t.first())
            .copied()
            .unwrap_or_default();
        parts.push(session.send_keyed(group, first, command::INDEXES_FIND, 0, body, decode_find));
    }
    join_all(parts).on_complete(move |all| {
        let all = all.unwrap_or_default();
        let mut still = Vec::new();
        for (batch, outcome) in batches.iter().zip(all) {
            let entries = match outcome {
                Ok(entries) => entries,
                Err(e) => {
                    state.last_error = Some(e);
                    still.extend(batch);
                    continue;
                }
            };
            if entries.iter().any(|e| e.status == 0) {
                state.answered = true;
            } else {
                still.extend(batch);
            }
            // A node that searched and found nothing answers with an error status: that
            // is an empty result (the bindings' find has no checker), not a failure.
            state.answered |= entries.iter().any(|e| {
                !matches!(
                    e.status,
                    0 | errno::ENXIO | errno::ETIMEDOUT | errno::ECONNRESET
                )
            });
            for e in entries {
                if let Some(err) = e.error {
                    state.last_error = Some(err);
                }
                for found in e.payload.into_iter().flatten() {
                    state.found.push(FoundIndexes {
                        id: found.id,
                        indexes: found
                            .indexes
                            .into_iter()
                            .filter_map(|(table, data)| {
                                let index = *state.names.get(&table)?;
                                Some(IndexEntry { index, data })
                            })
                            .collect(),
                    });
                }
            }
        }
        state.pending = still;
        find_step(session, groups, state, done);
    });
}
