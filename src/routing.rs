//! Per-group route tables of ring points, owner lookup, and the split of a node's keys
//! between its shards.
//!
//! This module owns the answer to "who holds key K in group G": [`RouteTable`] is one
//! group's ring (spec §2, `__dnet_idc_search`), [`Routes`] is the per-group map, and
//! [`shard_of`] picks the shard inside a node. It knows nothing of sockets or disks: an
//! owner is any `T` the caller chooses (a connection id, a backend, a shard index), and the
//! only file it touches is the `shards` record of the split ([`record_shard_count`]).

mod shard;
mod table;

pub use shard::{record_shard_count, shard_of, LayoutError, SHARDS_FILE_NAME};
pub use table::RouteTable;

use crate::key::RawId;
use crate::protocol::errno;
use std::collections::BTreeMap;

/// Why a route operation failed. Each maps to the errno Elliptics answers with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RouteError {
    /// All given points are already on the ring (-EEXIST).
    #[error("all {point_count} ring points already exist in the route table")]
    Exists { point_count: usize },
    /// The group is unknown or has no points (-ENXIO).
    #[error("no route to group {group}: no node owns any ring point in it")]
    NoRoute { group: u32 },
}

impl RouteError {
    /// The negative errno carried in `dnet_cmd.status` for this error.
    pub fn errno(&self) -> i32 {
        match self {
            RouteError::Exists { .. } => errno::EEXIST,
            RouteError::NoRoute { .. } => errno::ENXIO,
        }
    }
}

/// Route tables of every known group. Empty tables are dropped, so [`Routes::groups`]
/// lists exactly the groups that can be routed to.
#[derive(Clone, Debug)]
pub struct Routes<T> {
    groups: BTreeMap<u32, RouteTable<T>>,
}

impl<T> Default for Routes<T> {
    fn default() -> Self {
        Routes {
            groups: BTreeMap::new(),
        }
    }
}

impl<T: Clone + PartialEq> Routes<T> {
    /// No groups.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add `points` of `group` owned by `owner`; see [`RouteTable::insert_points`].
    pub fn insert_points(
        &mut self,
        group: u32,
        points: &[RawId],
        owner: T,
    ) -> Result<usize, RouteError> {
        let table = self.groups.entry(group).or_default();
        let result = table.insert_points(points, owner);
        if table.is_empty() {
            self.groups.remove(&group);
        }
        result
    }

    /// Drop `owner`'s points from every group (a reset connection); returns the count.
    pub fn remove_owner(&mut self, owner: &T) -> usize {
        let removed = self
            .groups
            .values_mut()
            .map(|table| table.remove_owner(owner))
            .sum();
        self.groups.retain(|_, table| !table.is_empty());
        removed
    }

    /// Drop `owner`'s points from one group (a disabled backend); returns the count.
    pub fn remove_owner_in_group(&mut self, group: u32, owner: &T) -> usize {
        let Some(table) = self.groups.get_mut(&group) else {
            return 0;
        };
        let removed = table.remove_owner(owner);
        if table.is_empty() {
            self.groups.remove(&group);
        }
        removed
    }

    /// The owner of `id` in `group`, or [`RouteError::NoRoute`].
    pub fn owner(&self, group: u32, id: &RawId) -> Result<&T, RouteError> {
        self.groups
            .get(&group)
            .and_then(|table| table.owner(id))
            .ok_or(RouteError::NoRoute { group })
    }

    /// The (owning point, next point) range of `id` in `group`, or [`RouteError::NoRoute`].
    pub fn range(&self, group: u32, id: &RawId) -> Result<(RawId, RawId), RouteError> {
        self.groups
            .get(&group)
            .and_then(|table| table.range(id))
            .ok_or(RouteError::NoRoute { group })
    }

    /// The table of one group, if it has points.
    pub fn table(&self, group: u32) -> Option<&RouteTable<T>> {
        self.groups.get(&group)
    }

    /// Groups that have at least one point, ascending.
    pub fn groups(&self) -> impl Iterator<Item = u32> + '_ {
        self.groups.keys().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_or_emptied_group_has_no_route() {
        let mut routes = Routes::new();
        let key = RawId::from_key(b"k");
        assert_eq!(routes.owner(1, &key).unwrap_err().errno(), errno::ENXIO);
        routes.insert_points(1, &[RawId::ZERO], "n1").unwrap();
        routes.insert_points(2, &[RawId::MAX], "n1").unwrap();
        routes.insert_points(2, &[RawId::ZERO], "n2").unwrap();
        assert_eq!(routes.owner(1, &key), Ok(&"n1"));
        assert_eq!(routes.groups().collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(routes.remove_owner(&"n1"), 2);
        assert_eq!(routes.owner(1, &key), Err(RouteError::NoRoute { group: 1 }));
        assert_eq!(routes.owner(2, &key), Ok(&"n2"));
        assert_eq!(routes.groups().collect::<Vec<_>>(), vec![2]);
    }

    #[test]
    fn second_backend_with_equal_ids_in_a_group_gets_eexist() {
        let mut routes = Routes::new();
        let ids = [RawId::from_key(b"a"), RawId::from_key(b"b")];
        assert_eq!(routes.insert_points(1, &ids, 1u32), Ok(2));
        let err = routes.insert_points(1, &ids, 2u32).unwrap_err();
        assert_eq!(err.errno(), errno::EEXIST);
        assert_eq!(routes.insert_points(2, &ids, 2u32), Ok(2));
        assert_eq!(routes.remove_owner_in_group(2, &2), 2);
        assert_eq!(routes.table(1).map(RouteTable::len), Some(2));
    }

    #[test]
    fn empty_insert_into_a_new_group_leaves_no_group_behind() {
        let mut routes: Routes<u8> = Routes::new();
        assert_eq!(routes.insert_points(7, &[], 1), Ok(0));
        assert_eq!(routes.groups().count(), 0);
    }
}
