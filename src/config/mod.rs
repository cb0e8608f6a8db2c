//! The ioserv.json configuration (2.26 schema plus our additions): parsing, defaults,
//! validation.
//!
//! This module owns turning a config file into a checked [`NodeConfig`]. Parsing is
//! lenient where 2.26 was (integers as strings, sizes with K/M/G/T, unknown keys are
//! warnings) and strict where a mistake would lose data or hide a typo in a required key.
//! Every error names the JSON path (`backends[0].history: ...`). Parsing never touches the
//! file system beyond reading the file; [`NodeConfig::check_paths`] is the separate step
//! the node runs before it starts.

mod backend;
mod cache;
mod fields;
mod logger;
mod options;
mod srw;

pub use backend::BackendConfig;
pub use cache::{CacheSettings, CACHE_PAGES_MAX};
pub use logger::{LogFrontend, LogLevel, LogSink, LoggerConfig};
pub use options::{
    auth_cookie_bytes, Options, TopSettings, AUTH_COOKIE_BYTES_USED, SHARD_COUNT_MAX,
};
pub use srw::SrwConfig;

use crate::address::AddrSpec;
use fields::Fields;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Largest config file read (the samples are about 2 KiB).
pub const CONFIG_FILE_BYTES_MAX: u64 = 4 << 20;

/// Why a configuration cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is larger than [`CONFIG_FILE_BYTES_MAX`].
    #[error("{}: {size_bytes} bytes is larger than the {CONFIG_FILE_BYTES_MAX}-byte limit for a config file", path.display())]
    TooLarge { path: PathBuf, size_bytes: u64 },
    /// The text is not JSON.
    #[error("{origin}: invalid JSON at line {line}, column {column}: {message}")]
    Json {
        origin: String,
        line: usize,
        column: usize,
        message: String,
    },
    /// A value is missing, malformed, or inconsistent; `json_path` names it.
    #[error("{json_path}: {problem}")]
    Field { json_path: String, problem: String },
    /// An error inside the named file.
    #[error("{}: {source}", path.display())]
    InFile {
        path: PathBuf,
        #[source]
        source: Box<ConfigError>,
    },
}

impl ConfigError {
    pub(crate) fn field(json_path: &str, problem: impl Into<String>) -> ConfigError {
        ConfigError::Field {
            json_path: json_path.to_string(),
            problem: problem.into(),
        }
    }

    /// The error without the file wrapper, for matching on the cause.
    pub fn root(&self) -> &ConfigError {
        match self {
            ConfigError::InFile { source, .. } => source.root(),
            other => other,
        }
    }
}

/// A parsed configuration with the warnings found on the way (unknown keys, clamped
/// values). Warnings are for the log; none of them stops the node.
#[derive(Clone, Debug)]
pub struct LoadedConfig {
    /// The validated configuration.
    pub config: NodeConfig,
    /// One line per ignored or adjusted value, each naming its JSON path.
    pub warnings: Vec<String>,
}

/// A node's configuration: the three top-level blocks of ioserv.json.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeConfig {
    /// `logger`.
    pub logger: LoggerConfig,
    /// `options`.
    pub options: Options,
    /// `backends`.
    pub backends: Vec<BackendConfig>,
}

pub(crate) fn read_text_file(path: &Path) -> Result<String, ConfigError> {
    let read_error = |source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_error)?;
    let size_bytes = file.metadata().map_err(read_error)?.len();
    if size_bytes > CONFIG_FILE_BYTES_MAX {
        let path = path.to_path_buf();
        return Err(ConfigError::TooLarge { path, size_bytes });
    }
    let mut text = String::new();
    file.take(CONFIG_FILE_BYTES_MAX)
        .read_to_string(&mut text)
        .map_err(read_error)?;
    Ok(text)
}

pub(crate) fn parse_json(text: &str, origin: &str) -> Result<serde_json::Value, ConfigError> {
    serde_json::from_str(text).map_err(|err| ConfigError::Json {
        origin: origin.to_string(),
        line: err.line(),
        column: err.column(),
        message: err.to_string(),
    })
}

impl NodeConfig {
    /// Read, parse and validate an ioserv.json. Paths are not checked; see
    /// [`NodeConfig::check_paths`].
    pub fn load(path: &Path) -> Result<LoadedConfig, ConfigError> {
        let text = read_text_file(path)?;
        Self::from_json_str(&text).map_err(|err| match err {
            ConfigError::Json {
                line,
                column,
                message,
                ..
            } => ConfigError::Json {
                origin: path.display().to_string(),
                line,
                column,
                message,
            },
            other => ConfigError::InFile {
                path: path.to_path_buf(),
                source: Box::new(other),
            },
        })
    }

    /// Parse and validate ioserv.json text.
    pub fn from_json_str(text: &str) -> Result<LoadedConfig, ConfigError> {
        let root = parse_json(text, "config")?;
        let mut warnings = Vec::new();
        let mut top = Fields::object(&root, String::new())?;
        let logger = top.raw("logger");
        let logger = LoggerConfig::parse(top.required("logger", logger)?, &mut warnings)?;
        let options = top.raw("options");
        let options = Options::parse(top.required("options", options)?, &mut warnings)?;
        let backends = top.raw("backends");
        let backends = parse_backends(top.required("backends", backends)?, &mut warnings)?;
        top.finish(&mut warnings);
        let mut config = NodeConfig {
            logger,
            options,
            backends,
        };
        config.validate(&mut warnings)?;
        Ok(LoadedConfig { config, warnings })
    }

