//! Single-thread synchronisation for tasks of one runtime: a oneshot channel. No atomics, no
//! locks; values never cross threads here (that is what [`super::mailbox`] is for).

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

/// The sender of a oneshot was dropped without sending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("oneshot sender dropped without sending")]
pub struct Canceled;

#[derive(Debug)]
struct Shared<T> {
    value: Option<T>,
    waker: Option<Waker>,
    sender_alive: bool,
    receiver_alive: bool,
}

/// Sends one value to the matching [`OneshotReceiver`].
#[derive(Debug)]
pub struct OneshotSender<T> {
    shared: Rc<RefCell<Shared<T>>>,
}

/// A future resolving to the value sent, or [`Canceled`] if the sender was dropped.
#[derive(Debug)]
pub struct OneshotReceiver<T> {
    shared: Rc<RefCell<Shared<T>>>,
}

/// A single-use channel between two tasks of the same thread.
pub fn oneshot<T>() -> (OneshotSender<T>, OneshotReceiver<T>) {
    let shared = Rc::new(RefCell::new(Shared {
        value: None,
        waker: None,
        sender_alive: true,
        receiver_alive: true,
    }));
    (
        OneshotSender {
            shared: Rc::clone(&shared),
        },
        OneshotReceiver { shared },
    )
}

impl<T> OneshotSender<T> {
    /// Deliver `value`; gives it back if the receiver is gone.
    pub fn send(self, value: T) -> Result<(), T> {
        let waker = {
            let mut s = self.shared.borrow_mut();
            if !s.receiver_alive {
                return Err(value);
            }
            s.value = Some(value);
            s.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
        Ok(())
    }

    /// Whether the receiver has been dropped.
    pub fn is_closed(&self) -> bool {
        !self.shared.borrow().receiver_alive
    }
}

impl<T> Drop for OneshotSender<T> {
    fn drop(&mut self) {
        let waker = {
            let mut s = self.shared.borrow_mut();
            s.sender_alive = false;
            s.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl<T> OneshotReceiver<T> {
    /// Take the value if it has been sent.
    pub fn try_recv(&mut self) -> Option<T> {
        self.shared.borrow_mut().value.take()
    }
}

impl<T> Future for OneshotReceiver<T> {
    type Output = Result<T, Canceled>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut s = self.shared.borrow_mut();
        if let Some(v) = s.value.take() {
            return Poll::Ready(Ok(v));
        }
        if !s.sender_alive {
            return Poll::Ready(Err(Canceled));
        }
        s.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl<T> Drop for OneshotReceiver<T> {
    fn drop(&mut self) {
        self.shared.borrow_mut().receiver_alive = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oneshot_delivers_value_across_tasks() {
        let got = crate::runtime::block_on(8, async {
            let (tx, rx) = oneshot();
            crate::runtime::spawn(async move {
                crate::runtime::sleep(std::time::Duration::from_millis(1)).await;
                let _ = tx.send(7u32);
            });
            rx.await
        })
        .unwrap();
        assert_eq!(got, Ok(7));
    }

    #[test]
    fn dropped_sender_cancels_receiver() {
        let got = crate::runtime::block_on(8, async {
            let (tx, rx) = oneshot::<u32>();
            crate::runtime::spawn(async move { drop(tx) });
            rx.await
        })
        .unwrap();
        assert_eq!(got, Err(Canceled));
    }
}
