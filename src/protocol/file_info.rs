//! `dnet_file_info` and the LOOKUP / WRITE reply payload built around it.
//!
//! `dnet_file_info`, 112 bytes, NOT packed (natural alignment puts 4 padding bytes at 68):
//!
//! ```text
//! off  size  field
//!   0     4  flen          i32, path length including the NUL
//!   4    64  checksum      sha512 of the data (LOOKUP with DNET_FLAGS_CHECKSUM), else zero
//!  68     4  padding       written as zero, ignored when read
//!  72     8  record_flags  u64, DNET_RECORD_FLAGS_*
//!  80     8  size          u64, data size
//!  88     8  offset        u64, offset of the user data inside the blob file
//!  96    16  mtime         dnet_time {tsec u64, tnsec u64}
//! ```
//!
//! LOOKUP / WRITE reply payload:
//!
//! ```text
//! off  size  field
//!   0    32  dnet_addr       the server's first configured address
//!  32   112  dnet_file_info
//! 144  flen  path            blob file path, NUL included
//! ```

use super::{DecodeError, DnetAddr, DnetTime, Reader, Writer, DNET_ADDR_SIZE_BYTES};

/// Size of `dnet_file_info` on the wire.
pub const FILE_INFO_SIZE_BYTES: usize = 112;
/// Longest accepted path in a lookup reply (`PATH_MAX`).
pub const FILE_PATH_BYTES_MAX: usize = 4096;
/// Fixed part of a lookup reply, before the path.
pub const LOOKUP_REPLY_FIXED_SIZE_BYTES: usize = DNET_ADDR_SIZE_BYTES + FILE_INFO_SIZE_BYTES;

/// A decoded `dnet_file_info` without its `flen`: the path length belongs to the reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileInfo {
    pub checksum: [u8; 64],
    pub record_flags: u64,
    pub size: u64,
    pub offset: u64,
    pub mtime: DnetTime,
}

impl Default for FileInfo {
    fn default() -> Self {
        FileInfo {
            checksum: [0u8; 64],
            record_flags: 0,
            size: 0,
            offset: 0,
            mtime: DnetTime::default(),
        }
    }
}

impl FileInfo {
    /// Decode 112 bytes; returns the info and the `flen` it announced.
    pub fn decode(bytes: &[u8]) -> Result<(FileInfo, i32), DecodeError> {
        let mut r = Reader::new(bytes, "dnet_file_info");
        let out = Self::read(&mut r)?;
        r.finish()?;
        Ok(out)
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<(FileInfo, i32), DecodeError> {
        let flen = r.i32()?;
        let checksum = r.array()?;
        let _padding = r.u32()?;
        let info = FileInfo {
            checksum,
            record_flags: r.u64()?,
            size: r.u64()?,
            offset: r.u64()?,
            mtime: DnetTime::read(r)?,
        };
        Ok((info, flen))
    }

    /// Encode into the 112-byte wire form with the given `flen`.
    pub fn encode(&self, flen: i32) -> [u8; FILE_INFO_SIZE_BYTES] {
        let mut out = [0u8; FILE_INFO_SIZE_BYTES];
        let mut w = Writer::new(&mut out);
        w.i32(flen);
        w.bytes(&self.checksum);
        w.zeros(4);
        w.u64(self.record_flags);
        w.u64(self.size);
        w.u64(self.offset);
        self.mtime.write(&mut w);
        out
    }
}

/// The LOOKUP / WRITE reply payload. `path_with_nul` is exactly the `flen` bytes on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LookupReply {
    pub addr: DnetAddr,
    pub info: FileInfo,
    pub path_with_nul: Vec<u8>,
}

impl LookupReply {
    /// A reply for `path`; the NUL is appended here.
    pub fn new(addr: DnetAddr, info: FileInfo, path: &str) -> LookupReply {
        let mut path_with_nul = Vec::with_capacity(path.len().saturating_add(1));
        path_with_nul.extend_from_slice(path.as_bytes());
        path_with_nul.push(0);
        LookupReply {
            addr,
            info,
            path_with_nul,
        }
    }

    /// The path without its trailing NUL.
    pub fn path(&self) -> &[u8] {
        match self.path_with_nul.split_last() {
            Some((0, head)) => head,
            _ => &self.path_with_nul,
        }
    }

