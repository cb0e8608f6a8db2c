//! Dispatch, forwarding decisions and backend choice against a real shard: requests go in
//! as a connection hands them over and the replies are read from the outbox.

use super::dispatch::{self, Immediate};
use super::peers::{Change, Source};
use super::test_shard::{
    final_status, io_body, read_value, request, serve_in_place, split, with_shard,
};
use crate::key::RawId;
use crate::protocol::{cmd_flags, command, errno, BackendIds};
use bytes::Bytes;
use std::net::SocketAddr;

#[test]
fn a_value_written_through_dispatch_reads_back_in_place() {
    with_shard(&[(1, 1)], |shard| async move {
        let write = request(command::WRITE, "k", 1, 1);
        let body = Bytes::from(io_body("k", b"hello"));
        let frames = split(&dispatch::execute(&shard, &Default::default(), write, body).await);
        assert_eq!(final_status(&frames), Some(0), "write acked");
        let read = request(command::READ, "k", 1, 2);
        let got = serve_in_place(&shard, &read, &io_body("k", b"")).expect("served at once");
        assert_eq!(read_value(&got).as_deref(), Some(&b"hello"[..]));
        assert!(got.iter().all(|(h, _)| h.trans == 2));
    });
}

#[test]
fn unknown_commands_get_enotsup_and_control_commands_an_answer_at_once() {
    with_shard(&[(1, 1)], |shard| async move {
        let mut odd = request(99, "k", 1, 5);
        odd.flags = cmd_flags::NEED_ACK;
        let Immediate::Done(frames, keep_open) = dispatch::immediate(&shard, &odd, &[]) else {
            panic!("an unknown command needs no task");
        };
        assert!(keep_open, "the connection stays up");
        assert_eq!(final_status(&split(&frames)), Some(errno::ENOTSUP));
        let list = request(command::ROUTE_LIST, "k", 1, 6);
        assert!(matches!(
            dispatch::immediate(&shard, &list, &[]),
            Immediate::Done(_, true)
        ));
        let read = request(command::READ, "k", 1, 7);
        assert!(matches!(
            dispatch::immediate(&shard, &read, &[]),
            Immediate::Async
        ));
    });
}

#[test]
fn a_request_for_a_group_or_backend_this_node_lacks_is_enxio() {
    with_shard(&[(1, 1), (2, 2)], |shard| async move {
        assert_eq!(shard.backend_for(&request(command::READ, "k", 2, 1)), Ok(1));
        assert_eq!(
            shard.backend_for(&request(command::READ, "k", 9, 1)),
            Err(errno::ENXIO)
        );
        let mut direct = request(command::READ, "k", 1, 1);
        direct.flags |= cmd_flags::DIRECT_BACKEND;
        direct.backend_id = 2;
        assert_eq!(shard.backend_for(&direct), Ok(1));
        direct.backend_id = 7;
        assert_eq!(shard.backend_for(&direct), Err(errno::ENXIO));
        let read = request(command::READ, "k", 9, 3);
        let frames = split(
            &dispatch::execute(
                &shard,
                &Default::default(),
                read,
                Bytes::from(io_body("k", b"")),
            )
            .await,
        );
        assert_eq!(final_status(&frames), Some(errno::ENXIO));
    });
}

fn peer_serving(group: i32) -> (SocketAddr, Change) {
    let addr: SocketAddr = "127.0.0.9:1025".parse().expect("addr");
    let change = Change::Up {
        addrs: vec![addr],
        backends: vec![BackendIds {
            backend_id: 1,
            group_id: group,
            flags: 0,
            ids: vec![RawId::ZERO],
        }],
        source: Source::Outgoing,
    };
    (addr, change)
}

#[test]
fn a_key_only_a_peer_owns_is_forwarded_unless_the_request_is_direct() {
    with_shard(&[(1, 1)], |shard| async move {
        let (peer, change) = peer_serving(5);
        shard.cluster.apply(change);
        let read = request(command::READ, "k", 5, 1);
        assert!(matches!(
            super::forward::target(&shard, &read),
            super::forward::Target::Peer(a) if a == peer
        ));
        let mut direct = read;
        direct.flags |= cmd_flags::DIRECT;
        assert!(matches!(
            super::forward::target(&shard, &direct),
            super::forward::Target::Refuse(errno::ENOTSUP)
        ));
        // Not served in place either: the fast path leaves it to the forwarder.
        assert!(serve_in_place(&shard, &read, &io_body("k", b"")).is_none());
        let local = request(command::READ, "k", 1, 2);
        assert!(matches!(
            super::forward::target(&shard, &local),
            super::forward::Target::Local
        ));
    });
}
