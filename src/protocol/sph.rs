//! `struct sph`: the 128-byte header of an EXEC (server-side processing) payload, its flags,
//! and the split of an EXEC payload into header, event name and data.
//!
//! ```text
//! off  size  field
//!   0    64  src         dnet_raw_id: where replies are routed
//!  64     8  data_size   u64, bytes of data after the event
//!  72     8  flags       u64, DNET_SPH_FLAGS_*
//!  80     4  event_size  i32, bytes of event name right after the header (no NUL)
//!  84     4  status      i32
//!  88     4  __key       i32, unused
//!  92     4  src_key     i32, job key (-1 from clients)
//!  96    32  addr        dnet_addr of the node
//! 128        event (event_size bytes), then data (data_size bytes)
//! ```
//! The payload must be exactly `128 + event_size + data_size` bytes (the server answers
//! -E2BIG otherwise).

use super::{DecodeError, DnetAddr, Reader, Writer};
use crate::key::RawId;

/// Size of `struct sph` on the wire.
pub const SPH_SIZE_BYTES: usize = 128;

/// `sph.flags` bits.
pub mod sph_flags {
    /// The caller blocks and waits for worker replies.
    pub const SRC_BLOCK: u64 = 1 << 0;
    /// This packet is a reply to the blocked job in `src_key`.
    pub const REPLY: u64 = 1 << 1;
    /// Final reply; unblocks the caller.
    pub const FINISH: u64 = 1 << 2;
}

/// A decoded `struct sph`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sph {
    pub src: RawId,
    pub data_size: u64,
    pub flags: u64,
    pub event_size: i32,
    pub status: i32,
    pub key: i32,
    pub src_key: i32,
    pub addr: DnetAddr,
}

impl Sph {
    /// Decode from exactly 128 bytes.
    pub fn decode(bytes: &[u8]) -> Result<Sph, DecodeError> {
        let mut r = Reader::new(bytes, "sph");
        let s = Self::read(&mut r)?;
        r.finish()?;
        Ok(s)
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Sph, DecodeError> {
        Ok(Sph {
            src: RawId(r.array()?),
            data_size: r.u64()?,
            flags: r.u64()?,
            event_size: r.i32()?,
            status: r.i32()?,
            key: r.i32()?,
            src_key: r.i32()?,
            addr: DnetAddr::read(r)?,
        })
    }

    /// Encode into the 128-byte wire form.
    pub fn encode(&self) -> [u8; SPH_SIZE_BYTES] {
        let mut out = [0u8; SPH_SIZE_BYTES];
        let mut w = Writer::new(&mut out);
        w.bytes(&self.src.0);
        w.u64(self.data_size);
        w.u64(self.flags);
        w.i32(self.event_size);
        w.i32(self.status);
        w.i32(self.key);
        w.i32(self.src_key);
        self.addr.write(&mut w);
        out
    }
}

/// An EXEC payload borrowed from a frame: header, event name, data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExecPayload<'a> {
    pub sph: Sph,
    pub event: &'a [u8],
    pub data: &'a [u8],
}

impl<'a> ExecPayload<'a> {
    /// Split an EXEC payload. `SizeMismatch` when the bytes are not exactly
    /// `128 + event_size + data_size`; `InvalidValue` for a negative `event_size`.
    pub fn decode(payload: &'a [u8]) -> Result<ExecPayload<'a>, DecodeError> {
        let mut r = Reader::new(payload, "sph");
        let sph = Sph::read(&mut r)?;
        let event_len = usize::try_from(sph.event_size).map_err(|_| DecodeError::InvalidValue {
            field: "sph.event_size",
            value: i64::from(sph.event_size),
        })?;
        let declared = u64::try_from(event_len)
            .ok()
            .and_then(|e| e.checked_add(sph.data_size))
            .and_then(|d| d.checked_add(SPH_SIZE_BYTES as u64));
        let actual = payload.len() as u64;
        if declared != Some(actual) {
            return Err(DecodeError::SizeMismatch {
                field: "sph.event_size+data_size",
                declared: declared.unwrap_or(u64::MAX),
                actual,
            });
        }
        let event = r.take(event_len)?;
        let data = r.rest();
        Ok(ExecPayload { sph, event, data })
    }

    /// Bytes the wire form takes.
    pub fn encoded_len(&self) -> usize {
        SPH_SIZE_BYTES
            .saturating_add(self.event.len())
            .saturating_add(self.data.len())
    }

    /// Append the wire form to `out`; `event_size` and `data_size` are taken from the slices.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let mut sph = self.sph;
        sph.event_size = i32::try_from(self.event.len()).unwrap_or(i32::MAX);
        sph.data_size = self.data.len() as u64;
        out.extend_from_slice(&sph.encode());
        out.extend_from_slice(self.event);
        out.extend_from_slice(self.data);
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

    fn sample() -> Sph {
        Sph {
            src: RawId::from_key(b"job"),
            data_size: 5,
            flags: sph_flags::SRC_BLOCK,
            event_size: 10,
            status: 0,
            key: 0,
            src_key: -1,
            addr: DnetAddr::from("127.0.0.1:1025".parse::<std::net::SocketAddr>().unwrap()),
        }
    }

    #[test]
    fn sph_roundtrips_and_event_size_sits_at_80() {
        let s = sample();
        let b = s.encode();
        assert_eq!(&b[64..72], &5u64.to_le_bytes());
        assert_eq!(&b[72..80], &1u64.to_le_bytes());
        assert_eq!(&b[80..84], &10i32.to_le_bytes());
        assert_eq!(&b[92..96], &(-1i32).to_le_bytes());
        assert_eq!(&b[96..104], &[2, 0, 4, 1, 127, 0, 0, 1]);
        assert_eq!(Sph::decode(&b).unwrap(), s);
    }

    #[test]
    fn exec_payload_splits_event_and_data() {
        let p = ExecPayload {
            sph: sample(),
            event: b"app@method",
            data: b"hello",
        };
        let bytes = p.encode();
        assert_eq!(bytes.len(), 128 + 10 + 5);
        let back = ExecPayload::decode(&bytes).unwrap();
        assert_eq!(back, p);
        assert_eq!(back.event, b"app@method");
        assert_eq!(back.data, b"hello");
    }

    #[test]
    fn exec_payload_with_wrong_total_size_is_a_size_mismatch() {
        let p = ExecPayload {
            sph: sample(),
            event: b"app@method",
            data: b"hello",
        };
        let mut bytes = p.encode();
        bytes.push(0);
        assert!(matches!(
            ExecPayload::decode(&bytes),
            Err(DecodeError::SizeMismatch { .. })
        ));
        let mut huge = p.encode();
        huge[64..72].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(
            ExecPayload::decode(&huge),
            Err(DecodeError::SizeMismatch { .. })
        ));
        let mut neg = p.encode();
        neg[80..84].copy_from_slice(&(-3i32).to_le_bytes());
        assert!(matches!(
            ExecPayload::decode(&neg),
            Err(DecodeError::InvalidValue { .. })
        ));
    }
}
