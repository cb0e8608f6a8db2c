//! The stored secondary-index tables and INDEXES_FIND results (msgpack, in the old raw
//! format of msgpack-c 0.5 that 2.26 used), and the ids they live under.
//!
//! A table is the value of an ordinary key: an object's index list lives under
//! `object_table_id(object)`, an index's object list for one index shard under
//! `index_table_id(name, shard, shard_count)`. Both have the same layout:
//! ```text
//! off  size  field
//!   0     8  magic   u64 LE 0x5DA38CFBE7734027
//!   8     …  msgpack [u16 version = 2,
//!                     [[raw64 id, raw data, u64 tsec, u64 tnsec], …] sorted by id,
//!                     u32 shard_id, u32 shard_count]
//! ```
//! An INDEXES_FIND reply is msgpack `[[u16 version = 1, raw64 object id,
//! [[raw64 index-table id, raw data], …]], …]`.
//!
//! Raws are written as fixraw (`a0`-`bf`), raw16 (`da`) or raw32 (`db`), never str8 (`d9`),
//! which the old format lacks; str8 and bin are accepted when reading.
//!
//! Ids (`‖` = concatenation, sha512 over the 64-byte ids):
//! - object table: `sha512(object ‖ "\0object_table\0")`;
//! - index table: `sha512(name ‖ "\0index_table\0")` with bytes 0..32 zeroed, then bytes
//!   0..4 = BE u32 `2^32 · shard / shard_count`;
//! - an object's shard: its object-table id as a big-endian number mod `shard_count`.

use super::DnetTime;
use crate::key::{RawId, ID_SIZE_BYTES};
use rmp::Marker;
use sha2::{Digest, Sha512};

/// First 8 bytes (LE) of every stored table.
pub const INDEX_TABLE_MAGIC: u64 = 0x5DA3_8CFB_E773_4027;
/// `version` of a stored table.
pub const INDEX_TABLE_VERSION: u64 = 2;
/// `version` of one INDEXES_FIND result.
pub const FIND_RESULT_VERSION: u64 = 1;

const OBJECT_TABLE_SUFFIX: &[u8] = b"\0object_table\0";
const INDEX_TABLE_SUFFIX: &[u8] = b"\0index_table\0";

/// Why stored or received msgpack is not a table or a find result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("index table: {0}")]
pub struct TableError(&'static str);

/// One entry of a table: the other side's id (index name hash or object id) and its data.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TableEntry {
    pub id: RawId,
    pub data: Vec<u8>,
    pub time: DnetTime,
}

/// A stored table.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IndexTable {
    pub entries: Vec<TableEntry>,
    pub shard_id: u32,
    pub shard_count: u32,
}

/// One object found by INDEXES_FIND, with the data it has in each matching index table.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FoundObject {
    pub id: RawId,
    pub indexes: Vec<(RawId, Vec<u8>)>,
}

fn sha512_with(id: &RawId, suffix: &[u8]) -> RawId {
    let mut h = Sha512::new();
    h.update(id.0);
    h.update(suffix);
    RawId(h.finalize().into())
}

/// Where the index list of `object` is stored.
pub fn object_table_id(object: &RawId) -> RawId {
    sha512_with(object, OBJECT_TABLE_SUFFIX)
}

/// Where the object list of index `name` (its raw hash) is stored for index shard `shard`.
pub fn index_table_id(name: &RawId, shard: u32, shard_count: u32) -> RawId {
    let mut id = sha512_with(name, INDEX_TABLE_SUFFIX);
    id.0[..ID_SIZE_BYTES / 2].fill(0);
    let count = u64::from(shard_count.max(1));
    let prefix = (u64::from(shard) << 32).checked_div(count).unwrap_or(0);
    let prefix = u32::try_from(prefix & u64::from(u32::MAX)).unwrap_or(u32::MAX);
    id.0[..4].copy_from_slice(&prefix.to_be_bytes());
    id
}

/// The index shard of the object whose index list lives under `object_table`.
pub fn index_shard_of(object_table: &RawId, shard_count: u32) -> u32 {
    let count = u64::from(shard_count.max(1));
    let rest = object_table.0.iter().fold(0u64, |acc, b| {
        // acc < count <= u32::MAX, so acc * 256 + 255 fits in a u64.
        acc.wrapping_mul(256)
            .wrapping_add(u64::from(*b))
            .checked_rem(count)
            .unwrap_or(0)
    });
    u32::try_from(rest).unwrap_or(0)
}

fn put_raw(out: &mut Vec<u8>, bytes: &[u8]) {
    match u16::try_from(bytes.len()) {
        Ok(n) if n < 32 => out.push(0xa0 | u8::try_from(n).unwrap_or(0x1f)),
        Ok(n) => {
            out.push(0xda);
            out.extend_from_slice(&n.to_be_bytes());
        }
        Err(_) => {
            out.push(0xdb);
            let n = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
            out.extend_from_slice(&n.to_be_bytes());
        }
    }
    out.extend_from_slice(bytes);
}

