//! What a run measured: per-operation latency histograms, successes, errors by errno,
//! CPU time of this process and optionally of the server, and the printed forms (a text
//! table and `--json`).

use super::{BenchConfig, Histogram, Op};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Instant;

/// Clock ticks per second of /proc/<pid>/stat times (USER_HZ, 100 on Linux).
const TICKS_PER_S: f64 = 100.0;

/// utime + stime of `pid` in clock ticks, all threads included.
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
    let rest = text.rsplit_once(')')?.1;
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// One operation's numbers.
#[derive(Debug, Clone, Serialize)]
pub struct OpReport {
    pub op: &'static str,
    pub ok: u64,
    pub errors: u64,
    pub ops_per_s: f64,
    pub mean_us: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
}

/// A whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub workload: String,
    pub remotes: Vec<String>,
    pub groups: Vec<u32>,
    /// `indexes_shard_count` from the node's handshake reply.
    pub node_indexes_shard_count: i32,
    pub value_size_bytes: usize,
    pub keyspace: u64,
    pub distribution: String,
    pub connections: usize,
    pub pipeline: usize,
    pub warmup_ms: u64,
    pub elapsed_s: f64,
    /// Successful operations.
    pub ok: u64,
    /// Failed operations.
    pub errors: u64,
    /// Successful operations per second.
    pub ops_per_s: f64,
    pub mean_us: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
    /// errno (negative, as on the wire) -> count.
    pub errors_by_errno: BTreeMap<i32, u64>,
    pub per_op: Vec<OpReport>,
    pub fill_writes: u64,
    pub fill_errors: u64,
    pub client_cpu_us_per_op: Option<f64>,
    pub server_cpu_us_per_op: Option<f64>,
}

/// Collects samples during the measured window.
#[derive(Debug)]
pub(crate) struct Recorder {
    hist: [Histogram; 5],
    errors: [u64; 5],
    by_errno: BTreeMap<i32, u64>,
    completed: u64,
    start: Option<Instant>,
    stop: Option<Instant>,
    cpu_start: Option<u64>,
    server_cpu_start: Option<u64>,
    cpu_used: Option<u64>,
    server_cpu_used: Option<u64>,
    template: Report,
    server_pid: Option<u32>,
}

fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

fn op_numbers(op: &'static str, h: &Histogram, errors: u64, secs: f64) -> OpReport {
    OpReport {
        op,
        ok: h.count(),
        errors,
        ops_per_s: if secs > 0.0 {
            h.count() as f64 / secs
        } else {
            0.0
        },
        mean_us: us(h.mean_ns()),
        p50_us: us(h.quantile_ns(0.50)),
        p99_us: us(h.quantile_ns(0.99)),
        p999_us: us(h.quantile_ns(0.999)),
        max_us: us(h.max_ns()),
    }
}

impl Recorder {
    pub(crate) fn new(config: &BenchConfig, node_indexes_shard_count: i32) -> Recorder {
        let ops: Vec<&str> = Op::ALL
            .iter()
            .filter(|o| config.mix.contains(**o))
            .map(|o| o.name())
            .collect();
        let template = Report {
            workload: ops.join("+"),
            remotes: config.remotes.iter().map(|a| a.to_string()).collect(),
            groups: config.groups.clone(),
            node_indexes_shard_count,
            value_size_bytes: config.value_size_bytes,
            keyspace: config.keyspace,
            distribution: match config.distribution {
                super::KeyDistribution::Uniform => "uniform".to_string(),
                super::KeyDistribution::Zipf { s } => format!("zipf({s})"),
            },
            connections: config.connections,
            pipeline: config.pipeline,
            warmup_ms: config.warmup_ms,
            elapsed_s: 0.0,
            ok: 0,
            errors: 0,
            ops_per_s: 0.0,
            mean_us: 0.0,
            p50_us: 0.0,
            p99_us: 0.0,
            p999_us: 0.0,
            max_us: 0.0,
            errors_by_errno: BTreeMap::new(),
            per_op: Vec::new(),
            fill_writes: 0,
            fill_errors: 0,
            client_cpu_us_per_op: None,
            server_cpu_us_per_op: None,
        };
        Recorder {
            hist: Default::default(),
            errors: [0; 5],
            by_errno: BTreeMap::new(),
            completed: 0,
            start: None,
            stop: None,
            cpu_start: None,
            server_cpu_start: None,
            cpu_used: None,
            server_cpu_used: None,
            template,
            server_pid: config.server_pid,
        }
    }

    pub(crate) fn start(&mut self, now: Instant) {
        self.start = Some(now);
        self.cpu_start = cpu_ticks(std::process::id());
        self.server_cpu_start = self.server_pid.and_then(cpu_ticks);
    }

