//! Small fixed control bodies: `dnet_auth` (AUTH), `dnet_node_status` (STATUS),
//! `dnet_monitor_stat_request` (MONITOR_STAT) and `dnet_backend_control` + ids
//! (BACKEND_CONTROL). Each must fill its payload exactly.
//!
//! `dnet_auth`, 64 bytes:
//! ```text
//! off  size  field
//!   0    32  cookie   config string truncated to 31 chars, zero padded
//!  32     8  flags    u64
//!  40    24  unused   3 x u64, zero
//! ```
//! `dnet_node_status`, 12 bytes (-1 / ~0 = "do not change"):
//! ```text
//!   0     4  nflags        i32
//!   4     4  status_flags  i32, EXIT 1, RO 2
//!   8     4  log_level     u32
//! ```
//! `dnet_monitor_stat_request`, 44 bytes packed (any other size is an error):
//! ```text
//!   0     8  categories    u64 bitmask
//!   8     4  reserved_int  i32
//!  12    32  reserved      4 x u64
//! ```
//! `dnet_backend_control`, 72 bytes packed, then `ids_count` 64-byte ids:
//! ```text
//!   0     4  backend_id    u32
//!   4     4  command       u32, ENABLE 0 .. STOP_DEFRAG 7
//!   8    52  reserved      13 x u32, zero
//!  60     4  defrag_level  u32
//!  64     4  delay         u32, ms
//!  68     4  ids_count     u32
//!  72        ids
//! ```

use super::{DecodeError, Reader, Writer};
use crate::key::{RawId, ID_SIZE_BYTES};

pub const AUTH_SIZE_BYTES: usize = 64;
pub const AUTH_COOKIE_SIZE_BYTES: usize = 32;
pub const NODE_STATUS_SIZE_BYTES: usize = 12;
pub const MONITOR_STAT_REQUEST_SIZE_BYTES: usize = 44;
pub const BACKEND_CONTROL_SIZE_BYTES: usize = 72;

/// `dnet_node_status.status_flags` bits.
pub mod status_flags {
    pub const EXIT: i32 = 1 << 0;
    pub const RO: i32 = 1 << 1;
}

/// `dnet_monitor_stat_request.categories` bits.
pub mod monitor_categories {
    pub const CACHE: u64 = 1;
    pub const IO: u64 = 2;
    pub const COMMANDS: u64 = 4;
    pub const BACKEND: u64 = 16;
    pub const STATS: u64 = 32;
    pub const PROCFS: u64 = 64;
    pub const TOP: u64 = 128;
    pub const ALL: u64 = u64::MAX;
}

/// `dnet_backend_control.command` values.
pub mod backend_command {
    pub const ENABLE: u32 = 0;
    pub const DISABLE: u32 = 1;
    pub const START_DEFRAG: u32 = 2;
    pub const SET_IDS: u32 = 3;
    pub const READ_ONLY: u32 = 4;
    pub const WRITEABLE: u32 = 5;
    pub const CTL: u32 = 6;
    pub const STOP_DEFRAG: u32 = 7;
}

fn exact<T>(
    bytes: &[u8],
    field: &'static str,
    read: impl FnOnce(&mut Reader<'_>) -> Result<T, DecodeError>,
) -> Result<T, DecodeError> {
    let mut r = Reader::new(bytes, field);
    let v = read(&mut r)?;
    r.finish()?;
    Ok(v)
}

/// A decoded `dnet_auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Auth {
    pub cookie: [u8; AUTH_COOKIE_SIZE_BYTES],
    pub flags: u64,
}

impl Auth {
    /// The cookie as the original builds it: at most 31 bytes of `text`, zero padded.
    pub fn from_cookie_text(text: &str) -> Auth {
        let mut cookie = [0u8; AUTH_COOKIE_SIZE_BYTES];
        for (dst, src) in cookie.iter_mut().zip(
            text.as_bytes()
                .iter()
                .take(AUTH_COOKIE_SIZE_BYTES.saturating_sub(1)),
        ) {
            *dst = *src;
        }
        Auth { cookie, flags: 0 }
    }

    pub fn decode(bytes: &[u8]) -> Result<Auth, DecodeError> {
        exact(bytes, "dnet_auth", |r| {
            let cookie = r.array()?;
            let flags = r.u64()?;
            r.take(24)?;
            Ok(Auth { cookie, flags })
        })
    }

    pub fn encode(&self) -> [u8; AUTH_SIZE_BYTES] {
        let mut out = [0u8; AUTH_SIZE_BYTES];
        let mut w = Writer::new(&mut out);
        w.bytes(&self.cookie);
        w.u64(self.flags);
        w.zeros(24);
        out
    }
}

/// A decoded `dnet_node_status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NodeStatus {
    pub nflags: i32,
    pub status_flags: i32,
    pub log_level: u32,
}

impl NodeStatus {
    /// The "change nothing" request: every field all ones.
    pub const UNCHANGED: NodeStatus = NodeStatus {
        nflags: -1,
        status_flags: -1,
        log_level: u32::MAX,
    };

    pub fn decode(bytes: &[u8]) -> Result<NodeStatus, DecodeError> {
        exact(bytes, "dnet_node_status", |r| {
            Ok(NodeStatus {
                nflags: r.i32()?,
                status_flags: r.i32()?,
                log_level: r.u32()?,
            })
        })
    }

