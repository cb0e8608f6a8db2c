//! `dnet_ioserv`: run a storage node from an ioserv.json (`-c FILE`), or on the embedded
//! default (127.0.0.1:1025, group 1, data under `./var`) when no config is given.

use anyhow::Context;
use clap::Parser;
use elliptics::config::NodeConfig;
use signal_hook::consts::{SIGINT, SIGTERM};
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
        eprintln!("dnet_ioserv: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> anyhow::Result<()> {
    let args = Args::parse();
    let config = match &args.config {
        Some(path) => {
            let loaded =
                NodeConfig::load(path).with_context(|| format!("config {}", path.display()))?;
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
    let node = elliptics::node::start(config)?;
    tracing::info!("listening on {}", node.listen_addr);
    let handle = node.shutdown_handle();
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if let Some(sig) = signals.forever().next() {
                tracing::info!(signal = sig, "shutting down");
                handle.request_shutdown();
            }
        })?;
    node.join()?;
    Ok(())
}

fn init_logging(config: &NodeConfig, log: Option<&Path>) -> anyhow::Result<()> {
    let level = config
        .logger
        .level
        .tracing_level()
        .to_string()
        .to_lowercase();
    // ELLIPTICS_LOG (tracing filter syntax) overrides the config's level when it is set.
    let filter = std::env::var("ELLIPTICS_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .and_then(|v| tracing_subscriber::EnvFilter::try_new(v).ok())
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new(&level));
    let sink = log
        .map(Path::to_path_buf)
        .or_else(|| config.logger.log_file().map(Path::to_path_buf));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    match sink {
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .with_context(|| format!("log file {}", path.display()))?;
            builder
                .with_ansi(false)
                .with_writer(std::sync::Mutex::new(file))
                .init();
        }
        None => builder.with_writer(std::io::stderr).init(),
    }
    Ok(())
}
