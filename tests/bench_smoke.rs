//! `dnet_bench` against a real node: a one-second write run and a filled read run, each
//! checked for the report's shape and for requests that actually succeeded.

mod common;

use common::TestNode;
use std::process::Command;

fn bench(node: &TestNode, extra: &[&str]) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_dnet_bench"))
        .args([
            "-r",
            &node.remote(),
            "-g",
            "1",
            "-c",
            "4",
            "-P",
            "4",
            "-k",
            "500",
        ])
        .args(["-t", "1", "-w", "0.2", "--json"])
        .args(extra)
        .output()
        .expect("run dnet_bench");
    assert!(
        out.status.success(),
        "dnet_bench failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        node.log()
    );
    serde_json::from_slice(&out.stdout).expect("dnet_bench --json prints one JSON object")
}

fn num(v: &serde_json::Value, field: &str) -> f64 {
    v[field]
        .as_f64()
        .unwrap_or_else(|| panic!("report field {field} missing or not a number: {v}"))
}

#[test]
fn one_second_write_run_reports_rate_percentiles_and_no_errors() {
    let node = TestNode::start(&[1]);
    let r = bench(&node, &["--op", "write", "-s", "100"]);
    assert_eq!(r["workload"], "write");
    assert!(num(&r, "ok") > 100.0, "too few writes succeeded: {r}");
    assert_eq!(num(&r, "errors"), 0.0, "{r}");
    assert!(r["errors_by_errno"]
        .as_object()
        .is_some_and(|m| m.is_empty()));
    let elapsed = num(&r, "elapsed_s");
    assert!((0.9..3.0).contains(&elapsed), "elapsed {elapsed}");
    let rate = num(&r, "ops_per_s");
    assert!((rate - num(&r, "ok") / elapsed).abs() < 1.0, "{r}");
    let (p50, p99, p999, max) = (
        num(&r, "p50_us"),
        num(&r, "p99_us"),
        num(&r, "p999_us"),
        num(&r, "max_us"),
    );
    assert!(0.0 < p50 && p50 <= p99 && p99 <= p999 && p999 <= max, "{r}");
    assert_eq!(r["per_op"][0]["op"], "write");
}

#[test]
fn filled_reads_all_find_their_keys_and_a_mix_counts_each_op() {
    let node = TestNode::start(&[1]);
    let r = bench(&node, &["--op", "read", "--fill", "-s", "4096"]);
    assert_eq!(num(&r, "fill_writes"), 500.0, "{r}");
    assert_eq!(num(&r, "fill_errors"), 0.0, "{r}");
    assert!(num(&r, "ok") > 100.0, "{r}");
    assert_eq!(
        num(&r, "errors"),
        0.0,
        "reads of filled keys must not miss: {r}"
    );

    let r = bench(&node, &["--mix", "read=50,remove=50", "--dist", "zipf"]);
    let ops: Vec<&str> = r["per_op"]
        .as_array()
        .expect("per_op array")
        .iter()
        .filter_map(|o| o["op"].as_str())
        .collect();
    assert_eq!(ops, ["read", "remove"], "{r}");
    // Removed keys answer -ENOENT afterwards: errors are counted by errno, not hidden.
    let enoent = r["errors_by_errno"]["-2"].as_f64().unwrap_or(0.0);
    assert_eq!(enoent, num(&r, "errors"), "{r}");
    assert!(enoent > 0.0, "{r}");
}
