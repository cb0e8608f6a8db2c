//! After the start-up load: a key held by several files keeps its newest copy. The newest
//! copy is the one in the highest file, then at the highest position; when it is removed,
//! the key is. Older live copies (a crash between writing a new copy and marking the old
//! one removed) leave the index and go back to the caller, to be marked removed on disk.
//!
//! The keys of files not sealed (the hot table) are looked up in the sealed files; the
//! sealed files are merged side by side, in key order, a chunk of each at a time, so no
//! list of all keys is ever held.

use super::disk_control::DiskControl;
use super::error::BlobError;
use super::index::{loc_of, KeyIndex, Loc};
use super::key_files::sealed_hasher;
use super::sealed::Cursor;
use crate::key::RawId;
use crate::protocol::record_flags;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

fn live(dc: &DiskControl) -> bool {
    dc.flags & record_flags::REMOVE == 0
}

/// The newest entry of each key of one sealed file, in key order.
struct Newest<'a> {
    cursor: Cursor<'a>,
    peeked: Option<(u32, DiskControl)>,
}

impl Newest<'_> {
    fn next(&mut self) -> Result<Option<(u32, DiskControl)>, BlobError> {
        let mut cur = match self.peeked.take() {
            Some(e) => e,
            None => match self.cursor.next_entry()? {
                Some(e) => e,
                None => return Ok(None),
            },
        };
        while let Some(e) = self.cursor.next_entry()? {
            if e.1.key != cur.1.key {
                self.peeked = Some(e);
                break;
            }
            cur = e;
        }
        Ok(Some(cur))
    }
}

impl KeyIndex {
    /// The newest entry of `key` in the sealed files as the disk holds it: file, slot,
    /// header.
    fn sealed_newest(&self, key: &RawId) -> Option<(u32, u32, DiskControl)> {
        let candidates = self.files.candidates(sealed_hasher().hash(key));
        let newest = candidates.iter().find_map(|num| {
            let s = self.sealed.get(&num)?;
            s.find(key).ok().flatten().map(|(slot, dc)| (num, slot, dc))
        });
        newest
    }

    /// A sealed copy loses: it stays dead in RAM until marked on disk.
    fn sealed_loses(&mut self, num: u32, slot: u32, dc: &DiskControl, losers: &mut Vec<Loc>) {
        if self.pending_dead.insert((num, slot)) {
            self.live -= 1;
            losers.push(loc_of(num, slot, dc));
        }
    }

    /// See the module header.
    pub fn resolve_duplicates(&mut self) -> Vec<Loc> {
        let mut losers = Vec::new();
        let mut hot_losers = Vec::new();
        let mut sealed_losers = Vec::new();
        for (k, l) in self.hot.iter() {
            let Some((num, slot, dc)) = self.sealed_newest(k) else {
                continue;
            };
            if (num, dc.position) > (l.file, l.position) {
                hot_losers.push((*k, *l));
            } else if live(&dc) {
                sealed_losers.push((num, slot, dc));
            }
        }
        for (k, l) in hot_losers {
            if self.hot.remove(&k).is_some() {
                self.live -= 1;
                losers.push(l);
            }
        }
        for (num, slot, dc) in sealed_losers {
            self.sealed_loses(num, slot, &dc, &mut losers);
        }
        if self.sealed.len() > 1 {
            match self.merge_sealed() {
                Ok(older) => {
                    for (num, slot, dc) in older {
                        self.sealed_loses(num, slot, &dc, &mut losers);
                    }
                }
                Err(e) => tracing::error!("merging the sealed indexes at start-up: {e}"),
            }
        }
        losers
    }

    /// Merge the sealed files by key: the live copies of keys that a newer file also
    /// holds.
    fn merge_sealed(&self) -> Result<Vec<(u32, u32, DiskControl)>, BlobError> {
        let mut files: Vec<(u32, Newest<'_>)> = self
            .sealed
            .iter()
            .map(|(&num, s)| {
                (
                    num,
                    Newest {
                        cursor: s.cursor(),
                        peeked: None,
                    },
                )
            })
            .collect();
        let mut heap: BinaryHeap<Reverse<(RawId, usize, u32, DiskControlOrd)>> = BinaryHeap::new();
        for (i, (_, f)) in files.iter_mut().enumerate() {
            if let Some((slot, dc)) = f.next()? {
                heap.push(Reverse((dc.key, i, slot, DiskControlOrd(dc))));
            }
        }
        let mut older = Vec::new();
        let mut run: Vec<(usize, u32, DiskControl)> = Vec::new();
        while let Some(Reverse((key, i, slot, DiskControlOrd(dc)))) = heap.pop() {
            run.clear();
            run.push((i, slot, dc));
            while let Some(Reverse((k, ..))) = heap.peek() {
                if *k != key {
                    break;
                }
                if let Some(Reverse((_, j, s, DiskControlOrd(d)))) = heap.pop() {
                    run.push((j, s, d));
                }
            }
            for &(j, ..) in &run {
                if let Some((_, f)) = files.get_mut(j) {
                    if let Some((s, d)) = f.next()? {
                        heap.push(Reverse((d.key, j, s, DiskControlOrd(d))));
                    }
                }
            }
            if run.len() < 2 {
                continue;
            }
            // Files are in ascending order: the highest index is the newest file.
            let newest = run.iter().map(|r| r.0).max().unwrap_or(0);
            for &(j, s, d) in &run {
                if j != newest && live(&d) {
                    if let Some((num, _)) = files.get(j) {
                        older.push((*num, s, d));
                    }
                }
            }
        }
        Ok(older)
    }
}

/// A header in the merge heap, which orders by key and file first (ties never reach it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct DiskControlOrd(DiskControl);

impl PartialOrd for DiskControlOrd {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for DiskControlOrd {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.position.cmp(&other.0.position)
    }
}
