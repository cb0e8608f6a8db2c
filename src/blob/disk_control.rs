//! `struct eblob_disk_control`: the 96-byte record header, identical in the data file (in
//! front of each record) and in the `.index` file (one per record, in write order).
//!
//! | off | size | field       | meaning                                                  |
//! |----:|-----:|-------------|----------------------------------------------------------|
//! |   0 |   64 | `key`       | record key                                               |
//! |  64 |    8 | `flags`     | `record_flags::*` (REMOVE, NOCSUM, EXTHDR, UNCOMMITTED…) |
//! |  72 |    8 | `data_size` | client bytes, including the 48-byte ext header           |
//! |  80 |    8 | `disk_size` | bytes the record occupies: header + data + slack + footer|
//! |  88 |    8 | `position`  | offset of this header in the data file                   |
//!
//! All integers little-endian.

use crate::key::{RawId, ID_SIZE_BYTES};

/// Size of one header, on disk and in the index.
pub const DISK_CONTROL_SIZE_BYTES: u64 = 96;
/// Offset of the `flags` field, patched alone by a remove.
pub const FLAGS_OFFSET_BYTES: u64 = 64;

/// A decoded `eblob_disk_control`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskControl {
    pub key: RawId,
    pub flags: u64,
    pub data_size: u64,
    pub disk_size: u64,
    pub position: u64,
}

fn u64_at(bytes: &[u8; 96], off: usize) -> u64 {
    let mut v = [0u8; 8];
    if let Some(src) = bytes.get(off..off + 8) {
        v.copy_from_slice(src);
    }
    u64::from_le_bytes(v)
}

impl DiskControl {
    /// Encode to the 96-byte layout.
    pub fn encode(&self) -> [u8; 96] {
        let mut out = [0u8; 96];
        out[..ID_SIZE_BYTES].copy_from_slice(&self.key.0);
        out[64..72].copy_from_slice(&self.flags.to_le_bytes());
        out[72..80].copy_from_slice(&self.data_size.to_le_bytes());
        out[80..88].copy_from_slice(&self.disk_size.to_le_bytes());
        out[88..96].copy_from_slice(&self.position.to_le_bytes());
        out
    }

    /// Decode from exactly 96 bytes.
    pub fn decode(bytes: &[u8; 96]) -> DiskControl {
        let mut key = [0u8; ID_SIZE_BYTES];
        key.copy_from_slice(&bytes[..ID_SIZE_BYTES]);
        DiskControl {
            key: RawId(key),
            flags: u64_at(bytes, 64),
            data_size: u64_at(bytes, 72),
            disk_size: u64_at(bytes, 80),
            position: u64_at(bytes, 88),
        }
    }

    /// Decode the `i`-th header of a buffer of concatenated headers, if it is all there.
    pub fn decode_at(buf: &[u8], i: usize) -> Option<DiskControl> {
        let start = i.checked_mul(96)?;
        let chunk: &[u8; 96] = buf.get(start..start.checked_add(96)?)?.try_into().ok()?;
        Some(Self::decode(chunk))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_control_roundtrip_keeps_every_field_at_its_offset() {
        let dc = DiskControl {
            key: RawId([7u8; 64]),
            flags: 0x41,
            data_size: 1000,
            disk_size: 2000,
            position: 3000,
        };
        let bytes = dc.encode();
        assert_eq!(&bytes[64..72], &0x41u64.to_le_bytes());
        assert_eq!(&bytes[88..96], &3000u64.to_le_bytes());
        assert_eq!(DiskControl::decode(&bytes), dc);
        assert_eq!(DiskControl::decode_at(&bytes, 0), Some(dc));
        assert_eq!(DiskControl::decode_at(&bytes[..95], 0), None);
    }
}
