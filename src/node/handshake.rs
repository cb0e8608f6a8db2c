//! The connection handshake: REVERSE_LOOKUP (version check, our addresses and ring points),
//! ROUTE_LIST (the nodes we know) and AUTH (cookie compare).

use super::reply::{Frames, Replies};
use super::shard::Shard;
use crate::key::RawId;
use crate::protocol::{
    cmd_flags, errno, AddrContainer, BackendIds, CmdHeader, DnetAddr, IdContainer, PROTOCOL_VERSION,
};
use std::rc::Rc;

/// Read the four version ints a peer put into `cmd.id`.
pub fn version_of(id: &RawId) -> [i32; 4] {
    let mut v = [0i32; 4];
    for (i, slot) in v.iter_mut().enumerate() {
        let at = i * 4;
        let mut b = [0u8; 4];
        b.copy_from_slice(id.0.get(at..at + 4).unwrap_or(&[0; 4]));
        *slot = i32::from_le_bytes(b);
    }
    v
}

/// Our version and indexes shard count, encoded as `cmd.id`.
pub fn our_version_id(indexes_shard_count: i32) -> RawId {
    let mut id = RawId::ZERO;
    for (i, v) in PROTOCOL_VERSION.iter().enumerate() {
        id.0[i * 4..i * 4 + 4].copy_from_slice(&v.to_le_bytes());
    }
    id.0[20..24].copy_from_slice(&indexes_shard_count.to_le_bytes());
    id
}

fn our_addresses(shard: &Shard) -> Vec<DnetAddr> {
    shard
        .node
        .addresses
        .iter()
        .map(|a| DnetAddr::from(*a))
        .collect()
}

/// REVERSE_LOOKUP: refuse another major.minor with -EPROTO (and close), else answer with our
/// addresses and the ring points of every enabled backend. Returns whether to keep the
/// connection open.
pub fn reverse_lookup(shard: &Rc<Shard>, header: &CmdHeader, frames: &mut Frames) -> bool {
    let theirs = version_of(&header.id);
    if theirs[0] != PROTOCOL_VERSION[0] || theirs[1] != PROTOCOL_VERSION[1] {
        tracing::warn!(?theirs, "handshake with an incompatible protocol version");
        frames.error(header, errno::EPROTO);
        return false;
    }
    let addrs = our_addresses(shard);
    let node_addr_num = i32::try_from(addrs.len()).unwrap_or(i32::MAX);
    let mut payload = AddrContainer {
        node_addr_num,
        addrs,
    }
    .encode();
    payload.extend_from_slice(&id_container(shard).encode());
    let mut reply = *header;
    reply.id = our_version_id(shard.node.config.options.indexes_shard_count);
    reply.group_id = 0;
    reply.status = 0;
    reply.flags = cmd_flags::NOLOCK | cmd_flags::REPLY;
    reply.size = payload.len() as u64;
    let mut frame = reply.encode().to_vec();
    frame.extend_from_slice(&payload);
    frames.push_raw(frame.into());
    true
}

/// The ids of every enabled backend, as the handshake and JOIN carry them.
pub fn id_container(shard: &Shard) -> IdContainer {
    let backends = shard
        .backends
        .iter()
        .filter(|b| b.is_enabled())
        .map(|b| BackendIds {
            backend_id: i32::try_from(b.backend_id).unwrap_or(i32::MAX),
            group_id: i32::try_from(b.group).unwrap_or(i32::MAX),
            flags: 0,
            ids: b.ids.borrow().clone(),
        })
        .collect();
    IdContainer { backends }
}

/// ROUTE_LIST: one final reply listing the addresses of the DHT nodes we know: ourselves,
/// then every joined peer with the same address count (clients never appear in it).
pub fn route_list(shard: &Rc<Shard>, header: &CmdHeader, frames: &mut Frames) {
    let mut addrs = our_addresses(shard);
    let per_node = addrs.len();
    let node_addr_num = i32::try_from(per_node).unwrap_or(i32::MAX);
    for (_, peer) in shard.cluster.nodes() {
        if peer.len() == per_node {
            addrs.extend(peer.into_iter().map(DnetAddr::from));
        }
    }
    let payload = AddrContainer {
        node_addr_num,
        addrs,
    }
    .encode();
    let mut reply = *header;
    reply.status = 0;
    reply.flags = cmd_flags::NOLOCK | cmd_flags::REPLY;
    reply.size = payload.len() as u64;
    let mut frame = reply.encode().to_vec();
    frame.extend_from_slice(&payload);
    frames.push_raw(frame.into());
}

/// AUTH: compare all 32 cookie bytes; a mismatch is acked with -EPERM and the link drops.
pub fn auth(shard: &Rc<Shard>, header: &CmdHeader, payload: &[u8], frames: &mut Frames) -> bool {
    let ours = &shard.node.config.options.auth_cookie;
    let matches = payload
        .get(..32)
        .is_some_and(|theirs| theirs == ours.as_slice());
    if matches {
        frames.ack(header, 0);
        true
    } else {
        frames.error(header, errno::EPERM);
        false
    }
}
