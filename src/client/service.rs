//! Per-node service commands of the session: MONITOR_STAT (zlib JSON), BACKEND_STATUS,
//! BACKEND_CONTROL and STATUS, each sent DIRECT to one node address.
//! The body layouts are in `protocol` (`MonitorStatRequest`, `BackendControl`,
//! `BackendStatusList`, `NodeStatus`).

use super::conn::Reply;
use super::entry::{check, to_entries, Decode, NodeStatus, Results};
use super::error::ClientError;
use super::result::{join_all, AsyncResult};
use super::session::Session;
use crate::key::RawId;
pub use crate::protocol::{backend_command, BackendStatus};
use crate::protocol::{
    cmd_flags, command, BackendControl, BackendStatusList, DecodeError, MonitorStatRequest,
};
use std::io::Read;
use std::net::SocketAddr;

/// Largest decompressed MONITOR_STAT document accepted.
pub const MONITOR_JSON_BYTES_MAX: u64 = 64 << 20;

fn decode_backend_status(r: &Reply) -> Result<Vec<BackendStatus>, DecodeError> {
    BackendStatusList::decode(&r.payload).map(|l| l.backends)
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
        let body = MonitorStatRequest { categories }.encode().to_vec();
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
        let body = BackendControl {
            backend_id,
            command: command_code,
            defrag_level,
            delay_ms,
            ids: ids.to_vec(),
        }
        .encode();
        let backend = i32::try_from(backend_id).unwrap_or(-1);
        self.send_to_node(
            addr,
            command::BACKEND_CONTROL,
            backend,
            body,
            decode_backend_status,
        )
    }

    /// STATUS on `addr`: set (or with [`NodeStatus::UNCHANGED`] only read) the node status.
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
