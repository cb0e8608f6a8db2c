//! `dnet_cmd`: the 120-byte header that starts every frame, and the frame splitter.
//!
//! ```text
//! off  size  field
//!   0    64  id.id        key id (REVERSE_LOOKUP: version ints at 0,4,8,12; shard count at 20)
//!  64     4  id.group_id  u32
//!  68     8  id.reserved  u64, zero
//!  76     4  status       i32, 0 or -errno
//!  80     4  cmd          i32, DNET_CMD_*
//!  84     4  backend_id   i32
//!  88     8  trace_id     u64
//!  96     8  flags        u64, DNET_FLAGS_* | DNET_ATTR_* << 32
//! 104     8  trans        u64
//! 112     8  size         u64, payload bytes that follow
//! ```
//! All integers little-endian. A frame is the header plus exactly `size` payload bytes.

use super::reader::{field, put};
use super::DecodeError;
use crate::key::RawId;

/// Size of `dnet_cmd` on the wire.
pub const HEADER_SIZE_BYTES: usize = 120;

/// Byte offsets of the `dnet_cmd` fields (the table above).
pub mod cmd_offset {
    pub const ID: usize = 0;
    pub const GROUP_ID: usize = 64;
    pub const RESERVED: usize = 68;
    pub const STATUS: usize = 76;
    pub const CMD: usize = 80;
    pub const BACKEND_ID: usize = 84;
    pub const TRACE_ID: usize = 88;
    pub const FLAGS: usize = 96;
    pub const TRANS: usize = 104;
    pub const SIZE: usize = 112;
}

/// A decoded `dnet_cmd`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CmdHeader {
    pub id: RawId,
    pub group_id: u32,
    pub reserved: u64,
    pub status: i32,
    pub cmd: i32,
    pub backend_id: i32,
    pub trace_id: u64,
    pub flags: u64,
    pub trans: u64,
    pub size: u64,
}

impl CmdHeader {
    /// Decode a header from exactly its 120 bytes (more bytes are not looked at).
    pub fn decode(bytes: &[u8]) -> Result<CmdHeader, DecodeError> {
        let Some(b) = bytes.first_chunk::<HEADER_SIZE_BYTES>() else {
            return Err(DecodeError::Incomplete {
                needed: HEADER_SIZE_BYTES.saturating_sub(bytes.len()),
            });
        };
        Ok(CmdHeader {
            id: RawId(field(b, cmd_offset::ID)),
            group_id: u32::from_le_bytes(field(b, cmd_offset::GROUP_ID)),
            reserved: u64::from_le_bytes(field(b, cmd_offset::RESERVED)),
            status: i32::from_le_bytes(field(b, cmd_offset::STATUS)),
            cmd: i32::from_le_bytes(field(b, cmd_offset::CMD)),
            backend_id: i32::from_le_bytes(field(b, cmd_offset::BACKEND_ID)),
            trace_id: u64::from_le_bytes(field(b, cmd_offset::TRACE_ID)),
            flags: u64::from_le_bytes(field(b, cmd_offset::FLAGS)),
            trans: u64::from_le_bytes(field(b, cmd_offset::TRANS)),
            size: u64::from_le_bytes(field(b, cmd_offset::SIZE)),
        })
    }

    /// Encode into the 120-byte wire form.
    pub fn encode(&self) -> [u8; HEADER_SIZE_BYTES] {
        let mut out = [0u8; HEADER_SIZE_BYTES];
        put(&mut out, cmd_offset::ID, &self.id.0);
        put(&mut out, cmd_offset::GROUP_ID, &self.group_id.to_le_bytes());
        put(&mut out, cmd_offset::RESERVED, &self.reserved.to_le_bytes());
        put(&mut out, cmd_offset::STATUS, &self.status.to_le_bytes());
        put(&mut out, cmd_offset::CMD, &self.cmd.to_le_bytes());
        put(
            &mut out,
            cmd_offset::BACKEND_ID,
            &self.backend_id.to_le_bytes(),
        );
        put(&mut out, cmd_offset::TRACE_ID, &self.trace_id.to_le_bytes());
        put(&mut out, cmd_offset::FLAGS, &self.flags.to_le_bytes());
        put(&mut out, cmd_offset::TRANS, &self.trans.to_le_bytes());
        put(&mut out, cmd_offset::SIZE, &self.size.to_le_bytes());
        out
    }

    /// Append the wire form to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.encode());
    }

    /// True when the REPLY flag is set.
    pub fn is_reply(&self) -> bool {
        self.flags & super::cmd_flags::REPLY != 0
    }
}

/// One complete frame borrowed from a receive buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    pub header: CmdHeader,
    pub payload: &'a [u8],
}

/// Split one frame off the front of `bytes`.
///
/// Returns the frame and the number of bytes it used, `Incomplete { needed }` when the
/// buffer holds only part of it, or `TooLarge` when `size` exceeds `payload_max_bytes`
/// (checked before anything is allocated or waited for).
pub fn split_frame(
    bytes: &[u8],
    payload_max_bytes: u64,
) -> Result<(Frame<'_>, usize), DecodeError> {
    let header = CmdHeader::decode(bytes)?;
    if header.size > payload_max_bytes {
        return Err(DecodeError::TooLarge {
            field: "dnet_cmd.size",
            len: header.size,
            max: payload_max_bytes,
        });
    }
    // size <= payload_max_bytes, which callers keep far below usize::MAX.
    let payload_len = usize::try_from(header.size).map_err(|_| DecodeError::TooLarge {
        field: "dnet_cmd.size",
        len: header.size,
        max: payload_max_bytes,
    })?;
    let rest = bytes.get(HEADER_SIZE_BYTES..).unwrap_or(&[]);
    match rest.get(..payload_len) {
        Some(payload) => Ok((
            Frame { header, payload },
            HEADER_SIZE_BYTES.saturating_add(payload_len),
        )),
        None => Err(DecodeError::Incomplete {
            needed: payload_len.saturating_sub(rest.len()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> CmdHeader {
        CmdHeader {
            id: RawId::from_key(b"somekey"),
            group_id: 1,
            status: crate::protocol::errno::ENOENT,
            cmd: 5,
            backend_id: 1,
            trace_id: 7,
            flags: 0x210,
            trans: 3,
            size: 4,
            ..CmdHeader::default()
        }
    }

    #[test]
    fn header_roundtrips_byte_exactly() {
        let h = sample();
        let bytes = h.encode();
        assert_eq!(CmdHeader::decode(&bytes).unwrap(), h);
        assert_eq!(&bytes[76..80], &(-2i32).to_le_bytes());
        assert_eq!(&bytes[112..120], &4u64.to_le_bytes());
    }

    #[test]
    fn splitter_reports_how_many_bytes_are_missing() {
        let bytes = sample().encode();
        assert_eq!(
            split_frame(&bytes[..100], 1 << 20),
            Err(DecodeError::Incomplete { needed: 20 })
        );
        assert_eq!(
            split_frame(&bytes, 1 << 20),
            Err(DecodeError::Incomplete { needed: 4 })
        );
        let mut full = bytes.to_vec();
        full.extend_from_slice(b"abcdXYZ");
        let (frame, used) = split_frame(&full, 1 << 20).unwrap();
        assert_eq!(used, 124);
        assert_eq!(frame.payload, b"abcd");
    }

    #[test]
    fn oversized_frame_is_an_error_not_an_allocation() {
        let mut h = sample();
        h.size = 1 << 63;
        let err = split_frame(&h.encode(), 1 << 30).unwrap_err();
        assert!(matches!(err, DecodeError::TooLarge { len, .. } if len == 1 << 63));
    }
}
