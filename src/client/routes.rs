//! The client's route table: for each group, the ring points of every connected node's
//! backends, and the owner search (greatest point <= key, wrapping to the largest point).
//! Rebuilt from the per-node id lists whenever a node joins, leaves or pushes UPDATE_IDS.

use super::wire::BackendIds;
use crate::key::RawId;
use crate::routing::Routes;
use std::collections::HashMap;
use std::net::SocketAddr;

/// Who owns a ring point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub addr: SocketAddr,
    pub backend_id: i32,
}

/// Ring points per group, over the shared `routing::Routes`.
#[derive(Debug, Default, Clone)]
pub struct RouteTable {
    routes: Routes<Route>,
}

impl RouteTable {
    /// Build from every node's backends. Nodes are taken in address order so the result
    /// does not depend on hash order; a point already present is ignored, as Elliptics does
    /// (a backend whose points all exist already is skipped: -EEXIST in the original).
    pub fn build(nodes: &HashMap<SocketAddr, Vec<BackendIds>>) -> RouteTable {
        let mut addrs: Vec<&SocketAddr> = nodes.keys().collect();
        addrs.sort();
        let mut routes = Routes::new();
        for addr in addrs {
            for backend in nodes.get(addr).into_iter().flatten() {
                let Ok(group) = u32::try_from(backend.group_id) else {
                    continue;
                };
                let owner = Route {
                    addr: *addr,
                    backend_id: backend.backend_id,
                };
                if let Err(e) = routes.insert_points(group, &backend.ids, owner) {
                    tracing::warn!(%addr, backend = backend.backend_id, error = %e, "backend ids not added");
                }
            }
        }
        RouteTable { routes }
    }

    /// The owner of `id` in `group`, or `None` when the group has no points (-ENXIO).
    pub fn owner(&self, group: u32, id: &RawId) -> Option<Route> {
        self.routes.owner(group, id).ok().copied()
    }

    /// Every (group, point, owner), in group then point order.
    pub fn entries(&self) -> Vec<(u32, RawId, Route)> {
        self.routes
            .groups()
            .filter_map(|g| self.routes.table(g).map(|t| (g, t)))
            .flat_map(|(g, t)| t.iter().map(move |(id, r)| (g, *id, *r)))
            .collect()
    }
}

/// Apply an UPDATE_IDS push to one node's backend list: a DISABLE entry removes the
/// backend, any other entry replaces (or adds) the backend's ids.
pub fn apply_update(backends: &mut Vec<BackendIds>, update: Vec<BackendIds>) {
    for entry in update {
        backends.retain(|b| b.backend_id != entry.backend_id);
        if entry.flags & super::wire::BACKEND_DISABLE == 0 {
            backends.push(entry);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(first: u8) -> RawId {
        let mut raw = [0u8; 64];
        raw[0] = first;
        RawId(raw)
    }

    fn table() -> (RouteTable, SocketAddr, SocketAddr) {
        let a: SocketAddr = "127.0.0.1:1025".parse().expect("a");
        let b: SocketAddr = "127.0.0.1:1026".parse().expect("b");
        let mut nodes = HashMap::new();
        nodes.insert(
            a,
            vec![BackendIds {
                backend_id: 1,
                group_id: 1,
                flags: 0,
                ids: vec![id(0x10), id(0x80)],
            }],
        );
        nodes.insert(
            b,
            vec![BackendIds {
                backend_id: 2,
                group_id: 1,
                flags: 0,
                ids: vec![id(0x40)],
            }],
        );
        (RouteTable::build(&nodes), a, b)
    }

    #[test]
    fn owner_is_greatest_point_not_above_the_key() {
        let (t, a, b) = table();
        assert_eq!(t.owner(1, &id(0x10)).map(|r| r.addr), Some(a));
        assert_eq!(t.owner(1, &id(0x41)).map(|r| r.addr), Some(b));
        assert_eq!(
            t.owner(1, &id(0xff)).map(|r| (r.addr, r.backend_id)),
            Some((a, 1))
        );
    }

    #[test]
    fn key_below_every_point_wraps_to_the_largest() {
        let (t, a, _) = table();
        assert_eq!(t.owner(1, &id(0x01)).map(|r| r.addr), Some(a));
    }

    #[test]
    fn unknown_group_has_no_owner() {
        let (t, _, _) = table();
        assert_eq!(t.owner(99, &id(0x50)), None);
    }

    #[test]
    fn update_ids_disable_removes_backend_and_enable_replaces_it() {
        let mut list = vec![BackendIds {
            backend_id: 1,
            group_id: 1,
            flags: 0,
            ids: vec![id(1)],
        }];
        apply_update(
            &mut list,
            vec![BackendIds {
                backend_id: 1,
                group_id: 2,
                flags: 0,
                ids: vec![id(2)],
            }],
        );
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].group_id, 2);
        apply_update(
            &mut list,
            vec![BackendIds {
                backend_id: 1,
                group_id: 2,
                flags: 1,
                ids: vec![],
            }],
        );
        assert!(list.is_empty());
    }
}
