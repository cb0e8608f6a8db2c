//! The closed-loop event loop: one thread, mio (epoll, edge-triggered), every connection
//! non-blocking. A *client* is one connection to each node plus `pipeline` request slots;
//! a slot holds one logical operation, which may fan out to several groups. Replies are
//! matched by `trans = slot | seq << 16`; a slot completes when every part got its final
//! reply (no MORE) and immediately sends its next request. One clock read per loop turn
//! stamps every send and completion of that turn.

use super::handshake::NodeInfo;
use super::report::{Recorder, Report};
use super::{
    handshake, BenchConfig, BenchError, IntervalLog, KeySpace, Ledger, Op, RequestTemplates, Rng,
};
use crate::protocol::{cmd_flags, errno, split_frame, HEADER_SIZE_BYTES};
use crate::routing::Routes;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use std::io::{ErrorKind, Read, Write};
use std::time::{Duration, Instant};

/// Receive buffer per connection at start; it grows only for a frame larger than this.
const RECV_BUFFER_BYTES: usize = 256 << 10;
/// Largest reply frame accepted (largest value plus headers).
const REPLY_MAX_BYTES: u64 = (64 << 20) + 4096;
/// Most requests in flight per connection (trans keeps the slot in 16 bits).
pub const PIPELINE_MAX: usize = 4096;

struct Conn {
    stream: TcpStream,
    out: Vec<u8>,
    out_pos: usize,
    inbuf: Vec<u8>,
    in_len: usize,
}

#[derive(Clone, Copy)]
struct Slot {
    op: Op,
    /// The key and, for a WRITE, its value size class.
    key: usize,
    size_class: usize,
    start: Instant,
    seq: u64,
    pending: u32,
    status: i32,
    active: bool,
    measured: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Fill,
    Warmup,
    Measure,
    Drain,
}

/// Per-key route of one group: (node index, backend id).
type KeyRoutes = Vec<(usize, i32)>;

struct Driver {
    config: BenchConfig,
    keys: KeySpace,
    templates: Vec<RequestTemplates>,
    routes: Vec<KeyRoutes>,
    nodes: usize,
    conns: Vec<Conn>,
    slots: Vec<Vec<Slot>>,
    client_alive: Vec<bool>,
    dirty: Vec<usize>,
    replies: Vec<(u64, i32)>,
    rng: Rng,
    group_turn: usize,
    now: Instant,
    phase: Phase,
    fill_next: usize,
    fill_done: u64,
    fill_errors: u64,
    measured_issued: u64,
    rec: Recorder,
    /// Value sizes of the WRITE classes (one without `value_size_max_bytes`).
    write_sizes: Vec<usize>,
    ledger: Ledger,
    intervals: Option<IntervalLog>,
}

/// Connect every client to every node (handshake, then non-blocking under `poll`); the
/// connections, client-major, and what each node announced.
fn connect_all(
    config: &BenchConfig,
    poll: &Poll,
) -> Result<(Vec<Conn>, Vec<NodeInfo>), BenchError> {
    let mut conns = Vec::new();
    let mut node_infos = Vec::new();
    for client in 0..config.connections {
        for (n, addr) in config.remotes.iter().enumerate() {
            let (stream, info) = handshake(*addr, config.connect_timeout_ms)?;
            if client == 0 {
                node_infos.push(info);
            }
            stream.set_nonblocking(true)?;
            let mut stream = TcpStream::from_std(stream);
            let token = Token(client * config.remotes.len() + n);
            poll.registry().register(
                &mut stream,
                token,
                Interest::READABLE | Interest::WRITABLE,
            )?;
            // A non-zero fill writes every page now (calloc'd zeros would fault mid-run).
            let inbuf = vec![0xA5u8; RECV_BUFFER_BYTES];
            conns.push(Conn {
                stream,
                out: Vec::with_capacity(RECV_BUFFER_BYTES),
                out_pos: 0,
                inbuf,
                in_len: 0,
            });
        }
    }
    Ok((conns, node_infos))
}

