//! `dnet_ioclient -a` against real nodes: per-node statistics in the original's lines
//! (load average, memory, file system, then a line per command with its count and errors)
//! from every node of the route list, and `--help` naming every flag on a line of its own.

mod common;
use common::ioclient;

use common::{NodeSpec, TestNode};
use std::process::{Command, Output};

/// The original's getopt string; every letter is a flag `--help` must list.
const OPTSTRING: &str = "i:d:C:A:f:F:M:N:g:u:O:S:m:zsU:aL:w:l:c:k:I:r:W:R:D:hHb:B:p:";

fn lines_of(out: &Output) -> Vec<String> {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn dash_a_prints_load_memory_fs_and_command_counters_for_every_node() {
    let first = TestNode::start(&[1]);
    let second = TestNode::start_with(NodeSpec {
        backends: vec![(1, 2)],
        remotes: vec![first.remote()],
        ..NodeSpec::default()
    });
    std::fs::write(first.dir.path().join("stat-key"), b"0123456789").expect("file");
    assert!(ioclient(&first, &["-W", "stat-key"]).status.success());
    assert!(!ioclient(&first, &["-D", "not-there"]).status.success());
    // The joined node shows up in the first one's route list within a moment.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let lines = loop {
        let lines = lines_of(&ioclient(&first, &["-a"]));
        let second_seen = lines
            .iter()
            .any(|l| l.contains(&format!("{}: la: ", second.addr())));
        if second_seen || std::time::Instant::now() > deadline {
            break lines;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    for node in [&first, &second] {
        let head = format!("0:000000000000: {}:", node.addr());
        let mine: Vec<&String> = lines.iter().filter(|l| l.starts_with(&head)).collect();
        assert!(
            mine.iter().any(|l| l.contains(" la: ") && l.ends_with('.')),
            "{lines:?}"
        );
        assert!(
            mine.iter()
                .any(|l| l.contains(" mem: total: ") && l.contains(" kB, free: ")),
            "{lines:?}"
        );
        assert!(
            mine.iter()
                .any(|l| l.contains(" fs: total: ") && l.contains(" mB, avail: ")),
            "{lines:?}"
        );
        assert!(
            mine.iter()
                .any(|l| l.contains("cmd: REVERSE_LOOKUP, count: ")),
            "{lines:?}"
        );
    }
    let first_head = format!("0:000000000000: {}:", first.addr());
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&first_head) && l.ends_with("cmd: WRITE, count: 1, err: 0")),
        "{lines:?}"
    );
    let lookup = lines
        .iter()
        .find(|l| l.starts_with(&first_head) && l.contains("cmd: LOOKUP, count: "))
        .expect("the -D lookup counted");
    assert!(
        !lookup.ends_with("err: 0"),
        "the missing key's error: {lookup}"
    );
}

#[test]
fn help_lists_every_flag_on_a_line_of_its_own() {
    let out = Command::new(env!("CARGO_BIN_EXE_dnet_ioclient"))
        .arg("--help")
        .output()
        .expect("run dnet_ioclient");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for flag in OPTSTRING.chars().filter(char::is_ascii_alphabetic) {
        let lines = text
            .lines()
            .filter(|l| {
                l.starts_with(&format!(" -{flag} ")) || l.starts_with(&format!(" -{flag},"))
            })
            .count();
        assert_eq!(lines, 1, "-{flag} in:\n{text}");
    }
}
