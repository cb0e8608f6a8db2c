//! Shared test helper: start a real `dnet_ioserv` from a generated ioserv.json in a temp
//! directory on a free 127.0.0.1 port, wait until it accepts connections, and kill it on
//! drop. Use from an integration test with `mod common;`.
//!
//! One config renderer ([`render_config`], every string JSON-escaped) and one process
//! handling serve both the single-node [`TestNode`] and the cluster's
//! [`cluster::ClusterNode`]; [`raw::RawConn`] is the one raw client, [`session`] and
//! [`ioclient`] the one way to reach a node through the library and the tool.

#![allow(dead_code)]

pub mod capture;
pub mod cluster;
pub mod kv;
pub mod large;
pub mod raw;
pub mod replay;

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a node may take to start listening.
pub const NODE_START_TIMEOUT_MS: u64 = 15_000;

/// What to put in the generated config.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    /// One backend per entry: (backend_id, group).
    pub backends: Vec<(u32, u32)>,
    /// Peers to JOIN ("host:port:family").
    pub remotes: Vec<String>,
    /// Path of an srw.json, when exec should work.
    pub srw_config: Option<PathBuf>,
    pub wait_timeout_s: u64,
    pub check_timeout_s: u64,
    /// Extra `options` keys as raw JSON members, e.g. `"\"cache\": {\"size\": 1048576}"`.
    pub extra_options: Vec<String>,
    /// Per-backend `blob_size` / `records_in_blob`, as strings (`records_in_blob` and
    /// `blob_flags` are left out when empty).
    pub blob_size: String,
    pub records_in_blob: String,
    /// `sync` of every backend: 0 = each write is durable before its reply.
    pub sync_s: u32,
    /// `blob_flags` of every backend ("158" has NO_FOOTER, bit 3: no data checksums).
    pub blob_flags: String,
    /// Where the `eblob-<id>` data directories go; `None` = the node's temp directory.
    pub data_root: Option<PathBuf>,
    /// Extra keys of every backend as raw JSON members, e.g. `"\"defrag_timeout\": 1"`.
    pub backend_extra: Vec<String>,
    /// The loopback address the node listens on.
    pub host: String,
    /// `auth_cookie`: nodes JOIN only peers with the same one.
    pub auth_cookie: String,
}

impl Default for NodeSpec {
    fn default() -> Self {
        NodeSpec {
            backends: vec![(1, 1)],
            remotes: Vec::new(),
            srw_config: None,
            wait_timeout_s: 5,
            check_timeout_s: 20,
            extra_options: Vec::new(),
            blob_size: "10M".into(),
            records_in_blob: "1000000".into(),
            sync_s: 0,
            blob_flags: "158".into(),
            data_root: None,
            backend_extra: Vec::new(),
            host: "127.0.0.1".into(),
            auth_cookie: "test-cookie".into(),
        }
    }
}

/// A running node; killed when dropped.
#[derive(Debug)]
pub struct TestNode {
    pub port: u16,
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
    child: Option<Child>,
    /// "listening on" lines in the log before the current process started.
    listening_seen: usize,
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).expect("json string")
}

/// The ioserv.json text for `spec` with data under `dir`.
pub fn render_config(spec: &NodeSpec, dir: &Path, port: u16) -> String {
    let backends: Vec<String> = spec
        .backends
        .iter()
        .map(|(id, group)| {
            let history = dir.join(format!("history-{id}"));
            let data = spec
                .data_root
                .as_deref()
                .unwrap_or(dir)
                .join(format!("eblob-{id}"));
            std::fs::create_dir_all(&history).expect("history dir");
            std::fs::create_dir_all(&data).expect("data dir");
            // An empty string leaves the key out (the node's default applies).
            let optional = [
                ("blob_flags", &spec.blob_flags),
                ("records_in_blob", &spec.records_in_blob),
            ]
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| format!(", \"{k}\": {}", json_str(v)))
            .collect::<String>();
            format!(
                r#"{{"backend_id": {id}, "type": "blob", "group": {group}, "history": {h}, "data": {d}, "sync": {sync}, "blob_size": {bs}{optional}{extra}}}"#,
                h = json_str(&history.display().to_string()),
                d = json_str(&data.join("data").display().to_string()),
                sync = spec.sync_s,
                bs = json_str(&spec.blob_size),
                extra = spec
                    .backend_extra
                    .iter()
                    .map(|m| format!(", {m}"))
                    .collect::<String>(),
            )
        })
        .collect();
    let remotes: Vec<String> = spec.remotes.iter().map(|r| json_str(r)).collect();
    let mut options = vec![
        "\"join\": true".to_string(),
        "\"flags\": 4".to_string(),
        format!("\"remote\": [{}]", remotes.join(", ")),
        format!(
            "\"address\": [{}]",
            json_str(&format!("{}:{port}:2-0", spec.host))
        ),
        format!("\"wait_timeout\": {}", spec.wait_timeout_s),
        format!("\"check_timeout\": {}", spec.check_timeout_s),
        "\"io_thread_num\": 2".to_string(),
        "\"nonblocking_io_thread_num\": 2".to_string(),
        "\"net_thread_num\": 1".to_string(),
        format!("\"auth_cookie\": {}", json_str(&spec.auth_cookie)),
    ];
    if let Some(srw) = &spec.srw_config {
        options.push(format!(
            "\"srw_config\": {}",
            json_str(&srw.display().to_string())
        ));
    }
    options.extend(spec.extra_options.iter().cloned());
    let log = dir.join("ioserv.log");
    format!(
        r#"{{"logger": {{"level": "info", "frontends": [{{"formatter": {{"type": "string", "pattern": "%(message)s"}}, "sink": {{"type": "files", "path": {log}, "autoflush": true}}}}]}},
 "options": {{{options}}},
 "backends": [{backends}]}}"#,
        log = json_str(&log.display().to_string()),
        options = options.join(", "),
        backends = backends.join(", "),
    )
}

