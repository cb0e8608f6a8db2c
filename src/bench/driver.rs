//! The closed-loop event loop: one thread, mio (epoll, edge-triggered), every connection
//! non-blocking. A *client* is one connection to each node plus `pipeline` request slots;
//! a slot holds one logical operation, which may fan out to several groups. Replies are
//! matched by `trans = slot | seq << 16`; a slot completes when every part got its final
//! reply (no MORE) and immediately sends its next request. One clock read per loop turn
//! stamps every send and completion of that turn.

mod slots;
mod wire;

use super::handshake::NodeInfo;
use super::report::{Recorder, Report};
use super::{
    handshake, BenchConfig, BenchError, IntervalLog, KeySpace, Ledger, Op, RequestTemplates, Rng,
};
use crate::routing::Routes;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use std::io::Write;
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
}
