//! The Elliptics ext header (`dnet_ext_list_hdr`, 48 bytes) in front of every value.
//!
//! | off | size | field       | value                    |
//! |----:|-----:|-------------|--------------------------|
//! |   0 |    1 | `version`   | 1                        |
//! |   1 |    3 | pad         | 0                        |
//! |   4 |    4 | `size` u32  | 0 (no extensions)        |
//! |   8 |   16 | `timestamp` | dnet_time {tsec, tnsec}  |
//! |  24 |    8 | `flags`     | user_flags               |
//! |  32 |   16 | pad         | 0                        |

use crate::protocol::DnetTime;

/// Size of the ext header.
pub const EXT_HEADER_SIZE_BYTES: u64 = 48;
/// `DNET_EXT_VERSION_V1`.
pub const EXT_VERSION_V1: u8 = 1;

/// A decoded ext header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtHeader {
    pub timestamp: DnetTime,
    pub user_flags: u64,
}

fn u64_at(bytes: &[u8; 48], off: usize) -> u64 {
    let mut v = [0u8; 8];
    if let Some(src) = bytes.get(off..off + 8) {
        v.copy_from_slice(src);
    }
    u64::from_le_bytes(v)
}

impl ExtHeader {
    pub fn encode(&self) -> [u8; 48] {
        let mut out = [0u8; 48];
        out[0] = EXT_VERSION_V1;
        out[8..16].copy_from_slice(&self.timestamp.tsec.to_le_bytes());
        out[16..24].copy_from_slice(&self.timestamp.tnsec.to_le_bytes());
        out[24..32].copy_from_slice(&self.user_flags.to_le_bytes());
        out
    }

    /// Decode; any version is accepted (the fields read are at the same place in all).
    pub fn decode(bytes: &[u8; 48]) -> ExtHeader {
        ExtHeader {
            timestamp: DnetTime {
                tsec: u64_at(bytes, 8),
                tnsec: u64_at(bytes, 16),
            },
            user_flags: u64_at(bytes, 24),
        }
    }

    /// Decode from the front of a buffer that may be short (then all zero).
    pub fn decode_prefix(buf: &[u8]) -> ExtHeader {
        let mut b = [0u8; 48];
        if let Some(src) = buf.get(..48) {
            b.copy_from_slice(src);
        }
        Self::decode(&b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ext_header_roundtrip_puts_version_time_and_flags_in_place() {
        let h = ExtHeader {
            timestamp: DnetTime { tsec: 5, tnsec: 6 },
            user_flags: 0xabcd,
        };
        let b = h.encode();
        assert_eq!(b[0], 1);
        assert_eq!(&b[8..16], &5u64.to_le_bytes());
        assert_eq!(&b[24..32], &0xabcdu64.to_le_bytes());
        assert_eq!(ExtHeader::decode(&b), h);
    }
}
