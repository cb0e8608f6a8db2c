//! Every shipped file in `config/` and the tutorial's compact sample (spec §3.1) parse,
//! with the values and defaults a 2.26 node would use.

use elliptics::config::{LogLevel, LogSink, NodeConfig, SrwConfig};
use std::path::{Path, PathBuf};

/// The tutorial's ioserv_srw.json, trimmed, exactly as the spec quotes it.
const TUTORIAL_SAMPLE: &str = r#"{ "logger": { "level": "info", "frontends": [ { "formatter": {"type": "string",
      "pattern": "%(timestamp)s %(request_id)s/%(lwp)s/%(pid)s %(severity)s: %(message)s %(...L)s"},
      "sink": {"type": "files", "path": "/dev/stderr", "autoflush": true, "rotation": {"move": 0}} } ] },
  "options": { "join": true, "flags": 20, "remote": ["localhost:1025:2"], "address": ["localhost:1025:2-0"],
    "wait_timeout": 60, "check_timeout": 60, "io_thread_num": 16, "nonblocking_io_thread_num": 16,
    "net_thread_num": 4, "daemon": false, "auth_cookie": "qwerty", "cache": {"size": 68719476736},
    "indexes_shard_count": 2, "monitor": {"port": 20000}, "srw_config": "/etc/elliptics/srw.json" },
  "backends": [ { "backend_id": 1, "type": "blob", "group": 1, "history": "/elliptics/history",
    "data": "/elliptics/eblob/data", "sync": "1", "blob_flags": "158", "blob_size": "100G",
    "records_in_blob": "1000000", "periodic_timeout": 15 } ] }"#;

fn config_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config")
}

fn ioserv_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in [config_dir(), config_dir().join("cluster")] {
        for entry in std::fs::read_dir(dir).expect("config dir is readable") {
            let path = entry.expect("config dir entry").path();
            let is_json = path.extension().is_some_and(|ext| ext == "json");
            if is_json && path.file_name().is_some_and(|name| name != "srw.json") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

#[test]
fn tutorial_sample_parses_with_the_values_it_names() {
    let loaded = NodeConfig::from_json_str(TUTORIAL_SAMPLE).unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let config = loaded.config;
    assert_eq!(config.logger.level, LogLevel::Info);
    assert_eq!(config.logger.frontends[0].sink, LogSink::Stderr);
    assert_eq!(config.logger.log_file(), None);
    let options = &config.options;
    assert!(options.join);
    assert_eq!(options.flags, 20);
    assert_eq!(options.remote[0].to_string(), "localhost:1025:2");
    assert_eq!(options.address[0].route_group, Some(0));
    let resolved = options.address[0].resolve().unwrap();
    assert_eq!(resolved, "127.0.0.1:1025".parse().unwrap());
    assert_eq!((options.wait_timeout_s, options.check_timeout_s), (60, 60));
    assert_eq!(options.stall_count, 3);
    assert_eq!(&options.auth_cookie[..7], b"qwerty\0");
    assert_eq!(options.cache.as_ref().map(|c| c.size_bytes), Some(64 << 30));
    assert_eq!(options.indexes_shard_count, 2);
    assert_eq!(options.monitor_port, Some(20000));
    let srw = options.srw_config.as_deref();
    assert_eq!(srw, Some(Path::new("/etc/elliptics/srw.json")));
    assert_eq!(options.io_thread_num, Some(16));
    assert_eq!(options.shard_count, None);
    let backend = &config.backends[0];
    assert_eq!((backend.backend_id, backend.group), (1, 1));
    assert_eq!(backend.backend_type, "blob");
    assert_eq!(backend.history, Path::new("/elliptics/history"));
    assert_eq!(backend.data, Path::new("/elliptics/eblob/data"));
    assert_eq!(backend.sync_s, 1);
    assert_eq!(backend.blob_flags, 158);
    assert_eq!(backend.blob_size_bytes, 100 << 30);
    assert_eq!(backend.records_in_blob, 1_000_000);
    assert_eq!(backend.periodic_timeout_s, 15);
    assert_eq!(backend.defrag_percentage, 25);
    assert!(backend.enable && !backend.read_only);
}

#[test]
fn every_shipped_ioserv_config_loads_without_warnings() {
    let files = ioserv_files();
    assert!(files.len() >= 5, "{files:?}");
    for path in files {
        let loaded = NodeConfig::load(&path).unwrap_or_else(|err| panic!("{err}"));
        let warnings = &loaded.warnings;
        assert!(warnings.is_empty(), "{}: {warnings:?}", path.display());
        assert!(!loaded.config.backends.is_empty());
    }
}

#[test]
fn the_cache_example_names_every_cache_option() {
    let path = config_dir().join("ioserv_cache.json");
    let cache = NodeConfig::load(&path).unwrap().config.options.cache;
    let cache = cache.expect("a cache block");
    assert_eq!(cache.size_bytes, 1 << 30);
    assert_eq!(cache.shards, 16);
    assert_eq!(cache.sync_timeout_s, 30);
    assert_eq!(cache.pages_proportions, vec![1, 2]);
}

#[test]
fn cluster_nodes_join_each_other_and_serve_both_groups() {
    for n in 1..=3 {
        let path = config_dir().join("cluster").join(format!("node{n}.json"));
        let config = NodeConfig::load(&path).unwrap().config;
        assert!(config.options.join);
        let own = format!("127.0.0.{n}:1025:2");
        assert_eq!(config.options.address[0].to_string(), own);
        assert_eq!(config.options.remote.len(), 2);
        assert!(config.options.remote.iter().all(|r| r.to_string() != own));
        let groups: Vec<u32> = config.backends.iter().map(|b| b.group).collect();
        assert_eq!(groups, vec![1, 2]);
        assert!(config.logger.log_file().is_some());
    }
}

#[test]
fn srw_example_gives_spool_and_runtime_and_lists_cocaine_keys() {
    let srw = SrwConfig::load(&config_dir().join("srw.json")).unwrap();
    assert_eq!(srw.spool, Path::new("./var/cocaine/spool"));
    assert_eq!(srw.runtime, Path::new("./var/cocaine/ipc"));
    for key in [
        "paths.plugins",
        "services",
        "storages",
        "loggers",
        "port-mapper",
    ] {
        let ignored = &srw.ignored_keys;
        assert!(ignored.iter().any(|k| k == key), "{key}: {ignored:?}");
    }
    let srw_ioserv = NodeConfig::load(&config_dir().join("ioserv_srw.json")).unwrap();
    let named = srw_ioserv.config.options.srw_config;
    assert_eq!(named.as_deref(), Some(Path::new("config/srw.json")));
}

#[test]
fn embedded_default_is_a_valid_single_node() {
    let base = tempfile::tempdir().unwrap();
    let mut config = NodeConfig::embedded_default(base.path());
    let mut warnings = Vec::new();
    config.validate(&mut warnings).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(config.options.address[0].to_string(), "127.0.0.1:1025:2");
    assert_eq!(config.backends[0].sync_s, 0);
    assert_eq!(config.backends[0].history, base.path().join("history"));
    assert_eq!(config.backends[0].data, base.path().join("data/data"));
    let message = config.check_paths().unwrap_err().to_string();
    assert!(
        message.starts_with("backends[0].history: directory"),
        "{message}"
    );
    std::fs::create_dir_all(base.path().join("history")).unwrap();
    std::fs::create_dir_all(base.path().join("data")).unwrap();
    config.check_paths().unwrap();
}
