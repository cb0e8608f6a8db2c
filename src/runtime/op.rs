//! Operation futures: [`Op`] (one result) and [`MultiOp`] (a stream of results) over a
//! slot of the reactor's op slab.
//!
//! A future owns its operation's data (buffers, boxed addresses, fd handles) while it waits;
//! when dropped before the final result it hands the data to the slot and the reactor
//! cancels the operation, freeing the data only when the kernel reports it finished.
#![allow(unsafe_code)]

use super::reactor::with;
use io_uring::{cqueue, squeue};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

fn ignore_result(_: i32) {}

/// Hand an in-flight op's data to its slot. Without a reactor (thread exit) the data is
/// leaked: the kernel may still write into it.
fn abandon<T: 'static>(key: usize, data: &mut Option<T>, on_result: fn(i32)) {
    if data.is_none() {
        return;
    }
    let _ = with(|r| {
        if let Some(d) = data.take() {
            r.abandon(key, Box::new(d), on_result);
        }
    });
    if let Some(d) = data.take() {
        std::mem::forget(d);
    }
}

/// A single-shot operation in flight. Resolves to the raw result and the owned data.
pub(crate) struct Op<T: 'static> {
    key: usize,
    data: Option<T>,
}

impl<T: 'static> std::fmt::Debug for Op<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Op").field("key", &self.key).finish()
    }
}

// The data is never pinned: it is moved out on completion.
impl<T: 'static> Unpin for Op<T> {}

impl<T: 'static> Op<T> {
    /// Submit `entry` whose pointers refer into `data`.
    ///
    /// # Safety
    /// Every pointer in `entry` must point into heap memory owned by `data` (or into memory
    /// that `data` keeps alive), which must not move when `data` itself is moved.
    /// On failure the data comes back with the error.
    pub(crate) unsafe fn submit(entry: squeue::Entry, data: T) -> Result<Self, (io::Error, T)> {
        match with(|r| r.submit_op(entry)).and_then(|k| k) {
            Ok(key) => Ok(Op {
                key,
                data: Some(data),
            }),
            Err(e) => Err((e, data)),
        }
    }
}

impl<T: 'static> Future for Op<T> {
    type Output = (i32, T);

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<(i32, T)> {
        let this = self.get_mut();
        let key = this.key;
        let ready = with(|r| {
            let slot = r.ops.get_mut(key)?;
            match slot.pop_result() {
                Some((result, _)) => {
                    r.ops.remove(key);
                    Some(result)
                }
                None => {
                    slot.waker = Some(cx.waker().clone());
                    None
                }
            }
        });
        match ready {
            Ok(Some(result)) => match this.data.take() {
                Some(data) => Poll::Ready((result, data)),
                None => Poll::Pending,
            },
            Ok(None) => Poll::Pending,
            // The runtime is gone: the op can never complete.
            Err(_) => match this.data.take() {
                Some(data) => Poll::Ready((-libc::ECANCELED, data)),
                None => Poll::Pending,
            },
        }
    }
}

impl<T: 'static> Drop for Op<T> {
    fn drop(&mut self) {
        abandon(self.key, &mut self.data, ignore_result);
    }
}

/// A multishot operation: a stream of results until one arrives without `F_MORE`.
pub(crate) struct MultiOp<T: 'static> {
    key: usize,
    data: Option<T>,
    on_orphan_result: fn(i32),
    finished: bool,
}

impl<T: 'static> std::fmt::Debug for MultiOp<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MultiOp").field("key", &self.key).finish()
    }
}

impl<T: 'static> MultiOp<T> {
    /// Submit a multishot `entry`.
    ///
    /// # Safety
    /// As for [`Op::submit`].
    pub(crate) unsafe fn submit(
        entry: squeue::Entry,
        data: T,
        on_orphan: fn(i32),
    ) -> io::Result<Self> {
        let key = with(|r| r.submit_op(entry))??;
        Ok(MultiOp {
            key,
            data: Some(data),
            on_orphan_result: on_orphan,
            finished: false,
        })
    }

    /// Whether the final result has been taken.
    pub(crate) fn is_finished(&self) -> bool {
        self.finished
    }

    /// The next result; `None` once the final result has been taken.
    pub(crate) fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<i32>> {
        if self.finished {
            return Poll::Ready(None);
        }
        let key = self.key;
        let next = with(|r| {
            let slot = r.ops.get_mut(key)?;
            match slot.pop_result() {
                Some((result, flags)) => {
                    let last = !cqueue::more(flags);
                    if last {
                        r.ops.remove(key);
                    }
                    Some((result, last))
                }
                None => {
                    slot.waker = Some(cx.waker().clone());
                    None
                }
            }
        });
        match next {
            Ok(Some((result, last))) => {
                if last {
                    self.finished = true;
                    self.data = None;
                }
                Poll::Ready(Some(result))
            }
            Ok(None) => Poll::Pending,
            Err(_) => {
                self.finished = true;
                Poll::Ready(Some(-libc::ECANCELED))
            }
        }
    }
}

impl<T: 'static> Drop for MultiOp<T> {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        abandon(self.key, &mut self.data, self.on_orphan_result);
    }
}
