//! The outgoing join links of this node. Shard 0 owns them, one task per remote: connect,
//! REVERSE_LOOKUP (version, addresses, ids), JOIN, AUTH, then watch the link for UPDATE_IDS
//! until it dies, and retry every `check_timeout`. Joins are rare and long-lived, so one
//! owner keeps the announcement logic in one place; the traffic itself goes over each
//! shard's own forward links (`forward`).
//!
//! Route discovery (spec §1.6 step 7), at once rather than at the next route check: as soon
//! as a join link is up, shard 0 asks that node for its ROUTE_LIST and starts a join link to
//! every node named there that it neither knows nor already joins, never to one of its own
//! addresses; a node that joined us hears of every later newcomer on its link (the notice
//! of `peers`) and joins it the same way. Every `check_timeout` the joined and known nodes
//! are asked again, which heals whatever a lost link missed. A discovered link stands by
//! while its node is known through another link (such as that node's own JOIN to us), so
//! two nodes that find each other do not race to join twice.

use super::forward::{dial_with_reply, FrameReader};
use super::handshake;
use super::outbox::write_loop;
use super::outbox::Outbox;
use super::peers::{broadcast, collides, socket_addrs, Change, Source};
use super::shard::Shard;
use crate::protocol::{
    cmd_flags, command, errno, AddrContainer, Auth, CmdHeader, DnetAddr, Errno, IdContainer,
    NodeAnnouncement,
};
use crate::runtime::TcpStream;
use bytes::Bytes;
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

/// The remotes shard 0 keeps (or tries to keep) a join link to.
type Joining = Rc<RefCell<BTreeSet<SocketAddr>>>;

