//! Start-up validation of a data file against its index (eblob `eblob_check_record`).
//!
//! Each `.index` entry must: have `disk_size >= data_size + 96` (plus the footer unless
//! NOCSUM or UNCOMMITTED), end inside the data file, match the header copy in the data file
//! (REMOVE may be set in either), and, for the open file, carry a valid footer. The index is
//! truncated before the first entry that fails.
//!
//! The index may lag the data (entries are buffered, see [`super::pending`]): past the end
//! of the last valid entry's record the data file is walked header by header, and each
//! record whose header sits at its own position and whose footer verifies gets its index
//! entry back. The walk stops at the first record that fails or cannot prove it is whole
//! (no footer); the data file is truncated there, so a torn record is never served.

use super::disk_control::{DiskControl, DISK_CONTROL_SIZE_BYTES};
use super::error::BlobError;
use super::footer::{self, FooterKind};
use super::segment::Segment;
use crate::io::IoFile;
use crate::protocol::record_flags;
use bytes::Bytes;

/// Entries read from the index per batch.
const SCAN_BATCH_ENTRIES: u64 = 1024;

/// Bytes of the data file read at once while validating records in file order.
const SCAN_WINDOW_BYTES: u64 = 1 << 20;

/// A window of the data file: records are checked in file order, so one big read serves
/// many of them instead of one read per record.
#[derive(Debug, Default)]
struct Window {
    start: u64,
    bytes: Vec<u8>,
}

impl Window {
    /// `len` bytes at `offset` (the caller checked they lie inside the file of `data_len`).
    async fn get<F: IoFile>(
        &mut self,
        seg: &Segment<F>,
        offset: u64,
        len: u64,
        data_len: u64,
    ) -> Result<&[u8], BlobError> {
        let end = offset.saturating_add(len);
        let have_end = self.start + self.bytes.len() as u64;
        if offset < self.start || end > have_end {
            let want = len
                .max(SCAN_WINDOW_BYTES)
                .min(data_len.saturating_sub(offset));
            self.bytes = seg.read_data(want.max(len), offset).await?;
            self.start = offset;
        }
        let lo = usize::try_from(offset - self.start).unwrap_or(usize::MAX);
        let hi = usize::try_from(end - self.start).unwrap_or(usize::MAX);
        self.bytes
            .get(lo..hi)
            .ok_or(BlobError::Invalid("scan window out of range"))
    }
}

/// The valid entries of a data file, in index order.
#[derive(Debug)]
pub struct Scanned {
    pub entries: Vec<DiskControl>,
    /// How many of the last `entries` (rebuilt from the data file) could not be written to
    /// the `.index` because the disk is full: the caller buffers them for a later flush.
    pub unwritten: usize,
}

/// Validate the index of `seg` against its data; truncate both at the first bad entry when
/// `repair`. The first `trusted` entries are known durable with their records
/// ([`super::checkpoint`]): they are only checked to lie inside the data file, which is not
/// read for them.
pub async fn scan<F: IoFile>(
    seg: &Segment<F>,
    verify_footers: bool,
    repair: bool,
    trusted: u64,
) -> Result<Scanned, BlobError> {
    let data_len = seg.data_len()?;
    let entries_total = seg.index_len()? / DISK_CONTROL_SIZE_BYTES;
    let mut valid = Vec::new();
    let mut footer_ok = Vec::new();
    let mut bad = false;
    let mut next = 0u64;
    let mut window = Window::default();
    while next < entries_total && !bad {
        let batch = SCAN_BATCH_ENTRIES.min(entries_total - next);
        let buf = read_entries(seg, next, batch).await?;
        for i in 0..usize::try_from(batch).unwrap_or(0) {
            let Some(dc) = DiskControl::decode_at(&buf, i) else {
                bad = true;
                break;
            };
            let verdict = if next + (i as u64) < trusted {
                match fits(&dc, data_len) {
                    Some(_) => Check::Good {
                        removed: dc.flags & record_flags::REMOVE != 0,
                    },
                    None => Check::Bad,
                }
            } else {
                check_entry(seg, &mut window, &dc, data_len, verify_footers).await?
            };
            match verdict {
                Check::Bad => {
                    bad = true;
                    break;
                }
                Check::Good { removed } | Check::BadFooter { removed } => {
                    footer_ok.push(!matches!(verdict, Check::BadFooter { .. }));
                    let mut dc = dc;
                    if removed {
                        dc.flags |= record_flags::REMOVE;
                    }
                    valid.push(dc);
                }
            }
        }
        next += batch;
    }
    // A trailing run of records whose footer fails is a torn tail; a bad footer followed by
    // good records is damage inside the file, kept so that reads answer -EILSEQ.
    let torn = footer_ok.iter().rev().take_while(|ok| !**ok).count();
    valid.truncate(valid.len() - torn);
    let index_entries = valid.len();
    let index_tail = valid
        .iter()
        .map(|d| d.position.saturating_add(d.disk_size))
        .max()
        .unwrap_or(0);
    let recovered = scan_data_tail(seg, &mut window, index_tail, data_len).await?;
    let tail = recovered
        .last()
        .map_or(index_tail, |d| d.position.saturating_add(d.disk_size));
    let unwritten = if repair {
        repair_files(seg, index_entries, &recovered, data_len, tail).await?
    } else {
        0
    };
    valid.extend(recovered);
    Ok(Scanned {
        entries: valid,
        unwritten,
    })
}

