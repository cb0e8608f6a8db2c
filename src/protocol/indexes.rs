//! Secondary-index bodies: `dnet_indexes_request` (INDEXES_UPDATE / INDEXES_INTERNAL /
//! INDEXES_FIND) with its entries, and `dnet_indexes_reply` with its entries. All packed,
//! little-endian.
//!
//! `dnet_indexes_request`, 136 bytes, then `entries_count` entries:
//! ```text
//! off  size  field
//!   0    64  id             the object's id (UPDATE, INTERNAL) or the first table id (FIND)
//!  64     4  group_id       u32
//!  68     8  id.reserved    u64, zero
//!  76     4  flags          u32, DNET_INDEXES_FLAGS_* (request_flags)
//!  80     4  shard_id       u32
//!  84     4  shard_count    u32
//!  88    40  reserved       5 x u64, zero
//! 128     8  entries_count  u64
//! ```
//! `dnet_indexes_request_entry`, 124 bytes, then `size` bytes of index data:
//! ```text
//!   0    64  id             raw index-name hash (UPDATE) or index-table id (INTERNAL, FIND)
//!  64     8  flags          u64, DNET_INDEXES_FLAGS_INTERNAL_* (entry_flags)
//!  72     4  limit          u32 (capped collections)
//!  76     4  shard_id       u32
//!  80     4  shard_count    u32
//!  84    32  reserved       4 x u64, zero
//! 116     8  size           u64, data bytes that follow
//! ```
//! `dnet_indexes_reply`, 48 bytes, then `entries_count` × `dnet_indexes_reply_entry` (84):
//! ```text
//!   0    40  reserved       5 x u64, zero        entry:  0  64  id
//!  40     8  entries_count  u64                          64   4  status i32
//!                                                        68  16  reserved 2 x u64
//! ```
//! INDEXES_FIND carries several requests back to back (one per index shard); every one but
//! the last has `request_flags::MORE`.

use super::{DecodeError, Reader, Writer};
use crate::key::{RawId, ID_SIZE_BYTES};

pub const INDEXES_REQUEST_SIZE_BYTES: usize = 136;
pub const INDEXES_REQUEST_ENTRY_SIZE_BYTES: usize = 124;
pub const INDEXES_REPLY_SIZE_BYTES: usize = 48;
pub const INDEXES_REPLY_ENTRY_SIZE_BYTES: usize = 84;

/// `dnet_indexes_request.flags`.
pub mod request_flags {
    /// FIND: objects present in every listed index.
    pub const INTERSECT: u32 = 1 << 0;
    /// FIND: objects present in any listed index.
    pub const UNITE: u32 = 1 << 1;
    /// UPDATE: add or change the listed indexes, keep the others.
    pub const UPDATE_ONLY: u32 = 1 << 2;
    /// FIND: another request follows this one.
    pub const MORE: u32 = 1 << 3;
    /// UPDATE: drop the listed indexes, keep the others.
    pub const REMOVE_ONLY: u32 = 1 << 4;
}

/// `dnet_indexes_request_entry.flags` (INDEXES_INTERNAL actions).
pub mod entry_flags {
    pub const INSERT: u64 = 1 << 0;
    pub const REMOVE: u64 = 1 << 1;
    pub const REMOVE_ALL: u64 = 1 << 2;
    pub const REMOVE_FROM_OBJECTS: u64 = 1 << 3;
    pub const REMOVE_FROM_STORAGE: u64 = 1 << 4;
    pub const CAPPED_COLLECTION: u64 = 1 << 5;
}

/// One index of a request, with its data.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IndexesRequestEntry {
    pub id: RawId,
    pub flags: u64,
    pub limit: u32,
    pub shard_id: u32,
    pub shard_count: u32,
    pub data: Vec<u8>,
}

/// One `dnet_indexes_request` with its entries.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IndexesRequest {
    pub id: RawId,
    pub group_id: u32,
    pub flags: u32,
    pub shard_id: u32,
    pub shard_count: u32,
    pub entries: Vec<IndexesRequestEntry>,
}