/// Start the join links (shard 0 only, when `join` is set).
pub fn start_joining(shard: &Rc<Shard>) {
    let opts = &shard.node.config.options;
    if shard.index != 0 || !opts.join {
        return;
    }
    let joining: Joining = Rc::default();
    for remote in &opts.remote {
        match remote.resolve() {
            Ok(addr) if !shard.node.addresses.contains(&addr) => {
                if joining.borrow_mut().insert(addr) {
                    crate::runtime::spawn(join_loop(shard.clone(), joining.clone(), addr, false));
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!("remote {remote:?} cannot be resolved: {e}"),
        }
    }
    crate::runtime::spawn(discover_loop(shard.clone(), joining));
}

/// Wait one `check_timeout`; false when the node shuts down meanwhile.
async fn wait_period(shard: &Rc<Shard>) -> bool {
    let period = Duration::from_secs(shard.node.config.options.check_timeout_s.max(1));
    let stop = std::pin::pin!(shard.shutdown_signal());
    let wait = std::pin::pin!(crate::runtime::sleep(period));
    futures::future::select(stop, wait).await;
    !shard.is_shutting_down()
}

/// Whether some link (ours or the peer's JOIN) already made `addr`'s node known.
fn is_known(shard: &Shard, addr: SocketAddr) -> bool {
    shard
        .cluster
        .nodes()
        .iter()
        .any(|(first, addrs)| *first == addr || addrs.contains(&addr))
}

/// Every `check_timeout`: ask the joined and known nodes for their ROUTE_LIST and join
/// the nodes they name that are new to us.
async fn discover_loop(shard: Rc<Shard>, joining: Joining) {
    while wait_period(&shard).await {
        let mut ask: BTreeSet<SocketAddr> = joining.borrow().clone();
        ask.extend(shard.cluster.nodes().into_iter().map(|(first, _)| first));
        for remote in ask {
            learn_from(&shard, &joining, remote).await;
        }
    }
}

/// Ask `remote` for its ROUTE_LIST and join the nodes it names that are new to us.
async fn learn_from(shard: &Rc<Shard>, joining: &Joining, remote: SocketAddr) {
    match route_list_of(shard, remote).await {
        Ok(named) => join_new(shard, joining, named, remote),
        Err(status) => tracing::debug!(%remote, status, "route list not available"),
    }
}

/// Start a join link to each of `named` that is neither ours, nor known, nor joined yet.
fn join_new(shard: &Rc<Shard>, joining: &Joining, named: Vec<SocketAddr>, via: SocketAddr) {
    for addr in named {
        let ours = shard.node.addresses.contains(&addr);
        if ours || is_known(shard, addr) || !joining.borrow_mut().insert(addr) {
            continue;
        }
        tracing::info!(%addr, %via, "a new node named; joining it");
        crate::runtime::spawn(join_loop(shard.clone(), joining.clone(), addr, true));
    }
}

/// The dial address (the one at `index` of each node's list) of every node `list` names.
fn dial_addrs(list: &AddrContainer, index: usize) -> Vec<SocketAddr> {
    let per_node = usize::try_from(list.node_addr_num).unwrap_or(0).max(1);
    socket_addrs(list)
        .chunks(per_node)
        .filter_map(|n| n.get(index).copied())
        .collect()
}

/// A link to another node after the handshake, with the limits it is read under.
struct Dialled {
    stream: Rc<TcpStream>,
    reader: FrameReader,
    ann: NodeAnnouncement,
    limit: u64,
    timeout: Duration,
}

/// Dial `remote` and run the handshake within `wait_timeout`; its announcement decoded.
async fn dial_peer(shard: &Shard, remote: SocketAddr) -> Result<Dialled, i32> {
    let opts = &shard.node.config.options;
    let limit = opts.frame_payload_bytes_max;
    let timeout = Duration::from_secs(opts.wait_timeout_s.max(1));
    let dialled = crate::runtime::timeout(
        timeout,
        dial_with_reply(remote, opts.indexes_shard_count, limit),
    )
    .await
    .map_err(|_| errno::ETIMEDOUT)?;
    let (stream, reader, payload) = dialled?;
    let ann = NodeAnnouncement::decode(&payload).map_err(|_| errno::EPROTO)?;
    Ok(Dialled {
        stream,
        reader,
        ann,
        limit,
        timeout,
    })
}

/// Ask `remote` for its ROUTE_LIST: the dial address of each node it names (the address
/// at the index `remote` has in its own list).
async fn route_list_of(shard: &Rc<Shard>, remote: SocketAddr) -> Result<Vec<SocketAddr>, i32> {
    let Dialled {
        stream,
        mut reader,
        ann,
        limit,
        timeout,
    } = dial_peer(shard, remote).await?;
    let index = socket_addrs(&ann.addrs)
        .iter()
        .position(|a| *a == remote)
        .unwrap_or(0);
    let ask = CmdHeader {
        cmd: command::ROUTE_LIST,
        flags: cmd_flags::NEED_ACK | cmd_flags::DIRECT | cmd_flags::NOLOCK,
        trans: 1,
        ..CmdHeader::default()
    };
    let sent = stream
        .write_all(vec![Bytes::copy_from_slice(&ask.encode())])
        .await;
    let mut named = Vec::new();
    let result = match sent {
        Ok(_) => loop {
            let next = crate::runtime::timeout(timeout, reader.next(&stream, limit)).await;
            let Ok(Ok(Some((h, body)))) = next else {
                break Err(errno::ECONNRESET);
            };
            if !h.is_reply() || h.cmd != command::ROUTE_LIST {
                continue;
            }
            if h.status != 0 {
                break Err(h.status);
            }
            if let Ok(list) = AddrContainer::decode(&body) {
                named.extend(dial_addrs(&list, index));
            }
            if h.flags & cmd_flags::MORE == 0 {
                break Ok(named);
            }
        },
        Err(_) => Err(errno::ECONNRESET),
    };
    let _ = stream.shutdown();
    result
}

/// Keep a join link to `remote` up, retrying every `check_timeout`. A `discovered` link
/// stands by while the node is known through another link.
async fn join_loop(shard: Rc<Shard>, joining: Joining, remote: SocketAddr, discovered: bool) {
    while !shard.is_shutting_down() {
        if discovered && is_known(&shard, remote) {
            if !wait_period(&shard).await {
                return;
            }
            continue;
        }
        match join_once(&shard, &joining, remote).await {
            Ok(()) => tracing::info!(%remote, "join link closed; will reconnect"),
            Err(status) => tracing::debug!(%remote, status, "join failed; will retry"),
        }
        if !wait_period(&shard).await {
            return;
        }
    }
}

/// Our JOIN (our addresses and ring points) and AUTH (our cookie), ready to send.
fn join_frames(shard: &Shard) -> Vec<Bytes> {
    let ours = NodeAnnouncement {
        addrs: AddrContainer {
            node_addr_num: i32::try_from(shard.node.addresses.len()).unwrap_or(i32::MAX),
            addrs: shard
                .node
                .addresses
                .iter()
                .map(|a| DnetAddr::from(*a))
                .collect(),
        },
        ids: handshake::id_container(shard),
    }
    .encode();
    let join = CmdHeader {
        cmd: command::JOIN,
        flags: cmd_flags::NOLOCK | cmd_flags::DIRECT,
        trans: 1,
        size: ours.len() as u64,
        ..CmdHeader::default()
    };
    let cookie = Auth {
        cookie: shard.node.config.options.auth_cookie,
        flags: 0,
    }
    .encode();
    let auth = CmdHeader {
        cmd: command::AUTH,
        flags: cmd_flags::DIRECT | cmd_flags::NEED_ACK,
        trans: 2,
        size: cookie.len() as u64,
        ..CmdHeader::default()
    };
    vec![
        Bytes::copy_from_slice(&join.encode()),
        Bytes::from(ours),
        Bytes::copy_from_slice(&auth.encode()),
        Bytes::copy_from_slice(&cookie),
    ]
}

/// Wait for the AUTH ack; a JOIN error arrives first when the peer refuses us (then the
/// link is shut and its status returned).
async fn await_auth_ack(
    stream: &TcpStream,
    reader: &mut FrameReader,
    remote: SocketAddr,
    timeout: Duration,
    limit: u64,
) -> Result<(), i32> {
    loop {
        let next = crate::runtime::timeout(timeout, reader.next(stream, limit))
            .await
            .map_err(|_| errno::ETIMEDOUT)?;
        let (h, _) = next.map_err(|_| errno::EPROTO)?.ok_or(errno::ECONNRESET)?;
        if !h.is_reply() {
            continue;
        }
        if h.status != 0 {
            tracing::warn!(%remote, status = h.status, cmd = h.cmd, "peer refused our join");
            let _ = stream.shutdown();
            return Err(h.status);
        }
        if h.cmd == command::AUTH && h.flags & cmd_flags::MORE == 0 {
            return Ok(());
        }
    }
}

/// One join link's life: handshake, JOIN, AUTH, the peer's route list, then UPDATE_IDS
/// and newcomer notices until it dies.
async fn join_once(shard: &Rc<Shard>, joining: &Joining, remote: SocketAddr) -> Result<(), i32> {
    let Dialled {
        stream,
        mut reader,
        ann,
        limit,
        timeout,
    } = dial_peer(shard, remote).await?;
    let addrs = socket_addrs(&ann.addrs);
    if !addrs.contains(&remote) || ann.addrs.addrs.iter().any(DnetAddr::is_wildcard) {
        return Err(errno::EPROTO);
    }
    let first = addrs.first().copied().ok_or(errno::EPROTO)?;
    let index = addrs.iter().position(|a| *a == remote).unwrap_or(0);
    if collides(shard, first, &ann.ids.backends) {
        tracing::warn!(%remote, "peer refused: all its ring points already exist here");
        let _ = stream.shutdown();
        return Err(errno::EEXIST);
    }
    stream
        .write_all(join_frames(shard))
        .await
        .map_err(|e| i32::from(Errno::from_io(&e, Errno::ECONNRESET)))?;
    await_auth_ack(&stream, &mut reader, remote, timeout, limit).await?;
    tracing::info!(%remote, "joined peer");
    let up = Change::Up {
        addrs,
        backends: ann.ids.backends,
        source: Source::Outgoing,
    };
    broadcast(shard, up).await;
    // The peer holds our ids from the JOIN: it hears our UPDATE_IDS on this link.
    let out = Rc::new(Outbox::default());
    crate::runtime::spawn(write_loop(
        shard.node.clone(),
        shard.index,
        stream.clone(),
        out.clone(),
    ));
    shard.cluster.subscribe(&out);
    // The rest of the cluster, now: the nodes the peer knows.
    let (s, j) = (shard.clone(), joining.clone());
    crate::runtime::spawn(async move { learn_from(&s, &j, remote).await });
    let link = Link {
        stream: &stream,
        first,
        remote,
        index,
        limit,
    };
    watch(shard, joining, &link, &mut reader).await;
    out.close();
    broadcast(
        shard,
        Change::Down {
            first,
            source: Source::Outgoing,
        },
    )
    .await;
    let _ = stream.shutdown();
    Ok(())
}

/// An established join link, as `watch` reads it.
struct Link<'a> {
    stream: &'a TcpStream,
    first: SocketAddr,
    remote: SocketAddr,
    /// Where the dial address sits in each node's address list.
    index: usize,
    limit: u64,
}

/// Read the join link until it dies, applying the UPDATE_IDS the peer pushes and joining
/// the newcomers it names (a ROUTE_LIST reply to transaction 0).
async fn watch(shard: &Rc<Shard>, joining: &Joining, link: &Link<'_>, reader: &mut FrameReader) {
    loop {
        let next = {
            let stop = std::pin::pin!(shard.shutdown_signal());
            let read = std::pin::pin!(reader.next(link.stream, link.limit));
            match futures::future::select(stop, read).await {
                futures::future::Either::Left(_) => return,
                futures::future::Either::Right((r, _)) => r,
            }
        };
        match next {
            Ok(Some((h, payload))) if h.cmd == command::UPDATE_IDS && !h.is_reply() => {
                if let Ok(c) = IdContainer::decode(&payload) {
                    let first = link.first;
                    broadcast(
                        shard,
                        Change::Ids {
                            first,
                            update: c.backends,
                        },
                    )
                    .await;
                }
            }
            Ok(Some((h, payload)))
                if h.cmd == command::ROUTE_LIST && h.is_reply() && h.trans == 0 =>
            {
                if let Ok(list) = AddrContainer::decode(&payload) {
                    join_new(shard, joining, dial_addrs(&list, link.index), link.remote);
                }
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => return,
        }
    }
}
