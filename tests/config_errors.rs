//! Bad configurations are refused (or warned about) with a message that names the JSON
//! path and the problem.

use elliptics::config::{ConfigError, NodeConfig, SrwConfig};
use serde_json::{json, Value};

/// A JSON path (or message prefix) and the edit that should produce it.
type Case = (&'static str, fn(&mut Value));

fn minimal() -> Value {
    json!({
        "logger": {"level": "info"},
        "options": {"address": ["127.0.0.1:1025:2"], "auth_cookie": "c"},
        "backends": [{"backend_id": 1, "type": "blob", "group": 1,
                      "history": "/h", "data": "/d/data"}]
    })
}

fn error_of(value: &Value) -> String {
    match NodeConfig::from_json_str(&value.to_string()) {
        Ok(loaded) => panic!("accepted: {:?}", loaded.config),
        Err(err) => err.to_string(),
    }
}

fn edited(edit: impl FnOnce(&mut Value)) -> Value {
    let mut value = minimal();
    edit(&mut value);
    value
}

fn without(value: &mut Value, key: &str) {
    if let Some(object) = value.as_object_mut() {
        object.remove(key);
    }
}

#[test]
fn minimal_config_takes_the_2_26_defaults() {
    let config = NodeConfig::from_json_str(&minimal().to_string())
        .unwrap()
        .config;
    assert_eq!(config.options.wait_timeout_s, 5);
    assert_eq!(config.options.check_timeout_s, 60);
    assert_eq!(config.options.indexes_shard_count, 16);
    assert_eq!(config.options.monitor_port, None);
    assert_eq!(config.options.monitor_top, None);
    assert!(config.options.parallel && !config.options.join);
    assert_eq!(config.backends[0].blob_size_bytes, 50 << 30);
    assert_eq!(config.backends[0].records_in_blob, 50_000_000);
    assert_eq!(config.backends[0].sync_s, 0);
    assert_eq!(config.options.listen_port(), Some(1025));
}

#[test]
fn missing_required_keys_are_named() {
    let cases: [Case; 9] = [
        ("options.address", |v| without(&mut v["options"], "address")),
        ("options.auth_cookie", |v| {
            without(&mut v["options"], "auth_cookie")
        }),
        ("backends[0].backend_id", |v| {
            without(&mut v["backends"][0], "backend_id")
        }),
        ("backends[0].type", |v| {
            without(&mut v["backends"][0], "type")
        }),
        ("backends[0].group", |v| {
            without(&mut v["backends"][0], "group")
        }),
        ("backends[0].history", |v| {
            without(&mut v["backends"][0], "history")
        }),
        ("backends[0].data", |v| {
            without(&mut v["backends"][0], "data")
        }),
        ("backends", |v| without(v, "backends")),
        ("logger", |v| without(v, "logger")),
    ];
    for (json_path, edit) in cases {
        let message = error_of(&edited(edit));
        assert_eq!(message, format!("{json_path}: missing required key"));
    }
}

#[test]
fn malformed_values_name_their_path() {
    let cases: [Case; 8] = [
        ("options.address[0]: expected \"host:port:family\"", |v| {
            v["options"]["address"] = json!(["localhost:1025"])
        }),
        ("options.remote[1]: bad family \"7\"", |v| {
            v["options"]["remote"] = json!(["a:1:2", "b:1:7"])
        }),
        ("options.address: at least one address", |v| {
            v["options"]["address"] = json!([])
        }),
        (
            "backends[0].type: backend type \"filesystem\" is not supported",
            |v| v["backends"][0]["type"] = json!("filesystem"),
        ),
        ("backends[0].blob_size: expected a size", |v| {
            v["backends"][0]["blob_size"] = json!("100Q")
        }),
        (
            "backends[0].group: expected a non-negative integer, got -1",
            |v| v["backends"][0]["group"] = json!(-1),
        ),
        ("options.monitor.port: port 70000 is above 65535", |v| {
            v["options"]["monitor"] = json!({"port": 70000})
        }),
        ("logger.level: unknown level \"loud\"", |v| {
            v["logger"]["level"] = json!("loud")
        }),
    ];
    for (needle, edit) in cases {
        let message = error_of(&edited(edit));
        assert!(message.starts_with(needle), "{needle} / {message}");
    }
}

#[test]
fn monitor_top_turns_the_top_keys_on_with_the_original_defaults_for_what_is_left_out() {
    let load = |top: Value| {
        let value = edited(|v| v["options"]["monitor"] = json!({"port": 0, "top": top}));
        NodeConfig::from_json_str(&value.to_string()).unwrap()
    };
    let loaded = load(json!({}));
    let top = loaded.config.options.monitor_top.expect("top on");
    assert_eq!(
        (top.top_length, top.events_size, top.period_s),
        (50, 1000, 300)
    );
    let loaded = load(json!({"top_length": 7, "events_size": 20, "period_in_seconds": 60, "x": 1}));
    let top = loaded.config.options.monitor_top.expect("top on");
    assert_eq!((top.top_length, top.events_size, top.period_s), (7, 20, 60));
    assert!(
        loaded
            .warnings
            .iter()
            .any(|w| w.contains("options.monitor.top.x")),
        "{:?}",
        loaded.warnings
    );
    let message = error_of(&edited(|v| {
        v["options"]["monitor"] = json!({"top": {"top_length": "many"}})
    }));
    assert!(
        message.starts_with("options.monitor.top.top_length"),
        "{message}"
    );
}

#[test]
fn addresses_on_different_ports_warn_and_listen_on_the_last() {
    let value = edited(|v| v["options"]["address"] = json!(["a:1025:2-0", "b:1026:2-1"]));
    let loaded = NodeConfig::from_json_str(&value.to_string()).unwrap();
    assert_eq!(loaded.config.options.listen_port(), Some(1026));
    assert!(loaded.warnings[0].starts_with("options.address: the addresses use different ports"));
}

#[test]
fn duplicate_backend_id_is_refused() {
    let value = edited(|v| {
        let second = v["backends"][0].clone();
        v["backends"].as_array_mut().unwrap().push(second);
    });
    assert_eq!(
        error_of(&value),
        "backends[1].backend_id: backend_id 1 is already used by backends[0]"
    );
}

#[test]
fn unknown_keys_are_warnings_naming_their_path() {
    let value = edited(|v| {
        v["options"]["adress"] = json!(["x"]);
        v["backends"][0]["blob_sise"] = json!("1G");
        v["extra"] = json!(1);
    });
    let warnings = NodeConfig::from_json_str(&value.to_string())
        .unwrap()
        .warnings;
    assert_eq!(
        warnings,
        vec![
            "options.adress: unknown key, ignored",
            "backends[0].blob_sise: unknown key, ignored",
            "extra: unknown key, ignored",
        ]
    );
}

#[test]
fn oversized_frame_limit_is_capped_with_a_warning() {
    let value = edited(|v| v["options"]["frame_payload_bytes_max"] = json!("64G"));
    let loaded = NodeConfig::from_json_str(&value.to_string()).unwrap();
    assert_eq!(
        loaded.config.options.frame_payload_bytes_max,
        elliptics::limits::FRAME_PAYLOAD_BYTES_MAX_CEILING
    );
    assert!(loaded.warnings[0].starts_with("options.frame_payload_bytes_max:"));
    let bad_shards = edited(|v| v["options"]["shard_count"] = json!(0));
    assert!(error_of(&bad_shards).starts_with("options.shard_count: 0 is outside"));
}

#[test]
fn long_auth_cookie_keeps_31_bytes_and_a_nul() {
    let value = edited(|v| v["options"]["auth_cookie"] = json!("a".repeat(40)));
    let loaded = NodeConfig::from_json_str(&value.to_string()).unwrap();
    let cookie = loaded.config.options.auth_cookie;
    assert_eq!(&cookie[..31], "a".repeat(31).as_bytes());
    assert_eq!(cookie[31], 0);
}

#[test]
fn invalid_json_and_missing_file_are_named() {
    let message = NodeConfig::from_json_str("{\"logger\": ")
        .unwrap_err()
        .to_string();
    assert!(
        message.starts_with("config: invalid JSON at line 1"),
        "{message}"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ioserv.json");
    let err = NodeConfig::load(&path).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }));
    assert!(err.to_string().contains("ioserv.json"));
    let bad_sync = edited(|v| v["backends"][0]["sync"] = json!("often"));
    std::fs::write(&path, bad_sync.to_string()).unwrap();
    let message = NodeConfig::load(&path).unwrap_err().to_string();
    let needle = "ioserv.json: backends[0].sync: expected an integer";
    assert!(message.contains(needle), "{message}");
}

