//! Node and backend control: STATUS (read-only and exit flags), MONITOR_STAT (zlib JSON),
//! BACKEND_STATUS and BACKEND_CONTROL (enable, disable, read-only, writeable, defrag,
//! SET_IDS). Backend changes are applied on every shard through the mailboxes.

use super::reply::{Frames, Replies};
use super::shard::{blob_options, Shard};
use super::state::backend_state;
use super::{cross, peers};
use crate::blob::{BlobLog, DefragLevel};
use crate::protocol::{
    cmd_flags, errno, status_flags, BackendControl, BackendStatus, BackendStatusList, CmdHeader,
    DnetTime, MonitorStatRequest, NodeStatus,
};
use bytes::Bytes;
use std::io::Write;
use std::rc::Rc;
use std::sync::atomic::Ordering;

/// STATUS: apply the flags that are not -1, reply with the current values, then ack.
pub fn status(shard: &Rc<Shard>, header: &CmdHeader, payload: &[u8], frames: &mut Frames) {
    let Ok(req) = NodeStatus::decode(payload) else {
        frames.error(header, errno::EINVAL);
        return;
    };
    let mut exit = false;
    if req.status_flags != -1 {
        shard
            .node
            .read_only
            .store(req.status_flags & status_flags::RO != 0, Ordering::Relaxed);
        exit = req.status_flags & status_flags::EXIT != 0;
    }
    let ro = if shard.node.is_read_only() {
        status_flags::RO
    } else {
        0
    };
    let current = NodeStatus {
        nflags: 0,
        status_flags: ro,
        log_level: 2,
    };
    frames.reply(header, &[&current.encode()], false);
    frames.ack(header, 0);
    if exit {
        let s = shard.clone();
        crate::runtime::spawn(async move { s.broadcast_shutdown().await });
    }
}

/// zlib-compress a JSON value as MONITOR_STAT replies carry it.
pub fn zlib_json(value: &serde_json::Value) -> Vec<u8> {
    let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    let _ = enc.write_all(value.to_string().as_bytes());
    enc.finish().unwrap_or_default()
}

/// MONITOR_STAT: a 44-byte request; the reply is the zlib JSON of the requested categories
/// followed by an ack.
pub fn monitor_stat(shard: &Rc<Shard>, header: &CmdHeader, payload: &[u8], frames: &mut Frames) {
    let Ok(req) = MonitorStatRequest::decode(payload) else {
        frames.error(header, errno::EINVAL);
        return;
    };
    let body = zlib_json(&super::monitor::monitor_json(&shard.node, req.categories));
    frames.reply(header, &[&body], false);
    frames.ack(header, 0);
}

/// BACKEND_STATUS: the state of every configured backend, in one final frame (no separate
/// ack) whose `backend_id` is -1, as the original answered: the command is the node's, not a
/// backend's.
pub fn backend_status(shard: &Rc<Shard>, header: &CmdHeader, frames: &mut Frames) {
    let entries = shard
        .node
        .backends
        .iter()
        .map(|b| BackendStatus {
            backend_id: b.backend_id,
            state: b.state.load(Ordering::Relaxed),
            read_only: b.read_only.load(Ordering::Relaxed),
            defrag_state: b.defrag.state(),
            last_start: DnetTime::default(),
            ..BackendStatus::default()
        })
        .collect();
    let body = BackendStatusList { backends: entries }.encode();
    let mut reply = *header;
    reply.flags &= !cmd_flags::NEED_ACK;
    reply.backend_id = NODE_BACKEND_ID;
    frames.reply(&reply, &[&body], false);
}

/// The `backend_id` of a reply to a command served by the node rather than a backend.
pub const NODE_BACKEND_ID: i32 = -1;

/// BACKEND_CONTROL commands.
mod op {
    pub const ENABLE: u32 = 0;
    pub const DISABLE: u32 = 1;
    pub const START_DEFRAG: u32 = 2;
    pub const SET_IDS: u32 = 3;
    pub const READ_ONLY: u32 = 4;
    pub const WRITEABLE: u32 = 5;
    pub const STOP_DEFRAG: u32 = 7;
}

/// BACKEND_CONTROL: validate, apply on every shard, reply with the backend's status.
pub async fn backend_control(shard: &Rc<Shard>, header: CmdHeader, payload: Bytes) -> Frames {
    let mut frames = Frames::new();
    let result = match BackendControl::decode(&payload) {
        Ok(req) => apply_control(shard, &req).await,
        Err(_) => Err(errno::EINVAL),
    };
    match result {
        Ok(()) => {
            backend_status(shard, &header, &mut frames);
        }
        Err(status) => frames.error(&header, status),
    }
    frames
}