fn put_array(out: &mut Vec<u8>, len: usize) {
    let _ = rmp::encode::write_array_len(out, u32::try_from(len).unwrap_or(u32::MAX));
}

fn put_uint(out: &mut Vec<u8>, v: u64) {
    let _ = rmp::encode::write_uint(out, v);
}

impl IndexTable {
    /// The stored bytes: magic, then the msgpack table.
    pub fn encode(&self) -> Vec<u8> {
        let data_bytes = self.entries.iter().fold(32usize, |n, e| {
            n.saturating_add(e.data.len()).saturating_add(96)
        });
        let mut out = Vec::with_capacity(data_bytes);
        out.extend_from_slice(&INDEX_TABLE_MAGIC.to_le_bytes());
        put_array(&mut out, 4);
        put_uint(&mut out, INDEX_TABLE_VERSION);
        put_array(&mut out, self.entries.len());
        for e in &self.entries {
            put_array(&mut out, 4);
            put_raw(&mut out, &e.id.0);
            put_raw(&mut out, &e.data);
            put_uint(&mut out, e.time.tsec);
            put_uint(&mut out, e.time.tnsec);
        }
        put_uint(&mut out, u64::from(self.shard_id));
        put_uint(&mut out, u64::from(self.shard_count));
        out
    }

    /// Decode stored bytes.
    pub fn decode(bytes: &[u8]) -> Result<IndexTable, TableError> {
        let (magic, mut rd) = bytes
            .split_first_chunk::<8>()
            .ok_or(TableError("shorter than its magic"))?;
        if u64::from_le_bytes(*magic) != INDEX_TABLE_MAGIC {
            return Err(TableError("bad magic"));
        }
        let top = array_len(&mut rd)?;
        if top < 2 || uint(&mut rd)? != INDEX_TABLE_VERSION {
            return Err(TableError("unknown version"));
        }
        let n = array_len(&mut rd)?;
        let mut entries = Vec::with_capacity(n.min(rd.len()));
        for _ in 0..n {
            if array_len(&mut rd)? < 2 {
                return Err(TableError("short entry"));
            }
            let id = raw_id(&mut rd)?;
            let data = raw(&mut rd)?.to_vec();
            let tsec = uint(&mut rd)?;
            let tnsec = uint(&mut rd)?;
            entries.push(TableEntry {
                id,
                data,
                time: DnetTime { tsec, tnsec },
            });
        }
        let mut table = IndexTable {
            entries,
            ..IndexTable::default()
        };
        if top >= 4 {
            table.shard_id = u32::try_from(uint(&mut rd)?).unwrap_or(0);
            table.shard_count = u32::try_from(uint(&mut rd)?).unwrap_or(0);
        }
        Ok(table)
    }

    /// Position of `id`, or where it would go (entries are sorted by id).
    pub fn search(&self, id: &RawId) -> Result<usize, usize> {
        self.entries.binary_search_by(|e| e.id.cmp(id))
    }
}

/// Encode an INDEXES_FIND reply.
pub fn encode_find_results(found: &[FoundObject]) -> Vec<u8> {
    let mut out = Vec::new();
    put_array(&mut out, found.len());
    for f in found {
        put_array(&mut out, 3);
        put_uint(&mut out, FIND_RESULT_VERSION);
        put_raw(&mut out, &f.id.0);
        put_array(&mut out, f.indexes.len());
        for (index, data) in &f.indexes {
            put_array(&mut out, 2);
            put_raw(&mut out, &index.0);
            put_raw(&mut out, data);
        }
    }
    out
}

/// Decode an INDEXES_FIND reply.
pub fn decode_find_results(bytes: &[u8]) -> Result<Vec<FoundObject>, TableError> {
    let mut rd = bytes;
    let n = array_len(&mut rd)?;
    let mut out = Vec::with_capacity(n.min(rd.len()));
    for _ in 0..n {
        if array_len(&mut rd)? != 3 || uint(&mut rd)? != FIND_RESULT_VERSION {
            return Err(TableError("unknown find result version"));
        }
        let id = raw_id(&mut rd)?;
        let m = array_len(&mut rd)?;
        let mut indexes = Vec::with_capacity(m.min(rd.len()));
        for _ in 0..m {
            if array_len(&mut rd)? != 2 {
                return Err(TableError("find entry is not a pair"));
            }
            let index = raw_id(&mut rd)?;
            indexes.push((index, raw(&mut rd)?.to_vec()));
        }
        out.push(FoundObject { id, indexes });
    }
    if !rd.is_empty() {
        return Err(TableError("trailing bytes"));
    }
    Ok(out)
}

