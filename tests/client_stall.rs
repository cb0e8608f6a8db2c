//! Client behaviours that need a peer misbehaving on purpose: timeouts (-110), the
//! BACKEND_STATUS stall ping and the reset that follows, unsolicited UPDATE_IDS, and the
//! handshake's address check. The peer is a small 2.26 speaker on 127.0.0.1.

use elliptics::client::{ClientConfig, Key, Node, Session};
use elliptics::protocol::{cmd_flags, command, CmdHeader};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn addr_bytes(port: u16) -> Vec<u8> {
    let mut a = vec![2u8, 0];
    a.extend_from_slice(&port.to_be_bytes());
    a.extend_from_slice(&[127, 0, 0, 1]);
    a.extend_from_slice(&[0u8; 20]);
    a.extend_from_slice(&16u16.to_le_bytes());
    a.extend_from_slice(&2u16.to_le_bytes());
    a
}

fn id_container(group: u32, flags: u32) -> Vec<u8> {
    let mut c = 1i32.to_le_bytes().to_vec();
    c.extend_from_slice(&1i32.to_le_bytes());
    c.extend_from_slice(&group.to_le_bytes());
    c.extend_from_slice(&flags.to_le_bytes());
    c.extend_from_slice(&1u32.to_le_bytes());
    c.extend_from_slice(&[0x24u8; 64]);
    c
}

fn read_frame(s: &mut TcpStream) -> Option<(CmdHeader, Vec<u8>)> {
    let mut head = [0u8; 120];
    s.read_exact(&mut head).ok()?;
    let h = CmdHeader::decode(&head).ok()?;
    let mut body = vec![0u8; usize::try_from(h.size).ok()?.min(1 << 20)];
    s.read_exact(&mut body).ok()?;
    Some((h, body))
}

fn send(s: &mut TcpStream, mut h: CmdHeader, body: &[u8]) {
    h.size = body.len() as u64;
    let mut out = h.encode().to_vec();
    out.extend_from_slice(body);
    s.write_all(&out).expect("peer write");
}

/// Answer the handshake (advertising `advertised_port`) and the route list.
fn handshake(s: &mut TcpStream, advertised_port: u16) {
    let (h, _) = read_frame(s).expect("reverse lookup");
    assert_eq!(
        (h.cmd, h.flags, h.trans),
        (command::REVERSE_LOOKUP, 0x18, 0)
    );
    let mut body = 1i32.to_le_bytes().to_vec();
    body.extend_from_slice(&1i32.to_le_bytes());
    body.extend_from_slice(&addr_bytes(advertised_port));
    body.extend_from_slice(&id_container(1, 0));
    send(
        s,
        CmdHeader {
            flags: cmd_flags::NOLOCK | cmd_flags::REPLY,
            ..h
        },
        &body,
    );
}

fn answer_route_list(s: &mut TcpStream) {
    let (h, _) = read_frame(s).expect("route list");
    assert_eq!((h.cmd, h.flags, h.trans), (command::ROUTE_LIST, 0x19, 1));
    let mut body = 1i32.to_le_bytes().to_vec();
    body.extend_from_slice(&0i32.to_le_bytes());
    send(
        s,
        CmdHeader {
            flags: cmd_flags::NOLOCK | cmd_flags::REPLY,
            ..h
        },
        &body,
    );
}

fn listener() -> (TcpListener, u16) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    (l, port)
}

#[test]
fn silent_node_times_out_then_gets_pinged_then_reset() {
    let (l, port) = listener();
    let (tx, rx) = mpsc::channel();
    let peer = std::thread::spawn(move || {
        let (mut s, _) = l.accept().expect("accept");
        handshake(&mut s, port);
        answer_route_list(&mut s);
        // Swallow everything, answer nothing; report each command and when the client hangs up.
        while let Some((h, _)) = read_frame(&mut s) {
            tx.send(Some((h.cmd, h.flags))).expect("report");
        }
        tx.send(None).expect("report eof");
    });
    let node = Node::new(ClientConfig {
        wait_timeout_s: 1,
        stall_count: 2,
        ..ClientConfig::default()
    });
    node.add_remotes(&[&format!("127.0.0.1:{port}:2")])
        .expect("connect");
    let mut s = Session::new(&node);
    s.set_groups(&[1]);
    for _ in 0..2 {
        let started = Instant::now();
        let err = s.lookup(&Key::from("k")).wait().expect_err("no answer");
        assert_eq!(err.status, -110);
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "timeout took {:?}",
            started.elapsed()
        );
    }
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(Some(cmd)) => seen.push(cmd),
            Ok(None) => break,
            Err(_) => continue,
        }
    }
    assert!(
        seen.contains(&(
            command::BACKEND_STATUS,
            cmd_flags::DIRECT | cmd_flags::NEED_ACK
        )),
        "seen {seen:?}"
    );
    peer.join()
        .expect("peer ended because the client reset the connection");
    let deadline = Instant::now() + Duration::from_secs(2);
    while !node.connections().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        node.connections().is_empty(),
        "reset connection is forgotten"
    );
}

