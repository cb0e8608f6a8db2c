//! Walking a sealed file's sorted index ([`super::sealed`]) in slot order: all at once with
//! a callback, or an entry at a time with a [`Cursor`] (many files side by side).

use super::disk_control::{DiskControl, DISK_CONTROL_SIZE_BYTES};
use super::error::BlobError;
use std::fs::File;
use std::os::unix::fs::FileExt;

const ENTRY_BYTES: u64 = DISK_CONTROL_SIZE_BYTES;

/// Bytes of the sorted index read at once when it is walked: whole entries, about 1 MiB.
const WALK_CHUNK_BYTES: u64 = ENTRY_BYTES * 10_240;

/// Call `f` with each of the `entries` entries of the sorted index `file`, in slot order,
/// until it answers `false`.
pub(super) fn walk_file(
    file: &File,
    path: &str,
    entries: u64,
    mut f: impl FnMut(u32, &DiskControl) -> bool,
) -> Result<(), BlobError> {
    let total = entries * ENTRY_BYTES;
    let mut at = 0u64;
    let mut buf = Vec::new();
    while at < total {
        let n = usize::try_from(WALK_CHUNK_BYTES.min(total - at)).unwrap_or(0);
        buf.resize(n, 0);
        file.read_exact_at(&mut buf, at)
            .map_err(|e| BlobError::io(path, e))?;
        let first = at / ENTRY_BYTES;
        for i in 0..n / ENTRY_BYTES as usize {
            let Some(dc) = DiskControl::decode_at(&buf, i) else {
                break;
            };
            if !f(slot32(first + i as u64), &dc) {
                return Ok(());
            }
        }
        at += n as u64;
    }
    Ok(())
}

pub(super) fn slot32(slot: u64) -> u32 {
    u32::try_from(slot).unwrap_or(u32::MAX)
}

/// Reads the entries of a sealed file in slot order, a chunk at a time.
#[derive(Debug)]
pub struct Cursor<'a> {
    file: &'a File,
    path: &'a str,
    entries: u64,
    buf: Vec<u8>,
    /// Slot of the first entry in `buf`, and the next one to hand out.
    first: u64,
    next: u64,
}

/// Bytes a [`Cursor`] reads at once (many files are read side by side): whole entries.
const CURSOR_CHUNK_BYTES: u64 = ENTRY_BYTES * 640;

impl<'a> Cursor<'a> {
    /// A cursor over the `entries` entries of the sorted index `file` (named `path`).
    pub(super) fn new(file: &'a File, path: &'a str, entries: u64) -> Cursor<'a> {
        Cursor {
            file,
            path,
            entries,
            buf: Vec::new(),
            first: 0,
            next: 0,
        }
    }

    /// The next entry and its slot.
    pub fn next_entry(&mut self) -> Result<Option<(u32, DiskControl)>, BlobError> {
        if self.next >= self.entries {
            return Ok(None);
        }
        let have = (self.buf.len() as u64) / ENTRY_BYTES;
        if self.next >= self.first + have {
            let left = (self.entries - self.next) * ENTRY_BYTES;
            let n = usize::try_from(CURSOR_CHUNK_BYTES.min(left)).unwrap_or(0);
            self.buf.resize(n, 0);
            self.file
                .read_exact_at(&mut self.buf, self.next * ENTRY_BYTES)
                .map_err(|e| BlobError::io(self.path, e))?;
            self.first = self.next;
        }
        let i = usize::try_from(self.next - self.first).unwrap_or(usize::MAX);
        let dc = DiskControl::decode_at(&self.buf, i)
            .ok_or(BlobError::Invalid("sorted index cursor out of range"))?;
        let slot = slot32(self.next);
        self.next += 1;
        Ok(Some((slot, dc)))
    }
}