fn array_len(rd: &mut &[u8]) -> Result<usize, TableError> {
    let n = rmp::decode::read_array_len(rd).map_err(|_| TableError("expected an array"))?;
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

fn uint(rd: &mut &[u8]) -> Result<u64, TableError> {
    rmp::decode::read_int(rd).map_err(|_| TableError("expected an unsigned integer"))
}

fn take<'a>(rd: &mut &'a [u8], len: usize) -> Result<&'a [u8], TableError> {
    if rd.len() < len {
        return Err(TableError("truncated"));
    }
    let (head, tail) = rd.split_at(len);
    *rd = tail;
    Ok(head)
}

fn be_len(rd: &mut &[u8], width: usize) -> Result<usize, TableError> {
    let bytes = take(rd, width)?;
    let n = bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
    usize::try_from(n).map_err(|_| TableError("raw too long"))
}

fn raw<'a>(rd: &mut &'a [u8]) -> Result<&'a [u8], TableError> {
    let marker = rmp::decode::read_marker(rd).map_err(|_| TableError("expected a raw"))?;
    let len = match marker {
        Marker::FixStr(n) => usize::from(n),
        Marker::Str8 | Marker::Bin8 => be_len(rd, 1)?,
        Marker::Str16 | Marker::Bin16 => be_len(rd, 2)?,
        Marker::Str32 | Marker::Bin32 => be_len(rd, 4)?,
        _ => return Err(TableError("expected a raw")),
    };
    take(rd, len)
}

fn raw_id(rd: &mut &[u8]) -> Result<RawId, TableError> {
    let bytes = raw(rd)?;
    let id: [u8; ID_SIZE_BYTES] = bytes
        .try_into()
        .map_err(|_| TableError("id is not 64 bytes"))?;
    Ok(RawId(id))
}

#[cfg(test)]
#[allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::arithmetic_side_effects
)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn ids_match_the_original_for_the_captured_keys() {
        let doc1 = RawId::from_key(b"doc1");
        let table = object_table_id(&doc1);
        assert_eq!(&table.to_hex()[..16], "91e778083b2263b0");
        assert_eq!(index_shard_of(&table, 2), 0);
        assert_eq!(
            index_shard_of(&object_table_id(&RawId::from_key(b"doc2")), 2),
            1
        );
        let idx_a = RawId::from_key(b"idx-a");
        let shard1 = index_table_id(&idx_a, 1, 2);
        assert_eq!(&shard1.0[..4], &[0x80, 0, 0, 0]);
        assert_eq!(&shard1.0[4..32], &[0u8; 28]);
        assert_eq!(
            shard1.0[32..].to_vec(),
            hex("6a6f0abf963ba1b0b3c15e6a767fa3c13d7a0d22c55fa5f065c9809f92512e36")
        );
        assert_eq!(&index_table_id(&idx_a, 0, 2).0[..4], &[0, 0, 0, 0]);
    }

    #[test]
    fn a_table_encodes_in_the_old_raw_format_and_round_trips() {
        let table = IndexTable {
            entries: vec![TableEntry {
                id: RawId([0x2d; 64]),
                data: b"data-b".to_vec(),
                time: DnetTime { tsec: 0, tnsec: 0 },
            }],
            shard_id: 0,
            shard_count: 2,
        };
        let bytes = table.encode();
        assert_eq!(
            &bytes[..8],
            &[0x27, 0x40, 0x73, 0xe7, 0xfb, 0x8c, 0xa3, 0x5d]
        );
        assert_eq!(&bytes[8..14], &[0x94, 0x02, 0x91, 0x94, 0xda, 0x00]);
        assert_eq!(&bytes[bytes.len() - 4..], &[0, 0, 0, 2]);
        assert_eq!(IndexTable::decode(&bytes).unwrap(), table);
    }

    #[test]
    fn a_raw_of_forty_bytes_is_raw16_not_str8() {
        let mut out = Vec::new();
        put_raw(&mut out, &[1u8; 40]);
        assert_eq!(&out[..3], &[0xda, 0x00, 40]);
        let mut rd = out.as_slice();
        assert_eq!(raw(&mut rd).unwrap(), &[1u8; 40]);
    }

    #[test]
    fn find_results_round_trip_and_garbage_is_an_error() {
        let found = vec![FoundObject {
            id: RawId([1; 64]),
            indexes: vec![(RawId([2; 64]), b"data-a".to_vec())],
        }];
        let bytes = encode_find_results(&found);
        assert_eq!(&bytes[..6], &[0x91, 0x93, 0x01, 0xda, 0x00, 0x40]);
        assert_eq!(decode_find_results(&bytes).unwrap(), found);
        assert!(decode_find_results(&bytes[..bytes.len() - 1]).is_err());
        assert!(IndexTable::decode(b"not a table at all").is_err());
    }
}
