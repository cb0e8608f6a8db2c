//! Dialling a node for the benchmark: TCP connect, the REVERSE_LOOKUP handshake as
//! dnet_ioclient 2.26.11.1 sends it, and the reply checks (status 0, same major.minor,
//! the dialled address among the advertised ones). The id container becomes the node's
//! ring points per group.
//!
//! ```text
//! request  header only: cmd 2, flags DIRECT|NOLOCK, trans 0, size 0,
//!          cmd.id = version i32 x4 @0 (2, 26, 11, 1), shard count i32 @20
//! reply    header + dnet_addr_container + dnet_id_container
//! ```

use super::BenchError;
use crate::key::RawId;
use crate::protocol::{
    decode_reverse_lookup_reply, reverse_lookup_request, CmdHeader, HEADER_SIZE_BYTES,
};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Largest handshake reply accepted (addresses plus every ring point of every backend).
pub const HANDSHAKE_REPLY_MAX_BYTES: u64 = 64 << 20;

/// What a node announced about itself.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    pub addr: SocketAddr,
    /// Indexes shard count from the reply's version block.
    pub shard_count: i32,
    /// (group, backend_id, ring points) of every enabled backend.
    pub backends: Vec<(u32, i32, Vec<RawId>)>,
}

/// Connect to `addr`, run the handshake, and return the connected (blocking) stream.
pub fn handshake(addr: SocketAddr, timeout_ms: u64) -> Result<(TcpStream, NodeInfo), BenchError> {
    let timeout = Duration::from_millis(timeout_ms.max(1));
    let io = |e: std::io::Error| BenchError::Connect {
        addr,
        why: format!("could not connect: {e}"),
    };
    let mut stream = TcpStream::connect_timeout(&addr, timeout).map_err(io)?;
    stream.set_nodelay(true).map_err(io)?;
    stream.set_read_timeout(Some(timeout)).map_err(io)?;
    stream.set_write_timeout(Some(timeout)).map_err(io)?;
    stream
        .write_all(&reverse_lookup_request(0).encode())
        .map_err(io)?;
    let bad = |why: String| BenchError::Handshake { addr, why };
    let mut head = [0u8; HEADER_SIZE_BYTES];
    stream.read_exact(&mut head).map_err(io)?;
    let header = CmdHeader::decode(&head).map_err(|e| bad(e.to_string()))?;
    if header.size > HANDSHAKE_REPLY_MAX_BYTES {
        return Err(bad(format!(
            "reply of {} bytes exceeds {HANDSHAKE_REPLY_MAX_BYTES}",
            header.size
        )));
    }
    let mut payload = vec![0u8; header.size as usize];
    stream.read_exact(&mut payload).map_err(io)?;
    let (theirs, announce) =
        decode_reverse_lookup_reply(&header, &payload, 0).map_err(|e| bad(e.to_string()))?;
    let advertised = announce.socket_addrs();
    if !advertised.contains(&addr) {
        return Err(bad(format!(
            "node does not advertise the dialled address (it lists {advertised:?})"
        )));
    }
    let backends = announce
        .ids
        .backends
        .into_iter()
        .filter_map(|b| {
            let group = u32::try_from(b.group_id).ok()?;
            Some((group, b.backend_id, b.ids))
        })
        .collect();
    stream.set_read_timeout(None).map_err(io)?;
    stream.set_write_timeout(None).map_err(io)?;
    Ok((
        stream,
        NodeInfo {
            addr,
            shard_count: theirs.indexes_shard_count,
            backends,
        },
    ))
}
