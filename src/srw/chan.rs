//! A single-thread, single-consumer channel between tasks of one shard: worker replies to a
//! waiting exec, and frames to a worker's writer task. No locks, no atomics; values never
//! leave the shard thread. The channel counts the bytes its senders declared for queued
//! values ([`Sender::send_sized`]) so a producer can bound what a slow consumer holds.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::task::{Poll, Waker};

#[derive(Debug)]
struct Inner<T> {
    /// Values with the byte size their sender declared.
    items: VecDeque<(T, usize)>,
    queued_bytes: usize,
    waker: Option<Waker>,
    senders: usize,
    receiver_alive: bool,
}

/// The sending side; clone to share. The channel ends when every sender is dropped.
#[derive(Debug)]
pub struct Sender<T> {
    inner: Rc<RefCell<Inner<T>>>,
}

/// The receiving side.
#[derive(Debug)]
pub struct Receiver<T> {
    inner: Rc<RefCell<Inner<T>>>,
}

/// A new channel.
pub fn channel<T>() -> (Sender<T>, Receiver<T>) {
    let inner = Rc::new(RefCell::new(Inner {
        items: VecDeque::new(),
        queued_bytes: 0,
        waker: None,
        senders: 1,
        receiver_alive: true,
    }));
    (
        Sender {
            inner: inner.clone(),
        },
        Receiver { inner },
    )
}

impl<T> Sender<T> {
    /// Queue a value; false when the receiver is gone (the value is dropped).
    pub fn send(&self, value: T) -> bool {
        self.send_sized(value, 0)
    }

    /// Queue a value that holds `size_bytes` of memory until it is received.
    pub fn send_sized(&self, value: T, size_bytes: usize) -> bool {
        let waker = {
            let mut inner = self.inner.borrow_mut();
            if !inner.receiver_alive {
                return false;
            }
            inner.items.push_back((value, size_bytes));
            inner.queued_bytes = inner.queued_bytes.saturating_add(size_bytes);
            inner.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
        true
    }

    /// Declared bytes of the values queued and not yet received.
    pub fn queued_bytes(&self) -> usize {
        self.inner.borrow().queued_bytes
    }

    /// Whether the receiver still exists.
    pub fn is_open(&self) -> bool {
        self.inner.borrow().receiver_alive
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.inner.borrow_mut().senders += 1;
        Sender {
            inner: self.inner.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let waker = {
            let mut inner = self.inner.borrow_mut();
            inner.senders = inner.senders.saturating_sub(1);
            if inner.senders == 0 {
                inner.waker.take()
            } else {
                None
            }
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl<T> Receiver<T> {
    /// The next value; `None` once every sender is gone and the queue is empty.
    pub async fn recv(&self) -> Option<T> {
        std::future::poll_fn(|cx| {
            let mut inner = self.inner.borrow_mut();
            if let Some((v, size_bytes)) = inner.items.pop_front() {
                inner.queued_bytes = inner.queued_bytes.saturating_sub(size_bytes);
                return Poll::Ready(Some(v));
            }
            if inner.senders == 0 {
                return Poll::Ready(None);
            }
            inner.waker = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }

    /// Every value queued right now.
    pub fn drain(&self) -> Vec<T> {
        let mut inner = self.inner.borrow_mut();
        inner.queued_bytes = 0;
        inner.items.drain(..).map(|(v, _)| v).collect()
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let mut inner = self.inner.borrow_mut();
        inner.receiver_alive = false;
        inner.items.clear();
        inner.queued_bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queued_bytes_follow_sends_and_receives() {
        crate::runtime::block_on(8, async {
            let (tx, rx) = channel::<u8>();
            tx.send_sized(1, 100);
            tx.send_sized(2, 20);
            tx.send(3);
            assert_eq!(tx.queued_bytes(), 120);
            assert_eq!(rx.recv().await, Some(1));
            assert_eq!(tx.queued_bytes(), 20);
            assert_eq!(rx.drain(), vec![2, 3]);
            assert_eq!(tx.queued_bytes(), 0);
            drop(rx);
            assert!(!tx.send_sized(4, 10));
            assert_eq!(tx.queued_bytes(), 0);
        })
        .expect("runtime");
    }
}