impl IndexesRequest {
    /// Decode one request (and its entries) from the front of `r`.
    fn read(r: &mut Reader<'_>) -> Result<IndexesRequest, DecodeError> {
        let id = RawId(r.array()?);
        let group_id = r.u32()?;
        let _reserved = r.u64()?;
        let flags = r.u32()?;
        let shard_id = r.u32()?;
        let shard_count = r.u32()?;
        r.take(40)?;
        let count = r.u64()?;
        let count = i64::try_from(count).unwrap_or(i64::MAX);
        let entries = r.counted(
            "dnet_indexes_request.entries_count",
            count,
            INDEXES_REQUEST_ENTRY_SIZE_BYTES,
            read_entry,
        )?;
        Ok(IndexesRequest {
            id,
            group_id,
            flags,
            shard_id,
            shard_count,
            entries,
        })
    }

    /// Decode the single request of an INDEXES_UPDATE or INDEXES_INTERNAL body.
    pub fn decode(payload: &[u8]) -> Result<IndexesRequest, DecodeError> {
        let mut r = Reader::new(payload, "dnet_indexes_request");
        let request = Self::read(&mut r)?;
        r.finish()?;
        Ok(request)
    }

    /// Decode the requests of an INDEXES_FIND body: one after another while MORE is set.
    pub fn decode_chain(payload: &[u8]) -> Result<Vec<IndexesRequest>, DecodeError> {
        let mut r = Reader::new(payload, "dnet_indexes_request");
        let mut out = Vec::new();
        loop {
            let request = Self::read(&mut r)?;
            let more = request.flags & request_flags::MORE != 0;
            out.push(request);
            if !more || r.remaining() == 0 {
                break;
            }
        }
        r.finish()?;
        Ok(out)
    }

    /// Bytes of this request and its entries on the wire.
    pub fn encoded_len(&self) -> usize {
        self.entries
            .iter()
            .fold(INDEXES_REQUEST_SIZE_BYTES, |n, e| {
                n.saturating_add(INDEXES_REQUEST_ENTRY_SIZE_BYTES)
                    .saturating_add(e.data.len())
            })
    }

    /// Append the encoded request to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let mut head = [0u8; INDEXES_REQUEST_SIZE_BYTES];
        let mut w = Writer::new(&mut head);
        w.bytes(&self.id.0);
        w.u32(self.group_id);
        w.u64(0);
        w.u32(self.flags);
        w.u32(self.shard_id);
        w.u32(self.shard_count);
        w.zeros(40);
        w.u64(self.entries.len() as u64);
        out.extend_from_slice(&head);
        for e in &self.entries {
            let mut eh = [0u8; INDEXES_REQUEST_ENTRY_SIZE_BYTES];
            let mut w = Writer::new(&mut eh);
            w.bytes(&e.id.0);
            w.u64(e.flags);
            w.u32(e.limit);
            w.u32(e.shard_id);
            w.u32(e.shard_count);
            w.zeros(32);
            w.u64(e.data.len() as u64);
            out.extend_from_slice(&eh);
            out.extend_from_slice(&e.data);
        }
    }

    /// The encoded request.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.encode_into(&mut out);
        out
    }
}

fn read_entry(r: &mut Reader<'_>) -> Result<IndexesRequestEntry, DecodeError> {
    let id = RawId(r.array()?);
    let flags = r.u64()?;
    let limit = r.u32()?;
    let shard_id = r.u32()?;
    let shard_count = r.u32()?;
    r.take(32)?;
    let size = r.u64()?;
    let len = usize::try_from(size).map_err(|_| DecodeError::TooLarge {
        field: "dnet_indexes_request_entry.size",
        len: size,
        max: r.remaining() as u64,
    })?;
    if len > r.remaining() {
        return Err(DecodeError::TooLarge {
            field: "dnet_indexes_request_entry.size",
            len: size,
            max: r.remaining() as u64,
        });
    }
    let data = r.take(len)?.to_vec();
    Ok(IndexesRequestEntry {
        id,
        flags,
        limit,
        shard_id,
        shard_count,
        data,
    })
}

