//! What an active worker says on its connection ([`AppPool::on_frame`]): heartbeats and
//! its terminate notice on the control channel, and per request channel the reply chunks,
//! the close and the error that end a request. A caller that reads its replies too slowly
//! ([`super::pool::EXEC_QUEUED_BYTES_MAX`] queued) has its request failed with -ENOMEM.
//!
//! ```text
//! channel 1 (control)   VALUE = heartbeat (answered)   ERROR = worker terminates
//! channel >= 2          VALUE = chunk   CLOSE = done (0)   ERROR = done (-code)
//! ```

use super::frame::{self, kind, Frame, CONTROL_CHANNEL, FIRST_REQUEST_CHANNEL};
use super::pool::{AppPool, Reply, EXEC_QUEUED_BYTES_MAX};
use super::worker_conn::WorkerSlot;
use crate::protocol::errno;
use std::rc::Rc;
use std::time::Instant;

impl AppPool {
    /// A frame from an active worker. False when the worker must be dropped.
    pub(super) fn on_frame(self: &Rc<Self>, worker: &Rc<WorkerSlot>, f: Frame) -> bool {
        if f.channel == CONTROL_CHANNEL {
            return match f.kind {
                kind::VALUE => {
                    worker.last_beat.set(Instant::now());
                    worker.send(frame::heartbeat());
                    true
                }
                kind::ERROR => {
                    let (code, reason) = (f.args.first().and_then(|v| v.as_i64()), f.bytes_arg(1));
                    tracing::info!(
                        app = %self.name, worker = %worker.uuid, code,
                        reason = %String::from_utf8_lossy(reason.unwrap_or_default()),
                        "worker terminates"
                    );
                    worker.begin_closing();
                    true
                }
                _ => false,
            };
        }
        if f.channel < FIRST_REQUEST_CHANNEL {
            return false;
        }
        let freed = match f.kind {
            kind::VALUE => match (worker.channel(f.channel), f.bytes_arg(0)) {
                (Some(reply), Some(bytes)) => {
                    let queued = reply.queued_bytes();
                    if queued > 0 && queued.saturating_add(bytes.len()) > EXEC_QUEUED_BYTES_MAX {
                        tracing::warn!(
                            app = %self.name, worker = %worker.uuid, queued,
                            "exec caller reads too slowly: failing the request"
                        );
                        worker.finish(f.channel, errno::ENOMEM)
                    } else {
                        reply.send_sized(Reply::Chunk(bytes.to_vec()), bytes.len());
                        false
                    }
                }
                _ => false,
            },
            kind::CLOSE => worker.finish(f.channel, 0),
            kind::ERROR => {
                let (code, reason) = f.error_code();
                tracing::info!(app = %self.name, worker = %worker.uuid, "{reason}: {code}");
                let status = i32::try_from(code.unsigned_abs()).map_or(i32::MIN, |c| -c);
                worker.finish(f.channel, if status == 0 { -1 } else { status })
            }
            _ => return false,
        };
        if freed {
            self.pump();
        }
        true
    }
}
