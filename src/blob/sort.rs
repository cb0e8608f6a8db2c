//! The sorted index of a closed file (`….N.index.sorted`): its `.index` headers sorted by
//! key then position, live records with their in-memory state and the others with REMOVE.
//!
//! A closed file gets no new records, so the order of its entries is fixed when the sort
//! starts; only their state changes afterwards (a record removed, or replaced by a newer
//! copy elsewhere). The sort therefore runs once: the sorted entries go to `….sorted.tmp`,
//! and every entry changed since is recorded by its `.index` slot
//! ([`Segment::note_changed_slot`]) and rewritten in place in the temporary file, until a
//! check finds nothing changed and nothing in flight on the file; then the temporary file
//! replaces the `.index` as the file's index in one step with no wait in between. A file
//! under steady rewrites of its keys is thus patched, not sorted again, and a check that
//! finds work still in flight keeps the state for the next attempt.

use super::disk_control::{DiskControl, DISK_CONTROL_SIZE_BYTES};
use super::error::BlobError;
use super::log::BlobLog;
use super::recovery::scan;
use super::sealed::SealedIndex;
use super::segment::Segment;
pub use super::segment::SortState;
use crate::io::IoFile;
use crate::protocol::record_flags;
use bytes::Bytes;
use std::path::Path;
use std::rc::Rc;

/// Rounds of patching (each one fdatasync of the temporary file) in one attempt: an
/// attempt runs in the wake of a write, whose reply waits for it.
const PATCH_ROUNDS_MAX: usize = 2;

/// `.index` slots of `raw` sorted by key, then position. The keys are sha512 digests, so
/// their first 8 bytes nearly always decide.
fn sorted_order(raw: &[DiskControl]) -> Vec<u32> {
    let prefix = |dc: &DiskControl| {
        let mut p = [0u8; 8];
        p.copy_from_slice(dc.key.0.get(..8).unwrap_or(&[0; 8]));
        u64::from_be_bytes(p)
    };
    let mut keyed: Vec<(u64, u32)> = (0u32..)
        .zip(raw)
        .map(|(slot, dc)| (prefix(dc), slot))
        .collect();
    let full = |slot: u32| raw.get(slot as usize).map(|dc| (dc.key, dc.position));
    keyed.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| full(a.1).cmp(&full(b.1))));
    keyed.into_iter().map(|(_, slot)| slot).collect()
}

impl<F: IoFile> BlobLog<F> {
    /// The header the sorted index holds for `dc` now: an old copy whose replacement may
    /// not be durable yet stays as it is on disk.
    fn entry_now(&self, seg: &Segment<F>, dc: &DiskControl) -> DiskControl {
        match self.index.borrow().get(&dc.key) {
            Some(l) if l.file == seg.num && l.position == dc.position => DiskControl {
                flags: u64::from(l.flags),
                data_size: l.data_size,
                ..*dc
            },
            _ if self.old_copy_held(seg.num, dc.position) => *dc,
            _ => DiskControl {
                flags: dc.flags | record_flags::REMOVE,
                ..*dc
            },
        }
    }

    /// Write `.index.sorted` for a closed file and point its in-memory slots into it, or
    /// take the next step towards that (see the module header). Skipped while the file holds
    /// uncommitted records.
    pub(super) async fn sort_segment(&self, seg: &Rc<Segment<F>>) -> Result<(), BlobError> {
        if seg.sort.borrow().is_none() {
            if seg.busy.get() > 0 {
                return Ok(());
            }
            match self.start_sort(seg).await {
                Ok(true) => {}
                Ok(false) => return Ok(()),
                Err(e) => {
                    seg.end_sort();
                    return Err(e);
                }
            }
        }
        for _ in 0..PATCH_ROUNDS_MAX {
            let changed = seg.take_changed_slots();
            if changed.is_empty() {
                if seg.busy.get() == 0 && !self.holds_in(seg.num) {
                    if let Some(unsorted) = self.finish_sort(seg)? {
                        self.drop_unsorted_index(&unsorted).await?;
                    }
                }
                return Ok(());
            }
            if let Err(e) = self.patch_sort(seg, &changed).await {
                seg.end_sort();
                return Err(e);
            }
        }
        Ok(())
    }

    /// The file holds a record still uncommitted (its entries are not final): such a
    /// record's key is in the hot table.
    fn has_uncommitted(&self, seg: &Segment<F>) -> bool {
        self.index
            .borrow()
            .any_hot(|l| l.file == seg.num && u64::from(l.flags) & record_flags::UNCOMMITTED != 0)
    }

    /// Sort the file's entries and write them with their state now to the temporary file;
    /// false (nothing started) while the file holds uncommitted records.
    async fn start_sort(&self, seg: &Rc<Segment<F>>) -> Result<bool, BlobError> {
        seg.sync_all().await?;
        // Just synced: every entry is durable, no data-file read is needed to trust it.
        let raw = scan(seg, false, false, u64::MAX).await?.entries;
        if seg.busy.get() > 0 || self.has_uncommitted(seg) {
            return Ok(false);
        }
        let order = sorted_order(&raw);
        let mut sorted_slot_of = vec![0u32; raw.len()];
        for (sorted, &slot) in (0u32..).zip(&order) {
            if let Some(s) = sorted_slot_of.get_mut(slot as usize) {
                *s = sorted;
            }
        }
        let mut bytes = Vec::with_capacity(raw.len() * DISK_CONTROL_SIZE_BYTES as usize);
        for &slot in &order {
            if let Some(dc) = raw.get(slot as usize) {
                bytes.extend_from_slice(&self.entry_now(seg, dc).encode());
            }
        }
        let tmp_path = format!("{}.tmp", seg.sorted_path());
        let tmp = Rc::new(F::from_std(
            std::fs::OpenOptions::new()
                .create(true)
                .write(true)
                .truncate(true)
                .read(true)
                .open(&tmp_path)
                .map_err(|e| BlobError::io(&tmp_path, e))?,
        ));
        // From here on every change to an entry of the file is recorded.
        seg.begin_sort(SortState {
            raw,
            sorted_slot_of,
            tmp_path: tmp_path.clone(),
            tmp: tmp.clone(),
        });
        tmp.write_all_at(vec![Bytes::from(bytes)], 0)
            .await
            .map_err(|e| BlobError::io(&tmp_path, e))?;
        tmp.sync_data()
            .await
            .map_err(|e| BlobError::io(&tmp_path, e))?;
        Ok(true)
    }

