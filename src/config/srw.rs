//! srw.json, the Cocaine v2 runtime config named by `options.srw_config`. We use the
//! `paths.spool` and `paths.runtime` directories; every Cocaine-only key is accepted and
//! listed in [`SrwConfig::ignored_keys`].

use super::fields::Fields;
use super::{parse_json, read_text_file, ConfigError};
use std::path::{Path, PathBuf};

/// The parts of srw.json the node uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SrwConfig {
    /// `paths.spool`: where app archives are unpacked, one directory per app.
    pub spool: PathBuf,
    /// `paths.runtime`: where worker sockets live.
    pub runtime: PathBuf,
    /// JSON paths of keys that only mattered to Cocaine and are ignored here.
    pub ignored_keys: Vec<String>,
}

impl SrwConfig {
    /// Read and parse an srw.json.
    pub fn load(path: &Path) -> Result<SrwConfig, ConfigError> {
        let text = read_text_file(path)?;
        Self::from_json_str(&text).map_err(|err| ConfigError::InFile {
            path: path.to_path_buf(),
            source: Box::new(err),
        })
    }

    /// Parse srw.json text.
    pub fn from_json_str(text: &str) -> Result<SrwConfig, ConfigError> {
        let root = parse_json(text, "srw config")?;
        let mut top = Fields::object(&root, String::new())?;
        let paths = top.object_of("paths")?;
        let mut paths = top.required("paths", paths)?;
        let spool = paths.string("spool")?;
        let spool = PathBuf::from(paths.required("spool", spool)?);
        let runtime = paths.string("runtime")?;
        let runtime = PathBuf::from(paths.required("runtime", runtime)?);
        let version = top.unsigned("version")?;
        let mut ignored_keys = paths.unread_paths();
        ignored_keys.extend(top.unread_paths());
        if let Some(version) = version {
            if version != 2 {
                let problem = format!("Cocaine config version {version} is not supported; use 2");
                return Err(ConfigError::field("version", problem));
            }
        }
        Ok(SrwConfig {
            spool,
            runtime,
            ignored_keys,
        })
    }

    /// Check that the spool and runtime directories exist.
    pub fn check_paths(&self) -> Result<(), ConfigError> {
        for (dir, json_path) in [
            (&self.spool, "paths.spool"),
            (&self.runtime, "paths.runtime"),
        ] {
            if !dir.is_dir() {
                let problem = format!("directory {} does not exist", dir.display());
                return Err(ConfigError::field(json_path, problem));
            }
        }
        Ok(())
    }
}
