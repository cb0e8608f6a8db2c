//! A segment's data-file I/O: vectored reads and writes, and the reads and stores that go
//! through the file's page-cache map ([`crate::blob::page_map`]).

use super::Segment;
use crate::blob::error::BlobError;
use crate::io::IoFile;
use bytes::Bytes;

impl<F: IoFile> Segment<F> {
    pub async fn write_data(&self, bufs: Vec<Bytes>, offset: u64) -> Result<(), BlobError> {
        self.data
            .write_all_at(bufs, offset)
            .await
            .map_err(|e| BlobError::io(&self.path, e))
    }

    /// `len` bytes of the data file at `offset` (the caller bounded `len`).
    pub async fn read_data(&self, len: u64, offset: u64) -> Result<Vec<u8>, BlobError> {
        let len = usize::try_from(len).map_err(|_| BlobError::Invalid("read too large"))?;
        let mut bufs = self
            .read_vectored(vec![Vec::with_capacity(len)], offset)
            .await?;
        match bufs.pop() {
            Some(buf) if buf.len() == len => Ok(buf),
            _ => Err(BlobError::Invalid("short vectored read")),
        }
    }

    /// Fill the spare capacity of `bufs` in order from `offset` of the data file (see
    /// [`IoFile::read_vectored_at`]).
    pub async fn read_vectored(
        &self,
        bufs: Vec<Vec<u8>>,
        offset: u64,
    ) -> Result<Vec<Vec<u8>>, BlobError> {
        let waited = self.data.reads_waited();
        let (res, bufs) = self.data.read_vectored_at(bufs, offset).await;
        if self.data.reads_waited() != waited {
            self.page_map.note_uncached_read();
        }
        res.map_err(|e| BlobError::io(&self.path, e))?;
        Ok(bufs)
    }

    /// Run `f` over data-file bytes `[offset, offset + len)` read from the page cache
    /// without a syscall; `None` when they must be read with [`Segment::read_vectored`]
    /// instead. The caller must only ask for bytes of records already written.
    pub fn read_mapped<R>(
        &self,
        offset: u64,
        len: u64,
        f: impl FnOnce(&[u8]) -> R,
    ) -> Option<Result<R, BlobError>> {
        if !self.data.mappable() {
            return None;
        }
        let res = self.page_map.read(self.data.as_std(), offset, len, f)?;
        Some(res.map_err(|e| BlobError::io(&self.path, e)))
    }

    /// Start loading data-file bytes `[offset, offset + len)` into the CPU cache when the
    /// file's map covers them (a hint).
    pub fn prefetch(&self, offset: u64, len: u64) {
        if self.data.mappable() {
            self.page_map.prefetch(offset, len);
        }
    }

    /// Store `parts` back to back at `offset` of the data file through its page-cache map,
    /// bytes of a record already in the file; `false` when they must be written with
    /// [`Segment::write_data`] instead (no map, or a store faulted).
    pub fn write_mapped(&self, offset: u64, parts: &[&[u8]]) -> bool {
        self.data.mappable()
            && matches!(
                self.page_map.write(self.data.as_std(), offset, parts),
                Some(Ok(()))
            )
    }

    /// Store a new record's `parts` at `offset`, the end of the space handed out, through
    /// the page-cache map, the file extended with zeros first where it does not reach
    /// `record_end` (`PageMap::append`); `false` when they must be written with
    /// [`Segment::write_data`] instead.
    pub fn append_mapped(&self, offset: u64, record_end: u64, parts: &[&[u8]]) -> bool {
        self.data.mappable()
            && !self.closed.get()
            && matches!(
                self.page_map
                    .append(self.data.as_std(), offset, record_end, parts),
                Some(Ok(()))
            )
    }

    /// Cut the zeros that [`Segment::append_mapped`] wrote past the last record.
    pub fn trim_zeros(&self) -> Result<(), BlobError> {
        self.page_map
            .trim_zeros(self.data.as_std(), self.tail_bytes.get())
            .map_err(|e| BlobError::io(&self.path, e))
    }
}
