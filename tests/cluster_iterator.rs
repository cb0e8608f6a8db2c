//! ITERATOR on a real node over raw frames: no ranges, one and several ranges, a time
//! window, DATA and NO_META, keepalives every 10 000 skipped keys, PAUSE then CONTINUE in the
//! middle of a stream, and CANCEL (which ends with -ENOEXEC as in Elliptics).

mod common;

use common::cluster::{free_port, ClusterNode, RawConn};
use elliptics::client::{Key, Session};
use elliptics::key::RawId;
use elliptics::protocol::{
    cmd_flags, command, errno, iflags, iterator_action, iterator_type, CmdHeader, DnetTime,
    IteratorRange, IteratorRequest, IteratorResponse,
};
use std::time::Duration;

const OLD_KEYS: usize = 100;
const BIG_KEYS: usize = 300;
const BIG_VALUE_BYTES: usize = 64 * 1024;

fn start(dir: &std::path::Path) -> ClusterNode {
    let mut node = ClusterNode::new(dir, 1, free_port(), &[(1, 1)]);
    node.start();
    node
}

fn write_all(s: &Session, keys: &[String], value: impl Fn(&str) -> Vec<u8>) {
    for chunk in keys.chunks(256) {
        let pending: Vec<_> = chunk
            .iter()
            .map(|k| s.write_data(&Key::from(k.as_str()), &value(k), 0))
            .collect();
        for p in pending {
            p.wait().expect("write");
        }
    }
}

fn iter_header() -> CmdHeader {
    CmdHeader {
        cmd: command::ITERATOR,
        group_id: 1,
        flags: cmd_flags::NEED_ACK,
        ..CmdHeader::default()
    }
}

fn start_request(flags: u64, ranges: Vec<IteratorRange>) -> IteratorRequest {
    IteratorRequest {
        action: iterator_action::START,
        itype: iterator_type::NETWORK,
        flags,
        ranges,
        time_begin: DnetTime { tsec: 0, tnsec: 0 },
        time_end: DnetTime {
            tsec: 2000,
            tnsec: 0,
        },
        ..IteratorRequest::default()
    }
}

/// Key responses, keepalive count and the final status of one whole iteration.
struct Run {
    keys: Vec<(IteratorResponse, Vec<u8>)>,
    keepalives: usize,
    status: i32,
}

fn collect(frames: Vec<(CmdHeader, Vec<u8>)>) -> Run {
    let mut run = Run {
        keys: Vec::new(),
        keepalives: 0,
        status: 0,
    };
    for (h, p) in frames {
        if h.flags & cmd_flags::MORE == 0 {
            run.status = h.status;
        }
        if let Ok((resp, data)) = IteratorResponse::decode_with_data(&p) {
            if resp.status == 1 {
                run.keepalives += 1;
            } else {
                run.keys.push((resp, data.to_vec()));
            }
        }
    }
    run
}

fn iterate(raw: &mut RawConn, req: &IteratorRequest) -> Run {
    collect(raw.exchange(iter_header(), &req.encode()))
}

fn range(begin: RawId, end: RawId) -> IteratorRange {
    IteratorRange {
        key_begin: begin,
        key_end: end,
    }
}

fn id_at(first: u8, fill: u8) -> RawId {
    let mut id = RawId([fill; 64]);
    id.0[0] = first;
    id
}

#[test]
fn iterator_filters_by_ranges_time_window_and_meta() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = start(dir.path());
    let mut s = common::session(&node, &[1]);
    let old: Vec<String> = (0..OLD_KEYS).map(|i| format!("old-{i}")).collect();
    let new: Vec<String> = (0..OLD_KEYS).map(|i| format!("new-{i}")).collect();
    write_all(&s, &new, |k| k.as_bytes().to_vec());
    s.set_timestamp(DnetTime {
        tsec: 1000,
        tnsec: 0,
    });
    s.set_user_flags(7);
    write_all(&s, &old, |k| k.as_bytes().to_vec());
    let all_ids: Vec<RawId> = old
        .iter()
        .chain(&new)
        .map(|k| RawId::from_key(k.as_bytes()))
        .collect();
    let mut raw = RawConn::dial(node.addr());

    let everything = iterate(&mut raw, &start_request(0, Vec::new()));
    assert_eq!(everything.status, 0);
    assert_eq!(everything.keys.len(), 2 * OLD_KEYS);

    let low = range(RawId::ZERO, id_at(0x7f, 0xff));
    let one = iterate(&mut raw, &start_request(iflags::KEY_RANGE, vec![low]));
    let expected = all_ids.iter().filter(|id| **id <= low.key_end).count();
    assert_eq!(one.keys.len(), expected);
    assert!(one.keys.iter().all(|(r, _)| r.key <= low.key_end));

    let ranges = vec![
        range(RawId::ZERO, id_at(0x3f, 0xff)),
        range(id_at(0xc0, 0), RawId::MAX),
    ];
    let several = iterate(&mut raw, &start_request(iflags::KEY_RANGE, ranges.clone()));
    let inside = |id: &RawId| {
        ranges
            .iter()
            .any(|r| r.key_begin <= *id && *id <= r.key_end)
    };
    assert_eq!(
        several.keys.len(),
        all_ids.iter().filter(|id| inside(id)).count()
    );
    assert!(several.keys.iter().all(|(r, _)| inside(&r.key)));

    let window = iterate(&mut raw, &start_request(iflags::TS_RANGE, Vec::new()));
    assert_eq!(window.keys.len(), OLD_KEYS, "only the keys stamped 1000 s");
    for (resp, data) in &window.keys {
        assert_eq!((resp.timestamp.tsec, resp.user_flags), (1000, 7));
        assert!(data.is_empty(), "no DATA flag, no value");
    }

    let flags = iflags::TS_RANGE | iflags::DATA | iflags::NO_META;
    let bare = iterate(&mut raw, &start_request(flags, Vec::new()));
    assert_eq!(bare.keys.len(), OLD_KEYS);
    for (resp, data) in &bare.keys {
        assert_eq!(resp.user_flags, 0);
        assert_eq!(resp.timestamp, DnetTime { tsec: 0, tnsec: 0 });
        let key = old
            .iter()
            .find(|k| RawId::from_key(k.as_bytes()) == resp.key)
            .expect("an old key");
        assert_eq!(data.as_slice(), key.as_bytes());
    }
}

