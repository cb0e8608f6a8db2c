//! One group's ring: sorted ring points, each with its owner, and the owner lookup of
//! `__dnet_idc_search`.
//!
//! The points live in a sorted `Vec<RawId>` with a parallel `Vec<T>` of owners and a
//! parallel `Vec<u64>` of each point's first 8 bytes. A lookup binary-searches the dense
//! prefixes (8 bytes per point instead of 64) and compares whole ids only among points
//! that share the key's prefix; it allocates nothing. A point P owns the keys
//! in [P, next point); the largest point also owns everything below the smallest point.

use super::RouteError;
use crate::key::RawId;

/// The ring of one group: sorted points, each owned by a `T` (a connection, a backend, a
/// shard). Duplicate points are never stored.
#[derive(Clone, Debug)]
pub struct RouteTable<T> {
    points: Vec<RawId>,
    prefixes: Vec<u64>,
    owners: Vec<T>,
}

impl<T> Default for RouteTable<T> {
    fn default() -> Self {
        RouteTable {
            points: Vec::new(),
            prefixes: Vec::new(),
            owners: Vec::new(),
        }
    }
}

impl<T: Clone + PartialEq> RouteTable<T> {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add `points` owned by `owner`. Points already in the table (or repeated in `points`)
    /// are skipped; the count of points added is returned. If every given point already
    /// exists, nothing changes and the result is [`RouteError::Exists`] (-EEXIST), as for a
    /// second backend with the same ids in the same group. An empty `points` adds nothing.
    pub fn insert_points(&mut self, points: &[RawId], owner: T) -> Result<usize, RouteError> {
        if points.is_empty() {
            return Ok(0);
        }
        let mut fresh: Vec<RawId> = points
            .iter()
            .filter(|point| self.points.binary_search(point).is_err())
            .copied()
            .collect();
        fresh.sort_unstable();
        fresh.dedup();
        if fresh.is_empty() {
            return Err(RouteError::Exists {
                point_count: points.len(),
            });
        }
        self.merge_sorted(&fresh, owner);
        debug_assert!(self.points.windows(2).all(|pair| pair[0] < pair[1]));
        Ok(fresh.len())
    }

    /// Merge sorted, absent `fresh` points into the table in one pass.
    fn merge_sorted(&mut self, fresh: &[RawId], owner: T) {
        let total = self.points.len() + fresh.len();
        let mut points = Vec::with_capacity(total);
        let mut owners = Vec::with_capacity(total);
        let old_points = std::mem::take(&mut self.points);
        let old_owners = std::mem::take(&mut self.owners);
        let mut old = old_points.into_iter().zip(old_owners).peekable();
        for point in fresh {
            while let Some((old_point, old_owner)) = old.next_if(|(p, _)| p < point) {
                points.push(old_point);
                owners.push(old_owner);
            }
            points.push(*point);
            owners.push(owner.clone());
        }
        for (old_point, old_owner) in old {
            points.push(old_point);
            owners.push(old_owner);
        }
        self.prefixes = points.iter().map(RawId::prefix_u64).collect();
        self.points = points;
        self.owners = owners;
    }

    /// Drop every point owned by `owner`; returns how many were dropped.
    pub fn remove_owner(&mut self, owner: &T) -> usize {
        let before = self.points.len();
        let mut keep = self.owners.iter().map(|o| o != owner);
        self.points.retain(|_| keep.next().unwrap_or(true));
        self.owners.retain(|o| o != owner);
        self.prefixes = self.points.iter().map(RawId::prefix_u64).collect();
        debug_assert_eq!(self.points.len(), self.owners.len());
        before - self.points.len()
    }

