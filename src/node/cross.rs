//! Cross-shard calls: a request for a key owned by another shard crosses once through that
//! shard's bounded mailbox as a job, runs there, and its result comes back through the
//! caller's mailbox. No locks: each side only touches its own state.
//!
//! A streaming call ([`call_streaming`]) also hands the job a [`ReplyStream`]: frames the
//! job sends early travel back as `Stream` messages, ahead of the final result, and the
//! caller's shard pushes them to the connection as they arrive. At most
//! [`STREAM_WINDOW_BYTES`] of one call's frames are in the mailbox or waiting for the
//! socket at a time; the job waits for the rest.

use super::conn::Outbox;
use super::reply::Frames;
use super::shard::Shard;
use crate::runtime::mailbox;
use std::any::Any;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::Duration;

/// Bytes of streamed frames one call may have in flight towards a connection's socket.
pub const STREAM_WINDOW_BYTES: usize = 4 * 1024 * 1024;
/// How often a remote stream that used up its window looks again.
const STREAM_WINDOW_POLL: Duration = Duration::from_micros(500);

/// A future produced on the target shard.
pub type LocalJob = Pin<Box<dyn Future<Output = Box<dyn Any + Send>>>>;
/// A job that crosses threads: built on the caller, run on the target shard.
pub type JobFn = Box<dyn FnOnce(Rc<Shard>) -> LocalJob + Send>;

/// What travels through a shard's mailbox.
pub enum ShardMsg {
    /// Run `job` here and send its result to shard `origin` under `token`.
    Run {
        origin: usize,
        token: usize,
        job: JobFn,
    },
    /// Frames a streaming job sent before its result (see [`call_streaming`]).
    Stream { token: usize, frames: Frames },
    /// The result of a job this shard sent out.
    Done {
        token: usize,
        value: Box<dyn Any + Send>,
    },
    /// Stop accepting, finish in-flight work, sync and exit.
    Shutdown,
}

impl std::fmt::Debug for ShardMsg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ShardMsg::Run { origin, token, .. } => write!(f, "Run({origin}, {token})"),
            ShardMsg::Stream { token, .. } => write!(f, "Stream({token})"),
            ShardMsg::Done { token, .. } => write!(f, "Done({token})"),
            ShardMsg::Shutdown => write!(f, "Shutdown"),
        }
    }
}

/// Results awaited by this shard, keyed by token.
#[derive(Debug, Default)]
pub struct PendingCalls {
    slots: RefCell<slab::Slab<Slot>>,
}

#[derive(Debug, Default)]
struct Slot {
    value: Option<Box<dyn Any + Send>>,
    streamed: VecDeque<Frames>,
    waker: Option<Waker>,
}

/// What a streaming call yields next on the caller's shard.
enum Next {
    Frames(Frames),
    Done(Box<dyn Any + Send>),
}

impl PendingCalls {
    fn register(&self) -> usize {
        self.slots.borrow_mut().insert(Slot::default())
    }

    /// Deliver a result that came back through the mailbox.
    pub fn complete(&self, token: usize, value: Box<dyn Any + Send>) {
        let mut slots = self.slots.borrow_mut();
        if let Some(slot) = slots.get_mut(token) {
            slot.value = Some(value);
            if let Some(w) = slot.waker.take() {
                w.wake();
            }
        }
    }

    /// Deliver frames a streaming job sent ahead of its result.
    pub fn stream(&self, token: usize, frames: Frames) {
        let mut slots = self.slots.borrow_mut();
        if let Some(slot) = slots.get_mut(token) {
            slot.streamed.push_back(frames);
            if let Some(w) = slot.waker.take() {
                w.wake();
            }
        }
    }

