//! ITERATOR and SEND bodies: `dnet_iterator_request` with its key ranges and groups,
//! `dnet_iterator_response` (one per key, optionally followed by data) and
//! `dnet_server_send_request` with its ids and groups.
//!
//! `dnet_iterator_request`, 104 bytes packed, then ranges (128 B each), then groups (i32):
//! ```text
//! off  size  field
//!   0     8  id          u64, iterator id for pause/continue/cancel
//!   8     4  action      u32, START 1, PAUSE 2, CONTINUE 3, CANCEL 4
//!  12     8  range_num   u64
//!  20    16  time_begin  dnet_time
//!  36    16  time_end    dnet_time
//!  52     4  itype       u32, DISK 1, NETWORK 2, SERVER_SEND 3
//!  56     8  flags       u64, DNET_IFLAGS_*
//!  64     4  group_num   u32
//!  68     4  timeout     u32
//!  72    32  reserved    4 x u64, zero
//! range:   0  64 key_begin, 64  64 key_end
//! ```
//! `dnet_iterator_response`, 140 bytes packed:
//! ```text
//!   0     8  id             u64
//!   8    64  key
//!  72     4  status         i32 (1 = keepalive)
//!  76    16  timestamp      dnet_time
//!  92     8  user_flags     u64
//! 100     8  size           u64
//! 108     8  iterated_keys  u64
//! 116     8  total_keys     u64
//! 124     8  flags          u64, record flags
//! 132     8  reserved       zero
//! ```
//! `dnet_server_send_request`, 96 bytes, then `id_num` ids (64 B), then `group_num` i32:
//! ```text
//!   0     4  id_num     i32
//!   4     4  group_num  i32
//!   8     4  timeout    i32
//!  12     4  padding
//!  16     8  iflags     u64
//!  24    72  reserved   9 x u64, zero
//! ```

use super::{DecodeError, DnetTime, Reader, Writer};
use crate::key::{RawId, ID_SIZE_BYTES};

pub const ITERATOR_REQUEST_SIZE_BYTES: usize = 104;
pub const ITERATOR_RANGE_SIZE_BYTES: usize = 128;
pub const ITERATOR_RESPONSE_SIZE_BYTES: usize = 140;
pub const SERVER_SEND_REQUEST_SIZE_BYTES: usize = 96;
const GROUP_SIZE_BYTES: usize = 4;

/// `dnet_iterator_request.action` values.
pub mod iterator_action {
    pub const START: u32 = 1;
    pub const PAUSE: u32 = 2;
    pub const CONTINUE: u32 = 3;
    pub const CANCEL: u32 = 4;
}

/// `dnet_iterator_request.itype` values.
pub mod iterator_type {
    pub const DISK: u32 = 1;
    pub const NETWORK: u32 = 2;
    pub const SERVER_SEND: u32 = 3;
}

/// `DNET_IFLAGS_*`.
pub mod iflags {
    pub const DATA: u64 = 1 << 0;
    pub const KEY_RANGE: u64 = 1 << 1;
    pub const TS_RANGE: u64 = 1 << 2;
    pub const NO_META: u64 = 1 << 3;
    pub const MOVE: u64 = 1 << 4;
    pub const OVERWRITE: u64 = 1 << 5;
}

/// `dnet_iterator_range`: an inclusive key interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IteratorRange {
    pub key_begin: RawId,
    pub key_end: RawId,
}

fn read_groups(
    r: &mut Reader<'_>,
    field: &'static str,
    count: i64,
) -> Result<Vec<i32>, DecodeError> {
    r.counted(field, count, GROUP_SIZE_BYTES, |r| r.i32())
}

/// A decoded ITERATOR payload: request header, ranges, groups.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IteratorRequest {
    pub id: u64,
    pub action: u32,
    pub time_begin: DnetTime,
    pub time_end: DnetTime,
    pub itype: u32,
    pub flags: u64,
    pub timeout: u32,
    pub ranges: Vec<IteratorRange>,
    pub groups: Vec<i32>,
}

impl IteratorRequest {
    /// Decode a payload holding exactly the request, its ranges and its groups.
    pub fn decode(bytes: &[u8]) -> Result<IteratorRequest, DecodeError> {
        let mut r = Reader::new(bytes, "dnet_iterator_request");
        let id = r.u64()?;
        let action = r.u32()?;
        let range_num = r.u64()?;
        let time_begin = DnetTime::read(&mut r)?;
        let time_end = DnetTime::read(&mut r)?;
        let itype = r.u32()?;
        let flags = r.u64()?;
        let group_num = r.u32()?;
        let timeout = r.u32()?;
        r.take(32)?;
        let ranges = r.counted(
            "dnet_iterator_request.range_num",
            i64::try_from(range_num).unwrap_or(i64::MAX),
            ITERATOR_RANGE_SIZE_BYTES,
            |r| {
                Ok(IteratorRange {
                    key_begin: RawId(r.array()?),
                    key_end: RawId(r.array()?),
                })
            },
        )?;
        let groups = read_groups(
            &mut r,
            "dnet_iterator_request.group_num",
            i64::from(group_num),
        )?;
        r.finish()?;
        Ok(IteratorRequest {
            id,
            action,
            time_begin,
            time_end,
            itype,
            flags,
            timeout,
            ranges,
            groups,
        })
    }