/// Cut the `.index` after its last valid entry and append the entries `recovered` from the
/// data file past it (kept in memory when the disk is full: returns how many), and cut the
/// data file at `tail`, the end of its last record.
async fn repair_files<F: IoFile>(
    seg: &Segment<F>,
    index_entries: usize,
    recovered: &[DiskControl],
    data_len: u64,
    tail: u64,
) -> Result<usize, BlobError> {
    let mut unwritten = 0;
    let keep_index = index_entries as u64 * DISK_CONTROL_SIZE_BYTES;
    if seg.index_len()? != keep_index {
        tracing::warn!(file = %seg.index_path, entries = index_entries, "truncating index after the last valid entry");
        seg.index
            .as_std()
            .set_len(keep_index)
            .map_err(|e| BlobError::io(&seg.index_path, e))?;
    }
    if !recovered.is_empty() {
        tracing::info!(file = %seg.index_path, entries = recovered.len(), "index entries rebuilt from the data file");
        let mut bytes = Vec::with_capacity(recovered.len() * 96);
        for dc in recovered {
            bytes.extend_from_slice(&dc.encode());
        }
        let res = seg
            .index
            .write_all_at(vec![Bytes::from(bytes)], keep_index)
            .await
            .map_err(|e| BlobError::io(&seg.index_path, e));
        match res {
            // The entries are in the data file: a full disk only delays their copy.
            Err(BlobError::NoSpace(e)) => {
                tracing::warn!(file = %seg.index_path, "rebuilt index entries kept in memory: {e}");
                seg.index
                    .as_std()
                    .set_len(keep_index)
                    .map_err(|e| BlobError::io(&seg.index_path, e))?;
                unwritten = recovered.len();
            }
            other => other?,
        }
    }
    if data_len > tail {
        seg.data
            .as_std()
            .set_len(tail)
            .map_err(|e| BlobError::io(&seg.path, e))?;
    }
    Ok(unwritten)
}

/// Records of the data file from `at` on that have no index entry: walk header by header
/// while each one is whole (its footer verifies) and starts where the previous one ended.
async fn scan_data_tail<F: IoFile>(
    seg: &Segment<F>,
    window: &mut Window,
    mut at: u64,
    data_len: u64,
) -> Result<Vec<DiskControl>, BlobError> {
    let mut out = Vec::new();
    while at
        .checked_add(DISK_CONTROL_SIZE_BYTES)
        .is_some_and(|end| end <= data_len)
    {
        let head = window
            .get(seg, at, DISK_CONTROL_SIZE_BYTES, data_len)
            .await?;
        let Some(dc) = DiskControl::decode_at(head, 0) else {
            break;
        };
        let provable = dc.flags & (record_flags::NOCSUM | record_flags::UNCOMMITTED) == 0
            && FooterKind::of_flags(dc.flags).is_some();
        if dc.position != at || !provable {
            break;
        }
        let Check::Good { removed } = check_entry(seg, window, &dc, data_len, true).await? else {
            break;
        };
        let mut dc = dc;
        if removed {
            dc.flags |= record_flags::REMOVE;
        }
        out.push(dc);
        at = at.saturating_add(dc.disk_size);
    }
    Ok(out)
}

/// Verdict on one index entry.
enum Check {
    Good {
        removed: bool,
    },
    /// Structurally sound, but the data does not match its footer.
    BadFooter {
        removed: bool,
    },
    Bad,
}

/// The footer bytes of an entry whose sizes are consistent and whose record lies inside a
/// data file of `data_len` bytes; `None` otherwise.
fn fits(dc: &DiskControl, data_len: u64) -> Option<u64> {
    let min_disk = dc.data_size.checked_add(DISK_CONTROL_SIZE_BYTES)?;
    let checked = dc.flags & (record_flags::NOCSUM | record_flags::UNCOMMITTED) == 0;
    let footer_bytes = if checked {
        footer::footer_size(dc.data_size)
    } else {
        0
    };
    if dc.disk_size < min_disk.saturating_add(footer_bytes) {
        return None;
    }
    match dc.position.checked_add(dc.disk_size) {
        Some(end) if end <= data_len => Some(footer_bytes),
        _ => None,
    }
}

