//! A shard's mailbox traffic, as data: the messages that cross between shards ([`Mail`])
//! and the calls a shard waits for (one slot per call, marked done when the job reports,
//! holding the frames a streaming job sent ahead of its result, and freed when both the
//! caller and the job are through with it). It sits below the shard that holds it; the
//! code that sends and serves the messages is `cross`, above the shard.

use super::reply::Frames;
use crate::runtime::mailbox;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::Duration;

/// A future produced on the target shard; it hands its result over itself.
pub type LocalJob = Pin<Box<dyn Future<Output = ()>>>;
/// A job that crosses threads: built on the caller, run on the target shard `S`.
pub type JobFn<S> = Box<dyn FnOnce(Rc<S>) -> LocalJob + Send>;

/// What travels through the mailbox of a shard of type `S`.
pub enum Mail<S> {
    /// Run `job` here, then tell shard `origin` that call `token` is done.
    Run {
        origin: usize,
        token: usize,
        job: JobFn<S>,
    },
    /// Frames a streaming job sent before its result.
    Stream { token: usize, frames: Frames },
    /// A job this shard sent out has finished (or was dropped): its result, if any, is in
    /// the call's own channel.
    Done { token: usize },
    /// Stop accepting, finish in-flight work, sync and exit.
    Shutdown,
}

impl<S> std::fmt::Debug for Mail<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mail::Run { origin, token, .. } => write!(f, "Run({origin}, {token})"),
            Mail::Stream { token, .. } => write!(f, "Stream({token})"),
            Mail::Done { token } => write!(f, "Done({token})"),
            Mail::Shutdown => write!(f, "Shutdown"),
        }
    }
}

/// Send a message to another shard, retrying while its mailbox is full.
pub async fn send<S>(peer: &mailbox::Sender<Mail<S>>, mut msg: Mail<S>) {
    loop {
        match peer.try_send(msg) {
            Ok(()) => return,
            Err(back) => {
                msg = back;
                crate::runtime::sleep(Duration::from_micros(100)).await;
            }
        }
    }
}

/// Calls this shard waits for, keyed by token. A slot only says whether its call is done
/// and holds streamed frames; the result itself travels typed in the call's own oneshot.
#[derive(Debug, Default)]
pub struct PendingCalls {
    slots: RefCell<slab::Slab<Slot>>,
}

#[derive(Debug, Default)]
struct Slot {
    done: bool,
    /// The caller went away: the slot is freed when the job reports done.
    abandoned: bool,
    streamed: VecDeque<Frames>,
    waker: Option<Waker>,
}

/// What a streaming call yields next on the caller's shard.
pub(super) enum Next {
    Frames(Frames),
    Done,
}

/// A registered call; its slot is let go when the caller stops waiting, whatever the reason.
pub(super) struct Waiting<'a> {
    pending: &'a PendingCalls,
    pub(super) token: usize,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let mut slots = self.pending.slots.borrow_mut();
        match slots.get_mut(self.token) {
            Some(slot) if slot.done => {
                slots.remove(self.token);
            }
            Some(slot) => {
                slot.abandoned = true;
                slot.streamed.clear();
                slot.waker = None;
            }
            None => {}
        }
    }
}

impl PendingCalls {
    pub(super) fn register(&self) -> Waiting<'_> {
        let token = self.slots.borrow_mut().insert(Slot::default());
        Waiting {
            pending: self,
            token,
        }
    }

    /// A job this shard sent out has finished.
    pub fn complete(&self, token: usize) {
        let mut slots = self.slots.borrow_mut();
        match slots.get_mut(token) {
            Some(slot) if slot.abandoned => {
                slots.remove(token);
            }
            Some(slot) => {
                slot.done = true;
                if let Some(w) = slot.waker.take() {
                    w.wake();
                }
            }
            None => {}
        }
    }

    /// Deliver frames a streaming job sent ahead of its result.
    pub fn stream(&self, token: usize, frames: Frames) {
        let mut slots = self.slots.borrow_mut();
        if let Some(slot) = slots.get_mut(token).filter(|s| !s.abandoned) {
            slot.streamed.push_back(frames);
            if let Some(w) = slot.waker.take() {
                w.wake();
            }
        }
    }

    /// Streamed frames first, in arrival order, then the end of the call.
    pub(super) async fn next(&self, token: usize) -> Next {
        std::future::poll_fn(|cx| {
            let mut slots = self.slots.borrow_mut();
            let Some(slot) = slots.get_mut(token) else {
                return Poll::Ready(Next::Done);
            };
            if let Some(frames) = slot.streamed.pop_front() {
                return Poll::Ready(Next::Frames(frames));
            }
            if slot.done {
                return Poll::Ready(Next::Done);
            }
            slot.waker = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;

    #[test]
    fn streamed_frames_come_before_the_end_and_an_abandoned_call_frees_its_slot() {
        let pending = PendingCalls::default();
        let waiting = pending.register();
        let token = waiting.token;
        pending.stream(token, Frames::default());
        pending.complete(token);
        assert!(matches!(
            pending.next(token).now_or_never(),
            Some(Next::Frames(_))
        ));
        assert!(matches!(
            pending.next(token).now_or_never(),
            Some(Next::Done)
        ));
        drop(waiting);
        assert!(pending.slots.borrow().is_empty());

        let waiting = pending.register();
        let token = waiting.token;
        drop(waiting);
        assert_eq!(
            pending.slots.borrow().len(),
            1,
            "kept until the job reports"
        );
        pending.stream(token, Frames::default());
        pending.complete(token);
        assert!(pending.slots.borrow().is_empty());
    }
}
