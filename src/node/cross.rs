//! Cross-shard calls: a request for a key owned by another shard crosses once through that
//! shard's bounded mailbox as a job, runs there, and its result comes back through the
//! caller's mailbox. No locks: each side only touches its own state.

use super::shard::Shard;
use crate::runtime::mailbox;
use std::any::Any;
use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::Duration;

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
    waker: Option<Waker>,
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
                crate::runtime::spawn(async move {
                    let value = job(s.clone()).await;
                    if let Some(peer) = s.peers.get(origin) {
                        send(peer, ShardMsg::Done { token, value }).await;
                    }
                });
            }
            ShardMsg::Done { token, value } => shard.pending.complete(token, value),
            ShardMsg::Shutdown => {
                shard.begin_shutdown();
            }
        }
    }
}
