//! The node's background threads: the checker (once a second: expire transactions with
//! -ETIMEDOUT, send the BACKEND_STATUS stall ping once `stall_count` transactions have
//! timed out with no reply from the peer in between, reset the connection when the ping times out) and the reconnect thread (every
//! check_timeout: dial wanted addresses without a connection, refresh the route lists).
//! Both hold only a `Weak` to the node and end when it is dropped.

use super::conn::Conn;
use super::node::{Node, NodeInner};
use crate::protocol::{cmd_flags, command, CmdHeader};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// Once a second: time out transactions; after `stall_count` timeouts with no reply in
/// between, ping with BACKEND_STATUS; reset the connection when the ping times out.
pub(super) fn checker_loop(weak: Weak<NodeInner>) {
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let Some(inner) = weak.upgrade() else { return };
        if inner.stop.load(Ordering::Acquire) {
            return;
        }
        let conns: Vec<Arc<Conn>> = inner.lock().conns.values().cloned().collect();
        let node = Node { inner };
        for conn in conns {
            check_conn(&node, &conn);
        }
    }
}

fn check_conn(node: &Node, conn: &Arc<Conn>) {
    let expired = conn.expire(Instant::now());
    let ping = *conn.ping_trans.lock().unwrap_or_else(|p| p.into_inner());
    if ping != 0 && expired.contains(&ping) {
        tracing::warn!(addr = %conn.addr, "stall ping timed out, resetting connection");
        conn.shutdown();
        return;
    }
    if expired.is_empty() {
        return;
    }
    // As `st->stall` in the original: every timed-out transaction counts, and only a reply
    // from the peer (see `Conn::on_reply`) starts the count over.
    let added = u32::try_from(expired.len()).unwrap_or(u32::MAX);
    let checks = conn
        .stall_checks
        .fetch_add(added, Ordering::Relaxed)
        .saturating_add(added);
    if checks >= node.inner.config.stall_count && ping == 0 {
        let header = CmdHeader {
            cmd: command::BACKEND_STATUS,
            flags: cmd_flags::DIRECT | cmd_flags::NEED_ACK,
            ..CmdHeader::default()
        };
        let trans = node.next_trans();
        *conn.ping_trans.lock().unwrap_or_else(|p| p.into_inner()) = trans;
        let timeout = Duration::from_secs(node.inner.config.wait_timeout_s);
        let result = conn.send(CmdHeader { trans, ..header }, &[], timeout);
        let c = conn.clone();
        result.on_complete(move |r| {
            if r.is_ok() {
                *c.ping_trans.lock().unwrap_or_else(|p| p.into_inner()) = 0;
                c.stall_checks.store(0, Ordering::Relaxed);
            }
        });
    }
}

/// Every check_timeout: dial wanted addresses that have no live connection, then refresh
/// the route lists.
pub(super) fn reconnect_loop(weak: Weak<NodeInner>) {
    let mut last = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let Some(inner) = weak.upgrade() else { return };
        if inner.stop.load(Ordering::Acquire) {
            return;
        }
        let period = Duration::from_secs(inner.config.check_timeout_s.max(1));
        if last.elapsed() < period {
            continue;
        }
        last = Instant::now();
        let missing: Vec<SocketAddr> = {
            let net = inner.lock();
            net.wanted
                .iter()
                .filter(|a| !net.conns.contains_key(a))
                .copied()
                .collect()
        };
        let node = Node { inner };
        for addr in missing {
            if let Err(e) = node.connect(addr) {
                tracing::debug!(%addr, error = %e, "reconnect failed");
            }
        }
        if !node.inner.config.no_route_list {
            node.refresh_route_lists();
        }
    }
}