async fn check_entry<F: IoFile>(
    seg: &Segment<F>,
    window: &mut Window,
    dc: &DiskControl,
    data_len: u64,
    verify_footers: bool,
) -> Result<Check, BlobError> {
    let Some(footer_bytes) = fits(dc, data_len) else {
        return Ok(Check::Bad);
    };
    let checked = dc.flags & (record_flags::NOCSUM | record_flags::UNCOMMITTED) == 0;
    // Verifying reads the whole record at once (its size is bounded by the file above);
    // a large one is verified a piece at a time instead.
    let kind = FooterKind::of_flags(dc.flags).filter(|_| verify_footers && checked);
    if let (Some(kind), true) = (kind, dc.disk_size > SCAN_WINDOW_BYTES) {
        return check_large(seg, window, dc, data_len, kind, footer_bytes).await;
    }
    let read_len = if kind.is_some() {
        dc.disk_size
    } else {
        DISK_CONTROL_SIZE_BYTES
    };
    let record = window.get(seg, dc.position, read_len, data_len).await?;
    let Some(removed) = header_matches(record, dc) else {
        return Ok(Check::Bad);
    };
    if let (Some(kind), false) = (kind, removed) {
        let data_end = usize::try_from(DISK_CONTROL_SIZE_BYTES + dc.data_size).unwrap_or(0);
        let foot_at = usize::try_from(dc.disk_size - footer_bytes).unwrap_or(0);
        let data = record
            .get(DISK_CONTROL_SIZE_BYTES as usize..data_end)
            .unwrap_or(&[]);
        let foot = record.get(foot_at..).unwrap_or(&[]);
        if footer::verify(kind, foot, 0, data).is_err() {
            return Ok(Check::BadFooter { removed });
        }
    }
    Ok(Check::Good { removed })
}

/// Entries `first..first + count` of `seg`'s index file, as bytes.
pub(super) async fn read_entries<F: IoFile>(
    seg: &Segment<F>,
    first: u64,
    count: u64,
) -> Result<Vec<u8>, BlobError> {
    let too_large = || BlobError::Invalid("index batch too large");
    let len = count
        .checked_mul(DISK_CONTROL_SIZE_BYTES)
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(too_large)?;
    let at = first
        .checked_mul(DISK_CONTROL_SIZE_BYTES)
        .ok_or_else(too_large)?;
    let (res, buf) = seg.index.read_exact_at(vec![0u8; len], at).await;
    res.map_err(|e| BlobError::io(&seg.index_path, e))?;
    Ok(buf)
}

/// Whether the record header at the start of `bytes` is index entry `dc` (its REMOVE flag
/// aside); if so, whether either of them says removed.
fn header_matches(bytes: &[u8], dc: &DiskControl) -> Option<bool> {
    let copy = DiskControl::decode_at(bytes, 0)?;
    let strip = |d: &DiskControl| DiskControl {
        flags: d.flags & !record_flags::REMOVE,
        ..*d
    };
    (strip(&copy) == strip(dc)).then_some((copy.flags | dc.flags) & record_flags::REMOVE != 0)
}

/// [`check_entry`] of a record larger than the scan window: header, footer, then the data
/// in window-sized runs of whole chunks, so memory stays bounded whatever the record's size.
async fn check_large<F: IoFile>(
    seg: &Segment<F>,
    window: &mut Window,
    dc: &DiskControl,
    data_len: u64,
    kind: FooterKind,
    footer_bytes: u64,
) -> Result<Check, BlobError> {
    let head = window
        .get(seg, dc.position, DISK_CONTROL_SIZE_BYTES, data_len)
        .await?;
    let Some(removed) = header_matches(head, dc) else {
        return Ok(Check::Bad);
    };
    if removed {
        return Ok(Check::Good { removed });
    }
    let foot = seg
        .read_data(footer_bytes, dc.position + dc.disk_size - footer_bytes)
        .await?;
    let base = dc.position + DISK_CONTROL_SIZE_BYTES;
    let mut at = 0u64;
    while at < dc.data_size {
        let len = (dc.data_size - at).min(SCAN_WINDOW_BYTES);
        let piece = seg.read_data(len, base + at).await?;
        let first = at / footer::CHUNK_SIZE_BYTES;
        if footer::verify(kind, &foot, first, &piece).is_err() {
            return Ok(Check::BadFooter { removed });
        }
        at += len;
    }
    Ok(Check::Good { removed })
}
