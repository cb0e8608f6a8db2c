//! The `options` block: how the node joins the cluster, its addresses, timeouts, the auth
//! cookie, srw and monitor settings, and our own shard and frame-size additions.

use super::fields::Fields;
use super::ConfigError;
use crate::address::AddrSpec;
use crate::limits::{
    FRAME_PAYLOAD_BYTES_MAX_CEILING, FRAME_PAYLOAD_BYTES_MAX_DEFAULT, VALUE_BYTES_MAX_CEILING,
    VALUE_BYTES_MAX_DEFAULT,
};
use serde_json::Value;
use std::path::PathBuf;

/// Bytes of `auth_cookie` that count; the 32nd byte is always NUL, as in 2.26.
pub const AUTH_COOKIE_BYTES_USED: usize = 31;
/// Largest accepted `shard_count`.
pub const SHARD_COUNT_MAX: usize = 1024;

/// The `options` block. Keys we accept only for compatibility (thread counts, ionice, net
/// priorities, `removal_delay`, `handystats_config`, `mallopt_mmap_threshold`) are parsed
/// or skipped without effect: our node runs one shard thread per core instead of thread
/// pools.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// `join`: become a storage node that JOINs its remotes. Default false.
    pub join: bool,
    /// `flags`: DNET_CFG_* bits (2 NO_ROUTE_LIST, 4 MIX_STATES, ...). Default 0.
    pub flags: u64,
    /// `remote`: peers to connect to at start. Default none.
    pub remote: Vec<AddrSpec>,
    /// `address`: addresses advertised to peers; required, at least one.
    pub address: Vec<AddrSpec>,
    /// `wait_timeout`: transaction timeout in seconds (0 -> 5).
    pub wait_timeout_s: u64,
    /// `check_timeout`: reconnect and route refresh period in seconds (0 -> 60).
    pub check_timeout_s: u64,
    /// `stall_count`: timeouts in a row before a peer is pinged and reset. Default 3.
    pub stall_count: u32,
    /// `auth_cookie`: the first 31 bytes, NUL-padded to 32. Required.
    pub auth_cookie: [u8; 32],
    /// `srw_config`: the srw.json path; without it EXEC answers -ENOTSUP.
    pub srw_config: Option<PathBuf>,
    /// `monitor.port` (or legacy `monitor_port`): HTTP monitor port; 0 or absent = none.
    pub monitor_port: Option<u16>,
    /// `monitor.top`: top-keys statistics; absent = not computed (the list stays empty).
    pub monitor_top: Option<TopSettings>,
    /// `cache`: the in-memory cache, when a `cache` block is given.
    pub cache: Option<super::CacheSettings>,
    /// `indexes_shard_count`, exchanged in the handshake (0 -> 16).
    pub indexes_shard_count: i32,
    /// `io_thread_num`: accepted for compatibility, unused.
    pub io_thread_num: Option<u32>,
    /// `nonblocking_io_thread_num`: accepted for compatibility, unused.
    pub nonblocking_io_thread_num: Option<u32>,
    /// `net_thread_num`: accepted for compatibility, unused.
    pub net_thread_num: Option<u32>,
    /// `daemon`: fork to the background. Default false.
    pub daemon: bool,
    /// `parallel`: start backends in parallel. Default true.
    pub parallel: bool,
    /// `shard_count` (ours): shard threads; `None` = one per available core. 1..=1024.
    pub shard_count: Option<usize>,
    /// `frame_payload_bytes_max` (ours): largest accepted frame payload, a size; capped at
    /// `limits::FRAME_PAYLOAD_BYTES_MAX_CEILING`.
    pub frame_payload_bytes_max: u64,
    /// `frame_stall_timeout` (ours): seconds a connection may leave a frame half sent
    /// without sending more of it before it is closed (0 or absent: `wait_timeout`). A
    /// connection idle between frames is never closed for this.
    pub frame_stall_timeout_s: u64,
    /// `value_bytes_max` (ours): largest value a WRITE may store, a size (default 64 GiB,
    /// capped at `limits::VALUE_BYTES_MAX_CEILING`). Values above
    /// `limits::STREAM_WRITE_THRESHOLD_BYTES` stream to the disk; larger ones get -E2BIG.
    pub value_bytes_max: u64,
}

