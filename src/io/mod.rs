//! The I/O boundary: the only module that talks to the kernel for file and socket I/O.
//!
//! [`IoFile`] is what the blob log is written against. [`sync::StdFile`] implements it with
//! positional syscalls (deterministic, for tests and tools); the shard runtime implements it
//! on its io_uring. Buffers are owned and handed to the operation, so a completion-based
//! backend can keep them alive until the kernel is done with them.

use bytes::Bytes;
use std::future::Future;
use std::io;

pub mod affinity;
pub mod aligned;
pub mod clock;
pub mod mapped;
pub mod prefetch;
pub mod sync;
pub mod vectored;

/// A file opened for positional I/O, driven by some backend.
pub trait IoFile: Sized {
    /// Take ownership of an opened file.
    fn from_std(file: std::fs::File) -> Self;

    /// The underlying file, for metadata calls (length, truncate, allocate) done rarely and
    /// outside the data path.
    fn as_std(&self) -> &std::fs::File;

    /// Reads of this file may be served from a read-only mapping of it ([`mapped`]): the
    /// backend's reads see exactly the file's bytes, with nothing to intercept.
    fn mappable(&self) -> bool {
        false
    }

    /// How many reads so far found their bytes not cached and waited on the device (a
    /// counter for heuristics; a backend that cannot tell answers 0).
    fn reads_waited(&self) -> u64 {
        0
    }

    /// Fill `buf` completely from `offset`. A read that hits end-of-file fails with
    /// `UnexpectedEof`. The buffer comes back in every case.
    fn read_exact_at(
        &self,
        buf: Vec<u8>,
        offset: u64,
    ) -> impl Future<Output = (io::Result<()>, Vec<u8>)>;

    /// Fill the spare capacity of each buffer (`len..capacity`), in order, with the bytes
    /// that follow `offset`; on success every length is the buffer's capacity. A read that
    /// hits end-of-file fails with `UnexpectedEof` and leaves every length as it was. The
    /// buffers come back in every case.
    fn read_vectored_at(
        &self,
        mut bufs: Vec<Vec<u8>>,
        offset: u64,
    ) -> impl Future<Output = (io::Result<()>, Vec<Vec<u8>>)> {
        async move {
            let lens: Vec<usize> = bufs.iter().map(Vec::len).collect();
            let mut at = offset;
            for b in bufs.iter_mut() {
                let want = b.capacity() - b.len();
                let (res, part) = self.read_exact_at(vec![0u8; want], at).await;
                if let Err(e) = res {
                    for (b, len) in bufs.iter_mut().zip(&lens) {
                        b.truncate(*len);
                    }
                    return (Err(e), bufs);
                }
                b.extend_from_slice(&part);
                at += want as u64;
            }
            (Ok(()), bufs)
        }
    }

    /// Write every byte of `bufs`, back to back, starting at `offset`.
    fn write_all_at(&self, bufs: Vec<Bytes>, offset: u64) -> impl Future<Output = io::Result<()>>;

    /// Make written data durable (fdatasync).
    fn sync_data(&self) -> impl Future<Output = io::Result<()>>;
}