    pub(crate) fn stop(&mut self, now: Instant) {
        if self.start.is_none() || self.stop.is_some() {
            return;
        }
        self.stop = Some(now);
        let used = |start: Option<u64>, end: Option<u64>| Some(end?.saturating_sub(start?));
        self.cpu_used = used(self.cpu_start, cpu_ticks(std::process::id()));
        self.server_cpu_used = used(self.server_cpu_start, self.server_pid.and_then(cpu_ticks));
    }

    /// Measured operations completed so far (ok or failed).
    pub(crate) fn completed(&self) -> u64 {
        self.completed
    }

    #[inline]
    pub(crate) fn record(&mut self, op: Op, latency_ns: u64, status: i32) {
        self.completed += 1;
        if status == 0 {
            self.hist[op.index()].record(latency_ns);
        } else {
            self.errors[op.index()] += 1;
            *self.by_errno.entry(status).or_insert(0) += 1;
        }
    }

    pub(crate) fn report(&self, fill_writes: u64, fill_errors: u64) -> Report {
        let secs = match (self.start, self.stop) {
            (Some(a), Some(b)) => b.saturating_duration_since(a).as_secs_f64(),
            _ => 0.0,
        };
        let mut all = Histogram::new();
        let mut per_op = Vec::new();
        for op in Op::ALL {
            let h = &self.hist[op.index()];
            let errors = self.errors[op.index()];
            if h.count() > 0 || errors > 0 {
                per_op.push(op_numbers(op.name(), h, errors, secs));
            }
            all.merge(h);
        }
        let total = op_numbers("all", &all, self.errors.iter().sum(), secs);
        let per_op_us = |ticks: Option<u64>| {
            let ticks = ticks?;
            (self.completed > 0).then(|| ticks as f64 / TICKS_PER_S * 1e6 / self.completed as f64)
        };
        Report {
            elapsed_s: secs,
            ok: total.ok,
            errors: total.errors,
            ops_per_s: total.ops_per_s,
            mean_us: total.mean_us,
            p50_us: total.p50_us,
            p99_us: total.p99_us,
            p999_us: total.p999_us,
            max_us: total.max_us,
            errors_by_errno: self.by_errno.clone(),
            per_op,
            fill_writes,
            fill_errors,
            client_cpu_us_per_op: per_op_us(self.cpu_used),
            server_cpu_us_per_op: per_op_us(self.server_cpu_used),
            ..self.template.clone()
        }
    }
}

impl Report {
    /// The human-readable summary.
    pub fn to_text(&self) -> String {
        let mut s = format!(
            "workload {} value {} B keys {} ({}) groups {:?} conns {} x pipeline {} on {} (node indexes_shard_count {})\n",
            self.workload,
            self.value_size_bytes,
            self.keyspace,
            self.distribution,
            self.groups,
            self.connections,
            self.pipeline,
            self.remotes.join(","),
            self.node_indexes_shard_count,
        );
        if self.fill_writes > 0 {
            s += &format!(
                "fill: {} writes, {} errors\n",
                self.fill_writes, self.fill_errors
            );
        }
        s += &format!(
            "{:<8} {:>10} {:>8} {:>12} {:>9} {:>9} {:>9} {:>9} {:>9}\n",
            "op", "ok", "errors", "ops/s", "mean_us", "p50_us", "p99_us", "p99.9_us", "max_us"
        );
        let all = OpReport {
            op: "all",
            ok: self.ok,
            errors: self.errors,
            ops_per_s: self.ops_per_s,
            mean_us: self.mean_us,
            p50_us: self.p50_us,
            p99_us: self.p99_us,
            p999_us: self.p999_us,
            max_us: self.max_us,
        };
        for r in self.per_op.iter().chain(std::iter::once(&all)) {
            s += &format!(
                "{:<8} {:>10} {:>8} {:>12.0} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>9.1}\n",
                r.op,
                r.ok,
                r.errors,
                r.ops_per_s,
                r.mean_us,
                r.p50_us,
                r.p99_us,
                r.p999_us,
                r.max_us
            );
        }
        s += &format!("elapsed {:.3} s", self.elapsed_s);
        if let Some(c) = self.client_cpu_us_per_op {
            s += &format!(", client cpu {c:.2} us/op");
        }
        if let Some(c) = self.server_cpu_us_per_op {
            s += &format!(", server cpu {c:.2} us/op");
        }
        s += "\n";
        if !self.errors_by_errno.is_empty() {
            let list: Vec<String> = self
                .errors_by_errno
                .iter()
                .map(|(e, n)| format!("{e}: {n}"))
                .collect();
            s += &format!("errors by errno: {}\n", list.join(", "));
        }
        s
    }
}