async fn apply_control(shard: &Rc<Shard>, req: &BackendControl) -> Result<(), i32> {
    let idx = shard
        .node
        .backend_index(req.backend_id)
        .ok_or(errno::ENOENT)?;
    let info = shard.node.backends.get(idx).ok_or(errno::ENOENT)?;
    let enabled = info.state.load(Ordering::Relaxed) == backend_state::ENABLED;
    match req.command {
        op::ENABLE if enabled => Err(errno::EALREADY),
        op::DISABLE if !enabled => Err(errno::EALREADY),
        op::READ_ONLY if info.read_only.load(Ordering::Relaxed) => Err(errno::EALREADY),
        op::WRITEABLE if !info.read_only.load(Ordering::Relaxed) => Err(errno::EALREADY),
        op::ENABLE
        | op::DISABLE
        | op::START_DEFRAG
        | op::STOP_DEFRAG
        | op::READ_ONLY
        | op::WRITEABLE => {
            let command = req.command;
            let level = if req.defrag_level == 0 {
                DefragLevel::Start
            } else {
                DefragLevel::Compact
            };
            let mut status = 0;
            for target in 0..shard.node.shard_count {
                let s: i32 = cross::call(shard, target, move |s| async move {
                    apply_on_shard(&s, idx, command, level).await
                })
                .await
                .unwrap_or_else(|e| e.errno());
                if status == 0 {
                    status = s;
                }
            }
            match command {
                op::ENABLE if status == 0 => {
                    info.state.store(backend_state::ENABLED, Ordering::Relaxed)
                }
                op::DISABLE => info.state.store(backend_state::DISABLED, Ordering::Relaxed),
                op::READ_ONLY => info.read_only.store(true, Ordering::Relaxed),
                op::WRITEABLE => info.read_only.store(false, Ordering::Relaxed),
                _ => {}
            }
            if status == 0 {
                if command == op::ENABLE || command == op::DISABLE {
                    peers::announce_backend(shard, idx, command == op::DISABLE).await;
                }
                Ok(())
            } else {
                Err(status)
            }
        }
        op::SET_IDS => {
            let history = shard
                .node
                .config
                .backends
                .get(idx)
                .map(|b| b.history.clone())
                .ok_or(errno::ENOENT)?;
            if req.ids.is_empty() {
                return Err(errno::EINVAL);
            }
            crate::history::write_ids(&history, &req.ids).map_err(|_| errno::EIO)?;
            for target in 0..shard.node.shard_count {
                let ids = req.ids.clone();
                cross::call(shard, target, move |s| async move {
                    if let Some(b) = s.backends.get(idx) {
                        *b.ids.borrow_mut() = ids;
                    }
                })
                .await
                .map_err(cross::CrossError::errno)?;
            }
            if enabled {
                peers::announce_backend(shard, idx, false).await;
            }
            Ok(())
        }
        _ => Err(errno::ENOTSUP),
    }
}

async fn apply_on_shard(shard: &Rc<Shard>, idx: usize, command: u32, level: DefragLevel) -> i32 {
    let Some(b) = shard.backends.get(idx) else {
        return errno::ENOENT;
    };
    match command {
        op::ENABLE => {
            let Some(opts) = blob_options(&shard.node, idx, shard.index) else {
                return errno::EINVAL;
            };
            match BlobLog::open(opts).await {
                Ok(log) => {
                    b.replace_log(Some(Rc::new(log)));
                    0
                }
                Err(e) => e.errno(),
            }
        }
        op::DISABLE => {
            let log = b.replace_log(None);
            if let Some(log) = log {
                log.stop_defrag();
                if let Err(e) = log.sync().await {
                    return e.errno();
                }
            }
            0
        }
        // The pass runs in the background (`dnet_ioclient -d status` shows it), as in eblob.
        op::START_DEFRAG | op::STOP_DEFRAG => {
            let Some(log) = b.log() else {
                return errno::ENXIO;
            };
            if command == op::START_DEFRAG {
                if log.options().read_only {
                    return errno::EROFS;
                }
                log.request_defrag(level);
            } else {
                log.stop_defrag();
            }
            if let Some(info) = shard.node.backends.get(idx) {
                b.publish_defrag(info);
            }
            0
        }
        op::READ_ONLY | op::WRITEABLE => {
            if let Some(log) = b.log() {
                log.set_read_only(command == op::READ_ONLY);
            }
            0
        }
        _ => errno::ENOTSUP,
    }
}