    pub fn encoded_len(&self) -> usize {
        ITERATOR_REQUEST_SIZE_BYTES
            .saturating_add(self.ranges.len().saturating_mul(ITERATOR_RANGE_SIZE_BYTES))
            .saturating_add(self.groups.len().saturating_mul(GROUP_SIZE_BYTES))
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut head = [0u8; ITERATOR_REQUEST_SIZE_BYTES];
        let mut w = Writer::new(&mut head);
        w.u64(self.id);
        w.u32(self.action);
        w.u64(self.ranges.len() as u64);
        self.time_begin.write(&mut w);
        self.time_end.write(&mut w);
        w.u32(self.itype);
        w.u64(self.flags);
        w.u32(u32::try_from(self.groups.len()).unwrap_or(u32::MAX));
        w.u32(self.timeout);
        w.zeros(32);
        let mut out = Vec::with_capacity(self.encoded_len());
        out.extend_from_slice(&head);
        for range in &self.ranges {
            out.extend_from_slice(&range.key_begin.0);
            out.extend_from_slice(&range.key_end.0);
        }
        for g in &self.groups {
            out.extend_from_slice(&g.to_le_bytes());
        }
        out
    }
}

/// A decoded `dnet_iterator_response`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IteratorResponse {
    pub id: u64,
    pub key: RawId,
    pub status: i32,
    pub timestamp: DnetTime,
    pub user_flags: u64,
    pub size: u64,
    pub iterated_keys: u64,
    pub total_keys: u64,
    pub record_flags: u64,
}

impl IteratorResponse {
    /// Split a reply payload into the response and the data after it (empty unless the
    /// request had `iflags::DATA`).
    pub fn decode_with_data(bytes: &[u8]) -> Result<(IteratorResponse, &[u8]), DecodeError> {
        let mut r = Reader::new(bytes, "dnet_iterator_response");
        let resp = IteratorResponse {
            id: r.u64()?,
            key: RawId(r.array()?),
            status: r.i32()?,
            timestamp: DnetTime::read(&mut r)?,
            user_flags: r.u64()?,
            size: r.u64()?,
            iterated_keys: r.u64()?,
            total_keys: r.u64()?,
            record_flags: r.u64()?,
        };
        r.take(8)?;
        Ok((resp, r.rest()))
    }

    pub fn encode(&self) -> [u8; ITERATOR_RESPONSE_SIZE_BYTES] {
        let mut out = [0u8; ITERATOR_RESPONSE_SIZE_BYTES];
        let mut w = Writer::new(&mut out);
        w.u64(self.id);
        w.bytes(&self.key.0);
        w.i32(self.status);
        self.timestamp.write(&mut w);
        w.u64(self.user_flags);
        w.u64(self.size);
        w.u64(self.iterated_keys);
        w.u64(self.total_keys);
        w.u64(self.record_flags);
        w.zeros(8);
        out
    }
}

/// A decoded SEND payload: request header, ids, groups.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServerSendRequest {
    pub timeout: i32,
    pub iflags: u64,
    pub ids: Vec<RawId>,
    pub groups: Vec<i32>,
}

impl ServerSendRequest {
    pub fn decode(bytes: &[u8]) -> Result<ServerSendRequest, DecodeError> {
        let mut r = Reader::new(bytes, "dnet_server_send_request");
        let id_num = r.i32()?;
        let group_num = r.i32()?;
        let timeout = r.i32()?;
        r.take(4)?;
        let iflags = r.u64()?;
        r.take(72)?;
        let ids = r.ids("dnet_server_send_request.id_num", i64::from(id_num))?;
        let groups = read_groups(
            &mut r,
            "dnet_server_send_request.group_num",
            i64::from(group_num),
        )?;
        r.finish()?;
        Ok(ServerSendRequest {
            timeout,
            iflags,
            ids,
            groups,
        })
    }