#[test]
fn srw_config_requires_spool_and_runtime() {
    let text = r#"{"version": 2, "paths": {"spool": "/s"}}"#;
    let message = SrwConfig::from_json_str(text).unwrap_err().to_string();
    assert_eq!(message, "paths.runtime: missing required key");
    let text = r#"{"version": 3, "paths": {"spool": "/s", "runtime": "/r"}}"#;
    let message = SrwConfig::from_json_str(text).unwrap_err().to_string();
    assert!(
        message.starts_with("version: Cocaine config version 3"),
        "{message}"
    );
}

#[test]
fn a_cache_block_takes_the_2_26_defaults_and_refuses_bad_values() {
    let value = edited(|v| v["options"]["cache"] = json!({"size": "64M"}));
    let config = NodeConfig::from_json_str(&value.to_string())
        .unwrap()
        .config;
    let cache = config.options.cache.expect("cache");
    assert_eq!(cache.size_bytes, 64 << 20);
    assert_eq!((cache.shards, cache.sync_timeout_s), (16, 30));
    assert_eq!(cache.pages_proportions, vec![1]);
    let cases: [(&str, Value); 5] = [
        ("options.cache.size", json!({"shards": 2})),
        ("options.cache.size", json!({"size": 0})),
        ("options.cache.shards", json!({"size": 1024, "shards": 0})),
        (
            "options.cache.pages_proportions",
            json!({"size": 1024, "pages_proportions": []}),
        ),
        (
            "options.cache.pages_proportions[1]",
            json!({"size": 1024, "pages_proportions": [1, 0]}),
        ),
    ];
    for (path, cache) in cases {
        let err = error_of(&edited(|v| v["options"]["cache"] = cache.clone()));
        assert!(err.starts_with(path), "{path}: {err}");
    }
}

#[test]
fn frame_stall_timeout_defaults_to_wait_timeout() {
    let value = edited(|v| v["options"]["wait_timeout"] = json!(7));
    let config = NodeConfig::from_json_str(&value.to_string())
        .unwrap()
        .config;
    assert_eq!(config.options.frame_stall_timeout_s, 7);
    let value = edited(|v| v["options"]["frame_stall_timeout"] = json!(2));
    let config = NodeConfig::from_json_str(&value.to_string())
        .unwrap()
        .config;
    assert_eq!(config.options.frame_stall_timeout_s, 2);
}
