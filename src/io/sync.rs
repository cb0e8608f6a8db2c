//! [`IoFile`] on plain positional syscalls (`pread`, `preadv`, `pwrite`, `pwritev`): every future is ready on first poll. Used by
//! tests, tools and anything that runs outside a shard.

use super::{vectored, IoFile};
use bytes::Bytes;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;

/// A file driven by blocking `pread`/`pwrite`/`fdatasync`.
#[derive(Debug)]
pub struct StdFile {
    file: File,
}

impl IoFile for StdFile {
    fn from_std(file: File) -> Self {
        Self { file }
    }

    fn as_std(&self) -> &File {
        &self.file
    }

    fn mappable(&self) -> bool {
        true
    }

    async fn read_exact_at(&self, mut buf: Vec<u8>, offset: u64) -> (io::Result<()>, Vec<u8>) {
        let res = self.file.read_exact_at(&mut buf, offset);
        (res, buf)
    }

    async fn read_vectored_at(
        &self,
        mut bufs: Vec<Vec<u8>>,
        offset: u64,
    ) -> (io::Result<()>, Vec<Vec<u8>>) {
        let res = vectored::preadv_all(self.file.as_raw_fd(), &mut bufs, offset);
        (res, bufs)
    }

    async fn write_all_at(&self, bufs: Vec<Bytes>, offset: u64) -> io::Result<()> {
        match bufs.as_slice() {
            [one] => self.file.write_all_at(one, offset),
            _ => vectored::pwritev_all(self.file.as_raw_fd(), &bufs, offset),
        }
    }

    async fn sync_data(&self) -> io::Result<()> {
        self.file.sync_data()
    }
}