/// `auth_cookie` as the wire carries it: at most 31 bytes, NUL-padded to 32.
pub fn auth_cookie_bytes(text: &str) -> [u8; 32] {
    let mut cookie = [0u8; 32];
    for (slot, byte) in cookie
        .iter_mut()
        .zip(text.as_bytes().iter().take(AUTH_COOKIE_BYTES_USED))
    {
        *slot = *byte;
    }
    cookie
}

fn parse_addresses(
    fields: &mut Fields<'_>,
    key: &'static str,
) -> Result<Option<Vec<AddrSpec>>, ConfigError> {
    let Some(texts) = fields.strings(key)? else {
        return Ok(None);
    };
    let mut out = Vec::with_capacity(texts.len());
    for (index, text) in texts.iter().enumerate() {
        let spec = AddrSpec::parse(text).map_err(|err| {
            ConfigError::field(
                &format!("{}[{index}]", fields.path_of(key)),
                err.to_string(),
            )
        })?;
        out.push(spec);
    }
    Ok(Some(out))
}

impl Options {
    /// The TCP port the node listens on: that of the last address, as Elliptics does.
    pub fn listen_port(&self) -> Option<u16> {
        self.address.last().map(|spec| spec.port)
    }

    pub(crate) fn parse(value: &Value, warnings: &mut Vec<String>) -> Result<Self, ConfigError> {
        let mut fields = Fields::object(value, "options".into())?;
        fields.accept(&[
            "bg_ionice_class",
            "bg_ionice_prio",
            "server_net_prio",
            "client_net_prio",
            "removal_delay",
            "handystats_config",
            "mallopt_mmap_threshold",
        ]);
        let address = parse_addresses(&mut fields, "address")?;
        let address = fields.required("address", address)?;
        let cookie = fields.string("auth_cookie")?;
        let auth_cookie = auth_cookie_bytes(fields.required("auth_cookie", cookie)?);
        let (monitor_port, monitor_top) = parse_monitor(&mut fields, warnings)?;
        let cache = super::cache::parse_cache(&mut fields, warnings)?;
        let wait_timeout_s = nonzero_or(fields.unsigned("wait_timeout")?, 5);
        let options = Options {
            join: fields.boolean("join")?.unwrap_or(false),
            flags: fields.unsigned("flags")?.unwrap_or(0),
            remote: parse_addresses(&mut fields, "remote")?.unwrap_or_default(),
            address,
            wait_timeout_s,
            check_timeout_s: nonzero_or(fields.unsigned("check_timeout")?, 60),
            stall_count: fields.unsigned_as("stall_count")?.unwrap_or(3),
            auth_cookie,
            srw_config: fields.string("srw_config")?.map(PathBuf::from),
            monitor_port,
            monitor_top,
            cache,
            indexes_shard_count: parse_indexes_shard_count(&mut fields)?,
            io_thread_num: fields.unsigned_as("io_thread_num")?,
            nonblocking_io_thread_num: fields.unsigned_as("nonblocking_io_thread_num")?,
            net_thread_num: fields.unsigned_as("net_thread_num")?,
            daemon: fields.boolean("daemon")?.unwrap_or(false),
            parallel: fields.boolean("parallel")?.unwrap_or(true),
            shard_count: fields.unsigned_as("shard_count")?,
            frame_payload_bytes_max: fields
                .size_bytes("frame_payload_bytes_max")?
                .unwrap_or(FRAME_PAYLOAD_BYTES_MAX_DEFAULT),
            frame_stall_timeout_s: nonzero_or(
                fields.unsigned("frame_stall_timeout")?,
                wait_timeout_s,
            ),
            value_bytes_max: fields
                .size_bytes("value_bytes_max")?
                .unwrap_or(VALUE_BYTES_MAX_DEFAULT),
        };
        fields.finish(warnings);
        Ok(options)
    }