    pub fn encoded_len(&self) -> usize {
        SERVER_SEND_REQUEST_SIZE_BYTES
            .saturating_add(self.ids.len().saturating_mul(ID_SIZE_BYTES))
            .saturating_add(self.groups.len().saturating_mul(GROUP_SIZE_BYTES))
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut head = [0u8; SERVER_SEND_REQUEST_SIZE_BYTES];
        let mut w = Writer::new(&mut head);
        w.i32(i32::try_from(self.ids.len()).unwrap_or(i32::MAX));
        w.i32(i32::try_from(self.groups.len()).unwrap_or(i32::MAX));
        w.i32(self.timeout);
        w.zeros(4);
        w.u64(self.iflags);
        w.zeros(72);
        let mut out = Vec::with_capacity(self.encoded_len());
        out.extend_from_slice(&head);
        for id in &self.ids {
            out.extend_from_slice(&id.0);
        }
        for g in &self.groups {
            out.extend_from_slice(&g.to_le_bytes());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::arithmetic_side_effects
    )]
    use super::*;

    #[test]
    fn iterator_request_fields_sit_at_their_offsets() {
        let req = IteratorRequest {
            id: 0x11,
            action: iterator_action::START,
            time_begin: DnetTime { tsec: 5, tnsec: 6 },
            time_end: DnetTime { tsec: 7, tnsec: 8 },
            itype: iterator_type::NETWORK,
            flags: iflags::DATA | iflags::KEY_RANGE,
            timeout: 60,
            ranges: vec![IteratorRange {
                key_begin: RawId::ZERO,
                key_end: RawId::MAX,
            }],
            groups: vec![1, 2],
        };
        let b = req.encode();
        assert_eq!(b.len(), 104 + 128 + 8);
        assert_eq!(&b[8..12], &1u32.to_le_bytes());
        assert_eq!(&b[12..20], &1u64.to_le_bytes());
        assert_eq!(&b[20..28], &5u64.to_le_bytes());
        assert_eq!(&b[36..44], &7u64.to_le_bytes());
        assert_eq!(&b[52..56], &2u32.to_le_bytes());
        assert_eq!(&b[56..64], &3u64.to_le_bytes());
        assert_eq!(&b[64..68], &2u32.to_le_bytes());
        assert_eq!(&b[68..72], &60u32.to_le_bytes());
        assert_eq!(&b[232..240], &[1, 0, 0, 0, 2, 0, 0, 0]);
        assert_eq!(IteratorRequest::decode(&b).unwrap(), req);
    }

    #[test]
    fn iterator_request_with_huge_range_num_is_rejected_before_allocation() {
        let mut b = IteratorRequest::default().encode();
        b[12..20].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(
            IteratorRequest::decode(&b),
            Err(DecodeError::TooLarge { .. })
        ));
    }

    #[test]
    fn iterator_response_fields_sit_at_their_offsets() {
        let resp = IteratorResponse {
            id: 9,
            key: RawId::from_key(b"k"),
            status: 1,
            timestamp: DnetTime { tsec: 3, tnsec: 4 },
            user_flags: 0x55,
            size: 26,
            iterated_keys: 10,
            total_keys: 20,
            record_flags: 0x140,
        };
        let mut b = resp.encode().to_vec();
        assert_eq!(&b[72..76], &1i32.to_le_bytes());
        assert_eq!(&b[76..84], &3u64.to_le_bytes());
        assert_eq!(&b[92..100], &0x55u64.to_le_bytes());
        assert_eq!(&b[100..108], &26u64.to_le_bytes());
        assert_eq!(&b[116..124], &20u64.to_le_bytes());
        assert_eq!(&b[124..132], &0x140u64.to_le_bytes());
        b.extend_from_slice(b"data");
        let (back, data) = IteratorResponse::decode_with_data(&b).unwrap();
        assert_eq!(back, resp);
        assert_eq!(data, b"data");
    }

    #[test]
    fn server_send_request_carries_ids_then_groups() {
        let req = ServerSendRequest {
            timeout: 30,
            iflags: iflags::MOVE,
            ids: vec![RawId::from_key(b"a"), RawId::from_key(b"b")],
            groups: vec![3],
        };
        let b = req.encode();
        assert_eq!(b.len(), 96 + 128 + 4);
        assert_eq!(&b[0..4], &2i32.to_le_bytes());
        assert_eq!(&b[4..8], &1i32.to_le_bytes());
        assert_eq!(&b[8..12], &30i32.to_le_bytes());
        assert_eq!(&b[16..24], &16u64.to_le_bytes());
        assert_eq!(&b[96..160], &RawId::from_key(b"a").0);
        assert_eq!(&b[224..228], &3i32.to_le_bytes());
        assert_eq!(ServerSendRequest::decode(&b).unwrap(), req);
        let mut neg = b.clone();
        neg[4..8].copy_from_slice(&(-1i32).to_le_bytes());
        assert!(ServerSendRequest::decode(&neg).is_err());
    }
}
