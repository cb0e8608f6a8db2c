//! On-disk format: records written by eblob (MurmurHash64A chunked footer, NOCSUM, removed)
//! are served, and records we write have the eblob layout byte for byte.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod blob_util;

use blob_util::*;
use elliptics::blob::disk_control::DiskControl;
use elliptics::blob::ext_header::ExtHeader;
use elliptics::blob::footer::{self, FooterKind};
use elliptics::protocol::{errno, record_flags, DnetTime};
use std::path::Path;

fn eblob_record(name: &str, value: &[u8], flags: u64, position: u64) -> (DiskControl, Vec<u8>) {
    let ext = ExtHeader {
        timestamp: DnetTime { tsec: 77, tnsec: 5 },
        user_flags: 3,
    };
    let mut data = ext.encode().to_vec();
    data.extend_from_slice(value);
    let foot = if flags & record_flags::NOCSUM != 0 {
        Vec::new()
    } else {
        footer::build(FooterKind::Murmur, &data)
    };
    let dc = DiskControl {
        key: key(name),
        flags,
        data_size: data.len() as u64,
        disk_size: 96 + data.len() as u64 + foot.len() as u64,
        position,
    };
    let mut rec = dc.encode().to_vec();
    rec.extend_from_slice(&data);
    rec.extend_from_slice(&foot);
    (dc, rec)
}

fn write_eblob_files(dir: &Path) -> u64 {
    let chunked = record_flags::EXTHDR | record_flags::CHUNKED_CSUM;
    let specs: [(&str, &[u8], u64); 3] = [
        ("legacy", b"hello eblob", chunked),
        (
            "plain",
            b"no checksum",
            record_flags::EXTHDR | record_flags::NOCSUM,
        ),
        ("dead", b"removed", chunked | record_flags::REMOVE),
    ];
    let (mut data, mut index) = (Vec::new(), Vec::new());
    for (name, value, flags) in specs {
        let (dc, rec) = eblob_record(name, value, flags, data.len() as u64);
        data.extend_from_slice(&rec);
        index.extend_from_slice(&dc.encode());
    }
    std::fs::write(dir.join("data-0.0"), &data).unwrap();
    std::fs::write(dir.join("data-0.0.index"), &index).unwrap();
    96 + 48 // user data of the first record starts here
}

#[test]
fn eblob_records_with_murmur_footers_are_served_and_verified() {
    let dir = tempfile::tempdir().unwrap();
    let first_data = write_eblob_files(dir.path());
    let log = open(dir.path());
    assert_eq!(read_all(&log, "legacy").unwrap(), b"hello eblob");
    assert_eq!(read_all(&log, "plain").unwrap(), b"no checksum");
    assert_eq!(errno_of(read_all(&log, "dead")), errno::ENOENT);
    let info = run(log.lookup(&key("legacy"), true)).unwrap();
    assert_eq!(info.timestamp, DnetTime { tsec: 77, tnsec: 5 });
    assert_eq!(info.user_flags, 3);
    assert_eq!(info.data_offset, first_data);
    drop(log);
    let path = dir.path().join("data-0.0");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[first_data as usize + 2] ^= 0x01;
    std::fs::write(&path, bytes).unwrap();
    // The damaged record is followed by good ones, so it stays and answers -EILSEQ.
    let log = open(dir.path());
    assert_eq!(errno_of(read_all(&log, "legacy")), errno::EILSEQ);
    assert_eq!(
        errno_of(run(log.lookup(&key("legacy"), true))),
        errno::EILSEQ
    );
    assert_eq!(read_all(&log, "plain").unwrap(), b"no checksum");
}

#[test]
fn written_record_has_the_eblob_layout() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let mut io = attr("layout", 0, 0, b"0123456789");
    io.timestamp = DnetTime {
        tsec: 10,
        tnsec: 20,
    };
    io.user_flags = 0x55;
    put(&log, &io, b"0123456789").unwrap();
    run(log.sync()).unwrap();
    let data = std::fs::read(dir.path().join("data-0.0")).unwrap();
    let index = std::fs::read(dir.path().join("data-0.0.index")).unwrap();
    assert_eq!(index.len(), 96);
    let dc = DiskControl::decode_at(&data, 0).unwrap();
    assert_eq!(DiskControl::decode_at(&index, 0).unwrap(), dc);
    assert_eq!(dc.key, key("layout"));
    assert_eq!(dc.flags, record_flags::EXTHDR | record_flags::CRC32_CSUM);
    assert_eq!(dc.data_size, 58);
    assert_eq!(dc.disk_size, 96 + 58 + footer::footer_size(58));
    assert_eq!(dc.position, 0);
    assert_eq!(data.len() as u64, dc.disk_size);
    assert_eq!(data[96], 1, "ext header version");
    let ext = ExtHeader::decode_prefix(&data[96..]);
    assert_eq!(
        ext.timestamp,
        DnetTime {
            tsec: 10,
            tnsec: 20
        }
    );
    assert_eq!(ext.user_flags, 0x55);
    assert_eq!(&data[144..154], b"0123456789");
    let foot = &data[154..];
    assert_eq!(
        footer::verify(FooterKind::Crc32, foot, 0, &data[96..154]),
        Ok(())
    );
}
