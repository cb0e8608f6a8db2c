//! Raw requests `dnet_recovery` sends to one backend of one node (DIRECT|DIRECT_BACKEND)
//! over the client, each started at once and waited for later: LOOKUP, READ, WRITE, SEND
//! and DEL, plus the route table as (group, point, node, backend) owners. ITERATOR runs on
//! connections of its own (`stream`).

use crate::client::Replies;
use crate::client::{AsyncResult, ClientError, Node};
use crate::key::RawId;
use crate::protocol::{
    cmd_flags, command, errno, iflags, CmdHeader, DnetTime, IoAttr, IteratorResponse, LookupReply,
    ServerSendRequest,
};
use crate::routing::Routes;
use std::net::SocketAddr;
use std::time::Duration;

/// One backend of one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Place {
    pub addr: SocketAddr,
    pub backend_id: i32,
    pub group: u32,
}

/// Metadata of a key as an iterator reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyMeta {
    pub key: RawId,
    pub timestamp: DnetTime,
    pub size: u64,
    pub user_flags: u64,
}

/// The current owners per group, and every place of the given groups.
pub fn routes(node: &Node, groups: &[u32]) -> (Routes<Place>, Vec<Place>) {
    let mut routes = Routes::new();
    let mut places = Vec::new();
    for (group, point, addr, backend_id) in node.routes() {
        if !groups.contains(&group) {
            continue;
        }
        let place = Place {
            addr,
            backend_id,
            group,
        };
        let _ = routes.insert_points(group, &[point], place);
        if !places.contains(&place) {
            places.push(place);
        }
    }
    places.sort();
    (routes, places)
}

fn header(place: &Place, cmd: i32, id: RawId) -> CmdHeader {
    CmdHeader {
        id,
        group_id: place.group,
        cmd,
        backend_id: place.backend_id,
        flags: cmd_flags::NEED_ACK | cmd_flags::DIRECT | cmd_flags::DIRECT_BACKEND,
        ..CmdHeader::default()
    }
}

/// Send one request to `place` without waiting for its replies.
fn start(
    node: &Node,
    place: &Place,
    header: CmdHeader,
    payload: &[u8],
    timeout: Duration,
) -> Result<Pending, ClientError> {
    let conn = node.conn(&place.addr).ok_or_else(|| {
        ClientError::new(errno::ENXIO, format!("no connection to {}", place.addr))
    })?;
    Ok(Pending(node.send(&conn, header, payload, Some(timeout))))
}

/// A request on its way; `wait` gives its replies.
pub struct Pending(AsyncResult<Replies>);

impl Pending {
    pub fn wait(self) -> Result<Vec<(CmdHeader, Vec<u8>)>, ClientError> {
        let replies = self.0.wait()?;
        Ok(replies.into_iter().map(|r| (r.header, r.payload)).collect())
    }
}

fn first_error(replies: &[(CmdHeader, Vec<u8>)]) -> Option<i32> {
    replies.iter().map(|(h, _)| h.status).find(|s| *s != 0)
}

/// Send a LOOKUP of `id` at `place`; `lookup_done` waits for it.
pub fn start_lookup(
    node: &Node,
    place: &Place,
    id: RawId,
    timeout: Duration,
) -> Result<Pending, ClientError> {
    start(
        node,
        place,
        header(place, command::LOOKUP, id),
        &[],
        timeout,
    )
}

/// (timestamp, size) a LOOKUP sent with `start_lookup` found; `None` when not there.
pub fn lookup_done(pending: Pending) -> Result<Option<(DnetTime, u64)>, ClientError> {
    let replies = pending.wait()?;
    match first_error(&replies) {
        Some(errno::ENOENT) => return Ok(None),
        Some(s) => return Err(ClientError::from_status(s)),
        None => {}
    }
    for (_, payload) in &replies {
        if let Ok(r) = LookupReply::decode(payload) {
            return Ok(Some((r.info.mtime, r.info.size)));
        }
    }
    Ok(None)
}

