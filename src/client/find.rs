//! `find`: where a key really is. A LOOKUP with DIRECT|DIRECT_BACKEND goes to every backend
//! of every node in the route table, so each backend answers from its own storage whether
//! or not the ring says it owns the key; the route table says where it should live. This
//! is what `dnet_find` prints, and how misplaced keys are found.

use super::entry::{decode_lookup, to_entries, Entry, LookupInfo};
use super::error::ClientError;
use super::result::{join_all, AsyncResult};
use super::session::Session;
use crate::key::RawId;
use crate::protocol::{cmd_flags, command, CmdHeader};
use std::net::SocketAddr;

/// One backend's answer to a find.
#[derive(Debug, Clone)]
pub struct FindEntry {
    /// The group the asked backend serves.
    pub group: u32,
    /// The node and backend that were asked.
    pub address: SocketAddr,
    pub backend_id: i32,
    /// Where the route table places the id in that group (node, backend).
    pub owner: Option<(SocketAddr, i32)>,
    /// The backend's answer: 0 with the record's place, or a negative errno.
    pub entry: Entry<LookupInfo>,
}

/// Every (group, node, backend) of the route table, each once, sorted.
fn backends_of(routes: &[(u32, RawId, SocketAddr, i32)]) -> Vec<(u32, SocketAddr, i32)> {
    let mut v: Vec<(u32, SocketAddr, i32)> = routes.iter().map(|r| (r.0, r.2, r.3)).collect();
    v.sort();
    v.dedup();
    v
}

impl Session {
    /// LOOKUP `id` on every backend of every node the client knows (DIRECT|DIRECT_BACKEND),
    /// one entry per backend in group, address and backend order.
    pub fn find(&self, id: &RawId) -> AsyncResult<Vec<FindEntry>> {
        let routes = self.node.routes();
        let parts: Vec<AsyncResult<FindEntry>> = backends_of(&routes)
            .into_iter()
            .map(|(group, addr, backend_id)| {
                let owner = self.node.owner(group, id);
                let header = CmdHeader {
                    id: *id,
                    group_id: group,
                    cmd: command::LOOKUP,
                    backend_id,
                    trace_id: self.trace_id,
                    flags: cmd_flags::NEED_ACK
                        | cmd_flags::DIRECT
                        | cmd_flags::DIRECT_BACKEND
                        | self.cflags,
                    ..CmdHeader::default()
                };
                let sent = match self.node.conn(&addr) {
                    Some(conn) => self.node.send(&conn, header, &[], Some(self.timeout)),
                    None => {
                        AsyncResult::ready(Err(ClientError::no_route(group, id, command::LOOKUP)))
                    }
                };
                let id = *id;
                sent.map(move |r| {
                    // The record's place, or else the error, or else the bare ack.
                    let entries = to_entries(r, group, &id, command::LOOKUP, addr, decode_lookup);
                    let answer = entries
                        .iter()
                        .position(|e| e.payload.is_some())
                        .or_else(|| entries.iter().position(|e| e.status != 0));
                    let entry = answer
                        .and_then(|i| entries.into_iter().nth(i))
                        .unwrap_or(Entry {
                            address: Some(addr),
                            group,
                            backend: backend_id,
                            status: 0,
                            error: None,
                            payload: None,
                        });
                    Ok(FindEntry {
                        group,
                        address: addr,
                        backend_id,
                        owner,
                        entry,
                    })
                })
            })
            .collect();
        join_all(parts).map(|all| Ok(all?.into_iter().filter_map(Result::ok).collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_backend_is_asked_once_however_many_ring_points_it_has() {
        let a: SocketAddr = "127.0.0.1:1025".parse().expect("addr");
        let b: SocketAddr = "127.0.0.1:1026".parse().expect("addr");
        let id = |n: u8| RawId([n; 64]);
        let routes = vec![
            (2, id(1), b, 3),
            (1, id(2), a, 1),
            (1, id(3), a, 1),
            (1, id(4), a, 2),
            (2, id(5), b, 3),
        ];
        assert_eq!(backends_of(&routes), vec![(1, a, 1), (1, a, 2), (2, b, 3)]);
    }
}