impl TestNode {
    /// A node with one backend per group (backend ids 1, 2, …).
    pub fn start(groups: &[u32]) -> TestNode {
        let backends = groups
            .iter()
            .enumerate()
            .map(|(i, g)| (i as u32 + 1, *g))
            .collect();
        TestNode::start_with(NodeSpec {
            backends,
            ..NodeSpec::default()
        })
    }

    /// Start a node from `spec` and wait until it accepts connections.
    pub fn start_with(spec: NodeSpec) -> TestNode {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let config_path = dir.path().join("ioserv.json");
        std::fs::write(&config_path, render_config(&spec, dir.path(), port)).expect("write config");
        let mut node = TestNode {
            port,
            dir,
            config_path,
            child: None,
            listening_seen: 0,
        };
        node.spawn();
        node.wait_until_accepting();
        node
    }

    fn spawn(&mut self) {
        self.listening_seen = self.log().matches("listening on").count();
        self.child = Some(spawn_ioserv(&self.config_path, self.dir.path()));
    }

    /// Start the node again on the same config, data and port (after `kill` or an exit).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
        self.wait_until_accepting();
    }

    /// The node's process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Send `signal` to the node process.
    pub fn signal(&self, signal: i32) {
        if let Some(pid) = self.pid() {
            // Our own child, not yet reaped: the pid cannot name another process.
            let rc = send_signal(pid, signal);
            assert_eq!(rc, 0, "kill({pid}, {signal}) failed");
        }
    }

    /// Wait up to `timeout_ms` for the node to exit; its status, or `None` if still running.
    pub fn wait_exit(&mut self, timeout_ms: u64) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + Duration::from_millis(timeout_ms);
        loop {
            let child = self.child.as_mut()?;
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the node process is still running.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    fn wait_until_accepting(&mut self) {
        let (addr, log) = (self.addr(), self.dir.path().join("ioserv.log"));
        wait_until_accepting(&mut self.child, addr, &log, self.listening_seen);
    }

    /// "127.0.0.1:<port>:2", the form `-r` and `add_remotes` take.
    pub fn remote(&self) -> String {
        format!("127.0.0.1:{}:2", self.port)
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// The node's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("ioserv.log")).unwrap_or_default()
    }

    /// Kill the node now (SIGKILL) and reap it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Start `dnet_ioserv -c config` in `dir` (stderr kept for a start-up failure).
pub fn spawn_ioserv(config: &Path, dir: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_dnet_ioserv"))
        // The harness reads the node's info log; a caller's filter must not hide it.
        .env_remove("ELLIPTICS_LOG")
        .arg("-c")
        .arg(config)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn dnet_ioserv")
}

/// Wait until the node logs one more "listening on" line than `listening_seen` and `addr`
/// accepts; panics with its stderr and log when it exits first or takes too long.
pub fn wait_until_accepting(
    child: &mut Option<Child>,
    addr: SocketAddr,
    log: &Path,
    listening_seen: usize,
) {
    let read_log = || std::fs::read_to_string(log).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_millis(NODE_START_TIMEOUT_MS);
    loop {
        // A connect alone is not proof: a killed predecessor's listener can linger on the
        // port for a moment. The node's own "listening on" line is.
        let listening = read_log().matches("listening on").count() > listening_seen;
        if listening && TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return;
        }
        if let Some(c) = child.as_mut() {
            if let Ok(Some(status)) = c.try_wait() {
                let mut err = String::new();
                if let Some(mut e) = c.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                panic!(
                    "dnet_ioserv exited with {status} before listening:\n{err}\n{}",
                    read_log()
                );
            }
        }
        assert!(
            Instant::now() < deadline,
            "dnet_ioserv did not accept on {addr} within {NODE_START_TIMEOUT_MS} ms\n{}",
            read_log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Signal `pid` through the `kill` command, so tests need no `unsafe`.
fn send_signal(pid: u32, signal: i32) -> i32 {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    if status.success() {
        0
    } else {
        -1
    }
}

/// A node a client can be pointed at: its "host:port:family" remote and data directory.
pub trait NodeHandle {
    fn remote(&self) -> String;
    fn dir(&self) -> &Path;
}

impl NodeHandle for TestNode {
    fn remote(&self) -> String {
        TestNode::remote(self)
    }
    fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// A client session on `node` over `groups`.
pub fn session(node: &impl NodeHandle, groups: &[u32]) -> elliptics::client::Session {
    let client = elliptics::client::Node::new(elliptics::client::ClientConfig::default());
    client
        .add_remotes(&[&node.remote()])
        .expect("connect to the node");
    let mut s = elliptics::client::Session::new(&client);
    s.set_groups(groups);
    s
}

/// A client session on `node` over `groups` whose requests time out after `timeout_s`.
pub fn session_with_timeout(
    node: &impl NodeHandle,
    groups: &[u32],
    timeout_s: u64,
) -> elliptics::client::Session {
    let mut s = session(node, groups);
    s.set_timeout(timeout_s);
    s
}

/// Run `dnet_ioclient -r NODE -g 1 -w 5 ARGS...` in the node's directory.
pub fn ioclient(node: &impl NodeHandle, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_dnet_ioclient"))
        .current_dir(node.dir())
        .args(["-r", &node.remote(), "-g", "1", "-w", "5"])
        .args(args)
        .output()
        .expect("run dnet_ioclient")
}

impl Drop for TestNode {
    fn drop(&mut self) {
        self.kill();
    }
}
