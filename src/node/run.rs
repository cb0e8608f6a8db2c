//! A shard's life: open its backends and srw state, bind its listener (SO_REUSEPORT), run
//! its tasks (mailbox, upkeep, publishing, cache write-back, joining peers, the accept
//! loop) on its one thread and io_uring, and on shutdown drain in-flight requests and make
//! every log durable.

use super::cross::{self, ShardMsg};
use super::shard::{blob_options, LocalBackend, Shard};
use super::state::{backend_state, NodeShared};
use crate::blob::BlobLog;
use crate::runtime::{mailbox, TcpListener};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// Open this shard's logs of every enabled backend.
pub async fn open_backends(node: &NodeShared, shard: usize) -> Result<Vec<LocalBackend>, String> {
    let mut out = Vec::with_capacity(node.backends.len());
    for (i, info) in node.backends.iter().enumerate() {
        let enabled = info.state.load(Ordering::Relaxed) == backend_state::ENABLED;
        let log = if enabled {
            let opts = blob_options(node, i, shard).ok_or("bad backend options")?;
            let log = BlobLog::open(opts)
                .await
                .map_err(|e| format!("backend {} (shard {shard}): {e}", info.backend_id))?;
            Some(Rc::new(log))
        } else {
            None
        };
        let cache = node.config.options.cache.as_ref().map(|settings| {
            let counters = node.cache_counters[shard * node.backends.len() + i].clone();
            let cache = crate::cache::ShardCache::new(settings, node.shard_count, counters);
            super::cache_cell::CacheCell::new(cache)
        });
        out.push(LocalBackend::new(info, log, cache));
    }
    Ok(out)
}

/// The body of a shard thread.
pub async fn shard_main(
    index: usize,
    node: Arc<NodeShared>,
    peers: Vec<mailbox::Sender<ShardMsg>>,
    inbox: mailbox::Receiver<ShardMsg>,
    ready: std::sync::mpsc::Sender<Result<(), String>>,
) -> Result<(), String> {
    let backends = open_backends(&node, index).await?;
    let srw = open_srw(&node, index)?;
    let listener = TcpListener::bind_reuseport(node.listen_addr, 1024)
        .map_err(|e| format!("cannot listen on {}: {e}", node.listen_addr))?;
    let _ = ready.send(Ok(()));
    let shard = Rc::new(Shard::new(index, node, backends, peers, srw));
    crate::runtime::spawn(cross::serve_mailbox(shard.clone(), inbox));
    super::upkeep::spawn(&shard);
    super::publish::spawn(&shard);
    super::cache_sync::spawn_write_back(&shard);
    super::join::start_joining(&shard);
    super::conn::accept_loop(shard.clone(), listener).await;
    if let Some(srw) = &shard.srw {
        srw.shutdown().await;
    }
    drain_and_sync(&shard).await;
    Ok(())
}

/// The srw state of shard `index` from `options.srw_config`, if set.
fn open_srw(node: &NodeShared, index: usize) -> Result<Option<crate::srw::ShardSrw>, String> {
    let Some(path) = &node.config.options.srw_config else {
        return Ok(None);
    };
    let cfg = crate::config::SrwConfig::load(path).map_err(|e| e.to_string())?;
    if index == 0 {
        for key in &cfg.ignored_keys {
            tracing::debug!(key = %key, "srw config: ignoring a Cocaine-only key");
        }
    }
    crate::srw::ShardSrw::new(&cfg, index, node.shard_count)
        .map(Some)
        .map_err(|e| e.to_string())
}

/// Wait (bounded) for in-flight requests, then make every log durable.
async fn drain_and_sync(shard: &Rc<Shard>) {
    for _ in 0..500 {
        if shard.in_flight() == 0 {
            break;
        }
        crate::runtime::sleep(Duration::from_millis(10)).await;
    }
    super::cache_sync::flush_all(shard).await;
    for b in &shard.backends {
        if let Some(log) = b.log() {
            if let Err(e) = log.sync().await {
                tracing::error!(
                    backend_id = b.backend_id,
                    shard = shard.index,
                    "final sync failed: {e}"
                );
            }
        }
    }
}
