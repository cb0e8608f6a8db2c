//! The files a defrag ([`super::defrag`]) writes: the copy of a data file and its sorted
//! index (`P-S.N.defrag`, `P-S.N.defrag.index.sorted`), filled a buffer at a time, and the
//! records placed in them.

use super::disk_control::{DiskControl, DISK_CONTROL_SIZE_BYTES};
use super::error::BlobError;
use super::segment::{self, Segment};
use super::BlobOptions;
use crate::io::IoFile;
use crate::key::RawId;
use bytes::Bytes;
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// The temporary files of one defrag run.
pub(super) struct NewFiles<F: IoFile> {
    pub data: F,
    pub sorted: F,
}

impl<F: IoFile> NewFiles<F> {
    pub fn create(opts: &BlobOptions, num: u32) -> Result<Self, BlobError> {
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
            sorted: make(".index.sorted")?,
        })
    }

    pub async fn write(f: &F, bytes: Vec<u8>, at: u64) -> Result<(), BlobError> {
        if bytes.is_empty() {
            return Ok(());
        }
        f.write_all_at(vec![Bytes::from(bytes)], at)
            .await
            .map_err(|e| BlobError::io("defrag copy", e))
    }

    /// Rewrite the header of the copy's record in sorted slot `slot`.
    pub async fn put_header(&self, dc: &DiskControl, slot: usize) -> Result<(), BlobError> {
        let at = slot as u64 * DISK_CONTROL_SIZE_BYTES;
        Self::write(&self.sorted, dc.encode().to_vec(), at).await?;
        Self::write(&self.data, dc.encode().to_vec(), dc.position).await
    }

    pub async fn sync(&self) -> Result<(), BlobError> {
        for f in [&self.data, &self.sorted] {
            f.sync_data()
                .await
                .map_err(|e| BlobError::io("defrag copy", e))?;
        }
        Ok(())
    }
}

/// A record copied: its key, where it was, and its header in the copy.
pub(super) struct Placed {
    pub key: RawId,
    pub old_position: u64,
    pub dc: DiskControl,
    pub dropped: bool,
}

/// The copy of one file being written.
pub(super) struct Copy<F: IoFile> {
    pub files: NewFiles<F>,
    pub placed: Vec<Placed>,
    data_buf: Vec<u8>,
    index_buf: Vec<u8>,
    /// Bytes of the data file and entries of the index already written out.
    data_written: u64,
    slots_written: u64,
}

impl<F: IoFile> Copy<F> {
    pub fn new(files: NewFiles<F>) -> Self {
        Copy {
            files,
            placed: Vec::new(),
            data_buf: Vec::new(),
            index_buf: Vec::new(),
            data_written: 0,
            slots_written: 0,
        }
    }

    /// Append record `record` (header included), whose header was `old` in the file being
    /// copied, with its header rewritten for its place in the copy; the bytes buffered.
    pub fn push(&mut self, old: &DiskControl, mut record: Vec<u8>) -> usize {
        let dc = DiskControl {
            position: self.end(),
            ..*old
        };
        if let Some(head) = record.get_mut(..DISK_CONTROL_SIZE_BYTES as usize) {
            head.copy_from_slice(&dc.encode());
        }
        self.data_buf.extend_from_slice(&record);
        self.index_buf.extend_from_slice(&dc.encode());
        self.placed.push(Placed {
            key: old.key,
            old_position: old.position,
            dc,
            dropped: false,
        });
        self.data_buf.len()
    }

    pub fn end(&self) -> u64 {
        self.data_written + self.data_buf.len() as u64
    }

    pub async fn flush(&mut self) -> Result<(), BlobError> {
        let data = std::mem::take(&mut self.data_buf);
        let index = std::mem::take(&mut self.index_buf);
        let (data_len, entries) = (
            data.len() as u64,
            index.len() as u64 / DISK_CONTROL_SIZE_BYTES,
        );
        NewFiles::write(&self.files.data, data, self.data_written).await?;
        let at = self.slots_written * DISK_CONTROL_SIZE_BYTES;
        NewFiles::write(&self.files.sorted, index, at).await?;
        self.data_written += data_len;
        self.slots_written += entries;
        Ok(())
    }
}

/// Turns a defrag waits for operations on its file to finish before leaving it for later.
pub(super) const BUSY_WAIT_TURNS_MAX: usize = 10_000;

/// Marks a file as being copied (see [`Segment::defragging`]) until dropped.
pub(super) struct Copying<F: IoFile>(Rc<Segment<F>>);

impl<F: IoFile> Copying<F> {
    pub fn start(seg: &Rc<Segment<F>>) -> Self {
        seg.defragging.set(true);
        Copying(seg.clone())
    }
}

impl<F: IoFile> Drop for Copying<F> {
    fn drop(&mut self) {
        self.0.defragging.set(false);
    }
}

pub(super) fn tmp_path(opts: &BlobOptions, num: u32, suffix: &str) -> PathBuf {
    segment::side_path(
        &opts.data_prefix,
        opts.shard,
        num,
        &format!(".defrag{suffix}"),
    )
}

pub(super) fn shown(p: &Path) -> String {
    p.display().to_string()
}
