//! `start-task` and `start-multiple-task`: fetch the app's package, manifest and profile
//! records (from this node's backends, else through the client from the node's groups),
//! unpack the package off the shard thread, then start the app's pool on every shard.

use super::super::cross;
use super::super::shard::Shard;
use crate::client::{ClientConfig, Key, Node, Session};
use crate::key::RawId;
use crate::protocol::errno;
use crate::routing::shard_of;
use crate::srw::pool::PreparedApp;
use crate::srw::spool;
use crate::srw::store::{self, Manifest, Profile};
use std::rc::Rc;
use std::time::Duration;

/// `start-multiple-task` needs `idle-timeout` 0 or at least this (30 days).
const MULTIPLE_TASK_IDLE_MIN: Duration = Duration::from_secs(2_592_000);

/// `start-task` (and `start-multiple-task` with its task id): read the app's records,
/// spool the package, start the pool on every shard.
pub(super) async fn start(shard: &Rc<Shard>, app: &str, multiple: Option<Vec<u8>>) -> i32 {
    if store::check_name(app).is_err() {
        return errno::EINVAL;
    }
    let running = shard.srw.as_ref().is_some_and(|w| w.app(app).is_some());
    if running {
        tracing::info!(app, "start-task: already running");
        return 0;
    }
    let Some(spool_dir) = shard.srw.as_ref().map(|w| w.spool.join(app)) else {
        return errno::ENOTSUP;
    };
    let records = match fetch_records(shard, app).await {
        Ok(r) => r,
        Err(status) => return status,
    };
    let name = app.to_string();
    let prepared = run_blocking(move || prepare(name, records, &spool_dir)).await;
    let mut prepared = match prepared {
        Some(Ok(p)) => p,
        Some(Err(e)) => {
            tracing::error!(app, "start-task failed: {e}");
            return errno::EINVAL;
        }
        None => return errno::EINVAL,
    };
    if let Some(task_id) = multiple {
        let idle = prepared.profile.idle_timeout;
        if !idle.is_zero() && idle < MULTIPLE_TASK_IDLE_MIN {
            tracing::error!(
                app,
                "start-multiple-task: idle-timeout must be 0 or >= 30 days"
            );
            return errno::EINVAL;
        }
        prepared.task_id = Some(task_id);
    }
    for i in 0..shard.node.shard_count {
        let p = prepared.clone();
        let status = cross::call(shard, i, move |s| async move {
            match s.srw.as_ref().map(|w| w.start_app(p)) {
                Some(Ok(())) => 0,
                Some(Err(e)) => {
                    tracing::error!(shard = s.index, "start-task failed: {e}");
                    errno::EINVAL
                }
                None => errno::ENOTSUP,
            }
        })
        .await
        .unwrap_or_else(|e| e.errno());
        if status != 0 {
            return status;
        }
    }
    tracing::info!(app, "app started on {} shard(s)", shard.node.shard_count);
    0
}

/// Decode the records, check them, unpack the package. Runs off the shard thread.
fn prepare(
    name: String,
    [package, manifest, profile]: [Vec<u8>; 3],
    dir: &std::path::Path,
) -> Result<PreparedApp, crate::srw::SrwError> {
    let package = store::decode_package(&package)?;
    let manifest = Manifest::from_json(&store::decode_document(&manifest, "manifest")?)?;
    let profile = Profile::from_json(&store::decode_document(&profile, "profile")?)?;
    spool::check_package(&package, &manifest.slave)?;
    spool::unpack(&package, dir)?;
    Ok(PreparedApp {
        name,
        manifest,
        profile,
        app_dir: dir.to_path_buf(),
        task_id: None,
    })
}

/// Run `f` on a plain thread and wait for it without blocking the shard loop.
async fn run_blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("srw-start".into())
        .spawn(move || {
            let _ = tx.send(f());
        })
        .ok()?;
    loop {
        match rx.try_recv() {
            Ok(v) => return Some(v),
            Err(std::sync::mpsc::TryRecvError::Empty) => {
                crate::runtime::sleep(Duration::from_millis(2)).await;
            }
            Err(std::sync::mpsc::TryRecvError::Disconnected) => return None,
        }
    }
}

/// `apps/N`, `manifests/N`, `profiles/N`: from the local backends when this node holds
/// them, otherwise through the client from the node's groups.
async fn fetch_records(shard: &Rc<Shard>, app: &str) -> Result<[Vec<u8>; 3], i32> {
    let namespaces = [
        store::APPS_NAMESPACE,
        store::MANIFESTS_NAMESPACE,
        store::PROFILES_NAMESPACE,
    ];
    let mut local = Vec::with_capacity(3);
    for ns in namespaces {
        let id = RawId::from_namespaced_key(ns.as_bytes(), app.as_bytes());
        local.push(
            read_local(shard, id)
                .await
                .map_err(cross::CrossError::errno)?,
        );
    }
    if let [Some(a), Some(m), Some(p)] = <[Option<Vec<u8>>; 3]>::try_from(local).unwrap_or_default()
    {
        return Ok([a, m, p]);
    }
    let addr = shard.node.listen_addr;
    let family = if addr.is_ipv4() { 2 } else { 10 };
    let remote = format!("{}:{}:{family}", addr.ip(), addr.port());
    let groups: Vec<u32> = shard.node.backends.iter().map(|b| b.group).collect();
    let name = app.to_string();
    let fetched = run_blocking(move || {
        let node = Node::new(ClientConfig::default());
        if let Err(e) = node.add_remotes(&[remote.as_str()]) {
            tracing::error!("start-task: cannot reach {remote}: {e}");
            return None;
        }
        let mut out = Vec::with_capacity(3);
        for ns in namespaces {
            let mut s = Session::new(&node);
            s.set_groups(&groups);
            s.set_namespace(ns);
            let read = match s.read_data(&Key::from(name.as_str()), 0, 0).wait() {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!("start-task: cannot read {ns}/{name}: {e}");
                    return None;
                }
            };
            out.push(read.into_iter().find_map(|e| e.payload)?.data);
        }
        <[Vec<u8>; 3]>::try_from(out).ok()
    })
    .await
    .flatten();
    fetched.ok_or_else(|| {
        tracing::error!(
            app,
            "start-task: the app, its manifest or its profile is not in the store"
        );
        errno::ENOENT
    })
}

/// The value of `id` from this node's backends, read on the shard that owns it.
async fn read_local(shard: &Rc<Shard>, id: RawId) -> Result<Option<Vec<u8>>, cross::CrossError> {
    let target = shard_of(&id, shard.node.shard_count);
    cross::call(shard, target, move |s| async move {
        for b in &s.backends {
            if let Some(log) = b.log() {
                if let Ok(o) = log.read(&id, 0, 0, true).await {
                    return Some(o.data);
                }
            }
        }
        None
    })
    .await
}
