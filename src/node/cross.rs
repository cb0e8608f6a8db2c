//! Cross-shard calls: a request for a key owned by another shard crosses once through that
//! shard's bounded mailbox as a job, runs there, and its result comes back through the
//! caller's mailbox. No locks: each side only touches its own state.
//!
//! A streaming call ([`call_streaming`]) also hands the job a [`ReplyStream`]: frames the
//! job sends early travel back as `Stream` messages, ahead of the final result, and the
//! caller's shard pushes them to the connection as they arrive. At most
//! [`STREAM_WINDOW_BYTES`] of one call's frames are in the mailbox or waiting for the
//! socket at a time; the job waits for the rest.

mod stream;

use super::mail::Next;
pub use super::mail::{send, LocalJob};
pub use super::shard::ShardMsg;
pub use stream::{call_streaming, ReplyStream};

use super::reply::{Frames, Replies};
use super::shard::Shard;
use crate::protocol::CmdHeader;
use crate::runtime::mailbox;
use futures::channel::oneshot;
use std::future::Future;
use std::rc::Rc;
use std::time::Duration;

/// Bytes of streamed frames one call may have in flight towards a connection's socket.
pub const STREAM_WINDOW_BYTES: usize = 4 * 1024 * 1024;
/// How often a remote stream that used up its window looks again.
const STREAM_WINDOW_POLL: Duration = Duration::from_micros(500);

/// A job that crosses threads: built on the caller, run on the target shard.
pub type JobFn = super::mail::JobFn<Shard>;

/// Why a cross-shard call brought no result back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CrossError {
    /// The node has no shard of this index.
    #[error("shard {0} does not exist")]
    NoShard(usize),
    /// The target shard dropped the job before it produced its result (it was stopping).
    #[error("shard {0} dropped the call before answering")]
    Lost(usize),
}

impl CrossError {
    /// The status a client is answered with.
    pub fn errno(self) -> i32 {
        match self {
            CrossError::NoShard(_) => crate::protocol::errno::ENXIO,
            CrossError::Lost(_) => crate::protocol::errno::EIO,
        }
    }

    /// The error reply to `header`, logged: what a request whose call was lost answers.
    pub fn answer(self, header: &CmdHeader) -> Frames {
        tracing::error!(cmd = header.cmd, "cross-shard call failed: {self}");
        let mut frames = Frames::new();
        frames.error(header, self.errno());
        frames
    }
}

/// The result a finished job left in its channel; none means the job was dropped.
fn take_result<R>(mut rx: oneshot::Receiver<R>, target: usize) -> Result<R, CrossError> {
    match rx.try_recv() {
        Ok(Some(value)) => Ok(value),
        Ok(None) | Err(oneshot::Canceled) => Err(CrossError::Lost(target)),
    }
}

/// Run `f` on shard `target` and return its result here. A call to the current shard runs
/// in place; otherwise the job crosses the mailbox once, its result comes back through a
/// oneshot of its own type and the caller is woken by a `Done` through this shard's
/// mailbox. A full mailbox is retried after a short pause (backpressure), never blocking
/// the loop. A job that never produces its result is an error, never a default value.
pub async fn call<R, F, Fut>(shard: &Rc<Shard>, target: usize, f: F) -> Result<R, CrossError>
where
    R: Send + 'static,
    F: FnOnce(Rc<Shard>) -> Fut + Send + 'static,
    Fut: Future<Output = R> + 'static,
{
    if target == shard.index {
        return Ok(f(shard.clone()).await);
    }
    let peer = shard.peers.get(target).ok_or(CrossError::NoShard(target))?;
    let (tx, rx) = oneshot::channel::<R>();
    let waiting = shard.pending.register();
    let job: JobFn = Box::new(move |s: Rc<Shard>| -> LocalJob {
        Box::pin(async move {
            let _ = tx.send(f(s).await);
        })
    });
    let origin = shard.index;
    let token = waiting.token;
    send(peer, ShardMsg::Run { origin, token, job }).await;
    while !matches!(shard.pending.next(token).await, Next::Done) {}
    drop(waiting);
    take_result(rx, target)
}

/// Tells the origin shard that a job is over when dropped: after its result was sent, or
/// when the job was dropped unfinished (the caller then finds no result and answers the
/// error at once instead of waiting).
struct DoneNotice {
    peer: Option<mailbox::Sender<ShardMsg>>,
    token: usize,
}

impl DoneNotice {
    async fn send(mut self) {
        if let Some(peer) = self.peer.take() {
            send(&peer, ShardMsg::Done { token: self.token }).await;
        }
    }
}

impl Drop for DoneNotice {
    fn drop(&mut self) {
        if let Some(peer) = self.peer.take() {
            if peer.try_send(ShardMsg::Done { token: self.token }).is_err() {
                tracing::error!(
                    token = self.token,
                    "a dropped cross-shard call could not be reported"
                );
            }
        }
    }
}

/// The mailbox loop of a shard: runs incoming jobs and wakes the callers of finished ones.
pub async fn serve_mailbox(shard: Rc<Shard>, inbox: mailbox::Receiver<ShardMsg>) {
    while let Some(msg) = inbox.recv().await {
        match msg {
            ShardMsg::Run { origin, token, job } => {
                let s = shard.clone();
                let notice = DoneNotice {
                    peer: s.peers.get(origin).cloned(),
                    token,
                };
                crate::runtime::run_or_spawn(async move {
                    job(s).await;
                    notice.send().await;
                });
            }
            ShardMsg::Stream { token, frames } => shard.pending.stream(token, frames),
            ShardMsg::Done { token } => shard.pending.complete(token),
            ShardMsg::Shutdown => {
                shard.begin_shutdown();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_dropped_before_its_result_is_a_lost_call_not_a_default_value() {
        let (tx, rx) = oneshot::channel::<u32>();
        drop(tx);
        assert_eq!(take_result(rx, 3), Err(CrossError::Lost(3)));
        let (tx, rx) = oneshot::channel::<u32>();
        tx.send(7).unwrap();
        assert_eq!(take_result(rx, 3), Ok(7));
    }

    #[test]
    fn a_lost_call_is_answered_with_an_error_the_client_sees() {
        let header = CmdHeader {
            cmd: crate::protocol::command::LOOKUP,
            trans: 9,
            ..CmdHeader::default()
        };
        let frames = CrossError::Lost(1).answer(&header);
        let bytes: Vec<u8> = frames.parts.iter().flat_map(|b| b.to_vec()).collect();
        let (frame, _) = crate::protocol::split_frame(&bytes, 1 << 20).unwrap();
        assert_eq!(frame.header.trans, 9);
        assert_eq!(frame.header.status, crate::protocol::errno::EIO);
    }
}
