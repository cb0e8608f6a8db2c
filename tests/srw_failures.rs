//! Failure handling with real processes: a worker that crashes mid-request, one that never
//! answers, a full queue, an unsafe package; and per-shard worker pools.

mod common;
mod srw_common;

use elliptics::client::{Key, Session};
use elliptics::key::RawId;
use elliptics::routing::shard_of;
use srw_common::{script_tar, srw_node, text, upload_app, upload_echo};
use std::time::{Duration, Instant};

fn status_of(s: &Session, key: &str, event: &str) -> i32 {
    let entries = s
        .exec_unchecked(Some(&Key::from(key)), event, b"x", -1)
        .wait()
        .expect("exec");
    entries
        .iter()
        .map(|e| e.status)
        .find(|s| *s != 0)
        .unwrap_or(0)
}

#[test]
fn crashed_worker_fails_its_request_and_a_fresh_worker_serves_the_next() {
    let node = srw_node(1);
    upload_echo(&node, "crashy", "{}", "{}");
    let s = common::session_with_timeout(&node, &[1], 10);
    assert_eq!(status_of(&s, "k", "crashy@echo"), 0);
    let st = status_of(&s, "k", "crashy@crash");
    assert!(st < 0, "crash must fail the request, got {st}");
    let start = Instant::now();
    assert_eq!(status_of(&s, "k", "crashy@echo"), 0);
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[test]
fn hung_worker_hits_the_client_timeout_and_full_queue_answers_exfull_at_once() {
    let node = srw_node(1);
    let profile = r#"{"pool-limit": 1, "concurrency": 1, "queue-limit": 1}"#;
    upload_echo(&node, "slow", profile, "{}");
    let s = common::session_with_timeout(&node, &[1], 2);
    let first = s.exec_unchecked(Some(&Key::from("a")), "slow@hang", b"", -1);
    std::thread::sleep(Duration::from_millis(300));
    let second = s.exec_unchecked(Some(&Key::from("b")), "slow@hang", b"", -1);
    std::thread::sleep(Duration::from_millis(300));
    // -54 rather than the session's -110 is the proof it was refused at once, not queued.
    assert_eq!(status_of(&s, "c", "slow@echo"), -54);
    let first = first.wait().expect("exec");
    assert!(first.iter().any(|e| e.status == -110), "{first:?}");
    drop(second.wait());
}

#[test]
fn package_with_dotdot_paths_is_refused() {
    let node = srw_node(1);
    let dir = node.dir.path();
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(3);
    h.set_mode(0o755);
    let name = b"../evil.sh";
    h.as_gnu_mut().expect("gnu").name[..name.len()].copy_from_slice(name);
    h.set_cksum();
    b.append(&h, &b"x\n\n"[..]).expect("append");
    let tar = dir.join("evil.tar");
    std::fs::write(&tar, b.into_inner().expect("tar")).expect("write");
    let manifest = dir.join("evil.json");
    std::fs::write(&manifest, r#"{"slave": "../evil.sh"}"#).expect("manifest");
    let out = upload_app(&node, &manifest, &tar, "evil");
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("escapes"),
        "{}",
        text(&out)
    );
    let good = script_tar(dir, "ok.sh", "#!/bin/sh\n");
    assert!(good.exists());
}

#[test]
fn keys_of_different_shards_are_served_by_those_shards_workers() {
    let node = srw_node(2);
    upload_echo(&node, "spread", "{}", "{}");
    let s = common::session_with_timeout(&node, &[1], 10);
    let mut expected = [0u64; 2];
    for i in 0..16 {
        let key = format!("key-{i}");
        let shard = shard_of(&RawId::from_key(key.as_bytes()), 2);
        expected[shard] += 1;
        assert_eq!(status_of(&s, &key, "spread@echo"), 0);
    }
    assert!(expected[0] > 0 && expected[1] > 0, "keys cover both shards");
    let info = s.exec(None, "spread@info", b"", -1).wait().expect("info");
    let body = info.iter().find_map(|e| e.payload.as_ref()).expect("info");
    let doc: serde_json::Value = serde_json::from_slice(&body.data).expect("json");
    let shards = doc["shards"].as_array().expect("shards");
    assert_eq!(shards.len(), 2);
    for sh in shards {
        let i = sh["shard"].as_u64().expect("shard") as usize;
        assert!(sh["workers"].as_u64().expect("workers") >= 1);
        // The broadcast info itself is not a worker request.
        assert_eq!(sh["served"].as_u64(), Some(expected[i]), "{doc}");
    }
}

/// The link-chain package: each link alone looks inside the app, `pwned` goes through all.
fn link_chain_tar() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let entries: [(&str, tar::EntryType, &str); 7] = [
        ("app.py", tar::EntryType::Regular, "#!/bin/sh\n"),
        ("d", tar::EntryType::Directory, ""),
        ("d/l", tar::EntryType::Symlink, ".."),
        ("d/l/m", tar::EntryType::Symlink, ".."),
        ("d/l/m/n", tar::EntryType::Symlink, ".."),
        ("d/l/m/n/o", tar::EntryType::Symlink, ".."),
        ("d/l/m/n/o/pwned", tar::EntryType::Regular, "owned\n"),
    ];
    for (name, kind, extra) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(0o755);
        let data = if kind == tar::EntryType::Regular {
            extra.as_bytes()
        } else {
            b""
        };
        h.set_size(data.len() as u64);
        let gnu = h.as_gnu_mut().expect("gnu");
        gnu.name[..name.len()].copy_from_slice(name.as_bytes());
        if kind == tar::EntryType::Symlink {
            gnu.linkname[..extra.len()].copy_from_slice(extra.as_bytes());
        }
        h.set_cksum();
        b.append(&h, data).expect("append");
    }
    b.into_inner().expect("tar")
}

