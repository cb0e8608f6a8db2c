//! `dnet_ioserv`: run a storage node from an ioserv.json (`-c FILE`), or on the embedded
//! default (127.0.0.1:1025, group 1, data under `./var`) when no config is given.

use anyhow::Context;
use clap::Parser;
use elliptics::config::NodeConfig;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use std::sync::atomic::{AtomicBool, Ordering};

/// The log goes to a file: a fatal error is written there as well as to stderr.
static LOGGING_TO_FILE: AtomicBool = AtomicBool::new(false);
use std::path::{Path, PathBuf};

#[derive(Parser, Debug)]
#[command(name = "dnet_ioserv", about = "Elliptics storage node (2.26 protocol)")]
struct Args {
    /// ioserv.json configuration file
    #[arg(short = 'c', long = "config")]
    config: Option<PathBuf>,
    /// log file (overrides the config's logger sink)
    #[arg(short = 'l', long = "log")]
    log: Option<PathBuf>,
    /// accepted for compatibility; the node does not run under a monitor process
    #[arg(short = 'm', hide = true)]
    monitor: bool,
}

fn main() {
    if let Err(e) = run() {
        let text = one_line(&e);
        if LOGGING_TO_FILE.load(Ordering::Relaxed) {
            tracing::error!("{text}");
        }
        eprintln!("dnet_ioserv: {text}");
        std::process::exit(1);
    }
}

/// The error and its causes on one line, each text once: many errors name their cause in
/// their own message already, and printing the chain as well repeated it.
fn one_line(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let cause = cause.to_string();
        if text.contains(&cause) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&cause);
    }
    text
}

fn run() -> anyhow::Result<()> {
    let args = Args::parse();
    let config = match &args.config {
        Some(path) => {
            // The error names the file already.
            let loaded = NodeConfig::load(path)?;
            init_logging(&loaded.config, args.log.as_deref())?;
            for w in &loaded.warnings {
                tracing::warn!("config {}: {w}", path.display());
            }
            loaded.config
        }
        None => {
            let base = PathBuf::from("var");
            let config = NodeConfig::embedded_default(&base);
            for dir in [base.join("history"), base.join("data")] {
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
            }
            init_logging(&config, args.log.as_deref())?;
            eprintln!(
                "dnet_ioserv: no -c given, running on the embedded default: 127.0.0.1:1025, group 1, data under ./var"
            );
            config
        }
    };
    config.check_paths().context("config")?;
    raise_open_files_limit();
    let node = elliptics::node::start(config)?;
    tracing::info!("listening on {}", node.listen_addr);
    let handle = node.shutdown_handle();
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                if sig == SIGHUP {
                    // logrotate's habit: the file was moved; write to a new one under its name.
                    for (path, e) in elliptics::log::reopen_files() {
                        eprintln!(
                            "dnet_ioserv: cannot reopen log file {}: {e}",
                            path.display()
                        );
                    }
                    tracing::info!("log files reopened");
                    continue;
                }
                tracing::info!(signal = sig, "shutting down");
                handle.request_shutdown();
                break;
            }
        })?;
    node.join()?;
    elliptics::log::flush_files();
    Ok(())
}

fn init_logging(config: &NodeConfig, log: Option<&Path>) -> anyhow::Result<()> {
    elliptics::log::init(&config.logger, log)?;
    if log.is_some() || config.logger.log_file().is_some() {
        LOGGING_TO_FILE.store(true, Ordering::Relaxed);
    }
    Ok(())
}

/// Raise the soft limit on open descriptors to the hard one: every client connection holds
/// one, and a node left at a default soft limit of 1 024 refuses clients long before the
/// system would.
fn raise_open_files_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    let soft = limit.current;
    if soft.is_some() && soft != limit.maximum {
        limit.current = limit.maximum;
        match setrlimit(Resource::Nofile, limit) {
            Ok(()) => tracing::info!(
                "open descriptor limit raised from {} to {}",
                soft.map_or("unlimited".into(), |n| n.to_string()),
                limit.maximum.map_or("unlimited".into(), |n| n.to_string())
            ),
            Err(e) => tracing::warn!("cannot raise the open descriptor limit: {e}"),
        }
    }
}
