//! `dnet_backend_status_list`: the BACKEND_STATUS reply. Each entry is 192 bytes on the wire
//! (measured against the original 2.26.11.1 server: one backend gave a 196-byte payload).
//!
//! ```text
//! list:   0   4  backends_count  u32
//!         4      backends_count x entry (192 B each); the payload must end there
//!
//! entry:
//! off  size  field
//!   0     4  backend_id      u32
//!   4     4  state           i32, UNINITIALIZED -1, DISABLED 0, ENABLED 1,
//!                            ACTIVATING 2, DEACTIVATING 3
//!   8     4  defrag_state    u32, 0 not started, 1 defrag, 2 index sort, 3 compact
//!  12    16  last_start      dnet_time
//!  28     4  last_start_err  i32
//!  32     1  read_only       u8
//!  33     7  reserved_flags  zero
//!  40     4  delay           u32, ms per operation
//!  44   148  reserved        zero on encode, ignored on decode
//! ```

use super::{DecodeError, DnetTime, Reader, Writer};

/// Size of one `dnet_backend_status` entry on the wire.
pub const BACKEND_STATUS_SIZE_BYTES: usize = 192;
/// Size of the `backends_count` prefix.
pub const BACKEND_STATUS_LIST_HEADER_SIZE_BYTES: usize = 4;
const RESERVED_TAIL_BYTES: usize = BACKEND_STATUS_SIZE_BYTES - 44;

/// `dnet_backend_status.state` values.
pub mod backend_state {
    pub const UNINITIALIZED: i32 = -1;
    pub const DISABLED: i32 = 0;
    pub const ENABLED: i32 = 1;
    pub const ACTIVATING: i32 = 2;
    pub const DEACTIVATING: i32 = 3;
}

/// `dnet_backend_status.defrag_state` values.
pub mod defrag_state {
    pub const NOT_STARTED: u32 = 0;
    pub const DEFRAG: u32 = 1;
    pub const INDEX_SORT: u32 = 2;
    pub const COMPACT: u32 = 3;
}

/// One decoded `dnet_backend_status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BackendStatus {
    pub backend_id: u32,
    pub state: i32,
    pub defrag_state: u32,
    pub last_start: DnetTime,
    pub last_start_err: i32,
    pub read_only: bool,
    pub delay_ms: u32,
}

impl BackendStatus {
    fn read(r: &mut Reader<'_>) -> Result<BackendStatus, DecodeError> {
        let backend_id = r.u32()?;
        let state = r.i32()?;
        let defrag_state = r.u32()?;
        let last_start = DnetTime::read(r)?;
        let last_start_err = r.i32()?;
        let read_only = r.u8()? != 0;
        r.take(7)?;
        let delay_ms = r.u32()?;
        r.take(RESERVED_TAIL_BYTES)?;
        Ok(BackendStatus {
            backend_id,
            state,
            defrag_state,
            last_start,
            last_start_err,
            read_only,
            delay_ms,
        })
    }

    /// Encode one 192-byte entry.
    pub fn encode(&self) -> [u8; BACKEND_STATUS_SIZE_BYTES] {
        let mut out = [0u8; BACKEND_STATUS_SIZE_BYTES];
        let mut w = Writer::new(&mut out);
        w.u32(self.backend_id);
        w.i32(self.state);
        w.u32(self.defrag_state);
        self.last_start.write(&mut w);
        w.i32(self.last_start_err);
        w.u8(u8::from(self.read_only));
        w.zeros(7);
        w.u32(self.delay_ms);
        w.zeros(RESERVED_TAIL_BYTES);
        out
    }
}

/// The BACKEND_STATUS reply payload.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BackendStatusList {
    pub backends: Vec<BackendStatus>,
}

impl BackendStatusList {
    /// Decode a payload that holds exactly `backends_count` entries.
    pub fn decode(bytes: &[u8]) -> Result<BackendStatusList, DecodeError> {
        let mut r = Reader::new(bytes, "dnet_backend_status_list");
        let count = r.u32()?;
        let backends = r.counted(
            "dnet_backend_status_list.backends_count",
            i64::from(count),
            BACKEND_STATUS_SIZE_BYTES,
            BackendStatus::read,
        )?;
        r.finish()?;
        Ok(BackendStatusList { backends })
    }

    pub fn encoded_len(&self) -> usize {
        self.backends
            .len()
            .saturating_mul(BACKEND_STATUS_SIZE_BYTES)
            .saturating_add(BACKEND_STATUS_LIST_HEADER_SIZE_BYTES)
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        let count = u32::try_from(self.backends.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&count.to_le_bytes());
        for b in &self.backends {
            out.extend_from_slice(&b.encode());
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

    fn one() -> BackendStatusList {
        BackendStatusList {
            backends: vec![BackendStatus {
                backend_id: 1,
                state: backend_state::ENABLED,
                defrag_state: defrag_state::NOT_STARTED,
                last_start: DnetTime {
                    tsec: 1_795_806_000,
                    tnsec: 7,
                },
                last_start_err: 0,
                read_only: true,
                delay_ms: 12,
            }],
        }
    }

    #[test]
    fn one_backend_makes_the_measured_196_byte_payload() {
        let b = one().encode();
        assert_eq!(b.len(), 196);
        assert_eq!(&b[0..4], &1u32.to_le_bytes());
        let e = &b[4..];
        assert_eq!(&e[4..8], &1i32.to_le_bytes());
        assert_eq!(&e[12..20], &1_795_806_000u64.to_le_bytes());
        assert_eq!(&e[20..28], &7u64.to_le_bytes());
        assert_eq!(e[32], 1);
        assert_eq!(&e[40..44], &12u32.to_le_bytes());
        assert!(e[44..].iter().all(|x| *x == 0));
        assert_eq!(BackendStatusList::decode(&b).unwrap(), one());
    }

    #[test]
    fn status_list_with_a_short_or_long_tail_is_rejected() {
        let b = one().encode();
        assert!(BackendStatusList::decode(&b[..195]).is_err());
        let mut long = b.clone();
        long.push(0);
        assert!(matches!(
            BackendStatusList::decode(&long),
            Err(DecodeError::Trailing { extra: 1, .. })
        ));
    }
}
