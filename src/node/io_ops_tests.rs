//! READ, WRITE, LOOKUP and DEL on the owning shard (`io_ops`), against a real shard and
//! its blob log, the fast path's frames read from the in-place outbox.

use super::io_ops;
use super::test_shard::{
    final_status, io_body, read_value, request, serve_in_place, split, with_shard,
};
use crate::protocol::{command, errno};
use bytes::Bytes;

#[test]
fn a_missing_key_reads_as_enoent_in_place_and_after_a_delete() {
    with_shard(&[(1, 1)], |shard| async move {
        let read = request(command::READ, "absent", 1, 1);
        let frames = serve_in_place(&shard, &read, &io_body("absent", b"")).expect("at once");
        assert_eq!(final_status(&frames), Some(errno::ENOENT));
        let write = request(command::WRITE, "gone", 1, 2);
        let body = Bytes::from(io_body("gone", b"v"));
        let acked = split(&io_ops::write_key(shard.clone(), write, body).await);
        assert_eq!(final_status(&acked), Some(0));
        let del = request(command::DEL, "gone", 1, 3);
        let removed = split(&io_ops::remove_key(shard.clone(), del, Bytes::new()).await);
        assert_eq!(final_status(&removed), Some(0));
        let read = request(command::READ, "gone", 1, 4);
        let body = Bytes::from(io_body("gone", b""));
        let frames = split(&io_ops::read_key(shard.clone(), read, body).await);
        assert_eq!(final_status(&frames), Some(errno::ENOENT));
    });
}

#[test]
fn a_write_whose_body_is_shorter_than_its_io_attr_is_einval_and_stores_nothing() {
    with_shard(&[(1, 1)], |shard| async move {
        let write = request(command::WRITE, "short", 1, 1);
        let mut body = io_body("short", b"0123456789");
        body.truncate(body.len() - 4);
        let frames = split(&io_ops::write_key(shard.clone(), write, Bytes::from(body)).await);
        assert_eq!(final_status(&frames), Some(errno::EINVAL));
        let lookup = request(command::LOOKUP, "short", 1, 2);
        let frames = split(&io_ops::lookup_key(shard.clone(), lookup, Bytes::new()).await);
        assert_eq!(final_status(&frames), Some(errno::ENOENT));
    });
}

#[test]
fn an_overwrite_reads_back_the_new_value_through_the_task_path_and_in_place() {
    with_shard(&[(1, 1)], |shard| async move {
        for (trans, value) in [(1, &b"first"[..]), (2, &b"second value"[..])] {
            let write = request(command::WRITE, "k", 1, trans);
            let body = Bytes::from(io_body("k", value));
            let acked = split(&io_ops::write_key(shard.clone(), write, body).await);
            assert_eq!(final_status(&acked), Some(0));
        }
        let read = request(command::READ, "k", 1, 3);
        let body = Bytes::from(io_body("k", b""));
        let frames = split(&io_ops::read_key(shard.clone(), read, body).await);
        assert_eq!(read_value(&frames).as_deref(), Some(&b"second value"[..]));
        let fast = serve_in_place(&shard, &read, &io_body("k", b"")).expect("at once");
        assert_eq!(read_value(&fast).as_deref(), Some(&b"second value"[..]));
    });
}
