//! The node's logging: the 2.26 `logger` block mapped onto `tracing`.
//!
//! - `level` (`debug`, `notice`, `info`, `warning`, `error`) is the least severe level
//!   written; `notice` has no `tracing` level of its own and writes what `info` writes.
//!   `ELLIPTICS_LOG` (tracing's filter syntax) overrides it.
//! - Every `frontends[]` entry is a sink: a `files` sink writes to its `path`
//!   (`/dev/stderr` and `/dev/stdout` are the streams), flushing each line under
//!   `autoflush` and at least once a second otherwise; a `syslog` sink sends to the local
//!   syslog socket under its `identity`. No frontend means stderr.
//! - Files are reopened on SIGHUP ([`reopen_files`]): logrotate moves the file, sends the
//!   signal, and the next lines land in a new file under the old name. `rotation` is
//!   accepted and left to logrotate, as the samples' `{"move": 0}` does.
//! - Lines follow the samples' pattern ([`format`](mod@format)); colour only on a terminal.

pub mod format;
mod sink;

pub use format::{civil_time, current_request, in_request, severity_name, InRequest, RequestScope};
pub use sink::{flush_files, reopen_files};

use crate::config::{LogSink, LoggerConfig};
use sink::{FileSink, Sink, SinkWriter, Syslog};
use std::path::Path;
use std::time::Duration;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// How often lines buffered by files without `autoflush` are written out.
const FLUSH_PERIOD: Duration = Duration::from_secs(1);

/// Why logging could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    #[error("log file {path}: {source}; check that its directory exists and is writable")]
    File {
        path: String,
        source: std::io::Error,
    },
    #[error("a logger is already installed")]
    AlreadyInstalled,
}

/// The sinks of `logger`, or of `log_file` when given (the `-l` override).
fn sinks(logger: &LoggerConfig, log_file: Option<&Path>) -> Result<Vec<Sink>, LogError> {
    let open = |path: &Path, autoflush: bool| {
        FileSink::open(path, autoflush)
            .map(Sink::File)
            .map_err(|source| LogError::File {
                path: path.display().to_string(),
                source,
            })
    };
    if let Some(path) = log_file {
        return Ok(vec![open(path, true)?]);
    }
    let mut out = Vec::new();
    for frontend in &logger.frontends {
        match &frontend.sink {
            LogSink::Stderr => out.push(Sink::Stderr),
            LogSink::Stdout => out.push(Sink::Stdout),
            LogSink::File { path, autoflush } => out.push(open(path, *autoflush)?),
            LogSink::Syslog { identity } => match Syslog::connect(identity) {
                Ok(s) => out.push(Sink::Syslog(std::sync::Arc::new(s))),
                // A machine without a syslog daemon still logs to the other sinks.
                Err(e) => eprintln!("logger: syslog sink unavailable ({e}); skipping it"),
            },
            LogSink::Other { .. } => {}
        }
    }
    if out.is_empty() {
        out.push(Sink::Stderr);
    }
    Ok(out)
}

/// The level filter: `ELLIPTICS_LOG` when set and valid, else the config's level.
fn filter(logger: &LoggerConfig) -> EnvFilter {
    let level = logger.level.tracing_level().to_string().to_lowercase();
    std::env::var("ELLIPTICS_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .and_then(|v| EnvFilter::try_new(v).ok())
        .unwrap_or_else(|| EnvFilter::new(level))
}

/// Install the process's logger from `logger` (or `log_file`, which replaces its sinks),
/// and start the thread that flushes buffered files.
pub fn init(logger: &LoggerConfig, log_file: Option<&Path>) -> Result<(), LogError> {
    let layers: Vec<_> = sinks(logger, log_file)?
        .into_iter()
        .map(|sink| {
            let ansi = sink.is_terminal();
            tracing_subscriber::fmt::layer()
                .event_format(format::LineFormat)
                .with_ansi(ansi)
                .with_writer(SinkWriter(sink))
                .boxed()
        })
        .collect();
    tracing_subscriber::registry()
        .with(filter(logger))
        .with(layers)
        .try_init()
        .map_err(|_| LogError::AlreadyInstalled)?;
    let _ = std::thread::Builder::new()
        .name("log-flush".into())
        .spawn(|| loop {
            std::thread::sleep(FLUSH_PERIOD);
            flush_files();
        });
    Ok(())
}