    /// Streamed frames first, in arrival order, then the result.
    async fn next(&self, token: usize) -> Next {
        std::future::poll_fn(|cx| {
            let mut slots = self.slots.borrow_mut();
            let Some(slot) = slots.get_mut(token) else {
                return Poll::Ready(Next::Done(Box::new(())));
            };
            if let Some(frames) = slot.streamed.pop_front() {
                return Poll::Ready(Next::Frames(frames));
            }
            match slot.value.take() {
                Some(v) => {
                    slots.remove(token);
                    Poll::Ready(Next::Done(v))
                }
                None => {
                    slot.waker = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        })
        .await
    }

    async fn wait(&self, token: usize) -> Box<dyn Any + Send> {
        std::future::poll_fn(|cx| {
            let mut slots = self.slots.borrow_mut();
            let Some(slot) = slots.get_mut(token) else {
                return Poll::Ready(Box::new(()) as Box<dyn Any + Send>);
            };
            match slot.value.take() {
                Some(v) => {
                    slots.remove(token);
                    Poll::Ready(v)
                }
                None => {
                    slot.waker = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        })
        .await
    }
}

/// Run `f` on shard `target` and return its result here. A call to the current shard runs
/// in place; otherwise it crosses the mailbox once each way. A full mailbox is retried after
/// a short pause (backpressure), never blocking the loop.
pub async fn call<R, F, Fut>(shard: &Rc<Shard>, target: usize, f: F) -> R
where
    R: Send + 'static + Default,
    F: FnOnce(Rc<Shard>) -> Fut + Send + 'static,
    Fut: Future<Output = R> + 'static,
{
    if target == shard.index {
        return f(shard.clone()).await;
    }
    let Some(peer) = shard.peers.get(target) else {
        return R::default();
    };
    let token = shard.pending.register();
    let mut msg = ShardMsg::Run {
        origin: shard.index,
        token,
        job: Box::new(move |s: Rc<Shard>| -> LocalJob {
            Box::pin(async move { Box::new(f(s).await) as Box<dyn Any + Send> })
        }),
    };
    loop {
        match peer.try_send(msg) {
            Ok(()) => break,
            Err(back) => {
                msg = back;
                crate::runtime::sleep(Duration::from_micros(100)).await;
            }
        }
    }
    let value = shard.pending.wait(token).await;
    value.downcast::<R>().map(|b| *b).unwrap_or_default()
}

/// Where a streaming job sends frames as it produces them.
#[derive(Debug)]
pub struct ReplyStream {
    to: StreamTo,
}

#[derive(Debug)]
enum StreamTo {
    /// The job runs on the connection's shard: straight into its outbox.
    Local(Rc<Outbox>),
    /// Back through the mailbox of shard `peer`, under the caller's `token`.
    Remote {
        peer: mailbox::Sender<ShardMsg>,
        token: usize,
        in_transit_bytes: Arc<AtomicUsize>,
    },
}

impl ReplyStream {
    /// Send `frames` towards the client now, waiting first while this call's earlier
    /// frames fill the window (the client reads slower than the job produces).
    pub async fn send(&self, frames: Frames) {
        if frames.is_empty() {
            return;
        }
        match &self.to {
            StreamTo::Local(out) => {
                out.wait_for_write_room(STREAM_WINDOW_BYTES).await;
                out.push(frames);
            }
            StreamTo::Remote {
                peer,
                token,
                in_transit_bytes,
            } => {
                while in_transit_bytes.load(Ordering::Acquire) >= STREAM_WINDOW_BYTES {
                    crate::runtime::sleep(STREAM_WINDOW_POLL).await;
                }
                in_transit_bytes.fetch_add(frames_len(&frames), Ordering::AcqRel);
                let token = *token;
                send(peer, ShardMsg::Stream { token, frames }).await;
            }
        }
    }
}

fn frames_len(frames: &Frames) -> usize {
    frames.parts.iter().map(bytes::Bytes::len).sum()
}

/// Run `f` on shard `target` like [`call`], giving it a [`ReplyStream`] whose frames reach
/// `out` as they are sent; the frames `f` returns go last, and are returned here.
pub async fn call_streaming<F, Fut>(
    shard: &Rc<Shard>,
    out: &Rc<Outbox>,
    target: usize,
    f: F,
) -> Frames
where
    F: FnOnce(Rc<Shard>, ReplyStream) -> Fut + Send + 'static,
    Fut: Future<Output = Frames> + 'static,
{
    if target == shard.index {
        let stream = ReplyStream {
            to: StreamTo::Local(out.clone()),
        };
        return f(shard.clone(), stream).await;
    }
    let Some(peer) = shard.peers.get(target) else {
        return Frames::default();
    };
    let origin = shard.index;
    let token = shard.pending.register();
    let in_transit_bytes = Arc::new(AtomicUsize::new(0));
    let transit = in_transit_bytes.clone();
    let job: JobFn = Box::new(move |s: Rc<Shard>| -> LocalJob {
        Box::pin(async move {
            let Some(back) = s.peers.get(origin).cloned() else {
                return Box::new(Frames::default()) as Box<dyn Any + Send>;
            };
            let stream = ReplyStream {
                to: StreamTo::Remote {
                    peer: back,
                    token,
                    in_transit_bytes: transit,
                },
            };
            Box::new(f(s, stream).await) as Box<dyn Any + Send>
        })
    });
    send(peer, ShardMsg::Run { origin, token, job }).await;
    loop {
        match shard.pending.next(token).await {
            Next::Frames(frames) => {
                let len = frames_len(&frames);
                out.wait_for_write_room(STREAM_WINDOW_BYTES).await;
                out.push(frames);
                in_transit_bytes.fetch_sub(len, Ordering::AcqRel);
            }
            Next::Done(value) => {
                return value.downcast::<Frames>().map(|b| *b).unwrap_or_default();
            }
        }
    }
}

/// Send a message to another shard, retrying while its mailbox is full.
pub async fn send(peer: &mailbox::Sender<ShardMsg>, mut msg: ShardMsg) {
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

/// The mailbox loop of a shard: runs incoming jobs and completes returned results.
pub async fn serve_mailbox(shard: Rc<Shard>, inbox: mailbox::Receiver<ShardMsg>) {
    while let Some(msg) = inbox.recv().await {
        match msg {
            ShardMsg::Run { origin, token, job } => {
                let s = shard.clone();
                crate::runtime::run_or_spawn(async move {
                    let value = job(s.clone()).await;
                    if let Some(peer) = s.peers.get(origin) {
                        send(peer, ShardMsg::Done { token, value }).await;
                    }
                });
            }
            ShardMsg::Stream { token, frames } => shard.pending.stream(token, frames),
            ShardMsg::Done { token, value } => shard.pending.complete(token, value),
            ShardMsg::Shutdown => {
                shard.begin_shutdown();
            }
        }
    }
}
