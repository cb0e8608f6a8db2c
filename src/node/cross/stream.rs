//! Streaming calls: a job on another shard sends frames back as it produces them, through
//! the caller's mailbox, within a window of [`STREAM_WINDOW_BYTES`] per call.

use super::super::mail::Next;
use super::super::outbox::Outbox;
use super::super::reply::Frames;
use super::super::shard::Shard;
use super::{send, take_result, CrossError, JobFn, LocalJob, ShardMsg};
use super::{STREAM_WINDOW_BYTES, STREAM_WINDOW_POLL};
use crate::runtime::mailbox;
use futures::channel::oneshot;
use std::future::Future;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

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

/// Run `f` on shard `target` like [`call`](super::call), giving it a [`ReplyStream`]
/// whose frames reach `out` as they are sent; the frames `f` returns go last, and are
/// returned here.
pub async fn call_streaming<F, Fut>(
    shard: &Rc<Shard>,
    out: &Rc<Outbox>,
    target: usize,
    f: F,
) -> Result<Frames, CrossError>
where
    F: FnOnce(Rc<Shard>, ReplyStream) -> Fut + Send + 'static,
    Fut: Future<Output = Frames> + 'static,
{
    if target == shard.index {
        let stream = ReplyStream {
            to: StreamTo::Local(out.clone()),
        };
        return Ok(f(shard.clone(), stream).await);
    }
    let peer = shard.peers.get(target).ok_or(CrossError::NoShard(target))?;
    let origin = shard.index;
    let waiting = shard.pending.register();
    let token = waiting.token;
    let (tx, rx) = oneshot::channel::<Frames>();
    let in_transit_bytes = Arc::new(AtomicUsize::new(0));
    let transit = in_transit_bytes.clone();
    let job: JobFn = Box::new(move |s: Rc<Shard>| -> LocalJob {
        Box::pin(async move {
            // The origin is a shard of this node (it sent the job); without it there is no
            // one to stream to, and the dropped `tx` tells the caller so.
            let Some(back) = s.peers.get(origin).cloned() else {
                return;
            };
            let stream = ReplyStream {
                to: StreamTo::Remote {
                    peer: back,
                    token,
                    in_transit_bytes: transit,
                },
            };
            let _ = tx.send(f(s, stream).await);
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
            Next::Done => {
                drop(waiting);
                return take_result(rx, target);
            }
        }
    }
}