/// One `dnet_indexes_reply_entry`: an index table and how its update went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IndexesReplyEntry {
    pub id: RawId,
    pub status: i32,
}

/// Encode a `dnet_indexes_reply` holding `entries`.
pub fn encode_indexes_reply(entries: &[IndexesReplyEntry]) -> Vec<u8> {
    let len = entries
        .len()
        .saturating_mul(INDEXES_REPLY_ENTRY_SIZE_BYTES)
        .saturating_add(INDEXES_REPLY_SIZE_BYTES);
    let mut out = vec![0u8; len];
    let mut w = Writer::new(&mut out);
    w.zeros(40);
    w.u64(entries.len() as u64);
    for e in entries {
        w.bytes(&e.id.0);
        w.i32(e.status);
        w.zeros(16);
    }
    out
}

/// Decode a `dnet_indexes_reply`.
pub fn decode_indexes_reply(payload: &[u8]) -> Result<Vec<IndexesReplyEntry>, DecodeError> {
    let mut r = Reader::new(payload, "dnet_indexes_reply");
    r.take(40)?;
    let count = r.u64()?;
    let count = i64::try_from(count).unwrap_or(i64::MAX);
    let entries = r.counted(
        "dnet_indexes_reply.entries_count",
        count,
        INDEXES_REPLY_ENTRY_SIZE_BYTES,
        |r| {
            let id = RawId(r.array::<ID_SIZE_BYTES>()?);
            let status = r.i32()?;
            r.take(16)?;
            Ok(IndexesReplyEntry { id, status })
        },
    )?;
    r.finish()?;
    Ok(entries)
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tests {
    use super::*;

    fn sample() -> IndexesRequest {
        IndexesRequest {
            id: RawId([7; 64]),
            group_id: 1,
            flags: request_flags::UPDATE_ONLY,
            shard_id: 1,
            shard_count: 2,
            entries: vec![IndexesRequestEntry {
                id: RawId([9; 64]),
                flags: entry_flags::INSERT,
                shard_id: 1,
                shard_count: 2,
                data: b"data-a2".to_vec(),
                ..IndexesRequestEntry::default()
            }],
        }
    }

    #[test]
    fn request_round_trips_at_the_documented_offsets() {
        let bytes = sample().encode();
        assert_eq!(bytes.len(), 136 + 124 + 7);
        assert_eq!(bytes[0x40], 1, "group_id");
        assert_eq!(bytes[0x4c], 4, "flags");
        assert_eq!(bytes[0x50], 1, "shard_id");
        assert_eq!(bytes[0x54], 2, "shard_count");
        assert_eq!(bytes[0x80], 1, "entries_count");
        assert_eq!(bytes[136 + 0x40], 1, "entry flags");
        assert_eq!(bytes[136 + 0x74], 7, "entry size");
        assert_eq!(IndexesRequest::decode(&bytes).unwrap(), sample());
    }

    #[test]
    fn an_entry_size_past_the_body_is_refused() {
        let mut bytes = sample().encode();
        bytes[136 + 0x74] = 200;
        assert!(IndexesRequest::decode(&bytes).is_err());
        let mut huge = sample().encode();
        huge[0x80..0x88].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(IndexesRequest::decode(&huge).is_err());
    }

    #[test]
    fn find_chain_stops_at_the_request_without_more() {
        let mut first = sample();
        first.flags = request_flags::UNITE | request_flags::MORE;
        let mut second = sample();
        second.flags = request_flags::UNITE;
        let mut bytes = first.encode();
        second.encode_into(&mut bytes);
        let chain = IndexesRequest::decode_chain(&bytes).unwrap();
        assert_eq!(chain, vec![first, second]);
    }

    #[test]
    fn reply_round_trips() {
        let entries = vec![IndexesReplyEntry {
            id: RawId([3; 64]),
            status: crate::protocol::errno::ENOENT,
        }];
        let bytes = encode_indexes_reply(&entries);
        assert_eq!(bytes.len(), 48 + 84);
        assert_eq!(bytes[0x28], 1);
        assert_eq!(decode_indexes_reply(&bytes).unwrap(), entries);
    }
}
