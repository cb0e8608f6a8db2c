//! Defragmentation: rewrite a closed data file without its removed records.
//!
//! Live records are copied verbatim (header position rewritten) in key order to
//! `P-S.N.defrag`, with `P-S.N.defrag.index` and `P-S.N.defrag.index.sorted`; all three are
//! made durable, then the marker `P-S.N.defrag.done` is created: that is the commit point.
//! The renames over the old files follow and the marker goes. At open, a marker means
//! "finish the renames", no marker means "delete the temporaries". Reads and writes go on
//! while the copy runs; removes that land meanwhile are re-applied to the copy before the
//! swap, and the swap itself runs without an `.await`.

use super::disk_control::{DiskControl, DISK_CONTROL_SIZE_BYTES};
use super::error::BlobError;
use super::index::Loc;
use super::log::BlobLog;
use super::sealed::SealedIndex;
use super::segment::{self, Segment};
use super::{BlobOptions, DefragStats};
use crate::io::IoFile;
use crate::key::RawId;
use crate::protocol::record_flags;
use bytes::Bytes;
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// Where a defrag may be stopped on purpose, to test crash handling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefragStop {
    /// Run to the end.
    Never,
    /// After the new files are durable, before the commit marker.
    BeforeMarker,
    /// After the commit marker, before the renames.
    BeforeRename,
}

const SUFFIXES: [&str; 3] = ["", ".index", ".index.sorted"];

fn tmp_path(opts: &BlobOptions, num: u32, suffix: &str) -> PathBuf {
    segment::side_path(
        &opts.data_prefix,
        opts.shard,
        num,
        &format!(".defrag{suffix}"),
    )
}

fn final_path(opts: &BlobOptions, num: u32, suffix: &str) -> PathBuf {
    segment::side_path(&opts.data_prefix, opts.shard, num, suffix)
}

fn marker_path(opts: &BlobOptions, num: u32) -> PathBuf {
    segment::side_path(&opts.data_prefix, opts.shard, num, ".defrag.done")
}

fn shown(p: &Path) -> String {
    p.display().to_string()
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
        for suffix in SUFFIXES {
            let tmp = tmp_path(opts, num, suffix);
            if tmp.exists() {
                std::fs::remove_file(&tmp).map_err(|e| BlobError::io(&shown(&tmp), e))?;
            }
        }
    }
    Ok(())
}

/// The temporary files of one defrag run.
struct NewFiles<F: IoFile> {
    data: F,
    index: F,
    sorted: F,
}

impl<F: IoFile> NewFiles<F> {
    fn create(opts: &BlobOptions, num: u32) -> Result<Self, BlobError> {
        let make = |suffix: &str| -> Result<F, BlobError> {
            let p = tmp_path(opts, num, suffix);
            std::fs::OpenOptions::new()
                .create(true)
                .truncate(true)
                .read(true)
                .write(true)
                .open(&p)
                .map(F::from_std)
                .map_err(|e| BlobError::io(&shown(&p), e))
        };
        Ok(NewFiles {
            data: make("")?,
            index: make(".index")?,
            sorted: make(".index.sorted")?,
        })
    }

    async fn put_header(&self, dc: &DiskControl, slot: usize) -> Result<(), BlobError> {
        let bytes = Bytes::copy_from_slice(&dc.encode());
        let at = slot as u64 * DISK_CONTROL_SIZE_BYTES;
        for (f, off) in [
            (&self.index, at),
            (&self.sorted, at),
            (&self.data, dc.position),
        ] {
            f.write_all_at(vec![bytes.clone()], off)
                .await
                .map_err(|e| BlobError::io("defrag copy", e))?;
        }
        Ok(())
    }

    async fn sync(&self) -> Result<(), BlobError> {
        for f in [&self.data, &self.index, &self.sorted] {
            f.sync_data()
                .await
                .map_err(|e| BlobError::io("defrag copy", e))?;
        }
        Ok(())
    }
}

impl<F: IoFile> BlobLog<F> {
    /// Rewrite every closed file that holds removed records.
    pub async fn defrag(&self) -> Result<DefragStats, BlobError> {
        self.defrag_files(0).await
    }

    /// Rewrite closed files whose removed share reached `defrag_percentage`.
    pub async fn defrag_if_needed(&self) -> Result<DefragStats, BlobError> {
        self.defrag_files(self.opts.defrag_percentage.max(1)).await
    }

    async fn defrag_files(&self, min_percent: u32) -> Result<DefragStats, BlobError> {
        self.check_writable()?;
        if self.defrag_running.replace(true) {
            return Ok(DefragStats::default());
        }
        let segs: Vec<_> = self.files.borrow().values().cloned().collect();
        let mut stats = DefragStats::default();
        let mut result = Ok(());
        for seg in segs {
            let used = seg.tail_bytes.get().max(1);
            let share = seg.removed_bytes.get().saturating_mul(100) / used;
            if !seg.closed.get() || seg.removed.get() == 0 || share < u64::from(min_percent) {
                continue;
            }
            if let Err(e) = self.defrag_segment(&seg, &mut stats).await {
                result = Err(e);
                break;
            }
        }
        self.defrag_running.set(false);
        result.map(|()| stats)
    }

