//! One `backends[]` entry: identity (id, group), where its ring points and blobs live, and
//! the eblob tuning keys, with the 2.26 defaults.

use super::fields::Fields;
use super::ConfigError;
use serde_json::Value;
use std::path::PathBuf;

/// Default `blob_size`: 50 GiB.
pub const BLOB_SIZE_BYTES_DEFAULT: u64 = 50 << 30;
/// Default `records_in_blob`.
pub const RECORDS_IN_BLOB_DEFAULT: u64 = 50_000_000;
/// Default `defrag_percentage`.
pub const DEFRAG_PERCENTAGE_DEFAULT: u32 = 25;
/// Default `defrag_timeout` in seconds.
pub const DEFRAG_TIMEOUT_S_DEFAULT: u64 = 86_400;
/// Default `periodic_timeout` in seconds.
pub const PERIODIC_TIMEOUT_S_DEFAULT: u64 = 15;

/// One backend: a blob store serving one group's ring points.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendConfig {
    /// `backend_id`: unique in the node; becomes `cmd.backend_id`. Required.
    pub backend_id: u32,
    /// `type`: only "blob" (eblob) exists in 2.26.11. Required.
    pub backend_type: String,
    /// `group`: the replica group this backend's points belong to. Required.
    pub group: u32,
    /// `history`: directory of the `ids` file; it must exist. Required.
    pub history: PathBuf,
    /// `data`: blob path prefix (files `<data>-0.N`); its directory must exist. Required.
    pub data: PathBuf,
    /// `sync`: 0 = fsync before acknowledging; N > 0 = group commit every N s; negative =
    /// no periodic sync (the "-1" of the 2.26 example). Default 0.
    pub sync_s: i64,
    /// `blob_flags`: eblob config flags (spec §5.2). Default 0.
    pub blob_flags: u64,
    /// `blob_size`: rotate a blob when its data reaches this size. Default 50 GiB.
    pub blob_size_bytes: u64,
    /// `records_in_blob`: rotate a blob at this many records. Default 50 000 000.
    pub records_in_blob: u64,
    /// `blob_size_limit`: total size cap (-ENOSPC above it); 0 = none. Default 0.
    pub blob_size_limit_bytes: u64,
    /// `defrag_percentage`: defrag a blob once this share of it is removed. 0..=100,
    /// default 25.
    pub defrag_percentage: u32,
    /// `defrag_timeout`: seconds between timed defrags. Default 86 400.
    pub defrag_timeout_s: u64,
    /// `defrag_time`: hour of day (0-23) timed defrags are centred on. Default 3.
    pub defrag_time_hour: u32,
    /// `defrag_splay`: hours either side of `defrag_time` timed defrags may run. Default 3.
    pub defrag_splay_hours: u32,
    /// `periodic_timeout`: seconds between stats dumps. Default 15.
    pub periodic_timeout_s: u64,
    /// `enable`: start at boot. Default true.
    pub enable: bool,
    /// `read_only`: writes and removals get -EROFS. Default false.
    pub read_only: bool,
}

impl BackendConfig {
    /// A blob backend with every tuning key at its default.
    pub fn with_defaults(backend_id: u32, group: u32, history: PathBuf, data: PathBuf) -> Self {
        BackendConfig {
            backend_id,
            backend_type: "blob".to_string(),
            group,
            history,
            data,
            sync_s: 0,
            blob_flags: 0,
            blob_size_bytes: BLOB_SIZE_BYTES_DEFAULT,
            records_in_blob: RECORDS_IN_BLOB_DEFAULT,
            blob_size_limit_bytes: 0,
            defrag_percentage: DEFRAG_PERCENTAGE_DEFAULT,
            defrag_timeout_s: DEFRAG_TIMEOUT_S_DEFAULT,
            defrag_time_hour: 3,
            defrag_splay_hours: 3,
            periodic_timeout_s: PERIODIC_TIMEOUT_S_DEFAULT,
            enable: true,
            read_only: false,
        }
    }

    pub(crate) fn parse(
        value: &Value,
        path: String,
        warnings: &mut Vec<String>,
    ) -> Result<Self, ConfigError> {
        let mut fields = Fields::object(value, path)?;
        fields.accept(&[
            "datasort_dir",
            "index_block_size",
            "index_block_bloom_length",
            "io_thread_num",
            "nonblocking_io_thread_num",
            "cache",
        ]);
        let backend_id = fields.unsigned_as("backend_id")?;
        let backend_id = fields.required("backend_id", backend_id)?;
        let backend_type = fields.string("type")?;
        let backend_type = fields.required("type", backend_type)?;
        if backend_type != "blob" {
            let problem = format!("backend type {backend_type:?} is not supported; use \"blob\"");
            return Err(ConfigError::field(&fields.path_of("type"), problem));
        }
        let group = fields.unsigned_as("group")?;
        let group = fields.required("group", group)?;
        let history = fields.string("history")?;
        let history = PathBuf::from(fields.required("history", history)?);
        let data = fields.string("data")?;
        let data = PathBuf::from(fields.required("data", data)?);
        let mut backend = BackendConfig::with_defaults(backend_id, group, history, data);
        backend.read_tuning(&mut fields)?;
        fields.finish(warnings);
        Ok(backend)
    }

    fn read_tuning(&mut self, fields: &mut Fields<'_>) -> Result<(), ConfigError> {
        if let Some(sync_s) = fields.signed("sync")? {
            self.sync_s = sync_s;
        }
        if let Some(flags) = fields.unsigned("blob_flags")? {
            self.blob_flags = flags;
        }
        if let Some(size_bytes) = fields.size_bytes("blob_size")? {
            self.blob_size_bytes = size_bytes;
        }
        if let Some(records) = fields.unsigned("records_in_blob")? {
            self.records_in_blob = records;
        }
        if let Some(limit_bytes) = fields.size_bytes("blob_size_limit")? {
            self.blob_size_limit_bytes = limit_bytes;
        }
        if let Some(percentage) = fields.unsigned_as::<u32>("defrag_percentage")? {
            if percentage > 100 {
                let problem = format!("{percentage} is above 100");
                return Err(ConfigError::field(
                    &fields.path_of("defrag_percentage"),
                    problem,
                ));
            }
            self.defrag_percentage = percentage;
        }
        if let Some(timeout_s) = fields.unsigned("defrag_timeout")? {
            self.defrag_timeout_s = timeout_s;
        }
        if let Some(hour) = fields.unsigned_as::<u32>("defrag_time")? {
            if hour > 23 {
                let problem = format!("{hour} is not an hour of the day (0-23)");
                return Err(ConfigError::field(&fields.path_of("defrag_time"), problem));
            }
            self.defrag_time_hour = hour;
        }
        if let Some(hours) = fields.unsigned_as::<u32>("defrag_splay")? {
            self.defrag_splay_hours = hours;
        }
        if let Some(timeout_s) = fields.unsigned("periodic_timeout")? {
            self.periodic_timeout_s = timeout_s;
        }
        self.enable = fields.boolean("enable")?.unwrap_or(true);
        self.read_only = fields.boolean("read_only")?.unwrap_or(false);
        if self.blob_size_bytes == 0 || self.records_in_blob == 0 {
            let problem = "blob_size and records_in_blob must be above 0";
            return Err(ConfigError::field(&fields.path_of("blob_size"), problem));
        }
        Ok(())
    }
}
