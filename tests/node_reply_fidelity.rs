//! Our node answers the original 2.26 clients' requests as the original server did: every
//! request frame of the recorded sessions (`tests/data/wire-captures`) is sent again, on its
//! own connection as it was recorded, to one real node with backend 1 in group 1 (the
//! recording's setup), and each reply is checked field by field against the original's
//! (see `common::replay` for what is compared and what differs by nature).

mod common;

use common::replay::replay;
use common::{NodeSpec, TestNode};

/// The recordings in the order they were made on one server: the later ones read what the
/// earlier ones wrote (`ioclient-read` and `ioclient-find` read `somekey`).
const RECORDINGS: [&str; 8] = [
    "ioclient-write.txt",
    "ioclient-read.txt",
    "ioclient-read-missing.txt",
    "ioclient-write-rawid.txt",
    "python-write-read.txt",
    "python-write-variants.txt",
    "ioclient-backend-status-exec.txt",
    "ioclient-find.txt",
];

/// A node set up as the recordings' server was: backend 1 in group 1, data checksums on.
fn recording_node() -> TestNode {
    TestNode::start_with(NodeSpec {
        blob_flags: "0".into(),
        ..NodeSpec::default()
    })
}

fn assert_same_replies(name: &str, node: &TestNode) {
    let diffs = replay(name, node.addr());
    assert!(
        diffs.is_empty(),
        "{name}: our replies differ from the original's:\n{}",
        diffs.join("\n")
    );
}

#[test]
fn every_recorded_request_gets_the_original_servers_replies() {
    let node = recording_node();
    for name in RECORDINGS {
        assert_same_replies(name, &node);
    }
}

#[test]
fn append_reply_reports_the_appended_chunk_and_prepare_reports_nothing_written() {
    // The three differences found with the original clients, one recording each: APPEND's
    // file info size is the chunk's, PREPARE / PLAIN_WRITE report size 0, and COMMIT the
    // committed total.
    let node = recording_node();
    assert_same_replies("python-write-variants.txt", &node);
}

#[test]
fn backend_status_is_one_frame() {
    let node = recording_node();
    assert_same_replies("ioclient-backend-status-exec.txt", &node);
}
