//! Mailboxes: many producer threads into one runtime's receiver, order per producer, a full
//! queue giving the value back, and end of stream when every sender is gone.

#![allow(clippy::unwrap_used)]

use elliptics::runtime::{self, mailbox};
use std::thread;

const PRODUCERS: usize = 4;
const MESSAGES_PER_PRODUCER: u64 = 100_000;
const CAPACITY: usize = 1024;

fn probe() {
    if let Err(e) = runtime::probe() {
        panic!("{e}");
    }
}

#[test]
fn four_producers_deliver_everything_in_per_producer_order() {
    probe();
    let (tx, rx) = mailbox::channel::<(usize, u64)>(CAPACITY);
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let tx = tx.clone();
            thread::spawn(move || {
                for seq in 0..MESSAGES_PER_PRODUCER {
                    let mut msg = (p, seq);
                    while let Err(back) = tx.try_send(msg) {
                        msg = back;
                        thread::yield_now();
                    }
                }
            })
        })
        .collect();
    drop(tx);
    let next = runtime::block_on(64, async move {
        let mut next = [0u64; PRODUCERS];
        while let Some((p, seq)) = rx.recv().await {
            assert_eq!(seq, next[p], "producer {p} out of order");
            next[p] += 1;
        }
        next
    })
    .unwrap();
    for p in producers {
        p.join().unwrap();
    }
    assert_eq!(next, [MESSAGES_PER_PRODUCER; PRODUCERS]);
}

#[test]
fn try_send_on_full_mailbox_returns_the_value() {
    let (tx, rx) = mailbox::channel::<String>(2);
    tx.try_send("a".into()).unwrap();
    tx.try_send("b".into()).unwrap();
    assert_eq!(tx.try_send("c".into()), Err("c".to_string()));
    assert_eq!(rx.try_recv().as_deref(), Some("a"));
    tx.try_send("c".into()).unwrap();
    assert_eq!(rx.try_recv().as_deref(), Some("b"));
    assert_eq!(rx.try_recv().as_deref(), Some("c"));
    assert_eq!(rx.try_recv(), None);
}

#[test]
fn receiver_wakes_for_a_message_sent_while_it_waits() {
    probe();
    let (tx, rx) = mailbox::channel::<u32>(4);
    let sender = thread::spawn(move || {
        thread::sleep(std::time::Duration::from_millis(30));
        tx.try_send(42).unwrap();
        thread::sleep(std::time::Duration::from_millis(30));
    });
    let got = runtime::block_on(8, async move {
        let first = rx.recv().await;
        let end = rx.recv().await;
        (first, end)
    })
    .unwrap();
    sender.join().unwrap();
    assert_eq!(got, (Some(42), None));
}