    pub fn encode(&self) -> [u8; NODE_STATUS_SIZE_BYTES] {
        let mut out = [0u8; NODE_STATUS_SIZE_BYTES];
        let mut w = Writer::new(&mut out);
        w.i32(self.nflags);
        w.i32(self.status_flags);
        w.u32(self.log_level);
        out
    }
}

/// A decoded `dnet_monitor_stat_request`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MonitorStatRequest {
    pub categories: u64,
}

impl MonitorStatRequest {
    /// Decode exactly 44 bytes; the reserved fields are ignored.
    pub fn decode(bytes: &[u8]) -> Result<MonitorStatRequest, DecodeError> {
        if bytes.len() != MONITOR_STAT_REQUEST_SIZE_BYTES {
            return Err(DecodeError::SizeMismatch {
                field: "dnet_monitor_stat_request",
                declared: MONITOR_STAT_REQUEST_SIZE_BYTES as u64,
                actual: bytes.len() as u64,
            });
        }
        exact(bytes, "dnet_monitor_stat_request", |r| {
            let categories = r.u64()?;
            r.take(36)?;
            Ok(MonitorStatRequest { categories })
        })
    }

    pub fn encode(&self) -> [u8; MONITOR_STAT_REQUEST_SIZE_BYTES] {
        let mut out = [0u8; MONITOR_STAT_REQUEST_SIZE_BYTES];
        Writer::new(&mut out).u64(self.categories);
        out
    }
}

/// A decoded `dnet_backend_control` with its ids (`ids_count` is `ids.len()`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BackendControl {
    pub backend_id: u32,
    pub command: u32,
    pub defrag_level: u32,
    pub delay_ms: u32,
    pub ids: Vec<RawId>,
}

impl BackendControl {
    pub fn decode(bytes: &[u8]) -> Result<BackendControl, DecodeError> {
        exact(bytes, "dnet_backend_control", |r| {
            let backend_id = r.u32()?;
            let command = r.u32()?;
            r.take(52)?;
            let defrag_level = r.u32()?;
            let delay_ms = r.u32()?;
            let ids_count = r.u32()?;
            let ids = r.ids("dnet_backend_control.ids_count", i64::from(ids_count))?;
            Ok(BackendControl {
                backend_id,
                command,
                defrag_level,
                delay_ms,
                ids,
            })
        })
    }

    pub fn encoded_len(&self) -> usize {
        BACKEND_CONTROL_SIZE_BYTES.saturating_add(self.ids.len().saturating_mul(ID_SIZE_BYTES))
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut head = [0u8; BACKEND_CONTROL_SIZE_BYTES];
        let mut w = Writer::new(&mut head);
        w.u32(self.backend_id);
        w.u32(self.command);
        w.zeros(52);
        w.u32(self.defrag_level);
        w.u32(self.delay_ms);
        w.u32(u32::try_from(self.ids.len()).unwrap_or(u32::MAX));
        let mut out = Vec::with_capacity(self.encoded_len());
        out.extend_from_slice(&head);
        for id in &self.ids {
            out.extend_from_slice(&id.0);
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
    fn auth_cookie_is_truncated_to_31_bytes_and_flags_sit_at_32() {
        let mut a = Auth::from_cookie_text(&"x".repeat(40));
        a.flags = 0x0102;
        let b = a.encode();
        assert_eq!(&b[..31], "x".repeat(31).as_bytes());
        assert_eq!(b[31], 0);
        assert_eq!(&b[32..40], &0x0102u64.to_le_bytes());
        assert!(b[40..].iter().all(|x| *x == 0));
        assert_eq!(Auth::decode(&b).unwrap(), a);
        assert!(Auth::decode(&b[..63]).is_err());
    }

    #[test]
    fn node_status_roundtrips_and_unchanged_is_all_ones() {
        assert_eq!(NodeStatus::UNCHANGED.encode(), [0xff; 12]);
        let s = NodeStatus {
            nflags: 1,
            status_flags: status_flags::RO,
            log_level: 4,
        };
        let b = s.encode();
        assert_eq!(&b[4..8], &2i32.to_le_bytes());
        assert_eq!(NodeStatus::decode(&b).unwrap(), s);
    }

    #[test]
    fn monitor_request_of_any_other_size_is_rejected() {
        let req = MonitorStatRequest {
            categories: monitor_categories::ALL,
        };
        let b = req.encode();
        assert_eq!(MonitorStatRequest::decode(&b).unwrap(), req);
        assert!(matches!(
            MonitorStatRequest::decode(&b[..43]),
            Err(DecodeError::SizeMismatch { actual: 43, .. })
        ));
        let mut long = b.to_vec();
        long.push(0);
        assert!(MonitorStatRequest::decode(&long).is_err());
    }

    #[test]
    fn backend_control_fields_sit_at_their_offsets_and_ids_follow() {
        let c = BackendControl {
            backend_id: 3,
            command: backend_command::SET_IDS,
            defrag_level: 9,
            delay_ms: 250,
            ids: vec![RawId::from_key(b"x")],
        };
        let b = c.encode();
        assert_eq!(b.len(), 72 + 64);
        assert_eq!(&b[4..8], &3u32.to_le_bytes());
        assert_eq!(&b[60..64], &9u32.to_le_bytes());
        assert_eq!(&b[64..68], &250u32.to_le_bytes());
        assert_eq!(&b[68..72], &1u32.to_le_bytes());
        assert_eq!(BackendControl::decode(&b).unwrap(), c);
        assert!(BackendControl::decode(&b[..b.len() - 1]).is_err());
    }
}
