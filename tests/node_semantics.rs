//! The spec §6.1 storage scenarios against a real `dnet_ioserv` with one backend per group:
//! write/read, overwrite, remove, missing groups, partial lookup, read recovery, bulk
//! operations, range requests, timestamps, user flags, CAS, append, offsets,
//! prepare/plain/commit and a corrupted record found by a CHECKSUM lookup.

mod common;

use common::{session, NodeSpec, TestNode};
use elliptics::client::{join_all, Key, ReadData, Session};
use elliptics::key::RawId;
use elliptics::protocol::{cmd_flags, errno, io_flags, DnetTime};
use sha2::{Digest, Sha512};
use std::time::{Duration, Instant};

fn node_with_groups(groups: &[u32]) -> TestNode {
    TestNode::start(groups)
}

fn read_entry(s: &Session, key: &Key, offset: u64, size: u64) -> Result<ReadData, i32> {
    let entries = s
        .read_data(key, offset, size)
        .wait()
        .map_err(|e| e.status)?;
    entries
        .into_iter()
        .find_map(|e| e.payload)
        .ok_or(errno::ENOENT)
}

fn read_bytes(s: &Session, key: &str) -> Result<Vec<u8>, i32> {
    read_entry(s, &Key::from(key), 0, 0).map(|r| r.data)
}

fn write(s: &Session, key: &str, data: &[u8]) {
    s.write_data(&Key::from(key), data, 0)
        .wait()
        .unwrap_or_else(|e| panic!("write {key}: {}", e.message));
}

#[test]
fn write_read_overwrite_shorter_and_remove_in_every_group() {
    let node = node_with_groups(&[1, 2, 3]);
    let s = session(&node, &[1, 2, 3]);
    let entries = s
        .write_data(&Key::from("new-id"), b"new-data-long", 0)
        .wait()
        .expect("write");
    let ok_groups: Vec<u32> = entries
        .iter()
        .filter(|e| e.status == 0)
        .map(|e| e.group)
        .collect();
    assert_eq!(ok_groups, vec![1, 2, 3]);
    write(&s, "new-id", b"short");
    for g in [1, 2, 3] {
        assert_eq!(
            read_bytes(&session(&node, &[g]), "new-id"),
            Ok(b"short".to_vec())
        );
    }
    s.remove(&Key::from("new-id")).wait().expect("remove");
    for g in [1, 2, 3] {
        assert_eq!(
            read_bytes(&session(&node, &[g]), "new-id"),
            Err(errno::ENOENT)
        );
    }
}

#[test]
fn missing_key_is_enoent_and_missing_group_is_enxio() {
    let node = node_with_groups(&[1, 2]);
    assert_eq!(
        read_bytes(&session(&node, &[1, 2]), "never-written"),
        Err(errno::ENOENT)
    );
    assert_eq!(
        read_bytes(&session(&node, &[99]), "never-written"),
        Err(errno::ENXIO)
    );
    let err = session(&node, &[99])
        .lookup(&Key::from("never-written"))
        .wait()
        .expect_err("no group 99");
    assert_eq!(err.status, errno::ENXIO);
}

#[test]
fn partial_lookup_reports_the_missing_group_and_the_holder() {
    let node = node_with_groups(&[1, 2]);
    write(&session(&node, &[2]), "only-g2", b"abcd");
    let entries = session(&node, &[1, 2])
        .lookup(&Key::from("only-g2"))
        .wait()
        .expect("lookup");
    let statuses: Vec<(u32, i32)> = entries.iter().map(|e| (e.group, e.status)).collect();
    assert_eq!(statuses, vec![(1, errno::ENOENT), (2, 0)]);
    let info = entries
        .iter()
        .find_map(|e| e.payload.clone())
        .expect("info");
    assert_eq!(info.size, 4);
}

#[test]
fn read_recovery_fills_the_group_that_missed_the_key() {
    let node = node_with_groups(&[1, 2, 3]);
    write(&session(&node, &[3]), "recover-me", b"payload");
    assert_eq!(
        read_bytes(&session(&node, &[1, 2, 3]), "recover-me"),
        Ok(b"payload".to_vec())
    );
    let deadline = Instant::now() + Duration::from_secs(3);
    for g in [1, 2] {
        loop {
            match read_bytes(&session(&node, &[g]), "recover-me") {
                Ok(data) => {
                    assert_eq!(data, b"payload");
                    break;
                }
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                Err(code) => panic!("group {g} was not recovered: {code}"),
            }
        }
    }
}