    /// Index of the point that owns `id`: the greatest point <= id, or the largest point
    /// when `id` is below every point. `None` only for an empty table.
    fn owner_index(&self, id: &RawId) -> Option<usize> {
        let last = self.points.len().checked_sub(1)?;
        let key_prefix = id.prefix_u64();
        let first_equal = self.prefixes.partition_point(|prefix| *prefix < key_prefix);
        let first_above = self
            .prefixes
            .partition_point(|prefix| *prefix <= key_prefix);
        let tied = self
            .points
            .get(first_equal..first_above)
            .unwrap_or_default();
        let above = first_equal + tied.partition_point(|point| point <= id);
        Some(above.checked_sub(1).unwrap_or(last))
    }

    /// The owner of `id`; `None` when the table is empty.
    pub fn owner(&self, id: &RawId) -> Option<&T> {
        self.owners.get(self.owner_index(id)?)
    }

    /// The range containing `id` as (owning point, following point), wrapping to the first
    /// point after the last, as `dnet_search_range` returns it.
    pub fn range(&self, id: &RawId) -> Option<(RawId, RawId)> {
        let index = self.owner_index(id)?;
        let start = *self.points.get(index)?;
        let next_index = if index + 1 == self.points.len() {
            0
        } else {
            index + 1
        };
        Some((start, *self.points.get(next_index)?))
    }

    /// All points, sorted ascending.
    pub fn points(&self) -> &[RawId] {
        &self.points
    }

    /// All (point, owner) pairs, sorted by point.
    pub fn iter(&self) -> impl Iterator<Item = (&RawId, &T)> {
        self.points.iter().zip(self.owners.iter())
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// True when the table has no points.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(first: u8) -> RawId {
        let mut bytes = [0u8; 64];
        bytes[0] = first;
        RawId(bytes)
    }

    #[test]
    fn key_belongs_to_greatest_point_not_above_it() {
        let mut table = RouteTable::new();
        table.insert_points(&[id(10), id(50)], 'a').unwrap();
        table.insert_points(&[id(30)], 'b').unwrap();
        assert_eq!(table.owner(&id(10)), Some(&'a'));
        assert_eq!(table.owner(&id(29)), Some(&'a'));
        assert_eq!(table.owner(&id(30)), Some(&'b'));
        assert_eq!(table.owner(&id(49)), Some(&'b'));
        assert_eq!(table.owner(&RawId::MAX), Some(&'a'));
    }

    #[test]
    fn key_below_every_point_wraps_to_the_largest() {
        let mut table = RouteTable::new();
        table.insert_points(&[id(10)], 1).unwrap();
        table.insert_points(&[id(200)], 2).unwrap();
        assert_eq!(table.owner(&RawId::ZERO), Some(&2));
        assert_eq!(table.range(&id(5)), Some((id(200), id(10))));
        assert_eq!(table.range(&id(10)), Some((id(10), id(200))));
    }

    #[test]
    fn duplicate_points_are_skipped_and_all_duplicates_is_exists() {
        let mut table = RouteTable::new();
        assert_eq!(table.insert_points(&[id(1), id(1), id(2)], 'a'), Ok(2));
        assert_eq!(table.insert_points(&[id(2), id(3)], 'b'), Ok(1));
        assert_eq!(table.owner(&id(2)), Some(&'a'));
        let err = table.insert_points(&[id(1), id(3)], 'c').unwrap_err();
        assert_eq!(err.errno(), crate::protocol::errno::EEXIST);
        assert_eq!(table.len(), 3);
    }

    #[test]
    fn removed_owner_hands_its_keys_to_the_preceding_point() {
        let mut table = RouteTable::new();
        table.insert_points(&[id(10), id(90)], 'a').unwrap();
        table.insert_points(&[id(50)], 'b').unwrap();
        assert_eq!(table.remove_owner(&'b'), 1);
        assert_eq!(table.owner(&id(60)), Some(&'a'));
        assert_eq!(table.points(), &[id(10), id(90)]);
        assert_eq!(table.remove_owner(&'a'), 2);
        assert!(table.is_empty());
        assert_eq!(table.owner(&id(60)), None);
        assert_eq!(table.range(&id(60)), None);
    }
}
