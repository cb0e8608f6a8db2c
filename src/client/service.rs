//! Per-node service commands of the session: MONITOR_STAT (zlib JSON), BACKEND_STATUS,
//! BACKEND_CONTROL and STATUS, each sent DIRECT to one node address.
//!
//! ```text
//! dnet_monitor_stat_request (44): 0 categories u64  8 reserved_int i32  12 reserved[4] u64
//! dnet_backend_control (72+):     0 backend_id u32  4 command u32  8 reserved[13]
//!                                60 defrag_level u32  64 delay u32  68 ids_count u32  72 ids
//! BACKEND_STATUS reply:           0 count u32, then count entries of equal size (192 on 2.26):
//!                                 0 backend_id u32  4 state i32  8 defrag_state u32
//!                                12 last_start {tsec u64, tnsec u64}  28 last_start_err i32
//!                                32 read_only u8   40 delay u32
//! ```

use super::conn::Reply;
use super::entry::{check, to_entries, Decode, NodeStatus, Results};
use super::error::ClientError;
use super::result::{join_all, AsyncResult};
use super::session::Session;
use crate::key::RawId;
use crate::protocol::{cmd_flags, command, DecodeError, DnetTime, Reader};
use std::io::Read;
use std::net::SocketAddr;

/// Largest decompressed MONITOR_STAT document accepted.
pub const MONITOR_JSON_BYTES_MAX: u64 = 64 << 20;

/// One backend's state from BACKEND_STATUS / BACKEND_CONTROL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackendStatus {
    pub backend_id: u32,
    /// UNINITIALIZED -1, DISABLED 0, ENABLED 1, ACTIVATING 2, DEACTIVATING 3.
    pub state: i32,
    pub defrag_state: u32,
    pub last_start: DnetTime,
    pub last_start_err: i32,
    pub read_only: bool,
    pub delay_ms: u32,
}

/// BACKEND_CONTROL commands.
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

fn decode_backend_status(r: &Reply) -> Result<Vec<BackendStatus>, DecodeError> {
    let mut rd = Reader::new(&r.payload, "dnet_backend_status_list");
    let count = usize::try_from(rd.u32()?).unwrap_or(usize::MAX);
    if count == 0 {
        return Ok(Vec::new());
    }
    let each = rd.remaining() / count;
    if each < 48 || each.checked_mul(count) != Some(rd.remaining()) {
        return Err(DecodeError::InvalidValue {
            field: "dnet_backend_status_list.backends_count",
            value: i64::try_from(count).unwrap_or(-1),
        });
    }
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let mut e = Reader::new(rd.take(each)?, "dnet_backend_status");
        let backend_id = e.u32()?;
        let state = e.i32()?;
        let defrag_state = e.u32()?;
        let last_start = DnetTime {
            tsec: e.u64()?,
            tnsec: e.u64()?,
        };
        let last_start_err = e.i32()?;
        let read_only = e.u8()? != 0;
        e.take(7)?;
        let delay_ms = e.u32()?;
        out.push(BackendStatus {
            backend_id,
            state,
            defrag_state,
            last_start,
            last_start_err,
            read_only,
            delay_ms,
        });
    }
    Ok(out)
}

fn decode_monitor(r: &Reply) -> Result<String, DecodeError> {
    let mut out = String::new();
    flate2::read::ZlibDecoder::new(r.payload.as_slice())
        .take(MONITOR_JSON_BYTES_MAX)
        .read_to_string(&mut out)
        .map_err(|_| DecodeError::InvalidValue {
            field: "monitor_stat zlib body",
            value: 0,
        })?;
    Ok(out)
}

fn decode_node_status(r: &Reply) -> Result<NodeStatus, DecodeError> {
    NodeStatus::decode(&r.payload)
}

impl Session {
    /// Send one command straight to the node at `addr` (DIRECT|NOLOCK|NEED_ACK).
    fn send_to_node<T: Send + 'static>(
        &self,
        addr: SocketAddr,
        cmd: i32,
        backend_id: i32,
        payload: Vec<u8>,
        decode: Decode<T>,
    ) -> AsyncResult<Results<T>> {
        let Some(conn) = self.node.conn(&addr) else {
            let e = ClientError::no_route(0, &RawId::ZERO, cmd);
            return AsyncResult::ready(Err(e));
        };
        let header = crate::protocol::CmdHeader {
            cmd,
            backend_id,
            trace_id: self.trace_id,
            flags: cmd_flags::NEED_ACK | cmd_flags::DIRECT | cmd_flags::NOLOCK | self.cflags,
            ..Default::default()
        };
        self.node
            .send(&conn, header, &payload, Some(self.timeout))
            .map(move |r| check(to_entries(r, 0, &RawId::ZERO, cmd, addr, decode)))
    }

    /// MONITOR_STAT from every connected node: decompressed JSON per node.
    pub fn monitor_stat(&self, categories: u64) -> AsyncResult<Results<String>> {
        let mut body = vec![0u8; 44];
        body[..8].copy_from_slice(&categories.to_le_bytes());
        let parts: Vec<_> = self
            .node
            .connections()
            .into_iter()
            .map(|a| {
                self.send_to_node(
                    a,
                    command::MONITOR_STAT,
                    0,
                    body.clone(),
                    decode_monitor as Decode<String>,
                )
                .map(|r| Ok(r.unwrap_or_default()))
            })
            .collect();
        join_all(parts).map(|all| {
            check(
                all?.into_iter()
                    .flat_map(|r| r.unwrap_or_default())
                    .collect(),
            )
        })
    }

    /// BACKEND_STATUS of the node at `addr`.
    pub fn backend_status(&self, addr: SocketAddr) -> AsyncResult<Results<Vec<BackendStatus>>> {
        self.send_to_node(
            addr,
            command::BACKEND_STATUS,
            0,
            Vec::new(),
            decode_backend_status,
        )
    }

    /// BACKEND_CONTROL `command` (see [`backend_command`]) on one backend of `addr`.
    pub fn backend_control(
        &self,
        addr: SocketAddr,
        backend_id: u32,
        command_code: u32,
        defrag_level: u32,
        delay_ms: u32,
        ids: &[RawId],
    ) -> AsyncResult<Results<Vec<BackendStatus>>> {
        let mut body = vec![0u8; 72];
        body[0..4].copy_from_slice(&backend_id.to_le_bytes());
        body[4..8].copy_from_slice(&command_code.to_le_bytes());
        body[60..64].copy_from_slice(&defrag_level.to_le_bytes());
        body[64..68].copy_from_slice(&delay_ms.to_le_bytes());
        body[68..72].copy_from_slice(&(ids.len() as u32).to_le_bytes());
        for id in ids {
            body.extend_from_slice(&id.0);
        }
        let backend = i32::try_from(backend_id).unwrap_or(-1);
        self.send_to_node(
            addr,
            command::BACKEND_CONTROL,
            backend,
            body,
            decode_backend_status,
        )
    }

    /// STATUS on `addr`: set (or with [`NodeStatus::QUERY`] only read) the node status.
    pub fn node_status(
        &self,
        addr: SocketAddr,
        status: NodeStatus,
    ) -> AsyncResult<Results<NodeStatus>> {
        self.send_to_node(
            addr,
            command::STATUS,
            0,
            status.encode().to_vec(),
            decode_node_status,
        )
    }
}