    /// Decode a payload; the path must be exactly `flen` bytes and at most
    /// [`FILE_PATH_BYTES_MAX`].
    pub fn decode(payload: &[u8]) -> Result<LookupReply, DecodeError> {
        let mut r = Reader::new(payload, "lookup_reply");
        let addr = DnetAddr::read(&mut r)?;
        let (info, flen) = FileInfo::read(&mut r)?;
        let path_len = usize::try_from(flen).map_err(|_| DecodeError::InvalidValue {
            field: "dnet_file_info.flen",
            value: i64::from(flen),
        })?;
        if path_len > FILE_PATH_BYTES_MAX {
            return Err(DecodeError::TooLarge {
                field: "dnet_file_info.flen",
                len: u64::from(flen.unsigned_abs()),
                max: FILE_PATH_BYTES_MAX as u64,
            });
        }
        // A reply from the cache carries flen 0 followed by one NUL byte (2.26 sends an
        // empty path with its terminator but does not count it).
        if path_len == 0 && r.remaining() == 1 {
            let path_with_nul = r.take(1)?.to_vec();
            r.finish()?;
            return Ok(LookupReply {
                addr,
                info,
                path_with_nul,
            });
        }
        if path_len != r.remaining() {
            return Err(DecodeError::SizeMismatch {
                field: "dnet_file_info.flen",
                declared: path_len as u64,
                actual: r.remaining() as u64,
            });
        }
        let path_with_nul = r.take(path_len)?.to_vec();
        r.finish()?;
        Ok(LookupReply {
            addr,
            info,
            path_with_nul,
        })
    }

    /// Bytes the wire form takes.
    pub fn encoded_len(&self) -> usize {
        LOOKUP_REPLY_FIXED_SIZE_BYTES.saturating_add(self.path_with_nul.len())
    }

    /// Append the wire form to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let flen = i32::try_from(self.path_with_nul.len()).unwrap_or(i32::MAX);
        out.extend_from_slice(&self.addr.encode());
        out.extend_from_slice(&self.info.encode(flen));
        out.extend_from_slice(&self.path_with_nul);
    }

    /// The wire form as a new vector.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.encode_into(&mut out);
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
    use crate::protocol::record_flags;

    fn captured_write_reply() -> LookupReply {
        LookupReply::new(
            DnetAddr::from("127.0.0.1:1025".parse::<std::net::SocketAddr>().unwrap()),
            FileInfo {
                record_flags: record_flags::EXTHDR | record_flags::CHUNKED_CSUM,
                size: 26,
                offset: 330,
                mtime: DnetTime {
                    tsec: 1_795_806_197,
                    tnsec: 0,
                },
                ..FileInfo::default()
            },
            "/srv/ell/run/data/data-0.0",
        )
    }

    #[test]
    fn write_reply_is_the_captured_171_bytes() {
        let bytes = captured_write_reply().encode();
        assert_eq!(bytes.len(), 171);
        assert_eq!(&bytes[0..8], &[2, 0, 4, 1, 127, 0, 0, 1]);
        assert_eq!(&bytes[28..32], &[0x10, 0, 2, 0]);
        assert_eq!(&bytes[32..36], &27i32.to_le_bytes());
        assert!(bytes[36..104].iter().all(|b| *b == 0), "checksum + padding");
        assert_eq!(&bytes[104..112], &0x140u64.to_le_bytes());
        assert_eq!(&bytes[112..120], &26u64.to_le_bytes());
        assert_eq!(&bytes[120..128], &330u64.to_le_bytes());
        assert_eq!(&bytes[128..136], &1_795_806_197u64.to_le_bytes());
        assert_eq!(&bytes[136..144], &0u64.to_le_bytes());
        assert_eq!(&bytes[144..], b"/srv/ell/run/data/data-0.0\0");
        let back = LookupReply::decode(&bytes).unwrap();
        assert_eq!(back, captured_write_reply());
        assert_eq!(back.path(), b"/srv/ell/run/data/data-0.0");
    }

    #[test]
    fn file_info_leaves_four_padding_bytes_after_the_checksum() {
        let info = FileInfo {
            checksum: [0xaa; 64],
            record_flags: 1,
            size: 2,
            offset: 3,
            mtime: DnetTime { tsec: 4, tnsec: 5 },
        };
        let b = info.encode(9);
        assert_eq!(&b[4..68], &[0xaa; 64]);
        assert_eq!(&b[68..72], &[0, 0, 0, 0]);
        assert_eq!(&b[72..80], &1u64.to_le_bytes());
        assert_eq!(&b[104..112], &5u64.to_le_bytes());
        assert_eq!(FileInfo::decode(&b).unwrap(), (info, 9));
    }

    #[test]
    fn flen_that_disagrees_with_the_payload_is_rejected() {
        let mut bytes = captured_write_reply().encode();
        bytes.pop();
        assert!(matches!(
            LookupReply::decode(&bytes),
            Err(DecodeError::SizeMismatch { .. })
        ));
        let mut neg = captured_write_reply().encode();
        neg[32..36].copy_from_slice(&(-1i32).to_le_bytes());
        assert!(matches!(
            LookupReply::decode(&neg),
            Err(DecodeError::InvalidValue { .. })
        ));
    }
}
