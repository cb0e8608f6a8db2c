//! Cluster nodes for the cluster and recovery tests: real `dnet_ioserv` processes on
//! 127.0.0.1, .2, .3, ... (one port, one loopback address each) that JOIN each other. Their
//! config comes from the same renderer as every other test node ([`super::render_config`]),
//! and raw protocol goes through [`super::raw::RawConn`].

use super::{render_config, spawn_ioserv, wait_until_accepting, NodeHandle, NodeSpec};
use elliptics::key::RawId;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

// Re-exported so a cluster test imports its whole harness from one place.
#[allow(unused_imports)]
pub use super::free_port;
#[allow(unused_imports)]
pub use super::raw::RawConn;

/// One cluster node: its loopback host, backends (backend_id, group) and data directory.
#[derive(Debug)]
pub struct ClusterNode {
    pub host: String,
    pub port: u16,
    pub dir: PathBuf,
    pub backends: Vec<(u32, u32)>,
    pub cookie: String,
    pub remotes: Vec<String>,
    /// The node's `check_timeout` (route checks and join retries), in seconds.
    pub check_timeout_s: u64,
    child: Option<Child>,
}

impl ClusterNode {
    pub fn new(dir: &Path, n: u8, port: u16, backends: &[(u32, u32)]) -> ClusterNode {
        let dir = dir.join(format!("node{n}"));
        std::fs::create_dir_all(&dir).expect("node dir");
        ClusterNode {
            host: format!("127.0.0.{n}"),
            port,
            dir,
            backends: backends.to_vec(),
            cookie: "cluster-test".into(),
            remotes: Vec::new(),
            check_timeout_s: 1,
            child: None,
        }
    }

    pub fn remote(&self) -> String {
        format!("{}:{}:2", self.host, self.port)
    }

    pub fn addr(&self) -> SocketAddr {
        format!("{}:{}", self.host, self.port)
            .parse()
            .expect("addr")
    }

    /// Write `points` as the ring points of backend `backend_id`.
    pub fn set_ids(&self, backend_id: u32, points: &[RawId]) {
        let h = self.dir.join(format!("history-{backend_id}"));
        std::fs::create_dir_all(&h).expect("history");
        let bytes: Vec<u8> = points.iter().flat_map(|p| p.0).collect();
        std::fs::write(h.join("ids"), bytes).expect("ids");
    }

    /// What this node's config says: its host, peers, cookie, two shards, short timeouts.
    fn spec(&self) -> NodeSpec {
        NodeSpec {
            backends: self.backends.clone(),
            remotes: self.remotes.clone(),
            wait_timeout_s: 2,
            check_timeout_s: self.check_timeout_s,
            extra_options: vec!["\"shard_count\": 2".into()],
            blob_size: "50M".into(),
            records_in_blob: String::new(),
            blob_flags: String::new(),
            host: self.host.clone(),
            auth_cookie: self.cookie.clone(),
            ..NodeSpec::default()
        }
    }

    /// Start (or restart) the process and wait until it accepts.
    pub fn start(&mut self) {
        let path = self.dir.join("ioserv.json");
        std::fs::write(&path, render_config(&self.spec(), &self.dir, self.port)).expect("config");
        let listening_seen = self.log().matches("listening on").count();
        self.child = Some(spawn_ioserv(&path, &self.dir));
        let (addr, log) = (self.addr(), self.dir.join("ioserv.log"));
        wait_until_accepting(&mut self.child, addr, &log, listening_seen);
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("ioserv.log")).unwrap_or_default()
    }

    /// Freeze (SIGSTOP) or thaw (SIGCONT) the process: its sockets stay open, nothing answers.
    pub fn freeze(&self, frozen: bool) {
        let Some(c) = &self.child else { return };
        let sig = if frozen { "-STOP" } else { "-CONT" };
        let ok = Command::new("kill")
            .arg(sig)
            .arg(c.id().to_string())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill {sig} {}", c.id());
        if frozen {
            // The signal is only queued when `kill` returns; a loaded machine may run the
            // node's threads a while longer. Frozen means every thread has stopped.
            let pid = c.id();
            wait_for(5, "the node's threads to stop", || all_threads_stopped(pid));
        }
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Whether the process is running (started and not reaped).
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().is_ok_and(|s| s.is_none()))
    }

    /// The process id, when running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
}

impl Drop for ClusterNode {
    fn drop(&mut self) {
        self.kill();
    }
}

impl NodeHandle for ClusterNode {
    fn remote(&self) -> String {
        ClusterNode::remote(self)
    }
    fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Every node lists every other as a remote.
pub fn mesh(nodes: &mut [ClusterNode]) {
    let all: Vec<String> = nodes.iter().map(ClusterNode::remote).collect();
    for n in nodes.iter_mut() {
        let me = n.remote();
        n.remotes = all.iter().filter(|r| **r != me).cloned().collect();
    }
}

/// How many peers the node at `addr` names in its ROUTE_LIST (a fresh connection).
pub fn route_list_len(addr: SocketAddr) -> usize {
    RawConn::dial(addr).route_list_len()
}

/// Wait until `f` holds, polling every 100 ms, up to `secs`.
pub fn wait_for(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Every thread of `pid` is stopped (state `T` in `/proc/PID/task/*/stat`).
fn all_threads_stopped(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().all(|task| {
        std::fs::read_to_string(task.path().join("stat")).is_ok_and(|stat| {
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next())
                .is_some_and(|state| state == "T" || state == "t")
        })
    })
}

/// Two nodes, node 1 serving group 1 and node 2 group 2, joined, and a client connected to
/// both.
pub fn two_groups(dir: &Path) -> (Vec<ClusterNode>, elliptics::client::Node) {
    let port = free_port();
    let mut nodes = vec![
        ClusterNode::new(dir, 1, port, &[(1, 1)]),
        ClusterNode::new(dir, 2, port, &[(1, 2)]),
    ];
    mesh(&mut nodes);
    for n in nodes.iter_mut() {
        n.start();
    }
    let client = elliptics::client::Node::new(elliptics::client::ClientConfig::default());
    client.add_remotes(&[&nodes[0].remote()]).expect("connect");
    wait_for(20, "both nodes", || client.connections().len() == 2);
    (nodes, client)
}

/// SEND `keys` from group 1 to group 2 through `raw` with `iflags` and a timeout of
/// `timeout_s` seconds: each key's id and status (from its iterator response), and the
/// final status (-5 when no frame came).
pub fn server_send(
    raw: &mut RawConn,
    keys: &[&str],
    iflags: u64,
    timeout_s: i32,
) -> (Vec<(RawId, i32)>, i32) {
    use elliptics::protocol::{cmd_flags, command, CmdHeader, IteratorResponse, ServerSendRequest};
    let req = ServerSendRequest {
        timeout: timeout_s,
        iflags,
        ids: keys.iter().map(|k| RawId::from_key(k.as_bytes())).collect(),
        groups: vec![2],
    };
    let h = CmdHeader {
        cmd: command::SEND,
        group_id: 1,
        flags: cmd_flags::NEED_ACK,
        ..CmdHeader::default()
    };
    let frames = raw.exchange(h, &req.encode());
    let per_key = frames
        .iter()
        .filter_map(|(_, p)| IteratorResponse::decode_with_data(p).ok())
        .map(|(r, _)| (r.key, r.status))
        .collect();
    (per_key, frames.last().map_or(-5, |(h, _)| h.status))
}