#[test]
fn update_ids_disable_removes_the_route() {
    let (l, port) = listener();
    let peer = std::thread::spawn(move || {
        let (mut s, _) = l.accept().expect("accept");
        handshake(&mut s, port);
        answer_route_list(&mut s);
        let push = CmdHeader {
            cmd: command::UPDATE_IDS,
            flags: cmd_flags::DIRECT | cmd_flags::NOLOCK,
            ..CmdHeader::default()
        };
        send(&mut s, push, &id_container(1, 1));
        std::thread::sleep(Duration::from_secs(2));
    });
    let node = Node::new(ClientConfig::default());
    node.add_remotes(&[&format!("127.0.0.1:{port}:2")])
        .expect("connect");
    let deadline = Instant::now() + Duration::from_secs(2);
    while !node.routes().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(node.routes().is_empty());
    let mut s = Session::new(&node);
    s.set_groups(&[1]);
    assert_eq!(
        s.lookup(&Key::from("k")).wait().map_err(|e| e.status).err(),
        Some(-6)
    );
    peer.join().expect("peer");
}

#[test]
fn handshake_that_does_not_advertise_the_dialled_address_is_eproto() {
    let (l, port) = listener();
    let peer = std::thread::spawn(move || {
        let (mut s, _) = l.accept().expect("accept");
        handshake(&mut s, port.wrapping_add(1));
    });
    let node = Node::new(ClientConfig::default());
    let err = node
        .add_remotes(&[&format!("127.0.0.1:{port}:2")])
        .expect_err("must refuse");
    assert_eq!(err.status, -71);
    peer.join().expect("peer");
}

/// Serve one exec: check what arrived, answer a data reply (MORE) and the final ack.
fn answer_exec(s: &mut TcpStream, port: u16) -> (CmdHeader, Vec<u8>) {
    let (h, body) = read_frame(s).expect("exec");
    assert_eq!(h.cmd, command::EXEC);
    let mut reply = body.clone();
    reply.truncate(
        128 + usize::try_from(i32::from_le_bytes(body[80..84].try_into().expect("4")))
            .expect("size"),
    );
    reply[64..72].copy_from_slice(&5u64.to_le_bytes());
    reply[96..128].copy_from_slice(&addr_bytes(port));
    reply.extend_from_slice(b"hello");
    let flags = cmd_flags::REPLY | cmd_flags::MORE;
    send(s, CmdHeader { flags, ..h }, &reply);
    send(
        s,
        CmdHeader {
            flags: cmd_flags::REPLY,
            ..h
        },
        &[],
    );
    (h, body)
}

#[test]
fn exec_goes_to_the_key_owner_or_to_each_node_and_collects_replies() {
    let (l, port) = listener();
    let peer = std::thread::spawn(move || {
        let (mut s, _) = l.accept().expect("accept");
        handshake(&mut s, port);
        answer_route_list(&mut s);
        let broadcast = answer_exec(&mut s, port);
        let keyed = answer_exec(&mut s, port);
        (broadcast, keyed)
    });
    let node = Node::new(ClientConfig::default());
    node.add_remotes(&[&format!("127.0.0.1:{port}:2")])
        .expect("connect");
    let mut s = Session::new(&node);
    s.set_groups(&[1]);
    let all = s
        .exec(None, "app@event", b"", -1)
        .wait()
        .expect("broadcast exec");
    assert_eq!(all.len(), 2, "one data reply and one ack");
    let data = all[0].payload.as_ref().expect("data reply");
    assert_eq!(
        (data.event.as_str(), data.data.as_slice()),
        ("app@event", &b"hello"[..])
    );
    assert_eq!(
        data.address,
        Some(format!("127.0.0.1:{port}").parse().expect("addr"))
    );
    assert!(all[1].payload.is_none() && all[1].status == 0);
    s.exec(
        Some(&Key::from("routing key")),
        "app@event",
        b"routing key",
        7,
    )
    .wait()
    .expect("keyed exec");
    let ((bh, bbody), (kh, kbody)) = peer.join().expect("peer");
    // Broadcast: cmd.id and sph.src are the node's first ring id; SRC_BLOCK; src_key -1.
    assert_eq!(
        (bh.id.0, bh.group_id, bh.flags),
        ([0x24u8; 64], 1, cmd_flags::NEED_ACK)
    );
    assert_eq!(&bbody[..64], &[0x24u8; 64]);
    assert_eq!(&bbody[72..80], &1u64.to_le_bytes());
    assert_eq!(&bbody[92..96], &(-1i32).to_le_bytes());
    assert_eq!(&bbody[128..], b"app@event");
    // Keyed: cmd.id and sph.src are sha512 of the key; the data follows the event.
    let id = elliptics::key::RawId::from_key(b"routing key");
    assert_eq!((kh.id, kh.group_id), (id, 1));
    assert_eq!(&kbody[..64], &id.0);
    assert_eq!(&kbody[92..96], &7i32.to_le_bytes());
    assert_eq!(&kbody[128..], b"app@eventrouting key");
}
