//! The single-backend IO semantics of Elliptics 2.26 (spec §1.8, §5.6, §6.1) on real files.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod blob_util;

use blob_util::*;
use elliptics::protocol::{errno, io_flags, DnetTime};
use sha2::{Digest, Sha512};

#[test]
fn overwrite_with_shorter_data_returns_the_shorter_value() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    write(&log, "new-id", b"new-data-long");
    write(&log, "new-id", b"short");
    assert_eq!(read_all(&log, "new-id").unwrap(), b"short");
}

#[test]
fn writes_at_offsets_keep_the_other_bytes_and_reads_take_offset_and_size() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    write(&log, "k", b"55555");
    put(&log, &attr("k", 0, 1, b"43210"), b"43210").unwrap();
    assert_eq!(read_all(&log, "k").unwrap(), b"543210");
    let r = run(log.read(&key("k"), 3, 0, true)).unwrap();
    assert_eq!(r.data, b"210");
    assert_eq!(r.info.size, 6);
    let r = run(log.read(&key("k"), 2, 1, true)).unwrap();
    assert_eq!(r.data, b"3");
    assert_eq!(errno_of(run(log.read(&key("k"), 6, 0, true))), errno::E2BIG);
}

#[test]
fn a_thousand_appends_are_each_read_back_in_full() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let mut expect = Vec::new();
    for i in 0..1000u32 {
        let piece = format!("{i},");
        expect.extend_from_slice(piece.as_bytes());
        put(
            &log,
            &attr("app", io_flags::APPEND, 0, piece.as_bytes()),
            piece.as_bytes(),
        )
        .unwrap();
        assert_eq!(read_all(&log, "app").unwrap(), expect, "after append {i}");
    }
    drop(log);
    let log = open(dir.path());
    assert_eq!(read_all(&log, "app").unwrap(), expect);
}

#[test]
fn write_then_appends_concatenate() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    write(&log, "a", b"first");
    put(
        &log,
        &attr("a", io_flags::APPEND, 0, b"-second"),
        b"-second",
    )
    .unwrap();
    put(&log, &attr("a", io_flags::APPEND, 0, b"-third"), b"-third").unwrap();
    assert_eq!(read_all(&log, "a").unwrap(), b"first-second-third");
}

fn prepare_commit(
    log: &Log,
    name: &str,
    parts: [&[u8]; 3],
    prepare_data: &[u8],
    commit_data: &[u8],
) -> Vec<u8> {
    let mut io = attr(
        name,
        io_flags::PREPARE | io_flags::PLAIN_WRITE,
        0,
        prepare_data,
    );
    io.num = 1024;
    put(log, &io, prepare_data).unwrap();
    let mut off = prepare_data.len() as u64;
    let mut all = prepare_data.to_vec();
    for p in parts {
        put(log, &attr(name, io_flags::PLAIN_WRITE, off, p), p).unwrap();
        assert_eq!(errno_of(read_all(log, name)), errno::ENOENT);
        off += p.len() as u64;
        all.extend_from_slice(p);
    }
    let mut io = attr(
        name,
        io_flags::COMMIT | io_flags::PLAIN_WRITE,
        off,
        commit_data,
    );
    all.extend_from_slice(commit_data);
    io.num = all.len() as u64;
    put(log, &io, commit_data).unwrap();
    all
}

#[test]
fn prepare_plain_commit_reads_back_the_concatenation_in_all_four_variants() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    for (i, (p, c)) in [
        (&b""[..], &b""[..]),
        (b"pre", b""),
        (b"", b"com"),
        (b"pre", b"com"),
    ]
    .into_iter()
    .enumerate()
    {
        let name = format!("pc{i}");
        let all = prepare_commit(&log, &name, [b"one", b"two", b"three"], p, c);
        assert_eq!(read_all(&log, &name).unwrap(), all);
    }
}

#[test]
fn prepare_plain_write_commit_at_once_has_no_padding() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let data = vec![0xabu8; 1000];
    let mut io = attr(
        "once",
        io_flags::PREPARE | io_flags::PLAIN_WRITE | io_flags::COMMIT,
        0,
        &data,
    );
    io.num = 1 << 20;
    let info = put(&log, &io, &data).unwrap();
    assert_eq!(info.size, 1000);
    assert_eq!(read_all(&log, "once").unwrap(), data);
}

