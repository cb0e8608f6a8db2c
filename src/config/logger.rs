//! The `logger` block (blackhole's schema in 2.26): a level and a list of frontends, each
//! with a sink. `files` sinks (a path; "/dev/stderr" and "/dev/stdout" are the streams) and
//! `syslog` sinks are driven (see `crate::log`); other sink types are kept and not used.

use super::fields::Fields;
use super::ConfigError;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Log verbosity, in Elliptics' order (debug = 0 ... error = 4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// Everything, including per-request traces.
    Debug,
    /// Notable events below info.
    Notice,
    /// Normal operation (the samples' level).
    Info,
    /// Something is wrong but the node goes on.
    Warning,
    /// A request or a component failed.
    Error,
}

impl LogLevel {
    /// Parse one of `debug`, `notice`, `info`, `warning`, `error`.
    pub fn parse(text: &str) -> Option<LogLevel> {
        match text {
            "debug" => Some(LogLevel::Debug),
            "notice" => Some(LogLevel::Notice),
            "info" => Some(LogLevel::Info),
            "warning" => Some(LogLevel::Warning),
            "error" => Some(LogLevel::Error),
            _ => None,
        }
    }

    /// The `tracing` level this maps to (notice has no own level and becomes info).
    pub fn tracing_level(self) -> tracing::Level {
        match self {
            LogLevel::Debug => tracing::Level::DEBUG,
            LogLevel::Notice | LogLevel::Info => tracing::Level::INFO,
            LogLevel::Warning => tracing::Level::WARN,
            LogLevel::Error => tracing::Level::ERROR,
        }
    }
}

/// Where one frontend writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogSink {
    /// A `files` sink whose path is "/dev/stderr".
    Stderr,
    /// A `files` sink whose path is "/dev/stdout".
    Stdout,
    /// A `files` sink writing to this file.
    File {
        /// The file to append to.
        path: PathBuf,
        /// Flush after every line.
        autoflush: bool,
    },
    /// A `syslog` sink: the local syslog socket, lines tagged with `identity`.
    Syslog {
        /// `identity`; "elliptics" when absent.
        identity: String,
    },
    /// A sink we keep but do not drive (`socket`, ...).
    Other {
        /// The sink's `type`.
        kind: String,
    },
}

/// One `frontends[]` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogFrontend {
    /// `formatter.pattern`, kept for reference; our line format is fixed.
    pub pattern: Option<String>,
    /// `sink`.
    pub sink: LogSink,
}

/// The `logger` block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggerConfig {
    /// `level`; info when absent.
    pub level: LogLevel,
    /// `frontends`; empty means stderr.
    pub frontends: Vec<LogFrontend>,
}

impl Default for LoggerConfig {
    fn default() -> Self {
        LoggerConfig {
            level: LogLevel::Info,
            frontends: Vec::new(),
        }
    }
}

impl LoggerConfig {
    /// The file the node logs to: the first `files` sink that is a real file. `None` means
    /// stderr (no sink, or the first sink is stderr/stdout/other).
    pub fn log_file(&self) -> Option<&Path> {
        self.frontends
            .iter()
            .find_map(|frontend| match &frontend.sink {
                LogSink::File { path, .. } => Some(path.as_path()),
                _ => None,
            })
    }

    pub(crate) fn parse(value: &Value, warnings: &mut Vec<String>) -> Result<Self, ConfigError> {
        let mut fields = Fields::object(value, "logger".into())?;
        let level = match fields.string("level")? {
            None => LogLevel::Info,
            Some(text) => LogLevel::parse(text).ok_or_else(|| {
                let problem = format!(
                    "unknown level {text:?}; expected debug, notice, info, warning or error"
                );
                ConfigError::field("logger.level", problem)
            })?,
        };
        let mut frontends = Vec::new();
        match fields.raw("frontends") {
            None => {}
            Some(Value::Array(items)) => {
                for (index, item) in items.iter().enumerate() {
                    let path = format!("logger.frontends[{index}]");
                    frontends.push(parse_frontend(item, path, warnings)?);
                }
            }
            Some(_) => {
                return Err(ConfigError::field("logger.frontends", "expected an array"));
            }
        }
        fields.finish(warnings);
        Ok(LoggerConfig { level, frontends })
    }
}

fn parse_frontend(
    value: &Value,
    path: String,
    warnings: &mut Vec<String>,
) -> Result<LogFrontend, ConfigError> {
    let mut fields = Fields::object(value, path)?;
    let mut pattern = None;
    if let Some(mut formatter) = fields.object_of("formatter")? {
        formatter.accept(&["type"]);
        pattern = formatter.string("pattern")?.map(str::to_string);
        formatter.finish(warnings);
    }
    let sink_fields = fields.object_of("sink")?;
    let sink_fields = fields.required("sink", sink_fields)?;
    let sink = parse_sink(sink_fields, warnings)?;
    fields.finish(warnings);
    Ok(LogFrontend { pattern, sink })
}

fn parse_sink(mut fields: Fields<'_>, warnings: &mut Vec<String>) -> Result<LogSink, ConfigError> {
    let kind = fields.string("type")?;
    let kind = fields.required("type", kind)?;
    fields.accept(&["rotation", "flush", "facility", "host", "port"]);
    let sink = if kind == "files" {
        let path = fields.string("path")?;
        let path = fields.required("path", path)?;
        let autoflush = fields.boolean("autoflush")?.unwrap_or(false);
        match path {
            "/dev/stderr" => LogSink::Stderr,
            "/dev/stdout" => LogSink::Stdout,
            _ => LogSink::File {
                path: PathBuf::from(path),
                autoflush,
            },
        }
    } else if kind == "syslog" {
        fields.accept(&["path", "autoflush"]);
        let identity = fields.string("identity")?.unwrap_or("elliptics");
        LogSink::Syslog {
            identity: identity.to_string(),
        }
    } else {
        fields.accept(&["path", "autoflush", "identity"]);
        LogSink::Other {
            kind: kind.to_string(),
        }
    };
    fields.finish(warnings);
    Ok(sink)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_and_syslog_sinks_are_read_and_rotation_is_accepted() {
        let block = serde_json::json!({
            "level": "notice",
            "frontends": [
                {"formatter": {"type": "string", "pattern": "%(message)s"},
                 "sink": {"type": "files", "path": "/var/log/ioserv.log", "autoflush": true,
                          "rotation": {"move": 0}}},
                {"formatter": {"type": "string", "pattern": "%(message)s"},
                 "sink": {"type": "files", "path": "/dev/stderr"}},
                {"formatter": {"type": "string", "pattern": "%(message)s"},
                 "sink": {"type": "syslog", "identity": "ioserv"}}
            ]
        });
        let mut warnings = Vec::new();
        let logger = LoggerConfig::parse(&block, &mut warnings).expect("logger");
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(logger.level, LogLevel::Notice);
        assert_eq!(logger.level.tracing_level(), tracing::Level::INFO);
        let sinks: Vec<&LogSink> = logger.frontends.iter().map(|f| &f.sink).collect();
        assert_eq!(
            sinks,
            [
                &LogSink::File {
                    path: PathBuf::from("/var/log/ioserv.log"),
                    autoflush: true
                },
                &LogSink::Stderr,
                &LogSink::Syslog {
                    identity: "ioserv".into()
                }
            ]
        );
    }
}
