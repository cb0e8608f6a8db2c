//! `dnet_recovery [options] merge|dc`: restore the placement (merge, inside a group) and
//! the replication (dc, across groups) of keys, with a progress bar (keys/s, ETA) on a
//! terminal and plain progress lines otherwise, ending with a summary line. `-b` is the
//! batch size (keys per SEND request), `-D` the directory of dc's state file (the system's
//! temporary directory by default): a dc run killed and started again with the same
//! arguments continues where it stopped.

use anyhow::{bail, Context};
use clap::Parser;
use elliptics::client::{ClientConfig, Node};
use elliptics::protocol::DnetTime;
use elliptics::recovery::{self, Options};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The terminal progress bar: bar, keys done of all, rate and time left.
const BAR_TEMPLATE: &str = "[{bar:40}] {pos}/{len} keys, {per_sec}, ETA {eta}";

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
    /// Keys per batch: per SEND request, and the step at which dc saves its progress
    #[arg(short = 'b', long = "batch-size", default_value_t = 1024,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    batch: u32,
    /// Only keys written since: a UNIX timestamp or 12h / 1d / 4w ago
    #[arg(short = 't', long = "time")]
    since: Option<String>,
    /// Directory of the state file an interrupted dc run resumes from
    #[arg(short = 'D', long = "dir")]
    tmp_dir: Option<PathBuf>,
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

/// The directory of dc's state file: `-D`, or the system's temporary directory.
fn state_dir(args: &Args) -> anyhow::Result<PathBuf> {
    match &args.tmp_dir {
        Some(dir) if !dir.is_dir() => bail!("-D {}: not a directory", dir.display()),
        Some(dir) => Ok(dir.clone()),
        None => Ok(std::env::temp_dir()),
    }
}

/// The recovery options of `args` (the dump file read).
fn options(args: &Args) -> anyhow::Result<Options> {
    // What names the run: the same arguments resume it (-n, -b, -w and -D do not matter).
    let arguments = format!(
        "{} -r {:?} -g {:?} -o {:?} -i {:?} -t {:?} -f {:?} -S {}",
        args.kind,
        args.remotes,
        args.groups,
        args.one_node,
        args.backend_id,
        args.since,
        args.dump_file,
        args.safe
    );
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
    Ok(Options {
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
        batch: args.batch as usize,
        timeout: Duration::from_secs(args.wait_timeout_s.max(1)),
        state_dir: Some(state_dir(args)?),
        arguments,
    })
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.kind != "merge" && args.kind != "dc" {
        bail!("unknown recovery type {:?}: use merge or dc", args.kind);
    }
    let opts = options(&args)?;
    let node = Node::new(ClientConfig {
        wait_timeout_s: args.wait_timeout_s.max(1),
        ..ClientConfig::default()
    });
    let remotes: Vec<&str> = args.remotes.iter().map(String::as_str).collect();
    node.add_remotes(&remotes)
        .context("cannot connect to any remote given with -r")?;
    let terminal = std::io::stderr().is_terminal();
    let last_line = AtomicU64::new(0);
    let started = Instant::now();
    let bar = ProgressBar::hidden();
    if terminal {
        bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(BAR_TEMPLATE)
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("#>-"),
        );
    }
    let progress = |done: u64, total: u64| {
        if terminal {
            bar.set_length(total);
            bar.set_position(done);
        } else {
            let step = (total / 10).max(1);
            let mark = done / step;
            if done == total || last_line.fetch_max(mark, Ordering::Relaxed) < mark {
                let secs = started.elapsed().as_secs_f64();
                eprintln!(
                    "progress: {done}/{total} keys ({secs:.1}s, {:.0} keys/s)",
                    done as f64 / secs.max(1e-3)
                );
            }
        }
    };
    let summary = if args.kind == "merge" {
        recovery::merge(&node, &opts, &progress)?
    } else {
        recovery::dc(&node, &opts, &progress)?
    };
    bar.finish();
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