#[test]
fn keepalive_goes_out_every_ten_thousand_skipped_keys() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = start(dir.path());
    let s = common::session(&node, &[1]);
    let keys: Vec<String> = (0..10_050).map(|i| format!("skip-{i}")).collect();
    write_all(&s, &keys, |_| b"v".to_vec());
    let mut raw = RawConn::dial(node.addr());
    let nothing = vec![range(RawId::MAX, RawId::MAX)];
    let run = iterate(&mut raw, &start_request(iflags::KEY_RANGE, nothing));
    assert_eq!(run.status, 0);
    assert_eq!(run.keys.len(), 0);
    assert_eq!(run.keepalives, 1, "10 050 skipped keys give one keepalive");
}

/// Read until the final frame of the stream.
fn drain_to_end(raw: &mut RawConn, mut frames: Vec<(CmdHeader, Vec<u8>)>) -> Run {
    while frames
        .last()
        .is_none_or(|(h, _)| h.flags & cmd_flags::MORE != 0)
    {
        frames.push(raw.next_frame());
    }
    collect(frames)
}

fn control(raw: &mut RawConn, id: u64, action: u32) -> i32 {
    let req = IteratorRequest {
        id,
        action,
        ..IteratorRequest::default()
    };
    raw.exchange(iter_header(), &req.encode())
        .last()
        .map_or(-5, |(h, _)| h.status)
}

#[test]
fn pause_holds_the_stream_continue_finishes_it_and_cancel_ends_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = start(dir.path());
    let s = common::session(&node, &[1]);
    let keys: Vec<String> = (0..BIG_KEYS).map(|i| format!("big-{i}")).collect();
    write_all(&s, &keys, |_| vec![0xab; BIG_VALUE_BYTES]);
    let mut stream = RawConn::dial(node.addr());
    let mut ctl = RawConn::dial(node.addr());

    let req = start_request(iflags::DATA, Vec::new());
    stream.request(iter_header(), &req.encode());
    let first = stream.next_frame();
    let id = IteratorResponse::decode_with_data(&first.1)
        .expect("a key response")
        .0
        .id;
    assert_eq!(control(&mut ctl, id, iterator_action::PAUSE), 0);
    let mut frames = vec![first];
    while let Some(f) = stream.next_within(Duration::from_millis(500)) {
        frames.push(f);
    }
    let before = frames.len();
    assert!(before < BIG_KEYS, "paused mid-stream after {before} keys");
    assert!(stream.next_within(Duration::from_millis(300)).is_none());
    assert_eq!(control(&mut ctl, id, iterator_action::CONTINUE), 0);
    let run = drain_to_end(&mut stream, frames);
    assert_eq!((run.status, run.keys.len()), (0, BIG_KEYS));
    assert!(run.keys.iter().all(|(_, d)| d.len() == BIG_VALUE_BYTES));

    stream.request(iter_header(), &req.encode());
    let first = stream.next_frame();
    let id = IteratorResponse::decode_with_data(&first.1)
        .expect("a key response")
        .0
        .id;
    assert_eq!(control(&mut ctl, id, iterator_action::CANCEL), 0);
    let run = drain_to_end(&mut stream, vec![first]);
    assert_eq!(run.status, errno::ENOEXEC);
    assert!(
        run.keys.len() < BIG_KEYS,
        "cancelled after {}",
        run.keys.len()
    );
    assert_eq!(
        control(&mut ctl, id, iterator_action::CONTINUE),
        errno::ENOENT
    );
}