    /// Rewrite the entries of `changed` `.index` slots in the temporary file.
    async fn patch_sort(&self, seg: &Segment<F>, changed: &[u32]) -> Result<(), BlobError> {
        let (tmp, tmp_path, writes) = {
            let state = seg.sort.borrow();
            let Some(state) = state.as_ref() else {
                return Ok(());
            };
            let writes: Vec<(u64, DiskControl)> = changed
                .iter()
                .filter_map(|&slot| {
                    let dc = state.raw.get(slot as usize)?;
                    let at = *state.sorted_slot_of.get(slot as usize)?;
                    Some((
                        u64::from(at) * DISK_CONTROL_SIZE_BYTES,
                        self.entry_now(seg, dc),
                    ))
                })
                .collect();
            (state.tmp.clone(), state.tmp_path.clone(), writes)
        };
        for (at, dc) in writes {
            tmp.write_all_at(vec![Bytes::copy_from_slice(&dc.encode())], at)
                .await
                .map_err(|e| BlobError::io(&tmp_path, e))?;
        }
        tmp.sync_data()
            .await
            .map_err(|e| BlobError::io(&tmp_path, e))
    }

    /// The temporary file holds every entry's state now: make it the sorted index, and the
    /// file's one index (a sealed copy of the segment replaces it). No await: nothing
    /// changes the file in between. Returns the path of the `.index` to delete.
    fn finish_sort(&self, seg: &Rc<Segment<F>>) -> Result<Option<String>, BlobError> {
        let Some(state) = seg.end_sort() else {
            return Ok(None);
        };
        let sorted_path = seg.sorted_path();
        let sealed =
            SealedIndex::open(Path::new(&state.tmp_path), seg.data_len()?)?.ok_or_else(|| {
                BlobError::Corrupt {
                    path: state.tmp_path.clone(),
                    reason: "the sorted index just written does not check".into(),
                }
            })?;
        let file = match Rc::try_unwrap(state.tmp) {
            Ok(tmp) => tmp,
            Err(shared) => shared
                .as_std()
                .try_clone()
                .map(F::from_std)
                .map_err(|e| BlobError::io(&sorted_path, e))?,
        };
        let fresh = Rc::new(seg.sealed_copy(file, Path::new(&sorted_path))?);
        std::fs::rename(&state.tmp_path, &sorted_path)
            .map_err(|e| BlobError::io(&state.tmp_path, e))?;
        self.files.borrow_mut().insert(seg.num, fresh.clone());
        if let Some(d) = self.dirty.borrow_mut().get_mut(&seg.num) {
            *d = fresh;
        }
        // Old copies kept live in the sorted index (their keys' newer copies are elsewhere).
        let held: Vec<u32> = {
            let index = self.index.borrow();
            (0usize..)
                .zip(&state.raw)
                .filter(|(_, dc)| {
                    dc.flags & record_flags::REMOVE == 0
                        && self.old_copy_held(seg.num, dc.position)
                        && index
                            .get(&dc.key)
                            .is_none_or(|l| l.file != seg.num || l.position != dc.position)
                })
                .filter_map(|(slot, _)| state.sorted_slot_of.get(slot).copied())
                .collect()
        };
        let mut index = self.index.borrow_mut();
        index.seal(seg.num, sealed.0);
        for slot in held {
            index.dead_on_disk_later(seg.num, slot);
        }
        seg.sorted.set(true);
        Ok(Some(seg.index_path.clone()))
    }

    /// Delete the `.index` of a sealed file once the rename of its sorted index is durable
    /// (until then, and if the delete is lost, opening the log finds both and keeps the
    /// sorted one).
    async fn drop_unsorted_index(&self, unsorted: &str) -> Result<(), BlobError> {
        self.sync_dir_async().await?;
        match std::fs::remove_file(unsorted) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(BlobError::io(unsorted, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::RawId;

    #[test]
    fn sorted_order_is_by_key_then_position() {
        let dc = |k: &str, position| DiskControl {
            key: RawId::from_key(k.as_bytes()),
            flags: 0,
            data_size: 1,
            disk_size: 100,
            position,
        };
        let raw = vec![
            dc("b", 0),
            dc("a", 100),
            dc("b", 200),
            dc("c", 300),
            dc("a", 50),
        ];
        let order = sorted_order(&raw);
        let keys: Vec<(RawId, u64)> = order
            .iter()
            .map(|&s| (raw[s as usize].key, raw[s as usize].position))
            .collect();
        let mut want: Vec<(RawId, u64)> = raw.iter().map(|d| (d.key, d.position)).collect();
        want.sort();
        assert_eq!(keys, want);
    }
}