#[test]
fn bulk_write_read_and_remove_of_a_thousand_keys() {
    let node = node_with_groups(&[1, 2]);
    let s = session(&node, &[1, 2]);
    let keys: Vec<String> = (0..1000).map(|i| format!("bulk-{i}")).collect();
    let writes = keys
        .iter()
        .map(|k| s.write_data(&Key::from(k.as_str()), k.as_bytes(), 0))
        .collect();
    let written = join_all(writes).wait().expect("bulk write");
    let ok: usize = written
        .into_iter()
        .map(|r| r.expect("write").iter().filter(|e| e.status == 0).count())
        .sum();
    assert_eq!(ok, 2000, "each key written to both groups");
    let all: Vec<Key> = keys.iter().map(|k| Key::from(k.as_str())).collect();
    let read = s.bulk_read(&all).wait().expect("bulk read");
    let mut got: Vec<Vec<u8>> = read
        .into_iter()
        .filter_map(|e| e.payload.map(|p| p.data))
        .collect();
    got.sort();
    let mut want: Vec<Vec<u8>> = keys.iter().map(|k| k.as_bytes().to_vec()).collect();
    want.sort();
    assert_eq!(got, want);
    let removes = keys
        .iter()
        .map(|k| s.remove(&Key::from(k.as_str())))
        .collect();
    let removed = join_all(removes).wait().expect("bulk remove");
    let acks: usize = removed
        .into_iter()
        .map(|r| r.expect("remove").iter().filter(|e| e.status == 0).count())
        .sum();
    assert_eq!(acks, 2000);
    let after = s.bulk_read(&all).wait();
    assert!(after
        .map(|e| e.iter().all(|e| e.payload.is_none()))
        .unwrap_or(true));
    assert_eq!(read_bytes(&s, "bulk-7"), Err(errno::ENOENT));
}

#[test]
fn partial_bulk_read_returns_only_the_existing_key() {
    let node = node_with_groups(&[1, 2, 3]);
    let s = session(&node, &[1, 2, 3]);
    write(&s, "present", b"here");
    let got = s
        .bulk_read(&[Key::from("present"), Key::from("absent")])
        .wait()
        .expect("bulk read");
    let found: Vec<Vec<u8>> = got
        .into_iter()
        .filter_map(|e| e.payload.map(|p| p.data))
        .collect();
    assert_eq!(found, vec![b"here".to_vec()]);
}

fn range_id(byte5: u8) -> RawId {
    let mut id = RawId([0x5a; 64]);
    id.0[5] = byte5;
    id
}

#[test]
fn range_read_honours_limits_and_range_remove_counts() {
    let node = node_with_groups(&[1, 2]);
    let s = session(&node, &[2]);
    for i in 0..16u8 {
        s.write_data(&Key::Id(range_id(i)), &[b'a' + i; 3], 0)
            .wait()
            .expect("write range key");
    }
    let (begin, end) = (range_id(0), range_id(255));
    for (start, num) in [(0u64, 255u64), (3, 14), (7, 3)] {
        let entries = s
            .read_data_range(&begin, &end, start, num)
            .wait()
            .expect("range read");
        let data: Vec<Vec<u8>> = entries
            .into_iter()
            .filter_map(|e| e.payload)
            .filter(|p| !p.data.is_empty())
            .map(|p| p.data)
            .collect();
        let expect = num.min(16 - start) as usize;
        let want: Vec<Vec<u8>> = (start..start + expect as u64)
            .map(|i| vec![b'a' + i as u8; 3])
            .collect();
        assert_eq!(data, want, "limits ({start}, {num})");
    }
    let removed = |s: &Session| -> u64 {
        s.remove_data_range(&begin, &end)
            .wait()
            .expect("range remove")
            .into_iter()
            .filter_map(|e| e.payload)
            .map(|p| p.io.num)
            .sum()
    };
    assert_eq!(removed(&s), 16);
    assert_eq!(removed(&s), 0);
    assert_eq!(
        read_entry(&s, &Key::Id(range_id(4)), 0, 0).map(|r| r.data),
        Err(errno::ENOENT)
    );
}

#[test]
fn lookup_mtime_is_the_written_timestamp_and_user_flags_round_trip() {
    let node = node_with_groups(&[1, 2]);
    let mut s = session(&node, &[1]);
    let ts = DnetTime {
        tsec: 1_500_000_000,
        tnsec: 42,
    };
    s.set_timestamp(ts);
    s.set_user_flags(0xfeed_beef_0000_0001);
    write(&s, "2.xml", b"0123456789");
    let info = s
        .lookup(&Key::from("2.xml"))
        .wait()
        .expect("lookup")
        .into_iter()
        .find_map(|e| e.payload)
        .expect("info");
    assert_eq!((info.size, info.mtime), (10, ts));
    let read = read_entry(&s, &Key::from("2.xml"), 0, 0).expect("read");
    assert_eq!(read.io.user_flags, 0xfeed_beef_0000_0001);
    assert_eq!(read.io.timestamp, ts);
}