#[test]
fn plain_write_and_commit_need_an_uncommitted_record() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    write(&log, "c", b"value");
    assert_eq!(
        errno_of(put(&log, &attr("c", io_flags::PLAIN_WRITE, 0, b"x"), b"x")),
        errno::EPERM
    );
    let mut io = attr("r", io_flags::PREPARE, 0, b"");
    io.num = 10;
    put(&log, &io, b"").unwrap();
    let mut io = attr("r", io_flags::COMMIT | io_flags::PLAIN_WRITE, 0, b"");
    io.num = 1 << 20;
    assert_eq!(errno_of(put(&log, &io, b"")), errno::ERANGE);
}

#[test]
fn commit_alone_is_a_normal_write() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    put(
        &log,
        &attr("c", io_flags::COMMIT, 0, b"committed"),
        b"committed",
    )
    .unwrap();
    assert_eq!(read_all(&log, "c").unwrap(), b"committed");
}

#[test]
fn prepare_survives_a_file_rotation_and_commits_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts(dir.path());
    o.records_in_blob = 2;
    let log = open_with(o);
    let mut io = attr(
        "big",
        io_flags::PREPARE | io_flags::PLAIN_WRITE,
        0,
        b"head-",
    );
    io.num = 4096;
    put(&log, &io, b"head-").unwrap();
    for i in 0..5 {
        write(&log, &format!("filler{i}"), b"x");
    }
    assert!(log.stats().files >= 3);
    put(
        &log,
        &attr("big", io_flags::PLAIN_WRITE, 5, b"tail"),
        b"tail",
    )
    .unwrap();
    let mut io = attr("big", io_flags::COMMIT | io_flags::PLAIN_WRITE, 9, b"");
    io.num = 9;
    put(&log, &io, b"").unwrap();
    assert_eq!(read_all(&log, "big").unwrap(), b"head-tail");
    for i in 0..5 {
        assert_eq!(read_all(&log, &format!("filler{i}")).unwrap(), b"x");
    }
}

#[test]
fn lookup_reports_the_written_timestamp_user_flags_and_place() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let mut io = attr("2.xml", 0, 0, b"<xml/>");
    io.timestamp = DnetTime {
        tsec: 1_234_567,
        tnsec: 890,
    };
    io.user_flags = 0xfeed;
    let written = put(&log, &io, b"<xml/>").unwrap();
    let found = run(log.lookup(&key("2.xml"), false)).unwrap();
    assert_eq!(found.timestamp, io.timestamp);
    assert_eq!(found.user_flags, 0xfeed);
    assert_eq!(found.size, 6);
    assert_eq!(found.data_offset, written.data_offset);
    assert!(found.path.ends_with("data-0.0"));
    let read = run(log.read(&key("2.xml"), 0, 0, true)).unwrap();
    assert_eq!(read.info.user_flags, 0xfeed);
    let on_disk = std::fs::read(&*found.path).unwrap();
    let at = found.data_offset as usize;
    assert_eq!(&on_disk[at..at + 6], b"<xml/>");
    let summed = run(log.lookup(&key("2.xml"), true)).unwrap();
    assert_eq!(
        summed.checksum.unwrap().to_vec(),
        Sha512::digest(b"<xml/>").to_vec()
    );
}

#[test]
fn empty_timestamp_becomes_now() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let before = DnetTime::now();
    write(&log, "t", b"v");
    let found = run(log.lookup(&key("t"), false)).unwrap();
    assert!(found.timestamp >= before && found.timestamp.tsec < u64::MAX);
}

#[test]
fn lookup_of_zero_size_and_missing_records_is_enoent() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    write(&log, "empty", b"");
    assert_eq!(
        errno_of(run(log.lookup(&key("empty"), false))),
        errno::ENOENT
    );
    assert_eq!(
        errno_of(run(log.lookup(&key("none"), false))),
        errno::ENOENT
    );
    assert_eq!(errno_of(read_all(&log, "none")), errno::ENOENT);
}

