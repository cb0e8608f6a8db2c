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
use super::index_find::find_step;
use super::result::{join_all, pending, AsyncResult};
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

pub(super) fn decode_find(r: &super::conn::Reply) -> Result<Vec<FoundObject>, DecodeError> {
    decode_find_results(&r.payload).map_err(|_| DecodeError::InvalidValue {
        field: "INDEXES_FIND result",
        value: 0,
    })
}

/// The shard requests still unanswered and the results gathered, across groups.
pub(super) struct FindState {
    pub(super) tables: Vec<Vec<RawId>>,
    pub(super) names: HashMap<RawId, RawId>,
    pub(super) flags: u32,
    pub(super) pending: Vec<usize>,
    pub(super) found: Vec<FoundIndexes>,
    pub(super) last_error: Option<ClientError>,
    pub(super) answered: bool,
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
            let table = IndexTable::decode(&read.data).map_err(|e| {
                ClientError::new(
                    errno::EINVAL,
                    format!("list_indexes: {e}: {}", errno::EINVAL),
                )
            })?;
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
