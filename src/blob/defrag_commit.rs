//! The commit of a defrag ([`super::defrag`]) and its recovery: the copy of file `N` is
//! `P-S.N.defrag` with `P-S.N.defrag.index.sorted`; once both are durable the marker
//! `P-S.N.defrag.done` is created (the commit point), the copies are renamed over the old
//! files, the old `.index` (if any) goes, and the marker goes last. At open, a marker means
//! "finish the renames", no marker means "delete the temporaries". A file left with no live
//! record is deleted instead: its data file first (an index without its data file is never
//! read), then its index.

use super::defrag_copy::{shown, tmp_path, Placed};
use super::defrag_state::DefragStop;
use super::error::BlobError;
use super::log::BlobLog;
use super::sealed::SealedIndex;
use super::segment::{self, Segment, SORTED_SUFFIX};
use super::{BlobOptions, DefragStats};
use crate::io::IoFile;
use std::path::PathBuf;
use std::rc::Rc;

/// The files a defrag writes: the data file and its one (sorted) index.
const SUFFIXES: [&str; 2] = ["", ".index.sorted"];

/// Temporaries an interrupted defrag may leave (`.index` from older versions too).
const TMP_SUFFIXES: [&str; 3] = ["", ".index", ".index.sorted"];

fn final_path(opts: &BlobOptions, num: u32, suffix: &str) -> PathBuf {
    segment::side_path(&opts.data_prefix, opts.shard, num, suffix)
}

fn marker_path(opts: &BlobOptions, num: u32) -> PathBuf {
    segment::side_path(&opts.data_prefix, opts.shard, num, ".defrag.done")
}

fn sync_dir(opts: &BlobOptions) -> Result<(), BlobError> {
    segment::sync_dir(&opts.data_prefix)
}

/// Move the new files of a committed defrag of file `num` into place.
fn finish_swap(opts: &BlobOptions, num: u32) -> Result<(), BlobError> {
    for suffix in SUFFIXES {
        let from = tmp_path(opts, num, suffix);
        if from.exists() {
            std::fs::rename(&from, final_path(opts, num, suffix))
                .map_err(|e| BlobError::io(&shown(&from), e))?;
        }
    }
    // The sorted index is the file's one index now.
    let unsorted = final_path(opts, num, ".index");
    match std::fs::remove_file(&unsorted) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(BlobError::io(&shown(&unsorted), e))
        }
        _ => {}
    }
    sync_dir(opts)?;
    let marker = marker_path(opts, num);
    std::fs::remove_file(&marker).map_err(|e| BlobError::io(&shown(&marker), e))?;
    sync_dir(opts)
}

/// At open: finish defrags that reached their commit marker, drop the others' files.
pub fn finish_interrupted(opts: &BlobOptions) -> Result<(), BlobError> {
    for num in segment::list_files(&opts.data_prefix, opts.shard)? {
        if marker_path(opts, num).exists() {
            tracing::warn!(file = num, "finishing an interrupted defrag");
            finish_swap(opts, num)?;
            continue;
        }
        drop_temporaries(opts, num)?;
    }
    Ok(())
}

/// Delete what an unfinished defrag of file `num` wrote.
pub(super) fn drop_temporaries(opts: &BlobOptions, num: u32) -> Result<(), BlobError> {
    for suffix in TMP_SUFFIXES {
        let tmp = tmp_path(opts, num, suffix);
        if tmp.exists() {
            std::fs::remove_file(&tmp).map_err(|e| BlobError::io(&shown(&tmp), e))?;
        }
    }
    Ok(())
}

impl<F: IoFile> BlobLog<F> {
    /// Commit the copy of `seg` and put it in place. No `.await`: nothing changes the file
    /// in between.
    pub(super) fn swap_in(
        &self,
        seg: &Rc<Segment<F>>,
        placed: &[Placed],
        new_len: u64,
        stats: &mut DefragStats,
    ) -> Result<(), BlobError> {
        let num = seg.num;
        if placed.iter().all(|p| p.dropped) {
            return self.drop_empty(seg, stats);
        }
        if self.defrag_stop.get() == DefragStop::BeforeMarker {
            return Err(BlobError::Invalid(
                "defrag stopped before its commit marker",
            ));
        }
        let marker = marker_path(&self.opts, num);
        std::fs::File::create(&marker).map_err(|e| BlobError::io(&shown(&marker), e))?;
        sync_dir(&self.opts)?;
        if self.defrag_stop.get() == DefragStop::BeforeRename {
            return Err(BlobError::Invalid("defrag stopped before its renames"));
        }
        finish_swap(&self.opts, num)?;
        let fresh = Rc::new(Segment::open_sealed(
            &self.opts.data_prefix,
            self.opts.shard,
            num,
            false,
        )?);
        fresh.tail_bytes.set(new_len);
        fresh.contiguous_end.set(new_len);
        fresh.records.set(placed.len() as u64);
        let slots = u32::try_from(placed.len()).unwrap_or(u32::MAX);
        fresh.index_slots.set(slots);
        fresh.pending.reset(slots);
        let sorted = final_path(&self.opts, num, SORTED_SUFFIX);
        let sealed = SealedIndex::open(&sorted, new_len)?.ok_or_else(|| BlobError::Corrupt {
            path: shown(&sorted),
            reason: "the defragmented sorted index does not check".into(),
        })?;
        let mut index = self.index.borrow_mut();
        // Old copies kept live in the copy (their keys' newer copies are elsewhere).
        let held: Vec<u32> = (0u32..)
            .zip(placed)
            .filter(|(_, p)| {
                !p.dropped
                    && index
                        .get(&p.key)
                        .is_none_or(|l| l.file != num || l.position != p.old_position)
            })
            .map(|(slot, _)| slot)
            .collect();
        for p in placed.iter().filter(|p| p.dropped) {
            fresh.removed.set(fresh.removed.get() + 1);
            fresh
                .removed_bytes
                .set(fresh.removed_bytes.get() + p.dc.disk_size);
        }
        index.seal(num, sealed.0);
        for slot in held {
            index.dead_on_disk_later(num, slot);
        }
        drop(index);
        stats.files_rewritten += 1;
        stats.records_kept += placed.iter().filter(|p| !p.dropped).count() as u64;
        stats.records_dropped += seg.records.get().saturating_sub(placed.len() as u64)
            + placed.iter().filter(|p| p.dropped).count() as u64;
        stats.bytes_before += seg.tail_bytes.get();
        stats.bytes_after += new_len;
        if let Some(d) = self.dirty.borrow_mut().get_mut(&num) {
            *d = fresh.clone();
        }
        self.files.borrow_mut().insert(num, fresh);
        Ok(())
    }

    /// A sealed file left with no live record goes away: its data file first (an index
    /// without its data file is never read), then its index.
    fn drop_empty(&self, seg: &Rc<Segment<F>>, stats: &mut DefragStats) -> Result<(), BlobError> {
        let num = seg.num;
        drop_temporaries(&self.opts, num)?;
        for suffix in ["", ".index.sorted", ".index"] {
            let path = final_path(&self.opts, num, suffix);
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(BlobError::io(&shown(&path), e))
                }
                _ => {}
            }
        }
        sync_dir(&self.opts)?;
        self.files.borrow_mut().remove(&num);
        self.dirty.borrow_mut().remove(&num);
        self.index.borrow_mut().drop_file(num);
        stats.files_rewritten += 1;
        stats.records_dropped += seg.records.get();
        stats.bytes_before += seg.tail_bytes.get();
        Ok(())
    }
}
