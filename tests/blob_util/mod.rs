//! Helpers shared by the blob log tests: open a log on real files, build io attrs.
#![allow(dead_code)]

use bytes::Bytes;
use elliptics::blob::{BlobError, BlobLog, BlobOptions, RecordInfo};
use elliptics::io::sync::StdFile;
use elliptics::key::RawId;
use elliptics::protocol::{DnetTime, IoAttr};
use std::path::Path;

pub type Log = BlobLog<StdFile>;

pub fn run<T>(f: impl std::future::Future<Output = T>) -> T {
    futures::executor::block_on(f)
}

pub fn opts(dir: &Path) -> BlobOptions {
    BlobOptions::new(dir.join("data"))
}

pub fn open(dir: &Path) -> Log {
    run(Log::open(opts(dir))).expect("open")
}

pub fn open_with(o: BlobOptions) -> Log {
    run(Log::open(o)).expect("open")
}

pub fn key(name: &str) -> RawId {
    RawId::from_key(name.as_bytes())
}

pub fn attr(name: &str, flags: u32, offset: u64, data: &[u8]) -> IoAttr {
    IoAttr {
        id: key(name),
        flags,
        offset,
        size: data.len() as u64,
        timestamp: DnetTime::EMPTY,
        ..IoAttr::default()
    }
}

pub fn put(log: &Log, io: &IoAttr, data: &[u8]) -> Result<RecordInfo, BlobError> {
    run(log.write(io, Bytes::copy_from_slice(data)))
}

pub fn write(log: &Log, name: &str, data: &[u8]) -> RecordInfo {
    put(log, &attr(name, 0, 0, data), data).expect("write")
}

pub fn read_all(log: &Log, name: &str) -> Result<Vec<u8>, BlobError> {
    run(log.read(&key(name), 0, 0, true)).map(|r| r.data)
}

pub fn errno_of<T: std::fmt::Debug>(r: Result<T, BlobError>) -> i32 {
    r.expect_err("expected an error").errno()
}
