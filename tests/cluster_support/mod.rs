//! Shared by the cluster and recovery tests: start real `dnet_ioserv` processes on
//! 127.0.0.1, .2, .3, ... (one port, one loopback address each) that JOIN each other, and
//! talk raw protocol to one chosen node (DIRECT requests).

#![allow(dead_code)]

use elliptics::key::RawId;
use elliptics::protocol::{
    check_reverse_lookup_reply, cmd_flags, command, reverse_lookup_request, split_frame, CmdHeader,
    IoAttr,
};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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

/// A port free on 127.0.0.1 a moment ago (the other loopback addresses share it).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

impl ClusterNode {
    pub fn new(dir: &std::path::Path, n: u8, port: u16, backends: &[(u32, u32)]) -> ClusterNode {
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

    fn config(&self) -> String {
        let backends: Vec<String> = self
            .backends
            .iter()
            .map(|(id, group)| {
                let h = self.dir.join(format!("history-{id}"));
                let d = self.dir.join(format!("eblob-{id}"));
                std::fs::create_dir_all(&h).expect("history");
                std::fs::create_dir_all(&d).expect("data");
                format!(
                    r#"{{"backend_id": {id}, "type": "blob", "group": {group}, "history": "{}", "data": "{}/data", "sync": 0, "blob_size": "50M"}}"#,
                    h.display(),
                    d.display()
                )
            })
            .collect();
        let remotes: Vec<String> = self.remotes.iter().map(|r| format!("\"{r}\"")).collect();
        format!(
            r#"{{"logger": {{"level": "info", "frontends": [{{"sink": {{"type": "files", "path": "{}/ioserv.log", "autoflush": true}}}}]}},
 "options": {{"join": true, "flags": 4, "remote": [{}], "address": ["{}-0"], "wait_timeout": 2, "check_timeout": {}, "auth_cookie": "{}", "shard_count": 2}},
 "backends": [{}]}}"#,
            self.dir.display(),
            remotes.join(", "),
            self.remote(),
            self.check_timeout_s,
            self.cookie,
            backends.join(", ")
        )
    }

    /// Start (or restart) the process and wait until it accepts.
    pub fn start(&mut self) {
        let path = self.dir.join("ioserv.json");
        std::fs::write(&path, self.config()).expect("config");
        let child = Command::new(env!("CARGO_BIN_EXE_dnet_ioserv"))
            // The harness reads the node's info log; a caller's filter must not hide it.
            .env_remove("ELLIPTICS_LOG")
            .arg("-c")
            .arg(&path)
            .current_dir(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn dnet_ioserv");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect_timeout(&self.addr(), Duration::from_millis(200)).is_err() {
            assert!(
                Instant::now() < deadline,
                "node {} did not start:\n{}",
                self.host,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
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

/// Every node lists every other as a remote.
pub fn mesh(nodes: &mut [ClusterNode]) {
    let all: Vec<String> = nodes.iter().map(ClusterNode::remote).collect();
    for n in nodes.iter_mut() {
        let me = n.remote();
        n.remotes = all.iter().filter(|r| **r != me).cloned().collect();
    }
}

/// A raw connection to one node, after the REVERSE_LOOKUP handshake.
pub struct Raw {
    stream: TcpStream,
    trans: u64,
    buf: Vec<u8>,
}

impl Raw {
    pub fn connect(addr: SocketAddr) -> Raw {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut raw = Raw {
            stream,
            trans: 0,
            buf: Vec::new(),
        };
        let hs = reverse_lookup_request(10);
        raw.stream.write_all(&hs.encode()).expect("handshake");
        let (h, _) = raw.frame();
        check_reverse_lookup_reply(&h, 10).expect("handshake accepted");
        raw
    }

    fn frame(&mut self) -> (CmdHeader, Vec<u8>) {
        loop {
            if let Ok((f, used)) = split_frame(&self.buf, 1 << 30) {
                let out = (f.header, f.payload.to_vec());
                self.buf.drain(..used);
                return out;
            }
            let mut chunk = [0u8; 65536];
            let n = self.stream.read(&mut chunk).expect("read");
            assert!(n > 0, "connection closed");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Send one request without waiting; its trans.
    pub fn send(&mut self, mut h: CmdHeader, payload: &[u8]) -> u64 {
        self.trans += 1;
        h.trans = self.trans;
        h.size = payload.len() as u64;
        let mut bytes = h.encode().to_vec();
        bytes.extend_from_slice(payload);
        self.stream.write_all(&bytes).expect("send");
        self.trans
    }

    /// The next frame, or `None` when nothing arrives within `wait`.
    pub fn next_within(&mut self, wait: Duration) -> Option<(CmdHeader, Vec<u8>)> {
        if let Ok((f, used)) = split_frame(&self.buf, 1 << 30) {
            let out = (f.header, f.payload.to_vec());
            self.buf.drain(..used);
            return Some(out);
        }
        self.stream.set_read_timeout(Some(wait)).expect("timeout");
        let mut chunk = [0u8; 65536];
        let got = self.stream.read(&mut chunk);
        self.stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        match got {
            Ok(n) if n > 0 => {
                self.buf.extend_from_slice(&chunk[..n]);
                Some(self.frame())
            }
            _ => None,
        }
    }

    /// The next frame, waiting up to the connection's read timeout.
    pub fn next_frame(&mut self) -> (CmdHeader, Vec<u8>) {
        self.frame()
    }

    /// Send one request and collect every reply up to the final one.
    /// How many peers the node's ROUTE_LIST names.
    pub fn route_list_len(&mut self) -> usize {
        let h = CmdHeader {
            cmd: command::ROUTE_LIST,
            flags: cmd_flags::NEED_ACK | cmd_flags::DIRECT | cmd_flags::NOLOCK,
            ..CmdHeader::default()
        };
        self.request(h, &[])
            .iter()
            .filter_map(|(_, p)| elliptics::protocol::AddrContainer::decode(p).ok())
            .map(|c| c.addrs.len())
            .sum()
    }

    pub fn request(&mut self, mut h: CmdHeader, payload: &[u8]) -> Vec<(CmdHeader, Vec<u8>)> {
        self.trans += 1;
        h.trans = self.trans;
        h.size = payload.len() as u64;
        let mut bytes = h.encode().to_vec();
        bytes.extend_from_slice(payload);
        self.stream.write_all(&bytes).expect("send");
        let mut out = Vec::new();
        loop {
            let (rh, p) = self.frame();
            let last = rh.flags & cmd_flags::MORE == 0;
            out.push((rh, p));
            if last {
                return out;
            }
        }
    }

    /// LOOKUP `id` in `group` with extra `flags`; the final status.
    pub fn lookup(&mut self, id: RawId, group: u32, flags: u64) -> i32 {
        let h = CmdHeader {
            id,
            group_id: group,
            cmd: command::LOOKUP,
            flags: cmd_flags::NEED_ACK | flags,
            ..CmdHeader::default()
        };
        let replies = self.request(h, &[]);
        replies
            .iter()
            .map(|(h, _)| h.status)
            .find(|s| *s != 0)
            .unwrap_or(0)
    }

    /// READ `id` in `group` (not DIRECT); the status and the data.
    pub fn read(&mut self, id: RawId, group: u32) -> (i32, Vec<u8>) {
        let h = CmdHeader {
            id,
            group_id: group,
            cmd: command::READ,
            flags: cmd_flags::NEED_ACK,
            ..CmdHeader::default()
        };
        let io = IoAttr {
            id,
            parent: id,
            ..IoAttr::default()
        };
        let replies = self.request(h, &io.encode());
        for (h, p) in &replies {
            if h.status != 0 {
                return (h.status, Vec::new());
            }
            if let Ok((_, data)) = IoAttr::decode_with_data(p) {
                return (0, data.to_vec());
            }
        }
        (-5, Vec::new())
    }
}

/// Wait until `f` holds, polling every 100 ms, up to `secs`.
/// How many peers the node at `addr` names in its ROUTE_LIST (a fresh connection).
pub fn route_list_len(addr: SocketAddr) -> usize {
    Raw::connect(addr).route_list_len()
}

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
