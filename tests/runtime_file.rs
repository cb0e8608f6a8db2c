//! UringFile: positional writes, reads and fdatasync on the runtime's ring.

#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use elliptics::io::IoFile;
use elliptics::runtime::{self, UringFile};
use std::io;

fn probe() {
    if let Err(e) = runtime::probe() {
        panic!("{e}");
    }
}

fn open_temp() -> (tempfile::TempDir, std::fs::File) {
    let dir = tempfile::tempdir().unwrap();
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(dir.path().join("data"))
        .unwrap();
    (dir, file)
}

#[test]
fn write_read_sync_round_trip_is_byte_exact() {
    probe();
    let (_dir, file) = open_temp();
    runtime::block_on(32, async move {
        let f = UringFile::from_std(file);
        let parts = vec![
            Bytes::from_static(b"header:"),
            Bytes::from(vec![0xabu8; 300_000]),
            Bytes::from_static(b":trailer"),
        ];
        f.write_all_at(parts, 4096).await.unwrap();
        f.sync_data().await.unwrap();
        assert_eq!(f.as_std().metadata().unwrap().len(), 4096 + 7 + 300_000 + 8);
        let (res, buf) = f.read_exact_at(vec![0u8; 7], 4096).await;
        res.unwrap();
        assert_eq!(&buf, b"header:");
        let (res, buf) = f.read_exact_at(vec![0u8; 300_008], 4096 + 7).await;
        res.unwrap();
        assert!(buf[..300_000].iter().all(|&b| b == 0xab));
        assert_eq!(&buf[300_000..], b":trailer");
    })
    .unwrap();
}

#[test]
fn reading_past_end_of_file_is_unexpected_eof() {
    probe();
    let (_dir, file) = open_temp();
    runtime::block_on(32, async move {
        let f = UringFile::from_std(file);
        f.write_all_at(vec![Bytes::from_static(b"0123456789")], 0)
            .await
            .unwrap();
        let (res, buf) = f.read_exact_at(vec![0u8; 8], 6).await;
        assert_eq!(res.unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(buf.len(), 8, "the buffer comes back");
        let (res, _) = f.read_exact_at(vec![0u8; 1], 1 << 40).await;
        assert_eq!(res.unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
    })
    .unwrap();
}

#[test]
fn small_appends_then_one_read_return_every_byte_in_order() {
    probe();
    let (_dir, file) = open_temp();
    runtime::block_on(32, async move {
        let f = UringFile::from_std(file);
        let mut expected = Vec::new();
        for i in 0..200u32 {
            let record = format!("record-{i:04};").into_bytes();
            let at = expected.len() as u64;
            expected.extend_from_slice(&record);
            f.write_all_at(vec![Bytes::from(record)], at).await.unwrap();
        }
        let (res, buf) = f.read_exact_at(vec![0u8; expected.len()], 0).await;
        res.unwrap();
        assert_eq!(buf, expected);
    })
    .unwrap();
}

#[test]
fn writing_to_a_read_only_file_reports_the_os_error() {
    probe();
    let (dir, file) = open_temp();
    drop(file);
    let read_only = std::fs::File::open(dir.path().join("data")).unwrap();
    runtime::block_on(32, async move {
        let f = UringFile::from_std(read_only);
        let err = f
            .write_all_at(vec![Bytes::from_static(b"nope")], 0)
            .await
            .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EBADF));
    })
    .unwrap();
}

#[test]
fn reads_of_bytes_not_in_the_page_cache_return_exactly_those_bytes() {
    probe();
    // On the build's disk: a RAM file system would keep every page cached.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(dir.path().join("data"))
        .unwrap();
    runtime::block_on(32, async move {
        let f = UringFile::from_std(file);
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        f.write_all_at(vec![Bytes::from(data.clone())], 0)
            .await
            .unwrap();
        f.sync_data().await.unwrap();
        let reads = [
            (0, 4096),
            (4000, 4352),
            (12_345, 200),
            (95_000, 5_000),
            (99_999, 1),
        ];
        for (at, len) in reads {
            rustix::fs::fadvise(f.as_std(), 0, None, rustix::fs::Advice::DontNeed).unwrap();
            let waited = f.reads_waited();
            let head = len.min(100);
            let bufs = vec![Vec::with_capacity(head), Vec::with_capacity(len - head)];
            let (res, bufs) = f.read_vectored_at(bufs, at as u64).await;
            res.unwrap();
            assert_eq!(bufs.concat(), &data[at..at + len], "{len} bytes at {at}");
            assert!(
                f.reads_waited() > waited,
                "the bytes at {at} were not cached"
            );
        }
        rustix::fs::fadvise(f.as_std(), 0, None, rustix::fs::Advice::DontNeed).unwrap();
        let (res, _) = f
            .read_vectored_at(vec![Vec::with_capacity(10)], 99_995)
            .await;
        assert_eq!(res.unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
    })
    .unwrap();
}
