//! `dnet_id_container`: the per-backend ring ids a node announces in the REVERSE_LOOKUP reply,
//! in JOIN and in UPDATE_IDS. The container must fill its bytes exactly.
//!
//! ```text
//! off  size  field
//!   0     4  backends_count  i32
//!   4        backends_count x {
//!               0   4  backend_id  i32
//!               4   4  group_id    i32
//!               8   4  flags       u32, DNET_BACKEND_DISABLE = 1 (UPDATE_IDS: drop its ids)
//!              12   4  ids_count   u32
//!              16  64*ids_count    ids (64-byte ring ids)
//!            }
//! ```

use super::{DecodeError, Reader, Writer};
use crate::key::{RawId, ID_SIZE_BYTES};

/// Size of the `backends_count` prefix.
pub const ID_CONTAINER_HEADER_SIZE_BYTES: usize = 4;
/// Size of one `dnet_backend_ids` record without its ids.
pub const BACKEND_IDS_SIZE_BYTES: usize = 16;
/// `dnet_backend_ids.flags`: the backend went away; remove its ids.
pub const BACKEND_IDS_FLAG_DISABLE: u32 = 1;

/// One backend's entry: `dnet_backend_ids` and its ids.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BackendIds {
    pub backend_id: i32,
    pub group_id: i32,
    pub flags: u32,
    pub ids: Vec<RawId>,
}

/// A decoded `dnet_id_container`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IdContainer {
    pub backends: Vec<BackendIds>,
}

impl IdContainer {
    /// Decode bytes that hold exactly one container (trailing bytes are an error).
    pub fn decode(bytes: &[u8]) -> Result<IdContainer, DecodeError> {
        let mut r = Reader::new(bytes, "dnet_id_container");
        let c = Self::read(&mut r)?;
        r.finish()?;
        Ok(c)
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<IdContainer, DecodeError> {
        let backends_count = r.i32()?;
        let count = super::count_within(
            "dnet_id_container.backends_count",
            i64::from(backends_count),
            BACKEND_IDS_SIZE_BYTES,
            r.remaining(),
        )?;
        let mut backends = Vec::with_capacity(count);
        for _ in 0..count {
            let backend_id = r.i32()?;
            let group_id = r.i32()?;
            let flags = r.u32()?;
            let ids_count = r.u32()?;
            let ids = r.ids("dnet_backend_ids.ids_count", i64::from(ids_count))?;
            backends.push(BackendIds {
                backend_id,
                group_id,
                flags,
                ids,
            });
        }
        Ok(IdContainer { backends })
    }

    /// Bytes the wire form takes.
    pub fn encoded_len(&self) -> usize {
        self.backends
            .iter()
            .fold(ID_CONTAINER_HEADER_SIZE_BYTES, |acc, b| {
                acc.saturating_add(BACKEND_IDS_SIZE_BYTES)
                    .saturating_add(b.ids.len().saturating_mul(ID_SIZE_BYTES))
            })
    }

    /// Append the wire form to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(
            &i32::try_from(self.backends.len())
                .unwrap_or(i32::MAX)
                .to_le_bytes(),
        );
        for b in &self.backends {
            let mut head = [0u8; BACKEND_IDS_SIZE_BYTES];
            let mut w = Writer::new(&mut head);
            w.i32(b.backend_id);
            w.i32(b.group_id);
            w.u32(b.flags);
            w.u32(u32::try_from(b.ids.len()).unwrap_or(u32::MAX));
            out.extend_from_slice(&head);
            for id in &b.ids {
                out.extend_from_slice(&id.0);
            }
        }
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

    fn sample() -> IdContainer {
        IdContainer {
            backends: vec![
                BackendIds {
                    backend_id: 1,
                    group_id: 1,
                    flags: 0,
                    ids: vec![RawId::from_key(b"a"), RawId::from_key(b"b")],
                },
                BackendIds {
                    backend_id: 2,
                    group_id: 3,
                    flags: BACKEND_IDS_FLAG_DISABLE,
                    ids: vec![],
                },
            ],
        }
    }

    #[test]
    fn id_container_roundtrips_and_puts_fields_at_their_offsets() {
        let c = sample();
        let bytes = c.encode();
        assert_eq!(bytes.len(), c.encoded_len());
        assert_eq!(bytes.len(), 4 + 16 + 128 + 16);
        assert_eq!(&bytes[0..4], &2i32.to_le_bytes());
        assert_eq!(&bytes[4..8], &1i32.to_le_bytes());
        assert_eq!(&bytes[16..20], &2u32.to_le_bytes());
        assert_eq!(&bytes[20..84], &RawId::from_key(b"a").0);
        assert_eq!(&bytes[148..152], &2i32.to_le_bytes());
        assert_eq!(&bytes[156..160], &1u32.to_le_bytes());
        assert_eq!(IdContainer::decode(&bytes).unwrap(), c);
    }

    #[test]
    fn id_container_size_must_match_exactly() {
        let mut bytes = sample().encode();
        bytes.push(0);
        assert!(matches!(
            IdContainer::decode(&bytes),
            Err(DecodeError::Trailing { extra: 1, .. })
        ));
        bytes.truncate(bytes.len() - 2);
        assert!(IdContainer::decode(&bytes).is_err());
    }

    #[test]
    fn huge_ids_count_is_rejected_before_allocation() {
        let mut bytes = vec![1, 0, 0, 0];
        bytes.extend_from_slice(&[1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]);
        bytes.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            IdContainer::decode(&bytes),
            Err(DecodeError::TooLarge { .. })
        ));
        let negative = (-1i32).to_le_bytes();
        assert!(matches!(
            IdContainer::decode(&negative),
            Err(DecodeError::InvalidValue { .. })
        ));
    }
}
