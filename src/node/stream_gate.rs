//! The shard's gate for streamed values' slices: at most [`SLICES_AT_ONCE`] slices of
//! streamed WRITEs are being received on one shard thread at a time, however many values
//! stream through it.
//!
//! A slice's bytes are copied out of the socket inside the ring's submit (or its
//! completion run), on the shard thread; sixteen streams each with a slice in flight would
//! make every turn of the ring copy two megabytes before the small requests that arrived
//! meanwhile are looked at. Through the gate a turn copies at most a few slices, and the
//! small requests of the shard are served between them: the streams share what is left
//! fairly (first come, first served), and a stream whose client is slow holds its permit
//! only while its slice is being received.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::task::{Poll, Waker};

/// Slices of streamed values being received at once on one shard thread.
pub const SLICES_AT_ONCE: usize = 2;

/// The gate of this thread.
#[derive(Debug, Default)]
struct Gate {
    taken: Cell<usize>,
    waiters: RefCell<VecDeque<Waker>>,
}

thread_local! {
    static GATE: Gate = Gate::default();
}

/// Leave to receive one slice; the slot is given back when it is dropped.
#[derive(Debug)]
pub struct SlicePermit(());

impl Drop for SlicePermit {
    fn drop(&mut self) {
        let _ = GATE.try_with(|g| {
            g.taken.set(g.taken.get().saturating_sub(1));
            // Every waiter looks again (a woken one may have gone away meanwhile).
            for w in g.waiters.borrow_mut().drain(..) {
                w.wake();
            }
        });
    }
}

/// Wait for a slot to receive one slice of a streamed value.
pub async fn slice_permit() -> SlicePermit {
    std::future::poll_fn(|cx| {
        GATE.with(|g| {
            if g.taken.get() < SLICES_AT_ONCE {
                g.taken.set(g.taken.get() + 1);
                Poll::Ready(SlicePermit(()))
            } else {
                g.waiters.borrow_mut().push_back(cx.waker().clone());
                Poll::Pending
            }
        })
    })
    .await
}
