//! `dnet_recovery [options] merge|dc`: restore the placement (merge, inside a group) and
//! the replication (dc, across groups) of keys, with a progress bar on a terminal and plain
//! progress lines otherwise, ending with a summary line.

use anyhow::{bail, Context};
use clap::Parser;
use elliptics::client::{ClientConfig, Node};
use elliptics::protocol::DnetTime;
use elliptics::recovery::{self, Options};
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Width of the terminal progress bar, in characters.
const BAR_WIDTH_CHARS: u64 = 40;

#[derive(Parser, Debug)]
#[command(name = "dnet_recovery", about = "Elliptics merge and dc recovery")]
struct Args {
    /// merge or dc
    kind: String,
    /// Remote node "host:port:family" (repeatable)
    #[arg(short = 'r', long = "remote", required = true)]
    remotes: Vec<String>,
    /// Comma-separated groups
    #[arg(short = 'g', long = "groups", required = true, value_delimiter = ',')]
    groups: Vec<u32>,
    /// Only this node "host:port:family"
    #[arg(short = 'o', long = "one-node")]
    one_node: Option<String>,
    /// Only this backend id
    #[arg(short = 'i', long = "backend-id")]
    backend_id: Option<i32>,
    /// Parallel copy workers
    #[arg(short = 'n', long = "nprocess", default_value_t = 4)]
    nprocess: usize,
    /// Batch size (accepted for compatibility; copies are streamed per key)
    #[arg(short = 'b', long = "batch-size", default_value_t = 1024)]
    batch: usize,
    /// Only keys written since: a UNIX timestamp or 12h / 1d / 4w ago
    #[arg(short = 't', long = "time")]
    since: Option<String>,
    /// Directory for temporary files (accepted for compatibility)
    #[arg(short = 'D', long = "dir")]
    tmp_dir: Option<String>,
    /// Dry run: report what would be copied, change nothing
    #[arg(short = 'N', long = "dry-run")]
    dry_run: bool,
    /// merge: keep the source copy
    #[arg(short = 'S', long = "safe")]
    safe: bool,
    /// Only the keys in this file (hex ids, one per line)
    #[arg(short = 'f', long = "dump-file")]
    dump_file: Option<String>,
    /// Per-request wait timeout, seconds
    #[arg(short = 'w', long = "wait-timeout", default_value_t = 3600)]
    wait_timeout_s: u64,
}

fn parse_since(text: &str) -> anyhow::Result<DnetTime> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let (num, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let n: u64 = num
        .parse()
        .with_context(|| format!("bad -t value {text:?}"))?;
    let secs = match unit {
        "" => return Ok(DnetTime { tsec: n, tnsec: 0 }),
        "h" => n * 3600,
        "d" => n * 86_400,
        "w" => n * 7 * 86_400,
        _ => bail!("bad -t unit in {text:?}: use a timestamp or N h/d/w"),
    };
    Ok(DnetTime {
        tsec: now.saturating_sub(secs),
        tnsec: 0,
    })
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.kind != "merge" && args.kind != "dc" {
        bail!("unknown recovery type {:?}: use merge or dc", args.kind);
    }
    let _ = (args.batch, &args.tmp_dir);
    let node = Node::new(ClientConfig {
        wait_timeout_s: args.wait_timeout_s.max(1),
        ..ClientConfig::default()
    });
    let remotes: Vec<&str> = args.remotes.iter().map(String::as_str).collect();
    node.add_remotes(&remotes)
        .context("cannot connect to any remote given with -r")?;
    let keys = match &args.dump_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read dump file {path}"))?;
            Some(
                recovery::parse_dump(&text)
                    .map_err(|e| anyhow::anyhow!("dump file {path}: {e}"))?,
            )
        }
        None => None,
    };
    let opts = Options {
        groups: args.groups.clone(),
        node: args
            .one_node
            .as_deref()
            .map(elliptics::client::parse_remote)
            .transpose()
            .context("bad -o address")?,
        backend_id: args.backend_id,
        since: args.since.as_deref().map(parse_since).transpose()?,
        keys,
        dry_run: args.dry_run,
        safe: args.safe,
        workers: args.nprocess.max(1),
        timeout: Duration::from_secs(args.wait_timeout_s.max(1)),
    };
    let terminal = std::io::stderr().is_terminal();
    let last_line = AtomicU64::new(0);
    let started = Instant::now();
    let progress = move |done: u64, total: u64| {
        if terminal {
            let filled = (done * BAR_WIDTH_CHARS)
                .checked_div(total)
                .unwrap_or(BAR_WIDTH_CHARS);
            let bar: String = (0..BAR_WIDTH_CHARS)
                .map(|i| if i < filled { '#' } else { '-' })
                .collect();
            eprint!("\r[{bar}] {done}/{total}");
            if done == total {
                eprintln!();
            }
            let _ = std::io::stderr().flush();
        } else {
            let step = (total / 10).max(1);
            let mark = done / step;
            if done == total || last_line.fetch_max(mark, Ordering::Relaxed) < mark {
                eprintln!(
                    "progress: {done}/{total} keys ({:.1}s)",
                    started.elapsed().as_secs_f64()
                );
            }
        }
    };
    let summary = if args.kind == "merge" {
        recovery::merge(&node, &opts, &progress)?
    } else {
        recovery::dc(&node, &opts, &progress)?
    };
    let mode = if args.dry_run { " (dry run)" } else { "" };
    println!(
        "{} recovery{mode}: {summary}, {:.3}s",
        args.kind,
        started.elapsed().as_secs_f64()
    );
    if summary.failed.load(Ordering::Relaxed) > 0 {
        std::process::exit(1);
    }
    Ok(())
}
