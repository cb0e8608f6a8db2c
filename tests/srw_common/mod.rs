//! Shared helpers of the srw tests: a node with srw configured, the echo app packaged as a
//! tar (a script that execs the built `echo_worker` example), and CLI runners.

#![allow(dead_code)]

use crate::common::{NodeSpec, TestNode};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The built echo worker example, rebuilt when its source changed (a stale binary would
/// lack newer events).
pub fn echo_worker_bin() -> PathBuf {
    static BUILT: std::sync::Once = std::sync::Once::new();
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_dnet_ioserv"))
        .parent()
        .expect("bin dir")
        .to_path_buf();
    BUILT.call_once(|| {
        let status = Command::new(env!("CARGO"))
            .args(["build", "--example", "echo_worker"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("cargo build --example echo_worker");
        assert!(status.success());
    });
    bin_dir.join("examples").join("echo_worker")
}

/// A node with `shard_count` shards and srw configured under its temp dir.
pub fn srw_node(shard_count: usize) -> TestNode {
    let base = tempfile::tempdir().expect("tempdir").keep();
    let srw = base.join("srw.json");
    std::fs::write(
        &srw,
        format!(
            r#"{{"version": 2, "paths": {{"plugins": "/usr/lib/cocaine", "spool": {}, "runtime": {}}},
 "services": {{"logging": {{"type": "logging", "args": {{"port": 12501}}}}, "storage": {{"type": "elliptics"}}}},
 "storages": {{"core": {{"type": "elliptics", "args": {{"nodes": ["localhost:1025:2"], "groups": [1], "verbosity": 2}}}}}}}}"#,
            serde_json::to_string(&base.join("spool").display().to_string()).expect("json"),
            serde_json::to_string(&base.join("ipc").display().to_string()).expect("json"),
        ),
    )
    .expect("srw.json");
    TestNode::start_with(NodeSpec {
        srw_config: Some(srw),
        extra_options: vec![format!("\"shard_count\": {shard_count}")],
        wait_timeout_s: 10,
        ..NodeSpec::default()
    })
}

/// Write a tar with one executable `name` holding `script`.
pub fn script_tar(dir: &Path, name: &str, script: &str) -> PathBuf {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(script.len() as u64);
    h.set_mode(0o755);
    h.set_path(name).expect("path");
    h.set_cksum();
    b.append(&h, script.as_bytes()).expect("append");
    let path = dir.join(format!("{name}.tar"));
    std::fs::write(&path, b.into_inner().expect("tar")).expect("write tar");
    path
}

/// Upload the echo app as `name` with `profile` JSON, and start it.
pub fn upload_echo(node: &TestNode, name: &str, profile: &str, env: &str) {
    let script = format!("#!/bin/sh\nexec {} \"$@\"\n", echo_worker_bin().display());
    upload_script(node, name, profile, env, &script);
    let out = ioclient(node, &["-c", &format!("{name}@start-task")]);
    assert!(out.status.success(), "start-task: {}", text(&out));
}

/// Upload an app as `name` whose slave is the shell `script`, with `profile` JSON and the
/// manifest environment `env`; does not start it.
pub fn upload_script(node: &TestNode, name: &str, profile: &str, env: &str, script: &str) {
    let dir = node.dir.path();
    let tar = script_tar(dir, "run.sh", script);
    let manifest = dir.join(format!("{name}.manifest.json"));
    std::fs::write(
        &manifest,
        format!("{{\"slave\": \"run.sh\", \"environment\": {env}}}"),
    )
    .expect("manifest");
    let prof = dir.join(format!("{name}.profile"));
    std::fs::write(&prof, profile).expect("profile");
    let out = upload_app(node, &manifest, &tar, name);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = upload_profile(node, &prof, name);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `dnet_srw app upload` of `manifest` and the package `tar` as app `name`.
pub fn upload_app(node: &TestNode, manifest: &Path, tar: &Path, name: &str) -> Output {
    srw(
        node,
        &[
            "app",
            "upload",
            "--manifest",
            manifest.to_str().expect("utf8"),
            "--package",
            tar.to_str().expect("utf8"),
            "--name",
            name,
        ],
    )
}

/// `dnet_srw profile upload` of `profile` as profile `name`.
pub fn upload_profile(node: &TestNode, profile: &Path, name: &str) -> Output {
    srw(
        node,
        &[
            "profile",
            "upload",
            "--profile",
            profile.to_str().expect("utf8"),
            "--name",
            name,
        ],
    )
}

pub fn srw(node: &TestNode, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dnet_srw"))
        .args(["-r", &node.remote(), "-g", "1"])
        .args(args)
        .output()
        .expect("run dnet_srw")
}

pub use super::common::ioclient;

/// stdout and stderr of a run, for messages.
pub fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