/// Send a READ of `id` at `place`; `read_done` waits for it.
pub fn start_read(
    node: &Node,
    place: &Place,
    id: RawId,
    timeout: Duration,
) -> Result<Pending, ClientError> {
    let io = IoAttr {
        parent: id,
        id,
        ..IoAttr::default()
    };
    start(
        node,
        place,
        header(place, command::READ, id),
        &io.encode(),
        timeout,
    )
}

/// The value and io attributes a READ sent with `start_read` returned.
pub fn read_done(pending: Pending) -> Result<(IoAttr, Vec<u8>), ClientError> {
    let replies = pending.wait()?;
    if let Some(s) = first_error(&replies) {
        return Err(ClientError::from_status(s));
    }
    for (_, payload) in &replies {
        if let Ok((io, data)) = IoAttr::decode_with_data(payload) {
            return Ok((io, data.to_vec()));
        }
    }
    Err(ClientError::from_status(errno::EIO))
}

/// Send a WRITE of `data` with the timestamp and user flags of `meta`; `status_done` waits.
pub fn start_write(
    node: &Node,
    place: &Place,
    id: RawId,
    meta: &IoAttr,
    data: &[u8],
    timeout: Duration,
) -> Result<Pending, ClientError> {
    let io = IoAttr {
        parent: id,
        id,
        size: data.len() as u64,
        timestamp: meta.timestamp,
        user_flags: meta.user_flags,
        ..IoAttr::default()
    };
    let mut body = io.encode().to_vec();
    body.extend_from_slice(data);
    start(
        node,
        place,
        header(place, command::WRITE, id),
        &body,
        timeout,
    )
}

/// Wait for a request that answers with a status only.
pub fn status_done(pending: Pending) -> Result<(), ClientError> {
    match first_error(&pending.wait()?) {
        Some(s) => Err(ClientError::from_status(s)),
        None => Ok(()),
    }
}

/// Send SEND to `place`: it copies each of `keys` it holds to the owners in `groups`
/// (checking the destination's timestamp first unless `overwrite`); `send_done` waits.
pub fn start_server_send(
    node: &Node,
    place: &Place,
    keys: Vec<RawId>,
    groups: &[u32],
    overwrite: bool,
    timeout: Duration,
) -> Result<Pending, ClientError> {
    let req = ServerSendRequest {
        timeout: i32::try_from(timeout.as_secs()).unwrap_or(i32::MAX),
        iflags: if overwrite { iflags::OVERWRITE } else { 0 },
        ids: keys,
        groups: groups
            .iter()
            .filter_map(|g| i32::try_from(*g).ok())
            .collect(),
    };
    let mut h = header(place, command::SEND, RawId::ZERO);
    h.flags |= cmd_flags::NOLOCK;
    start(node, place, h, &req.encode(), timeout)
}

/// The per-key statuses a SEND answered; keys it did not answer for are missing. An error
/// of the request as a whole (the node refused SEND) is the `Err`.
pub fn send_done(pending: Pending) -> Result<Vec<(RawId, i32)>, ClientError> {
    let replies = pending.wait()?;
    let mut out = Vec::with_capacity(replies.len());
    for (h, payload) in &replies {
        if let Ok((resp, _)) = IteratorResponse::decode_with_data(payload) {
            out.push((resp.key, resp.status));
        } else if h.status != 0 {
            return Err(ClientError::from_status(h.status));
        }
    }
    Ok(out)
}

/// Send a DEL of `id` at `place`; `status_done` waits for it.
pub fn start_remove(
    node: &Node,
    place: &Place,
    id: RawId,
    timeout: Duration,
) -> Result<Pending, ClientError> {
    let io = IoAttr {
        parent: id,
        id,
        ..IoAttr::default()
    };
    start(
        node,
        place,
        header(place, command::DEL, id),
        &io.encode(),
        timeout,
    )
}