    /// Checks of values against each other and against compiled limits.
    pub(crate) fn validate(&mut self, warnings: &mut Vec<String>) -> Result<(), ConfigError> {
        if self.address.is_empty() {
            return Err(ConfigError::field(
                "options.address",
                "at least one address is required",
            ));
        }
        if let Some(count) = self.shard_count {
            if !(1..=SHARD_COUNT_MAX).contains(&count) {
                let problem = format!("{count} is outside 1..={SHARD_COUNT_MAX}");
                return Err(ConfigError::field("options.shard_count", problem));
            }
        }
        if self.frame_payload_bytes_max == 0 {
            return Err(ConfigError::field(
                "options.frame_payload_bytes_max",
                "must be above 0",
            ));
        }
        if self.frame_payload_bytes_max > FRAME_PAYLOAD_BYTES_MAX_CEILING {
            warnings.push(format!(
                "options.frame_payload_bytes_max: {} is above the ceiling, using {}",
                self.frame_payload_bytes_max, FRAME_PAYLOAD_BYTES_MAX_CEILING
            ));
            self.frame_payload_bytes_max = FRAME_PAYLOAD_BYTES_MAX_CEILING;
        }
        if self.value_bytes_max == 0 {
            return Err(ConfigError::field(
                "options.value_bytes_max",
                "must be above 0",
            ));
        }
        if self.value_bytes_max > VALUE_BYTES_MAX_CEILING {
            warnings.push(format!(
                "options.value_bytes_max: {} is above the ceiling, using {}",
                self.value_bytes_max, VALUE_BYTES_MAX_CEILING
            ));
            self.value_bytes_max = VALUE_BYTES_MAX_CEILING;
        }
        let listen_port = self.address.last().map(|spec| spec.port);
        if self
            .address
            .iter()
            .any(|spec| Some(spec.port) != listen_port)
        {
            warnings.push(
                "options.address: the addresses use different ports; the node listens on the \
                 port of the last one, as Elliptics does"
                    .to_string(),
            );
        }
        Ok(())
    }
}

fn nonzero_or(value: Option<u64>, default: u64) -> u64 {
    match value {
        None | Some(0) => default,
        Some(value) => value,
    }
}

fn count_or(value: Option<u64>, default: usize) -> usize {
    match value {
        None | Some(0) => default,
        Some(value) => usize::try_from(value).unwrap_or(usize::MAX),
    }
}

fn parse_indexes_shard_count(fields: &mut Fields<'_>) -> Result<i32, ConfigError> {
    match fields.signed("indexes_shard_count")? {
        None | Some(0) => Ok(16),
        Some(count) => i32::try_from(count)
            .ok()
            .filter(|count| *count > 0)
            .ok_or_else(|| {
                let problem = format!("{count} is not a positive 32-bit count");
                ConfigError::field("options.indexes_shard_count", problem)
            }),
    }
}

fn port_or_none(value: Option<u64>, path: &str) -> Result<Option<u16>, ConfigError> {
    match value {
        None | Some(0) => Ok(None),
        Some(port) => u16::try_from(port)
            .map(Some)
            .map_err(|_| ConfigError::field(path, format!("port {port} is above 65535"))),
    }
}

/// `monitor.top`: how the top-keys statistic is kept (the original's defaults for what is
/// left out or 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopSettings {
    /// `top_length`: keys listed in `top.top_by_size`. Default 50.
    pub top_length: usize,
    /// `events_size`: keys each shard remembers. Default 1000.
    pub events_size: usize,
    /// `period_in_seconds`: half-life of a key's weight. Default 300.
    pub period_s: u64,
}

impl Default for TopSettings {
    fn default() -> Self {
        TopSettings {
            top_length: 50,
            events_size: 1000,
            period_s: 300,
        }
    }
}

/// The `monitor` block (or the legacy `monitor_port`): the HTTP port and the top settings.
fn parse_monitor(
    fields: &mut Fields<'_>,
    warnings: &mut Vec<String>,
) -> Result<(Option<u16>, Option<TopSettings>), ConfigError> {
    let legacy = port_or_none(fields.unsigned("monitor_port")?, "options.monitor_port")?;
    let Some(mut monitor) = fields.object_of("monitor")? else {
        return Ok((legacy, None));
    };
    monitor.accept(&["call_tree_timeout"]);
    let port = port_or_none(monitor.unsigned("port")?, "options.monitor.port")?;
    let top = match monitor.object_of("top")? {
        None => None,
        Some(mut top) => {
            let d = TopSettings::default();
            let settings = TopSettings {
                top_length: count_or(top.unsigned("top_length")?, d.top_length),
                events_size: count_or(top.unsigned("events_size")?, d.events_size),
                period_s: nonzero_or(top.unsigned("period_in_seconds")?, d.period_s),
            };
            top.finish(warnings);
            Some(settings)
        }
    };
    monitor.finish(warnings);
    Ok((port.or(legacy), top))
}
