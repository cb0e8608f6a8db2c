//! The rounds of a secondary-index find: per group, the shards still unanswered go to
//! their owners, the consecutive shards of one node in one INDEXES_FIND (MORE on all but
//! the last request); the shards a group could not answer go on to the next group.

use super::entry::Entry;
use super::error::ClientError;
use super::indexes::{decode_find, FindState, FoundIndexes, IndexEntry};
use super::result::{join_all, Completer};
use super::session::Session;
use crate::key::RawId;
use crate::protocol::{
    command, errno, index_request_flags, FoundObject, IndexesRequest, IndexesRequestEntry,
};
use std::sync::Arc;

/// One group's round of a find: the pending shards go to their owners in `group`, the
/// shards of one node in one INDEXES_FIND; shards still unanswered go on to the next group.
pub(super) fn find_step(
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
    let batches = batch_by_owner(&session, group, &state.pending, &state.tables);
    let parts: Vec<_> = batches
        .iter()
        .map(|batch| {
            let (first, body) = find_request(group, batch, &state.tables, state.flags);
            session.send_keyed(group, first, command::INDEXES_FIND, 0, body, decode_find)
        })
        .collect();
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
                state.absorb(e);
            }
        }
        state.pending = still;
        find_step(session, groups, state, done);
    });
}

impl FindState {
    /// Keep an entry's error and its found objects (index tables mapped back to names).
    fn absorb(&mut self, e: Entry<Vec<FoundObject>>) {
        if let Some(err) = e.error {
            self.last_error = Some(err);
        }
        for found in e.payload.into_iter().flatten() {
            self.found.push(FoundIndexes {
                id: found.id,
                indexes: found
                    .indexes
                    .into_iter()
                    .filter_map(|(table, data)| {
                        let index = *self.names.get(&table)?;
                        Some(IndexEntry { index, data })
                    })
                    .collect(),
            });
        }
    }
}

/// Consecutive pending shards owned by one node in `group` share a command.
fn batch_by_owner(
    session: &Session,
    group: u32,
    pending: &[usize],
    tables: &[Vec<RawId>],
) -> Vec<Vec<usize>> {
    let mut batches: Vec<Vec<usize>> = Vec::new();
    let mut last_owner = None;
    for &shard in pending {
        let first = tables.get(shard).and_then(|t| t.first()).copied();
        let owner = first.and_then(|id| session.node.route(group, &id).map(|(c, _)| c.addr));
        match batches.last_mut() {
            Some(batch) if owner.is_some() && owner == last_owner => batch.push(shard),
            _ => batches.push(vec![shard]),
        }
        last_owner = owner;
    }
    batches
}

/// The INDEXES_FIND body for one batch of shards (MORE on all but the last request) and
/// the id it is routed by.
fn find_request(
    group: u32,
    batch: &[usize],
    tables: &[Vec<RawId>],
    flags: u32,
) -> (RawId, Vec<u8>) {
    let mut body = Vec::new();
    for (i, &shard) in batch.iter().enumerate() {
        let shard_tables = tables.get(shard).cloned().unwrap_or_default();
        let more = if i + 1 < batch.len() {
            index_request_flags::MORE
        } else {
            0
        };
        IndexesRequest {
            id: shard_tables.first().copied().unwrap_or_default(),
            group_id: group,
            flags: flags | more,
            entries: shard_tables
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
        .and_then(|s| tables.get(*s))
        .and_then(|t| t.first())
        .copied()
        .unwrap_or_default();
    (first, body)
}
