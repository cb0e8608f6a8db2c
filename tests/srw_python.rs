//! The tutorial's Python worker (`from cocaine.worker import Worker`, `import elliptics`)
//! against a real node: uploaded with dnet_srw as the tutorial does (manifest with its
//! trailing comma, process profile), started, sent `test_app@test_event SOME_DATA`, and
//! `-D TESTKEY` prints SOME_DATA. The only edit to the script is the node address (the test
//! node listens on a free port, not 1025). The repository's `python/` package is put on
//! PYTHONPATH with a sitecustomize that enables its `cocaine` fallback.

mod common;
mod srw_common;

use srw_common::{ioclient, srw_node, text, upload_app, upload_profile};
use std::os::unix::fs::PermissionsExt;

const TEST_APP: &str = r#"#!/usr/bin/env python
from cocaine.worker import Worker
import elliptics
import struct

elog = elliptics.Logger("/tmp/worker", 0)
cfg = elliptics.Config()
node = elliptics.Node(elog, cfg)
node.add_remotes(["localhost:1025:2"])

def test_event(request, response):
    try:
         data = yield request.read()
         s = elliptics.Session(node)
         s.set_groups([1])
         event_size = struct.unpack('<i', data[80:84])[0]
         s.write_data("TESTKEY", data[128 + event_size:], 0)
    except Exception as err:
         response.error(1, str(err))
    finally:
         response.close()

W = Worker()
W.run({"test_event" : test_event})
"#;

const MANIFEST: &str = "{\n    \"slave\" : \"test_app.py\",\n}\n";

#[test]
fn tutorial_python_worker_writes_testkey() {
    let node = srw_node(2);
    let dir = node.dir.path();
    let python_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("python");
    let site = dir.join("site");
    std::fs::create_dir_all(&site).expect("site dir");
    std::fs::write(
        site.join("sitecustomize.py"),
        "import cocaine_compat\ncocaine_compat.install_fallback()\n",
    )
    .expect("sitecustomize");
    let script = TEST_APP.replace("localhost:1025:2", &node.remote());
    let app_dir = dir.join("app");
    std::fs::create_dir_all(&app_dir).expect("app dir");
    let app = app_dir.join("test_app.py");
    std::fs::write(&app, script).expect("script");
    std::fs::set_permissions(&app, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let tar = dir.join("test_app.tar");
    let status = std::process::Command::new("tar")
        .args(["-cf", tar.to_str().expect("utf8"), "test_app.py"])
        .current_dir(&app_dir)
        .status()
        .expect("tar");
    assert!(status.success());
    let manifest = dir.join("test_app_manifest.json");
    std::fs::write(&manifest, MANIFEST).expect("manifest");
    let profile = dir.join("process_isolate.profile");
    let isolate =
        r#"{"isolate": {"type": "process", "args": {"spool": "/var/tmp/cocaine/spool"}}}"#;
    std::fs::write(&profile, isolate).expect("profile");
    // First the tutorial's manifest exactly as written (trailing comma included).
    let out = upload_app(&node, &manifest, &tar, "test_app");
    assert!(out.status.success(), "{}", text(&out));
    let out = upload_profile(&node, &profile, "test_app");
    assert!(out.status.success(), "{}", text(&out));
    // Then the same app again with an `environment` that puts the python/ package on the
    // worker's PYTHONPATH (the node's own environment is not ours to change here).
    let manifest_env = dir.join("test_app_manifest_env.json");
    std::fs::write(
        &manifest_env,
        format!(
            "{{\"slave\": \"test_app.py\", \"environment\": {{\"PYTHONPATH\": \"{}:{}\"}}}}",
            python_dir.display(),
            site.display()
        ),
    )
    .expect("manifest env");
    let out = upload_app(&node, &manifest_env, &tar, "test_app");
    assert!(out.status.success(), "{}", text(&out));
    let out = ioclient(&node, &["-c", "test_app@start-task"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = ioclient(&node, &["-c", "test_app@test_event SOME_DATA"]);
    assert!(out.status.success(), "{}\n{}", text(&out), node.log());
    let read = ioclient(&node, &["-D", "TESTKEY"]);
    assert_eq!(
        String::from_utf8_lossy(&read.stdout),
        "SOME_DATA",
        "{}\n{}",
        text(&read),
        node.log()
    );
}
