//! The outbox's rules: order, pauses, and streamed replies that stay one frame.

use super::*;
use crate::node::reply::Replies;
use futures::FutureExt;
use std::future::Future;
use std::sync::atomic::Ordering;

fn frames_of(len: usize) -> Frames {
    let mut f = Frames::new();
    f.push_raw(Bytes::from(vec![0u8; len]));
    f
}

#[test]
fn stream_waits_while_unwritten_bytes_fill_the_window_and_resumes_after_a_write() {
    let out = Outbox::default();
    out.push(frames_of(60));
    out.push(frames_of(40));
    assert!(out.wait_for_write_room(100).now_or_never().is_none());
    assert!(out.wait_for_write_room(101).now_or_never().is_some());
    out.written(60);
    assert!(out.wait_for_write_room(100).now_or_never().is_some());
}

fn request(trans: u64) -> crate::protocol::CmdHeader {
    crate::protocol::CmdHeader {
        cmd: crate::protocol::command::READ,
        trans,
        flags: crate::protocol::cmd_flags::NEED_ACK,
        ..Default::default()
    }
}

/// Serve an ack to transaction `trans` in place.
fn ack_in_place(out: &Outbox, trans: u64) {
    assert!(out.serve_in_place(|f| {
        f.ack(&request(trans), 0);
        true
    }));
}

fn transactions(out: &Outbox) -> Vec<u64> {
    let batch = out
        .next_batch()
        .now_or_never()
        .flatten()
        .unwrap_or_default();
    let bytes: Vec<u8> = batch.iter().flat_map(|b| b.iter().copied()).collect();
    let mut at = 0;
    let mut seen = Vec::new();
    while let Ok((frame, used)) = crate::protocol::split_frame(&bytes[at..], 1 << 20) {
        seen.push(frame.header.trans);
        at += used;
    }
    assert_eq!(at, bytes.len(), "the batch ends on a frame boundary");
    seen
}

#[test]
fn frames_written_in_place_and_queued_frames_leave_in_the_order_they_were_made() {
    let out = Outbox::default();
    ack_in_place(&out, 1);
    let mut queued = Frames::new();
    queued.ack(&request(2), 0);
    out.push(queued);
    assert!(out.serve_in_place(|f| {
        f.reply(&request(3), &[b"value"], false);
        f.ack(&request(3), 0);
        true
    }));
    assert_eq!(transactions(&out), vec![1, 2, 3, 3]);
    ack_in_place(&out, 4);
    assert_eq!(transactions(&out), vec![4]);
}

#[test]
fn a_request_served_in_place_that_gives_up_leaves_nothing_behind() {
    let out = Outbox::default();
    assert!(!out.serve_in_place(|f| {
        f.reply(&request(7), &[b"half"], false);
        false
    }));
    assert_eq!(out.queued_parts(), 0);
    assert!(out.wait_for_write_room(1).now_or_never().is_some());
    ack_in_place(&out, 8);
    assert_eq!(transactions(&out), vec![8]);
}

#[test]
fn a_batch_of_big_replies_leaves_no_big_buffer_behind() {
    let out = Outbox::default();
    let value = vec![7u8; 200 * 1024];
    assert!(out.serve_in_place(|f| {
        for trans in 0..5 {
            f.reply(&request(trans), &[&value], false);
        }
        true
    }));
    assert_eq!(transactions(&out), (0..5).collect::<Vec<_>>());
    assert!(out.in_place.borrow().capacity() <= IN_PLACE_KEPT_BYTES_MAX);
    ack_in_place(&out, 9);
    assert_eq!(transactions(&out), vec![9]);
}

#[test]
fn reading_pauses_while_unread_replies_fill_the_window_and_resumes_after_a_write() {
    let out = Outbox::default();
    out.push(frames_of(CONN_UNWRITTEN_BYTES_MAX));
    assert!(out.wait_for_room().now_or_never().is_none());
    out.written(1);
    assert!(out.wait_for_room().now_or_never().is_some());
}

/// Counts its wake-ups.
#[derive(Default)]
struct Wakes(std::sync::atomic::AtomicUsize);

impl futures::task::ArcWake for Wakes {
    fn wake_by_ref(arc_self: &std::sync::Arc<Self>) {
        arc_self.0.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn a_closed_connection_lets_its_writer_finish_once_its_last_request_is_done() {
    let out = Outbox::default();
    out.request_started();
    out.close();
    let wakes = std::sync::Arc::new(Wakes::default());
    let waker = futures::task::waker(wakes.clone());
    let mut cx = std::task::Context::from_waker(&waker);
    let mut next = std::pin::pin!(out.next_batch());
    assert!(next.as_mut().poll(&mut cx).is_pending());
    out.push(frames_of(10));
    out.request_finished();
    assert_eq!(wakes.0.load(Ordering::Relaxed), 1, "the writer is woken");
    assert_eq!(next.as_mut().poll(&mut cx), Poll::Ready(None));
}

#[test]
fn a_closed_connection_never_holds_a_stream_back() {
    let out = Outbox::default();
    out.push(frames_of(1000));
    out.close();
    assert!(out.wait_for_write_room(1).now_or_never().is_some());
}

#[test]
fn frames_queued_during_a_streamed_reply_follow_it_whole() {
    let out = Outbox::default();
    ack_in_place(&out, 1);
    out.begin_stream().now_or_never().unwrap();
    let mut head = BytesMut::new();
    let reply = crate::node::reply::reply_header(&request(2), 10, false);
    head.extend_from_slice(&reply.encode());
    out.stream_part(head.freeze());
    let mut other = Frames::new();
    other.ack(&request(3), 0);
    out.push(other);
    assert!(!out.serve_in_place(|f| {
        f.ack(&request(4), 0);
        true
    }));
    assert!(
        out.begin_stream().now_or_never().is_none(),
        "one streamed reply at a time"
    );
    out.stream_part(Bytes::from_static(b"0123456789"));
    out.end_stream();
    assert_eq!(transactions(&out), vec![1, 2, 3]);
}

#[test]
fn a_streamed_reply_cut_short_closes_the_connection_and_drops_what_waits() {
    let out = Outbox::default();
    out.begin_stream().now_or_never().unwrap();
    out.stream_part(Bytes::from_static(b"half a frame"));
    out.push(frames_of(10));
    out.abort_stream();
    assert!(out.is_closed());
    assert_eq!(out.next_batch().now_or_never(), Some(None));
}
