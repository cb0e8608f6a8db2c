//! Background upkeep of a shard's logs, on the shard's own ring and off the request path:
//! per backend one task for the periodic sync and the sorted indexes of closed files, and
//! one for defragmentation (asked for by BACKEND_CONTROL, or due by the backend's
//! `defrag_timeout` / `defrag_time` / `defrag_splay` schedule). Neither holds the log
//! between turns, so a disabled backend's log closes at once.

use super::shard::Shard;
use crate::blob::DefragSchedule;
use std::rc::Rc;
use std::time::Duration;

/// How often a task looks at its log (a closed file is sorted at most this late).
const TURN_PERIOD: Duration = Duration::from_millis(100);

/// Start the upkeep tasks of every backend of `shard`.
pub fn spawn(shard: &Rc<Shard>) {
    for idx in 0..shard.backends.len() {
        let Some(cfg) = shard.node.config.backends.get(idx) else {
            continue;
        };
        let schedule = DefragSchedule {
            timeout_s: cfg.defrag_timeout_s,
            time_hour: cfg.defrag_time_hour,
            splay_hours: cfg.defrag_splay_hours,
        };
        crate::runtime::spawn(maintain_loop(shard.clone(), idx));
        crate::runtime::spawn(defrag_loop(shard.clone(), idx, schedule));
    }
}

async fn maintain_loop(shard: Rc<Shard>, idx: usize) {
    while !shard.is_shutting_down() {
        crate::runtime::sleep(TURN_PERIOD).await;
        let Some(b) = shard.backends.get(idx) else {
            return;
        };
        if let Some(log) = b.log() {
            if let Err(e) = log.maintain().await {
                tracing::error!(
                    backend_id = b.backend_id,
                    shard = shard.index,
                    "background sync or index sort failed: {e}"
                );
            }
        }
    }
}

async fn defrag_loop(shard: Rc<Shard>, idx: usize, schedule: DefragSchedule) {
    while !shard.is_shutting_down() {
        crate::runtime::sleep(TURN_PERIOD).await;
        let (Some(b), Some(info)) = (shard.backends.get(idx), shard.node.backends.get(idx)) else {
            return;
        };
        let Some(log) = b.log() else {
            b.publish_defrag(info);
            continue;
        };
        let hour = crate::io::clock::local_hour();
        let result = {
            let turn = log.defrag_turn(&schedule, hour);
            // The pass shows as running while it runs: publish once it has started.
            let mut turn = std::pin::pin!(turn);
            let first = futures::poll!(turn.as_mut());
            b.publish_defrag(info);
            match first {
                std::task::Poll::Ready(r) => r,
                std::task::Poll::Pending => turn.await,
            }
        };
        match result {
            Ok(Some(stats)) if stats.files_rewritten > 0 => tracing::info!(
                backend_id = b.backend_id,
                shard = shard.index,
                files = stats.files_rewritten,
                freed_bytes = stats.bytes_before.saturating_sub(stats.bytes_after),
                "defrag pass done"
            ),
            Ok(_) => {}
            Err(e) => tracing::error!(
                backend_id = b.backend_id,
                shard = shard.index,
                "defrag failed: {e}"
            ),
        }
        drop(log);
        b.publish_defrag(info);
    }
}
