//! What a node pushes unasked on its links: UPDATE_IDS when a backend's ring points change
//! (to every connection that holds our ids), and the newcomer notice when a node new to us
//! appears (to the links of the nodes that joined us).
//!
//! Newcomer notice (a ROUTE_LIST reply frame, trans 0, status 0, flags REPLY|NOLOCK):
//!
//! | offset | size    | field                                            |
//! |--------|---------|--------------------------------------------------|
//! | 0      | 96      | dnet_cmd: cmd ROUTE_LIST, trans 0, REPLY\|NOLOCK |
//! | 96     | 4       | node_addr_num: the newcomer's address count (n)  |
//! | 100    | 4       | addr_num: n                                      |
//! | 104    | 32 * n  | dnet_addr each: the newcomer's addresses         |

use super::cross;
use super::shard::Shard;
use crate::protocol::{
    cmd_flags, command, AddrContainer, BackendIds, CmdHeader, DnetAddr, IdContainer,
    BACKEND_IDS_FLAG_DISABLE,
};
use bytes::Bytes;
use std::net::SocketAddr;
use std::rc::Rc;

/// One UPDATE_IDS frame announcing (or, with `disable`, withdrawing) backend `idx` as
/// `shard` sees it now: flags DIRECT|NOLOCK, no NEED_ACK, trans 0.
fn update_ids_frame(shard: &Shard, idx: usize, disable: bool) -> Option<Bytes> {
    let b = shard.backends.get(idx)?;
    let payload = IdContainer {
        backends: vec![BackendIds {
            backend_id: i32::try_from(b.backend_id).ok()?,
            group_id: i32::try_from(b.group).ok()?,
            flags: if disable { BACKEND_IDS_FLAG_DISABLE } else { 0 },
            ids: b.ids.borrow().clone(),
        }],
    }
    .encode();
    let header = CmdHeader {
        cmd: command::UPDATE_IDS,
        flags: cmd_flags::DIRECT | cmd_flags::NOLOCK,
        group_id: b.group,
        size: payload.len() as u64,
        ..CmdHeader::default()
    };
    let mut frame = header.encode().to_vec();
    frame.extend_from_slice(&payload);
    Some(Bytes::from(frame))
}

/// Tell every connection that holds our ids (on every shard) that backend `idx` changed:
/// its current ids, or its removal when `disable`. Returns how many connections were told.
pub async fn announce_backend(shard: &Rc<Shard>, idx: usize, disable: bool) -> usize {
    let Some(frame) = update_ids_frame(shard, idx, disable) else {
        return 0;
    };
    let mut told = 0;
    for target in 0..shard.node.shard_count {
        let f = frame.clone();
        told += cross::call(shard, target, move |s| async move {
            s.cluster.push_to_subscribers(&f)
        })
        .await
        .unwrap_or_else(|e| {
            tracing::error!("UPDATE_IDS not pushed from shard {target}: {e}");
            0
        });
    }
    tracing::info!(idx, disable, told, "UPDATE_IDS pushed");
    told
}

/// The newcomer notice: a ROUTE_LIST reply with transaction 0 naming one node, pushed
/// unasked on a joined node's link. A node of ours joins the named node at once; one
/// that does not know the notice drops it as a reply to no transaction.
pub(super) fn newcomer_frame(addrs: &[SocketAddr]) -> Bytes {
    let payload = AddrContainer {
        node_addr_num: i32::try_from(addrs.len()).unwrap_or(i32::MAX),
        addrs: addrs.iter().map(|a| DnetAddr::from(*a)).collect(),
    }
    .encode();
    let header = CmdHeader {
        cmd: command::ROUTE_LIST,
        flags: cmd_flags::REPLY | cmd_flags::NOLOCK,
        trans: 0,
        size: payload.len() as u64,
        ..CmdHeader::default()
    };
    let mut frame = header.encode().to_vec();
    frame.extend_from_slice(&payload);
    Bytes::from(frame)
}