#[test]
fn cas_succeeds_with_the_stored_checksum_and_fails_with_another() {
    let node = node_with_groups(&[1, 2]);
    let mut s = session(&node, &[1, 2]);
    write(&s, "cas", b"old data");
    s.set_ioflags(io_flags::CHECKSUM);
    let read = read_entry(&s, &Key::from("cas"), 0, 0).expect("read");
    let csum = RawId(Sha512::digest(b"old data").into());
    assert_eq!(read.io.parent, csum);
    s.set_ioflags(0);
    s.write_cas(&Key::from("cas"), b"new data", &csum)
        .wait()
        .expect("cas with the right checksum");
    assert_eq!(read_bytes(&s, "cas"), Ok(b"new data".to_vec()));
    let err = s
        .write_cas(&Key::from("cas"), b"lost", &csum)
        .wait()
        .expect_err("stale checksum");
    assert_eq!(err.status, errno::EBADFD);
    assert_eq!(read_bytes(&s, "cas"), Ok(b"new data".to_vec()));
}

#[test]
fn append_concatenates_on_new_and_existing_keys() {
    let node = node_with_groups(&[1, 2]);
    let mut s = session(&node, &[1, 2]);
    write(&s, "app", b"first-");
    s.set_ioflags(io_flags::APPEND);
    write(&s, "app", b"second");
    for part in [&b"a"[..], b"bb", b"ccc"] {
        write(&s, "fresh", part);
    }
    s.set_ioflags(0);
    assert_eq!(read_bytes(&s, "app"), Ok(b"first-second".to_vec()));
    assert_eq!(read_bytes(&s, "fresh"), Ok(b"abbccc".to_vec()));
    s.set_ioflags(io_flags::APPEND);
    let mut want = Vec::new();
    for i in 0..200u32 {
        let part = format!("{i},");
        write(&s, "many", part.as_bytes());
        want.extend_from_slice(part.as_bytes());
        if i % 50 == 49 {
            assert_eq!(
                read_entry(&s, &Key::from("many"), 0, 0).map(|r| r.data),
                Ok(want.clone())
            );
        }
    }
}

#[test]
fn writes_and_reads_at_offsets() {
    let node = node_with_groups(&[1, 2]);
    let s = session(&node, &[1, 2]);
    write(&s, "off", b"55555");
    s.write_data(&Key::from("off"), b"43210", 1)
        .wait()
        .expect("write at 1");
    let key = Key::from("off");
    assert_eq!(
        read_entry(&s, &key, 0, 0).map(|r| r.data),
        Ok(b"543210".to_vec())
    );
    assert_eq!(
        read_entry(&s, &key, 3, 0).map(|r| r.data),
        Ok(b"210".to_vec())
    );
    assert_eq!(
        read_entry(&s, &key, 2, 1).map(|r| r.data),
        Ok(b"3".to_vec())
    );
}

#[test]
fn prepare_plain_commit_reads_back_the_concatenation() {
    let node = node_with_groups(&[1, 2]);
    let s = session(&node, &[1, 2]);
    let key = Key::from("pcw");
    s.write_prepare(&key, b"prepare-", 0, 1024)
        .wait()
        .expect("prepare");
    s.write_plain(&key, b"plain1-", 8).wait().expect("plain 1");
    s.write_plain(&key, b"plain2-", 15).wait().expect("plain 2");
    s.write_commit(&key, b"commit", 22, 28)
        .wait()
        .expect("commit");
    assert_eq!(
        read_entry(&s, &key, 0, 0).map(|r| r.data),
        Ok(b"prepare-plain1-plain2-commit".to_vec())
    );
    let mut c = session(&node, &[1]);
    c.set_ioflags(io_flags::COMMIT);
    write(&c, "commit-only", b"plain commit");
    assert_eq!(read_bytes(&c, "commit-only"), Ok(b"plain commit".to_vec()));
}

#[test]
fn corrupted_record_is_found_by_a_checksum_lookup() {
    let node = TestNode::start_with(NodeSpec {
        backends: vec![(1, 1)],
        blob_flags: "150".into(),
        ..NodeSpec::default()
    });
    let mut s = session(&node, &[1]);
    let data = vec![0x42u8; 4096];
    s.write_data(&Key::from("corrupt-me"), &data, 0)
        .wait()
        .expect("write");
    let info = s
        .lookup(&Key::from("corrupt-me"))
        .wait()
        .expect("lookup")
        .into_iter()
        .find_map(|e| e.payload)
        .expect("info");
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&info.path)
        .expect("open the blob file named by the lookup");
    let at = info.offset + 5;
    let mut byte = [0u8; 1];
    std::os::unix::fs::FileExt::read_exact_at(&file, &mut byte, at).expect("read byte");
    std::os::unix::fs::FileExt::write_all_at(&file, &[byte[0] ^ 0xff], at).expect("corrupt");
    drop(file);
    s.lookup(&Key::from("corrupt-me"))
        .wait()
        .expect("a plain lookup does not check data");
    s.set_cflags(cmd_flags::CHECKSUM);
    let err = s
        .lookup(&Key::from("corrupt-me"))
        .wait()
        .expect_err("checksum lookup");
    assert_eq!(err.status, errno::EILSEQ);
}
