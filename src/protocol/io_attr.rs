//! `dnet_io_attr`: the 208-byte IO descriptor of READ, WRITE, DEL, READ_RANGE, DEL_RANGE
//! and BULK_READ requests and of READ replies.
//!
//! ```text
//! off  size  field
//!   0    64  parent        CAS: sha512 of expected data; READ_RANGE: end key;
//!                          READ reply with IO_FLAGS_CHECKSUM: sha512 of the data
//!  64    64  id            key
//! 128     8  start         READ_RANGE limit start
//! 136     8  num           READ_RANGE limit count; PREPARE reserve; COMMIT total size
//! 144    16  timestamp     dnet_time {tsec u64, tnsec u64}
//! 160     8  user_flags
//! 168     8  total_size    reply: full object size
//! 176     8  record_flags  reply: DNET_RECORD_FLAGS_*
//! 184     4  reserved2
//! 188     4  flags         DNET_IO_FLAGS_*
//! 192     8  offset
//! 200     8  size          0 on READ = to the end
//! ```

use super::reader::{field, put};
use super::{DecodeError, Reader, Writer};
use crate::key::RawId;

/// Size of `dnet_io_attr` on the wire.
pub const IO_ATTR_SIZE_BYTES: usize = 208;

/// `struct dnet_time`: seconds and nanoseconds. The empty time is (u64::MAX, u64::MAX).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct DnetTime {
    pub tsec: u64,
    pub tnsec: u64,
}

impl DnetTime {
    /// The "not set" time: both fields all ones.
    pub const EMPTY: DnetTime = DnetTime {
        tsec: u64::MAX,
        tnsec: u64::MAX,
    };

    pub fn is_empty(&self) -> bool {
        *self == Self::EMPTY
    }

    /// The current wall-clock time.
    pub fn now() -> DnetTime {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        DnetTime {
            tsec: d.as_secs(),
            tnsec: u64::from(d.subsec_nanos()),
        }
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<DnetTime, DecodeError> {
        Ok(DnetTime {
            tsec: r.u64()?,
            tnsec: r.u64()?,
        })
    }

    pub(crate) fn write(&self, w: &mut Writer<'_>) {
        w.u64(self.tsec);
        w.u64(self.tnsec);
    }
}

/// A decoded `dnet_io_attr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IoAttr {
    pub parent: RawId,
    pub id: RawId,
    pub start: u64,
    pub num: u64,
    pub timestamp: DnetTime,
    pub user_flags: u64,
    pub total_size: u64,
    pub record_flags: u64,
    pub reserved2: u32,
    pub flags: u32,
    pub offset: u64,
    pub size: u64,
}

impl IoAttr {
    /// Decode from the first 208 bytes of `bytes`.
    pub fn decode(bytes: &[u8]) -> Result<IoAttr, DecodeError> {
        let mut r = Reader::new(bytes, "dnet_io_attr");
        Self::read(&mut r)
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<IoAttr, DecodeError> {
        Ok(Self::from_wire(r.fixed::<IO_ATTR_SIZE_BYTES>()?))
    }

    /// Decode the fixed 208 bytes: every field at its constant offset (no per-field checks:
    /// the length is the array's).
    fn from_wire(b: &[u8; IO_ATTR_SIZE_BYTES]) -> IoAttr {
        IoAttr {
            parent: RawId(field(b, 0)),
            id: RawId(field(b, 64)),
            start: u64::from_le_bytes(field(b, 128)),
            num: u64::from_le_bytes(field(b, 136)),
            timestamp: DnetTime {
                tsec: u64::from_le_bytes(field(b, 144)),
                tnsec: u64::from_le_bytes(field(b, 152)),
            },
            user_flags: u64::from_le_bytes(field(b, 160)),
            total_size: u64::from_le_bytes(field(b, 168)),
            record_flags: u64::from_le_bytes(field(b, 176)),
            reserved2: u32::from_le_bytes(field(b, 184)),
            flags: u32::from_le_bytes(field(b, 188)),
            offset: u64::from_le_bytes(field(b, 192)),
            size: u64::from_le_bytes(field(b, 200)),
        }
    }

    /// Encode into the 208-byte wire form.
    pub fn encode(&self) -> [u8; IO_ATTR_SIZE_BYTES] {
        let mut out = [0u8; IO_ATTR_SIZE_BYTES];
        put(&mut out, 0, &self.parent.0);
        put(&mut out, 64, &self.id.0);
        put(&mut out, 128, &self.start.to_le_bytes());
        put(&mut out, 136, &self.num.to_le_bytes());
        put(&mut out, 144, &self.timestamp.tsec.to_le_bytes());
        put(&mut out, 152, &self.timestamp.tnsec.to_le_bytes());
        put(&mut out, 160, &self.user_flags.to_le_bytes());
        put(&mut out, 168, &self.total_size.to_le_bytes());
        put(&mut out, 176, &self.record_flags.to_le_bytes());
        put(&mut out, 184, &self.reserved2.to_le_bytes());
        put(&mut out, 188, &self.flags.to_le_bytes());
        put(&mut out, 192, &self.offset.to_le_bytes());
        put(&mut out, 200, &self.size.to_le_bytes());
        out
    }

    /// Append the wire form to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.encode());
    }

    /// Split a WRITE/READ-reply payload into its io_attr and the data after it. The data must
    /// be exactly `io.size` bytes.
    pub fn decode_with_data(payload: &[u8]) -> Result<(IoAttr, &[u8]), DecodeError> {
        let mut r = Reader::new(payload, "dnet_io_attr");
        let io = Self::read(&mut r)?;
        let data = r.rest();
        if data.len() as u64 != io.size {
            return Err(DecodeError::InvalidValue {
                field: "dnet_io_attr.size",
                value: i64::try_from(io.size).unwrap_or(i64::MAX),
            });
        }
        Ok((io, data))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_attr_roundtrips_and_puts_fields_at_their_offsets() {
        let io = IoAttr {
            id: RawId::from_key(b"k"),
            timestamp: DnetTime {
                tsec: 10,
                tnsec: 20,
            },
            user_flags: 0xabc,
            flags: 1 << 13,
            offset: 5,
            size: 26,
            ..IoAttr::default()
        };
        let bytes = io.encode();
        assert_eq!(IoAttr::decode(&bytes).unwrap(), io);
        assert_eq!(&bytes[0x90..0x98], &10u64.to_le_bytes());
        assert_eq!(&bytes[0xbc..0xc0], &(1u32 << 13).to_le_bytes());
        assert_eq!(&bytes[0xc8..0xd0], &26u64.to_le_bytes());
    }

    #[test]
    fn short_io_attr_is_rejected_with_the_field_name() {
        let err = IoAttr::decode(&[0u8; 100]).unwrap_err();
        assert!(matches!(
            err,
            DecodeError::TooShort {
                field: "dnet_io_attr",
                ..
            }
        ));
    }

    #[test]
    fn write_payload_must_carry_exactly_io_size_bytes() {
        let io = IoAttr {
            size: 3,
            ..IoAttr::default()
        };
        let mut p = io.encode().to_vec();
        p.extend_from_slice(b"abc");
        assert_eq!(IoAttr::decode_with_data(&p).unwrap().1, b"abc");
        p.push(b'd');
        assert!(IoAttr::decode_with_data(&p).is_err());
    }
}
