//! The key table's rebuild in steps ([`super::KeyFiles::start_rebuild`]), so that no single
//! request waits for the keys of every sealed file to be read again.
//!
//! After [`super::LOST_BITS_MAX`] splits the fingerprints are too short and the table must
//! be built again from the files' keys, which only the files hold. As Redis rehashes a
//! dictionary, the rebuild runs beside the table it replaces: a new table, sized for every
//! key, takes the files one at a time ([`super::KeyFiles::moved`]), each step as large as
//! its owner allows between requests, while lookups ask both tables (a file moved is
//! named by both: the names are merged, each file once). Files sealed during the rebuild
//! go to the new table only; a file that leaves leaves both, and is not moved. When the
//! last file has moved, the new table replaces the old one.

use super::{Candidates, KeyFiles};

/// A rebuild in progress: the table being built and the files it still lacks.
#[derive(Debug)]
pub(super) struct Rebuild {
    pub(super) next: KeyFiles,
    /// Files named only by the old table so far.
    pub(super) to_move: Vec<u32>,
}

impl KeyFiles {
    /// Start building the table again for `keys` entries from `files`, the sealed files it
    /// holds (their keys are handed over by [`KeyFiles::moved`], one file at a time).
    /// Nothing happens when a rebuild is already running.
    pub fn start_rebuild(&mut self, keys: usize, mut files: Vec<u32>) {
        if self.rebuild.is_some() {
            return;
        }
        files.sort_unstable();
        files.dedup();
        self.rebuild = Some(Box::new(Rebuild {
            next: KeyFiles::sized_for(keys),
            to_move: files,
        }));
    }

    /// Whether a rebuild is running.
    pub fn rebuilding(&self) -> bool {
        self.rebuild.is_some()
    }

    /// The next file whose keys a running rebuild needs.
    pub fn next_to_move(&self) -> Option<u32> {
        self.rebuild.as_ref()?.to_move.last().copied()
    }

    /// The keys of `file` for the running rebuild (`None`: they could not be read, and
    /// the file is searched by every lookup). The last file finishes the rebuild.
    pub fn moved(&mut self, file: u32, hashes: Option<&[u64]>) {
        if self
            .rebuild
            .as_ref()
            .is_some_and(|r| r.to_move.contains(&file))
        {
            self.add_to_rebuild(file, hashes);
        }
    }

    /// File `file` leaves a running rebuild: it is not moved, and the new table drops it.
    pub(super) fn leave_rebuild(&mut self, file: u32) {
        if let Some(r) = self.rebuild.as_mut() {
            r.to_move.retain(|&f| f != file);
            r.next.remove_file(file);
        }
        self.finish_if_done();
    }

    /// The new table replaces the old one once it holds every file.
    fn finish_if_done(&mut self) {
        if self.rebuild.as_ref().is_some_and(|r| r.to_move.is_empty()) {
            if let Some(r) = self.rebuild.take() {
                *self = r.next;
            }
        }
    }

    /// Where a running rebuild takes a new file: the new table (`true`, done).
    pub(super) fn add_to_rebuild(&mut self, file: u32, hashes: Option<&[u64]>) -> bool {
        let Some(r) = self.rebuild.as_mut() else {
            return false;
        };
        r.to_move.retain(|&f| f != file);
        match hashes {
            Some(h) => r.next.add_file(file, h),
            None => r.next.add_untagged(file),
        }
        self.finish_if_done();
        true
    }

    /// The names the new table of a running rebuild adds for hash `h`.
    pub(super) fn rebuild_candidates(&self, h: u64, out: &mut Candidates) {
        if let Some(r) = self.rebuild.as_ref() {
            for f in r.next.candidates(h).iter() {
                out.push(f);
            }
        }
    }
}