    /// Live records of file `num`, by key.
    fn live_in(&self, num: u32) -> Vec<(RawId, Loc)> {
        self.index.borrow().live_in_file(num)
    }

    async fn defrag_segment(
        &self,
        seg: &Rc<Segment<F>>,
        stats: &mut DefragStats,
    ) -> Result<(), BlobError> {
        let live = self.live_in(seg.num);
        if live
            .iter()
            .any(|(_, l)| u64::from(l.flags) & record_flags::UNCOMMITTED != 0)
        {
            return Ok(());
        }
        let copy: NewFiles<F> = NewFiles::create(&self.opts, seg.num)?;
        let mut placed = Vec::with_capacity(live.len());
        let mut new_pos = 0u64;
        for (slot, (key, loc)) in live.iter().enumerate() {
            let mut record = seg.read_data(loc.disk_size, loc.position).await?;
            let dc = DiskControl {
                key: *key,
                flags: u64::from(loc.flags),
                data_size: loc.data_size,
                disk_size: loc.disk_size,
                position: new_pos,
            };
            if let Some(head) = record.get_mut(..96) {
                head.copy_from_slice(&dc.encode());
            }
            copy.data
                .write_all_at(vec![Bytes::from(record)], new_pos)
                .await
                .map_err(|e| BlobError::io("defrag copy", e))?;
            copy.put_header(&dc, slot).await?;
            placed.push(dc);
            new_pos += loc.disk_size;
        }
        let mut dropped = vec![false; live.len()];
        loop {
            copy.sync().await?;
            if seg.busy.get() > 0
                || self.live_in(seg.num).iter().any(|(k, l)| {
                    live.binary_search_by_key(k, |(k2, _)| *k2)
                        .map_or(true, |i| live.get(i).map(|(_, l2)| l2) != Some(l))
                })
            {
                // Changed under us (new uncommitted state or an operation in flight): retry later.
                drop(copy);
                finish_interrupted(&self.opts)?;
                return Ok(());
            }
            let mut newly = Vec::new();
            {
                let index = self.index.borrow();
                for (i, (key, loc)) in live.iter().enumerate() {
                    let still = index.get(key) == Some(*loc);
                    if !still && !dropped.get(i).copied().unwrap_or(true) {
                        newly.push(i);
                    }
                }
            }
            if newly.is_empty() {
                break;
            }
            for i in newly {
                if let (Some(d), Some(dc)) = (dropped.get_mut(i), placed.get_mut(i)) {
                    *d = true;
                    dc.flags |= record_flags::REMOVE;
                    copy.put_header(dc, i).await?;
                }
            }
        }
        drop(copy);
        // Commit point and swap: no `.await` from here to the end.
        self.swap_in(seg, &placed, &dropped, new_pos, stats)
    }

    fn swap_in(
        &self,
        seg: &Rc<Segment<F>>,
        placed: &[DiskControl],
        dropped: &[bool],
        new_len: u64,
        stats: &mut DefragStats,
    ) -> Result<(), BlobError> {
        let num = seg.num;
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
        let fresh = Rc::new(Segment::open(
            &self.opts.data_prefix,
            self.opts.shard,
            num,
            false,
        )?);
        fresh.closed.set(true);
        fresh.sorted.set(true);
        fresh.tail_bytes.set(new_len);
        fresh.records.set(placed.len() as u64);
        let slots = u32::try_from(placed.len()).unwrap_or(u32::MAX);
        fresh.index_slots.set(slots);
        fresh.pending.reset(slots);
        for (dc, gone) in placed.iter().zip(dropped) {
            if *gone {
                fresh.removed.set(fresh.removed.get() + 1);
                fresh
                    .removed_bytes
                    .set(fresh.removed_bytes.get() + dc.disk_size);
            }
        }
        let sorted = final_path(&self.opts, num, ".index.sorted");
        let sealed = SealedIndex::open(&sorted, new_len)?.ok_or_else(|| BlobError::Corrupt {
            path: shown(&sorted),
            reason: "the defragmented sorted index does not check".into(),
        })?;
        self.index.borrow_mut().seal(num, sealed.0);
        stats.files_rewritten += 1;
        stats.records_kept += placed.len() as u64;
        stats.records_dropped += seg.records.get().saturating_sub(placed.len() as u64);
        stats.bytes_before += seg.tail_bytes.get();
        stats.bytes_after += new_len;
        self.files.borrow_mut().insert(num, fresh);
        Ok(())
    }
}