    /// The configuration `dnet_ioserv` runs without `-c`: a single joined node on
    /// 127.0.0.1:1025 (IPv4), one blob backend (id 1, group 1) with its history in
    /// `<base_dir>/history` and blobs `<base_dir>/data/data-*`, `sync` 0 so that every
    /// acknowledged write is on disk, and the auth cookie "elliptics". Nothing is created
    /// here; the node makes the directories on first start.
    pub fn embedded_default(base_dir: &Path) -> NodeConfig {
        let address = AddrSpec {
            host: "127.0.0.1".to_string(),
            port: 1025,
            family: crate::address::FAMILY_INET,
            route_group: None,
        };
        let options = Options {
            join: true,
            flags: 0,
            remote: Vec::new(),
            address: vec![address],
            wait_timeout_s: 5,
            check_timeout_s: 60,
            stall_count: 3,
            auth_cookie: auth_cookie_bytes("elliptics"),
            srw_config: None,
            monitor_port: None,
            monitor_top: None,
            cache: None,
            indexes_shard_count: 16,
            io_thread_num: None,
            nonblocking_io_thread_num: None,
            net_thread_num: None,
            daemon: false,
            parallel: true,
            shard_count: None,
            frame_payload_bytes_max: crate::limits::FRAME_PAYLOAD_BYTES_MAX_DEFAULT,
            frame_stall_timeout_s: 5,
            value_bytes_max: crate::limits::VALUE_BYTES_MAX_DEFAULT,
        };
        let backend = BackendConfig::with_defaults(
            1,
            1,
            base_dir.join("history"),
            base_dir.join("data").join("data"),
        );
        NodeConfig {
            logger: LoggerConfig::default(),
            options,
            backends: vec![backend],
        }
    }

    /// Every cross-field check, in one place. Adjusted values add a warning.
    pub fn validate(&mut self, warnings: &mut Vec<String>) -> Result<(), ConfigError> {
        self.options.validate(warnings)?;
        if self.backends.is_empty() {
            return Err(ConfigError::field(
                "backends",
                "no backend is configured; a node without one could store nothing",
            ));
        }
        for (index, backend) in self.backends.iter().enumerate() {
            let first = self
                .backends
                .iter()
                .position(|other| other.backend_id == backend.backend_id);
            if let Some(first) = first.filter(|first| *first != index) {
                let problem = format!(
                    "backend_id {} is already used by backends[{first}]",
                    backend.backend_id
                );
                return Err(ConfigError::field(
                    &format!("backends[{index}].backend_id"),
                    problem,
                ));
            }
        }
        Ok(())
    }

    /// Check that the directories the config names exist: each backend's `history`, the
    /// directory of each `data` prefix, and the `srw_config` file.
    pub fn check_paths(&self) -> Result<(), ConfigError> {
        for (index, backend) in self.backends.iter().enumerate() {
            require_dir(&backend.history, &format!("backends[{index}].history"))?;
            let data_dir = match backend.data.parent() {
                Some(parent) if !parent.as_os_str().is_empty() => parent,
                _ => Path::new("."),
            };
            require_dir(data_dir, &format!("backends[{index}].data"))?;
        }
        if let Some(srw) = &self.options.srw_config {
            if !srw.is_file() {
                let problem = format!("file {} does not exist", srw.display());
                return Err(ConfigError::field("options.srw_config", problem));
            }
        }
        Ok(())
    }
}

fn require_dir(dir: &Path, json_path: &str) -> Result<(), ConfigError> {
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => {
            let problem = format!("{} is a file, not a directory", dir.display());
            Err(ConfigError::field(json_path, problem))
        }
        Err(e) => Err(ConfigError::field(json_path, missing_dir_problem(dir, &e))),
    }
}

/// Why `dir` cannot be used, in words: it does not exist, a path component above it is
/// a file, or it cannot be reached.
fn missing_dir_problem(dir: &Path, e: &std::io::Error) -> String {
    let shown = dir.display();
    if e.kind() == std::io::ErrorKind::NotFound {
        return format!("directory {shown} does not exist");
    }
    if e.raw_os_error() == Some(libc::ENOTDIR) {
        let file = dir
            .ancestors()
            .skip(1)
            .find(|a| std::fs::metadata(a).is_ok_and(|m| !m.is_dir()));
        if let Some(file) = file {
            return format!(
                "directory {shown} cannot exist: {} is a file, not a directory",
                file.display()
            );
        }
    }
    format!("cannot reach directory {shown}: {e}")
}

fn parse_backends(
    value: &serde_json::Value,
    warnings: &mut Vec<String>,
) -> Result<Vec<BackendConfig>, ConfigError> {
    let serde_json::Value::Array(items) = value else {
        return Err(ConfigError::field(
            "backends",
            "expected an array of backend objects",
        ));
    };
    items
        .iter()
        .enumerate()
        .map(|(index, item)| BackendConfig::parse(item, format!("backends[{index}]"), warnings))
        .collect()
}