#[test]
fn remove_gives_enoent_then_and_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    write(&log, "gone", b"data");
    write(&log, "kept", b"data");
    run(log.remove(&key("gone"))).unwrap();
    assert_eq!(errno_of(read_all(&log, "gone")), errno::ENOENT);
    assert_eq!(errno_of(run(log.remove(&key("gone")))), errno::ENOENT);
    drop(log);
    let log = open(dir.path());
    assert_eq!(errno_of(read_all(&log, "gone")), errno::ENOENT);
    assert_eq!(read_all(&log, "kept").unwrap(), b"data");
    assert_eq!(log.stats().removed, 1);
}

#[test]
fn uncommitted_record_survives_reopen_and_commits_after() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let mut io = attr("u", io_flags::PREPARE | io_flags::PLAIN_WRITE, 0, b"abc");
    io.num = 100;
    put(&log, &io, b"abc").unwrap();
    drop(log);
    let log = open(dir.path());
    assert_eq!(errno_of(read_all(&log, "u")), errno::ENOENT);
    assert_eq!(errno_of(run(log.lookup(&key("u"), false))), errno::ENOENT);
    let mut io = attr("u", io_flags::COMMIT | io_flags::PLAIN_WRITE, 3, b"def");
    io.num = 6;
    put(&log, &io, b"def").unwrap();
    assert_eq!(read_all(&log, "u").unwrap(), b"abcdef");
    drop(log);
    let log = open(dir.path());
    assert_eq!(read_all(&log, "u").unwrap(), b"abcdef");
}

#[test]
fn compare_and_swap_checks_the_sha512_of_the_stored_value() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let mut io = attr("cas", io_flags::COMPARE_AND_SWAP, 0, b"v1");
    put(&log, &io, b"v1").unwrap();
    io.parent.0 = Sha512::digest(b"wrong").into();
    assert_eq!(errno_of(put(&log, &io, b"v2")), errno::EBADFD);
    io.parent.0 = Sha512::digest(b"v1").into();
    put(&log, &io, b"v2").unwrap();
    assert_eq!(read_all(&log, "cas").unwrap(), b"v2");
}

#[test]
fn cas_timestamp_refuses_an_older_timestamp() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let mut io = attr("ts", io_flags::CAS_TIMESTAMP, 0, b"new");
    io.timestamp = DnetTime {
        tsec: 100,
        tnsec: 0,
    };
    put(&log, &io, b"new").unwrap();
    io.timestamp = DnetTime { tsec: 99, tnsec: 0 };
    assert_eq!(errno_of(put(&log, &io, b"old")), errno::EBADFD);
    io.timestamp = DnetTime {
        tsec: 100,
        tnsec: 0,
    };
    put(&log, &io, b"same").unwrap();
    assert_eq!(read_all(&log, "ts").unwrap(), b"same");
}

#[test]
fn read_only_log_refuses_writes_but_serves_reads() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    write(&log, "ro", b"v");
    log.set_read_only(true);
    assert_eq!(
        errno_of(put(&log, &attr("ro", 0, 0, b"w"), b"w")),
        errno::EROFS
    );
    assert_eq!(read_all(&log, "ro").unwrap(), b"v");
}

#[test]
fn keys_in_range_lists_live_keys_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let names: Vec<String> = (0..20).map(|i| format!("k{i}")).collect();
    for n in &names {
        write(&log, n, b"v");
    }
    run(log.remove(&key("k3"))).unwrap();
    let all = log.keys_in_range(&elliptics::key::RawId::ZERO, &elliptics::key::RawId::MAX);
    assert_eq!(all.len(), 19);
    assert!(all.windows(2).all(|w| w[0] < w[1]));
    assert!(!all.contains(&key("k3")));
    assert_eq!(log.iter_meta().count(), 19);
}

#[test]
fn second_open_of_the_same_data_is_refused_as_locked() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let err = run(Log::open(opts(dir.path()))).unwrap_err();
    assert!(err.to_string().contains("database is locked"), "{err}");
    drop(log);
    open(dir.path());
}

#[test]
fn no_footer_flag_writes_nocsum_records() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts(dir.path());
    o.blob_flags = 8;
    let log = open_with(o);
    let info = write(&log, "n", b"plain");
    assert_ne!(
        info.record_flags & elliptics::protocol::record_flags::NOCSUM,
        0
    );
    assert_eq!(read_all(&log, "n").unwrap(), b"plain");
}
