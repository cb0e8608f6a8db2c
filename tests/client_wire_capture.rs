//! The client against the bytes of the original 2.26.11.1 server: a peer on 127.0.0.1
//! replays the server frames of the wire captures (with its own port patched into the
//! advertised addresses) and checks that `dnet_ioclient` sends the captured client frames
//! byte for byte (only the write timestamp may differ).

mod common;

use common::capture::{load as capture, Message};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;

/// Replace every advertised 127.0.0.1:1025 (sockaddr_in: 02 00 04 01 7f 00 00 01) with `port`.
fn patch_port(bytes: &mut [u8], port: u16) {
    let needle = [2u8, 0, 4, 1, 127, 0, 0, 1];
    let mut i = 0;
    while i + needle.len() <= bytes.len() {
        if bytes[i..i + needle.len()] == needle {
            bytes[i + 2..i + 4].copy_from_slice(&port.to_be_bytes());
        }
        i += 1;
    }
}

fn read_message(s: &mut TcpStream) -> Vec<u8> {
    let mut head = vec![0u8; 120];
    s.read_exact(&mut head).expect("client header");
    let size = u64::from_le_bytes(head[112..120].try_into().expect("size")) as usize;
    assert!(size < 1 << 20, "client announced {size} bytes");
    let mut body = vec![0u8; size];
    s.read_exact(&mut body).expect("client payload");
    head.extend_from_slice(&body);
    head
}

/// Serve one connection from the capture; returns the client frames seen.
fn serve(
    listener: TcpListener,
    messages: Vec<Message>,
    port: u16,
) -> std::thread::JoinHandle<Vec<(Vec<u8>, Vec<u8>)>> {
    std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        let mut seen = Vec::new();
        for mut m in messages {
            if m.from_client {
                let got = read_message(&mut s);
                seen.push((m.bytes, got));
            } else {
                patch_port(&mut m.bytes, port);
                s.write_all(&m.bytes).expect("send server frame");
            }
        }
        seen
    })
}

fn run_ioclient(dir: &std::path::Path, port: u16, args: &[&str]) -> std::process::Output {
    let remote = format!("127.0.0.1:{port}:2");
    Command::new(env!("CARGO_BIN_EXE_dnet_ioclient"))
        .current_dir(dir)
        .args(["-r", &remote, "-g", "1", "-w", "5"])
        .args(args)
        .output()
        .expect("run dnet_ioclient")
}

fn listener() -> (TcpListener, u16) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    (l, port)
}

#[test]
fn write_sends_the_captured_handshake_route_list_and_write_frames() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("somekey"), b"hello elliptics wire test\n").expect("file");
    let (l, port) = listener();
    let server = serve(l, capture("ioclient-write.txt"), port);
    let out = run_ioclient(dir.path(), port, &["-W", "somekey"]);
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen = server.join().expect("server");
    assert_eq!(seen.len(), 3);
    assert_eq!(seen[0].1, seen[0].0, "REVERSE_LOOKUP differs");
    assert_eq!(seen[1].1, seen[1].0, "ROUTE_LIST differs");
    let (want, got) = &seen[2];
    assert_eq!(got.len(), want.len());
    // Everything but io_attr.timestamp (payload 0x90..0xa0) must match.
    let ts = 120 + 0x90..120 + 0xa0;
    assert_eq!(
        got[..ts.start],
        want[..ts.start],
        "WRITE header/io_attr differs"
    );
    assert_eq!(got[ts.end..], want[ts.end..], "WRITE tail differs");
    assert_eq!(
        &got[ts.start + 8..ts.end],
        &[0u8; 8],
        "dnet_ioclient writes whole seconds"
    );
}

#[test]
fn read_latest_prints_raw_data_after_lookup_then_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (l, port) = listener();
    let server = serve(l, capture("ioclient-read.txt"), port);
    let out = run_ioclient(dir.path(), port, &["-D", "somekey"]);
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, b"hello elliptics wire test\n");
    let seen = server.join().expect("server");
    assert_eq!(seen.len(), 4);
    for (i, (want, got)) in seen.iter().enumerate() {
        assert_eq!(got, want, "client frame {i} differs from the capture");
    }
}

#[test]
fn read_of_missing_key_fails_with_the_elliptics_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (l, port) = listener();
    let server = serve(l, capture("ioclient-read-missing.txt"), port);
    let out = run_ioclient(dir.path(), port, &["-D", "missingkey"]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "1:9b882e1a474a: Failed to process LOOKUP command: No such file or directory: -2"
        ),
        "stderr: {stderr}"
    );
    let seen = server.join().expect("server");
    for (want, got) in &seen {
        assert_eq!(got, want);
    }
}

#[test]
fn find_sends_the_captured_direct_backend_lookup_and_prints_the_original_line() {
    let (l, port) = listener();
    let server = serve(l, capture("ioclient-find.txt"), port);
    let id = "3ab1736f1f571d7f4eb8d86153089c255ca2411eedf8ce496e3cb7a2b819ac48\
              ac2a355cd0669ddc16d6e56190da79305339ae443d5c7e91abae9d700f8f8fdc";
    let out = Command::new(env!("CARGO_BIN_EXE_dnet_find"))
        .args(["-r", &format!("127.0.0.1:{port}:2"), "-I", id])
        .output()
        .expect("run dnet_find");
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen = server.join().expect("server");
    assert_eq!(seen.len(), 3, "handshake, ROUTE_LIST, one LOOKUP");
    for (i, (want, got)) in seen.iter().enumerate() {
        assert_eq!(got, want, "client frame {i} differs from the capture");
    }
    // The original's line, with the port this test served on.
    let want = format!(
        "1:3ab1736f1f57...9d700f8f8fdc: FIND-OK object: 127.0.0.1:{port}, backend: 1, should live at: 127.0.0.1:{port}, backend: 1, offset: 2103, size: 26, mtime: 2026-12-03 07:17:36 UTC, path: /srv/ell/run/data/data-0.0\n"
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), want);
}