/// The owner (node, backend) of every key in every group, from the nodes' ring points.
fn route_keys(
    config: &BenchConfig,
    keys: &KeySpace,
    node_infos: &[NodeInfo],
) -> Result<Vec<KeyRoutes>, BenchError> {
    let mut table: Routes<(usize, i32)> = Routes::new();
    for (n, info) in node_infos.iter().enumerate() {
        for (group, backend, ids) in &info.backends {
            // Points already present stay with their first owner, as Elliptics does.
            let _ = table.insert_points(*group, ids, (n, *backend));
        }
    }
    let mut routes = Vec::with_capacity(config.groups.len());
    for group in &config.groups {
        let per_key: Result<KeyRoutes, _> = (0..keys.len())
            .map(|k| table.owner(*group, keys.id(k)).copied())
            .collect();
        routes.push(per_key.map_err(|_| BenchError::NoRoute { group: *group })?);
    }
    Ok(routes)
}

/// Run a benchmark to completion and report.
pub fn run(config: BenchConfig) -> Result<Report, BenchError> {
    if config.remotes.is_empty() || config.groups.is_empty() {
        return Err(BenchError::Config(
            "need at least one remote and one group".into(),
        ));
    }
    if config.connections == 0 || !(1..=PIPELINE_MAX).contains(&config.pipeline) {
        return Err(BenchError::Config(format!(
            "connections must be >= 1 and pipeline 1..={PIPELINE_MAX}"
        )));
    }
    let keys = KeySpace::new(&config.key_prefix, config.keyspace, config.distribution)?;
    let poll = Poll::new()?;
    let (conns, node_infos) = connect_all(&config, &poll)?;
    let routes = route_keys(&config, &keys, &node_infos)?;
    let templates = config
        .remotes
        .iter()
        .map(|a| RequestTemplates::new(&config, *a))
        .collect::<Result<Vec<_>, _>>()?;
    let now = Instant::now();
    let idle = Slot {
        op: Op::Write,
        key: 0,
        size_class: 0,
        start: now,
        seq: 0,
        pending: 0,
        status: 0,
        active: false,
        measured: false,
    };
    let write_sizes: Vec<usize> = templates
        .first()
        .map(|t| t.write_sizes().collect())
        .unwrap_or_default();
    let intervals = config.interval_ms.map(|ms| {
        IntervalLog::new(
            Duration::from_millis(ms.max(1)),
            config.server_pid,
            config.server_data_dir.clone(),
        )
    });
    let driver = Driver {
        ledger: Ledger::new(keys.len()),
        write_sizes,
        intervals,
        rng: Rng::new(config.seed),
        slots: vec![vec![idle; config.pipeline]; config.connections],
        client_alive: vec![true; config.connections],
        nodes: config.remotes.len(),
        rec: Recorder::new(&config, node_infos.first().map_or(0, |i| i.shard_count)),
        config,
        keys,
        templates,
        routes,
        conns,
        dirty: Vec::new(),
        replies: Vec::new(),
        group_turn: 0,
        now,
        phase: Phase::Fill,
        fill_next: 0,
        fill_done: 0,
        fill_errors: 0,
        measured_issued: 0,
    };
    driver.event_loop(poll)
}

