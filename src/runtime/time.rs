//! Time: [`sleep`] as an io_uring timeout operation, and [`timeout`] around any future.
//!
//! Dropping a pending sleep cancels its timeout in the kernel (the op slab keeps the
//! timespec alive until the kernel is done with it).
#![allow(unsafe_code)]

use super::op::Op;
use io_uring::{opcode, types};
use std::future::{poll_fn, Future};
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

/// The deadline of [`timeout`] passed before the future completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("deadline elapsed")]
pub struct Elapsed;

/// Wait for `dur` on this thread's ring. Outside a runtime it returns at once.
pub async fn sleep(dur: Duration) {
    let timespec = Box::new(types::Timespec::from(dur));
    let entry = opcode::Timeout::new(&*timespec as *const types::Timespec).build();
    // SAFETY: the entry points only at the boxed timespec, which the op owns (and the slab
    // keeps after a drop) until the timeout's CQE arrives.
    let Ok(op) = (unsafe { Op::submit(entry, timespec) }) else {
        return;
    };
    // -ETIME is the normal expiry; -ECANCELED only happens when the runtime goes away.
    let _ = op.await;
}

/// Run `fut` for at most `dur`. On expiry `fut` is dropped (cancelling its I/O) and
/// [`Elapsed`] is returned.
pub async fn timeout<F: Future>(dur: Duration, fut: F) -> Result<F::Output, Elapsed> {
    let mut fut = pin!(fut);
    let mut timer = pin!(sleep(dur));
    poll_fn(|cx| {
        if let Poll::Ready(out) = fut.as_mut().poll(cx) {
            return Poll::Ready(Ok(out));
        }
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(Elapsed)),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}
