//! `dnet_bench`: a closed-loop load generator for any Elliptics 2.26 node.
//!
//! ```text
//! dnet_bench -r 127.0.0.1:1025:2 -g 1 --op write --size 100 -c 50 -P 16 -t 5
//! dnet_bench -r 127.0.0.1:1025:2 --mix read=90,write=10 --dist zipf --fill --json
//! ```

use anyhow::{Context, Result};
use clap::Parser;
use elliptics::bench::{run, BenchConfig, KeyDistribution, Mix, Op};
use elliptics::client::parse_remote;

#[derive(Debug, Parser)]
#[command(
    name = "dnet_bench",
    about = "Load generator speaking the Elliptics 2.26 protocol: ops/s, latency percentiles, errors by errno"
)]
struct Args {
    /// Node address host:port:family (repeatable).
    #[arg(short = 'r', long = "remote", required = true)]
    remotes: Vec<String>,
    /// Session groups, comma separated.
    #[arg(
        short = 'g',
        long = "groups",
        default_value = "1",
        value_delimiter = ','
    )]
    groups: Vec<u32>,
    /// Operation: write, read, lookup, remove, exec.
    #[arg(long = "op", default_value = "write", conflicts_with = "mix")]
    op: String,
    /// Operation mix in percent, e.g. read=90,write=10.
    #[arg(long = "mix")]
    mix: Option<String>,
    /// Value size of writes and exec payloads, in bytes.
    #[arg(short = 's', long = "size", default_value_t = 100)]
    size_bytes: usize,
    /// Largest value size: WRITEs then pick among log-spaced sizes from --size to this.
    #[arg(long = "size-max", default_value_t = 0)]
    size_max_bytes: usize,
    /// Number of distinct keys.
    #[arg(short = 'k', long = "keys", default_value_t = 100_000)]
    keyspace: u64,
    /// Key name prefix (keys are `<prefix><n>`, hashed with sha512).
    #[arg(long = "key-prefix", default_value = "bench-key-")]
    key_prefix: String,
    /// Key distribution: uniform or zipf.
    #[arg(long = "dist", default_value = "uniform")]
    distribution: String,
    /// Zipf exponent.
    #[arg(long = "zipf-s", default_value_t = 0.99)]
    zipf_s: f64,
    /// Connections per node.
    #[arg(short = 'c', long = "connections", default_value_t = 50)]
    connections: usize,
    /// Requests in flight per connection.
    #[arg(short = 'P', long = "pipeline", default_value_t = 1)]
    pipeline: usize,
    /// Measured duration in seconds.
    #[arg(short = 't', long = "duration", default_value_t = 5.0)]
    duration_s: f64,
    /// Stop after this many measured operations (duration is then a cap).
    #[arg(short = 'n', long = "requests")]
    requests: Option<u64>,
    /// Unmeasured warm-up in seconds.
    #[arg(short = 'w', long = "warmup", default_value_t = 0.5)]
    warmup_s: f64,
    /// Write every key once before the warm-up (for read/lookup workloads).
    #[arg(long = "fill")]
    fill: bool,
    /// app@event of the exec operation.
    #[arg(long = "event", default_value = "bench@echo")]
    exec_event: String,
    /// io_attr flags of write/read/remove (DNET_IO_FLAGS_*).
    #[arg(long = "ioflags", default_value_t = 0)]
    io_flags: u32,
    /// PRNG seed.
    #[arg(long = "seed", default_value_t = 1)]
    seed: u64,
    /// Sample this server process's CPU time over the measured window.
    #[arg(long = "server-pid")]
    server_pid: Option<u32>,
    /// Print one JSON line per this many seconds of the measurement (rate, p50/p99, errors,
    /// live bytes, and with --server-pid / --data-dir the node's RSS and disk use).
    #[arg(long = "interval-s")]
    interval_s: Option<f64>,
    /// The node's data directory, for the disk use of --interval-s lines.
    #[arg(long = "data-dir")]
    data_dir: Option<std::path::PathBuf>,
    /// Print the report as JSON.
    #[arg(long = "json")]
    json: bool,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let remotes = args
        .remotes
        .iter()
        .map(|r| parse_remote(r).map_err(|e| anyhow::anyhow!("{e}")))
        .collect::<Result<Vec<_>>>()?;
    let mix = match &args.mix {
        Some(text) => Mix::parse(text)?,
        None => Mix::only(Op::parse(&args.op)?),
    };
    let distribution = match args.distribution.as_str() {
        "uniform" => KeyDistribution::Uniform,
        "zipf" => KeyDistribution::Zipf { s: args.zipf_s },
        other => anyhow::bail!("unknown key distribution '{other}' (uniform, zipf)"),
    };
    let secs_to_ms = |s: f64| (s.max(0.0) * 1000.0).round() as u64;
    let config = BenchConfig {
        remotes,
        groups: args.groups,
        mix,
        value_size_bytes: args.size_bytes,
        value_size_max_bytes: args.size_max_bytes,
        keyspace: args.keyspace,
        key_prefix: args.key_prefix,
        distribution,
        connections: args.connections,
        pipeline: args.pipeline,
        duration_ms: secs_to_ms(args.duration_s),
        requests: args.requests,
        warmup_ms: secs_to_ms(args.warmup_s),
        fill: args.fill,
        exec_event: args.exec_event,
        io_flags: args.io_flags,
        seed: args.seed,
        server_pid: args.server_pid,
        interval_ms: args.interval_s.map(secs_to_ms),
        server_data_dir: args.data_dir,
        ..BenchConfig::default()
    };
    let report = run(config).context("benchmark failed")?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.to_text());
    }
    Ok(())
}