impl Driver {
    fn event_loop(mut self, mut poll: Poll) -> Result<Report, BenchError> {
        let mut events = Events::with_capacity(1024);
        if !self.config.fill {
            self.enter(Phase::Warmup);
        }
        self.kick_idle_slots();
        self.flush_dirty();
        let mut phase_end = self.now + Duration::from_millis(self.config.warmup_ms);
        loop {
            poll.poll(&mut events, Some(Duration::from_millis(5)))?;
            self.now = Instant::now();
            for ev in events.iter() {
                let c = ev.token().0;
                if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                    self.read_conn(c);
                }
                if ev.is_writable() {
                    self.dirty.push(c);
                }
            }
            self.flush_dirty();
            if !self.client_alive.iter().any(|a| *a) {
                break;
            }
            match self.phase {
                Phase::Fill if self.fill_done >= self.keys.len() as u64 => {
                    self.enter(Phase::Warmup);
                    phase_end = self.now + Duration::from_millis(self.config.warmup_ms);
                    self.kick_idle_slots();
                    self.flush_dirty();
                }
                Phase::Warmup if self.now >= phase_end => {
                    self.enter(Phase::Measure);
                    phase_end = self.now + Duration::from_millis(self.config.duration_ms);
                }
                Phase::Measure if self.now >= phase_end => {
                    self.timeout_unfinished();
                    break;
                }
                Phase::Drain if self.now >= phase_end => {
                    self.timeout_unfinished();
                    break;
                }
                Phase::Drain if self.rec.completed() >= self.measured_issued => break,
                _ => {}
            }
            self.print_interval();
        }
        self.rec.stop(self.now);
        Ok(self.rec.report(self.fill_done, self.fill_errors))
    }

    fn enter(&mut self, phase: Phase) {
        self.phase = phase;
        if phase == Phase::Measure {
            self.rec.start(self.now);
            if let Some(log) = self.intervals.as_mut() {
                log.start(self.now);
            }
        }
    }

    /// Print the interval that just ended, if one did (one JSON line on stdout).
    fn print_interval(&mut self) {
        let Some(log) = self.intervals.as_mut() else {
            return;
        };
        if let Some(line) = log.tick(self.now, &self.ledger) {
            if let Ok(text) = serde_json::to_string(&line) {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{text}");
                let _ = out.flush();
            }
        }
    }

    fn kick_idle_slots(&mut self) {
        for client in 0..self.slots.len() {
            for slot in 0..self.slots[client].len() {
                if self.client_alive[client] && !self.slots[client][slot].active {
                    self.issue(client, slot);
                }
            }
        }
    }

    /// Send the next operation on (client, slot), if the phase wants one.
    fn issue(&mut self, client: usize, slot: usize) {
        let (op, key) = match self.phase {
            Phase::Fill => {
                if self.fill_next >= self.keys.len() {
                    return;
                }
                self.fill_next += 1;
                (Op::Write, self.fill_next - 1)
            }
            Phase::Warmup | Phase::Measure => {
                if self.phase == Phase::Measure {
                    if let Some(limit) = self.config.requests {
                        if self.measured_issued >= limit {
                            self.phase = Phase::Drain;
                            return;
                        }
                    }
                    self.measured_issued += 1;
                }
                (
                    self.config.mix.sample(&mut self.rng),
                    self.keys.sample(&mut self.rng),
                )
            }
            Phase::Drain => return,
        };
        let s = &mut self.slots[client][slot];
        s.seq = s.seq.wrapping_add(1) & 0xFFFF_FFFF_FFFF;
        let trans = slot as u64 | (s.seq << 16);
        let size_class = if op == Op::Write && self.write_sizes.len() > 1 {
            self.rng.below(self.write_sizes.len() as u64) as usize
        } else {
            0
        };
        *s = Slot {
            op,
            key,
            size_class,
            start: self.now,
            seq: s.seq,
            pending: 0,
            status: 0,
            active: true,
            measured: self.phase == Phase::Measure,
        };
        let id = *self.keys.id(key);
        let groups = if op.to_all_groups() {
            0..self.config.groups.len()
        } else {
            self.group_turn = (self.group_turn + 1) % self.config.groups.len();
            self.group_turn..self.group_turn + 1
        };
        for g in groups {
            let (node, backend) = self.routes[g][key];
            let c = client * self.nodes + node;
            let (t, out, group) = (
                &self.templates[node],
                &mut self.conns[c].out,
                self.config.groups[g],
            );
            if op == Op::Write {
                t.append_write(size_class, &id, group, backend, trans, out);
            } else {
                t.append(op, &id, group, backend, trans, out);
            }
            self.slots[client][slot].pending += 1;
            self.dirty.push(c);
        }
    }

    fn read_conn(&mut self, c: usize) {
        let mut replies = std::mem::take(&mut self.replies);
        let mut broken = false;
        let conn = &mut self.conns[c];
        loop {
            if conn.in_len == conn.inbuf.len() {
                // Only a frame larger than the buffer gets here: grow to fit it.
                let need = match split_frame(&conn.inbuf[..conn.in_len], REPLY_MAX_BYTES) {
                    Err(crate::protocol::DecodeError::Incomplete { needed }) => needed,
                    _ => {
                        broken = true;
                        break;
                    }
                };
                let new_len = conn.in_len + need.max(HEADER_SIZE_BYTES);
                conn.inbuf.resize(new_len, 0);
            }
            match conn.stream.read(&mut conn.inbuf[conn.in_len..]) {
                Ok(0) => {
                    broken = true;
                    break;
                }
                Ok(n) => {
                    conn.in_len += n;
                    let mut used = 0;
                    loop {
                        match split_frame(&conn.inbuf[used..conn.in_len], REPLY_MAX_BYTES) {
                            Ok((frame, len)) => {
                                used += len;
                                let h = frame.header;
                                if h.is_reply() && h.flags & cmd_flags::MORE == 0 {
                                    replies.push((h.trans, h.status));
                                }
                            }
                            Err(crate::protocol::DecodeError::Incomplete { .. }) => break,
                            Err(_) => {
                                broken = true;
                                break;
                            }
                        }
                    }
                    conn.inbuf.copy_within(used..conn.in_len, 0);
                    conn.in_len -= used;
                    if broken {
                        break;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => {
                    broken = true;
                    break;
                }
            }
        }
        let client = c / self.nodes;
        for (trans, status) in replies.drain(..) {
            self.part_done(client, trans, status);
        }
        self.replies = replies;
        if broken {
            self.fail_client(client, errno::ECONNRESET);
        }
    }

    fn part_done(&mut self, client: usize, trans: u64, status: i32) {
        let slot = (trans & 0xFFFF) as usize;
        let Some(s) = self.slots[client].get_mut(slot) else {
            return;
        };
        if !s.active || s.seq != trans >> 16 || s.pending == 0 {
            return;
        }
        s.pending -= 1;
        if s.status == 0 {
            s.status = status;
        }
        if s.pending > 0 {
            return;
        }
        s.active = false;
        let done = *s;
        self.finish(done);
        if self.client_alive[client] {
            self.issue(client, slot);
        }
    }

    fn finish(&mut self, s: Slot) {
        match s.op {
            Op::Write => {
                let size = self.write_sizes.get(s.size_class).copied().unwrap_or(0);
                self.ledger.written(s.key, size, s.status);
            }
            Op::Remove => self.ledger.removed(s.key, s.status),
            _ => {}
        }
        if s.measured {
            let latency_ns = self.now.saturating_duration_since(s.start).as_nanos();
            let latency_ns = u64::try_from(latency_ns).unwrap_or(u64::MAX);
            self.rec.record(s.op, latency_ns, s.status);
            if let Some(log) = self.intervals.as_mut() {
                log.record(latency_ns, s.status);
            }
        } else if self.phase == Phase::Fill {
            self.fill_done += 1;
            if s.status != 0 {
                self.fill_errors += 1;
            }
        }
    }

    fn fail_client(&mut self, client: usize, status: i32) {
        self.client_alive[client] = false;
        for slot in 0..self.slots[client].len() {
            let s = &mut self.slots[client][slot];
            if s.active {
                s.active = false;
                s.status = status;
                let done = *s;
                self.finish(done);
            }
        }
    }

    fn timeout_unfinished(&mut self) {
        if self.config.requests.is_none() {
            return; // a timed run simply stops; in-flight requests are not counted
        }
        for client in 0..self.slots.len() {
            if self.client_alive[client] {
                self.fail_client(client, errno::ETIMEDOUT);
            }
        }
    }

    fn flush_dirty(&mut self) {
        let mut dirty = std::mem::take(&mut self.dirty);
        dirty.sort_unstable();
        dirty.dedup();
        for c in dirty.drain(..) {
            let conn = &mut self.conns[c];
            let mut broken = false;
            while conn.out_pos < conn.out.len() {
                match conn.stream.write(&conn.out[conn.out_pos..]) {
                    Ok(0) => {
                        broken = true;
                        break;
                    }
                    Ok(n) => conn.out_pos += n,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(_) => {
                        broken = true;
                        break;
                    }
                }
            }
            if conn.out_pos == conn.out.len() {
                conn.out.clear();
                conn.out_pos = 0;
            }
            if broken {
                self.fail_client(c / self.nodes, errno::ECONNRESET);
            }
        }
        self.dirty = dirty;
    }
}