/// The spool directory of a node made by `srw_node`, read from its configs.
fn spool_of(node: &common::TestNode) -> std::path::PathBuf {
    let read = |p: &std::path::Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(p).expect("read config")).expect("json")
    };
    let config = read(&node.dir.path().join("ioserv.json"));
    let srw = config["options"]["srw_config"]
        .as_str()
        .expect("srw_config");
    let spool = read(std::path::Path::new(srw))["paths"]["spool"].clone();
    std::path::PathBuf::from(spool.as_str().expect("spool"))
}

fn files_named(dir: &std::path::Path, name: &str, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = e.path();
        if e.file_name() == name {
            out.push(path.clone());
        }
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            files_named(&path, name, out);
        }
    }
}

#[test]
fn package_whose_entries_run_through_links_is_refused_by_upload_and_by_start_task() {
    use elliptics::srw::store;
    let node = srw_node(1);
    let dir = node.dir.path();
    let tar = dir.join("chain.tar");
    std::fs::write(&tar, link_chain_tar()).expect("write");
    let manifest = dir.join("chain.json");
    std::fs::write(&manifest, r#"{"slave": "app.py"}"#).expect("manifest");
    let out = upload_app(&node, &manifest, &tar, "chain");
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("lies under the symlink"),
        "{}",
        text(&out)
    );

    // Stored some other way, the same records are refused by start-task.
    let s = common::session_with_timeout(&node, &[1], 10);
    let records = [
        ("apps", store::encode_package(&link_chain_tar())),
        (
            "manifests",
            store::encode_document(&serde_json::json!({"slave": "app.py"})),
        ),
        ("profiles", store::encode_document(&serde_json::json!({}))),
    ];
    for (ns, data) in records {
        let mut w = s.clone();
        w.set_namespace(ns);
        w.write_data(&Key::from("chain"), &data, 0)
            .wait()
            .expect("write record");
    }
    // Unpacked as before, the links land as `<spool>/n` and `<spool>/../o`, and `pwned`
    // in the directory above that.
    let spool = spool_of(&node);
    assert_eq!(status_of(&s, "k", "chain@start-task"), -22);
    let base = spool.parent().expect("spool parent");
    for leaked in [spool.join("n"), base.join("o")] {
        assert!(
            std::fs::symlink_metadata(&leaked).is_err(),
            "{leaked:?} exists"
        );
    }
    let mut found = Vec::new();
    files_named(base, "pwned", &mut found);
    assert!(found.is_empty(), "written outside the app: {found:?}");
    assert!(
        node.log().contains("lies under the symlink"),
        "{}",
        node.log()
    );
}
