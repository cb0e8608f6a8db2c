//! EXEC replies stream: each worker chunk reaches a blocked caller as soon as the worker
//! writes it, not when the worker closes. The echo app's `drip` event writes three chunks
//! with pauses between them; a raw-socket client times every frame it receives. Keys owned
//! by each shard of a two-shard node make one exec run on the connection's shard and the
//! other cross the mailbox, so both paths are covered.

mod common;
mod srw_common;

use common::raw::RawConn;
use elliptics::key::RawId;
use elliptics::protocol::{cmd_flags, command, sph_flags, CmdHeader, ExecPayload, Sph};
use elliptics::routing::shard_of;
use srw_common::{srw_node, upload_echo};
use std::time::{Duration, Instant};

const PROFILE: &str = r#"{"isolate": {"type": "process", "args": {"spool": "/tmp"}}}"#;
const SHARD_COUNT: usize = 2;
/// The pause the worker makes between its chunks.
const PAUSE_MS: u64 = 700;

/// A key whose id belongs to `shard`.
fn key_on_shard(shard: usize) -> Vec<u8> {
    (0u32..)
        .map(|i| format!("drip-{i}").into_bytes())
        .find(|k| shard_of(&RawId::from_key(k), SHARD_COUNT) == shard)
        .expect("some key lands on every shard")
}

/// A blocked `echo@drip` exec for `key` with the pause as its data.
fn drip_request(key: &[u8]) -> (CmdHeader, Vec<u8>) {
    let event = b"echo@drip";
    let data = PAUSE_MS.to_string();
    let payload = ExecPayload {
        sph: Sph {
            flags: sph_flags::SRC_BLOCK,
            ..Sph::default()
        },
        event,
        data: data.as_bytes(),
    }
    .encode();
    let header = CmdHeader {
        id: RawId::from_key(key),
        group_id: 1,
        cmd: command::EXEC,
        flags: cmd_flags::NEED_ACK,
        ..CmdHeader::default()
    };
    (header, payload)
}

/// Send one drip exec on a fresh connection; every frame of its transaction with the time
/// it arrived.
fn timed_drip(node: &common::TestNode, key: &[u8]) -> Vec<(Instant, CmdHeader, Vec<u8>)> {
    let (mut c, _) = RawConn::handshaken(node.addr());
    let (header, payload) = drip_request(key);
    let trans = c.request(header, &payload);
    let mut frames = Vec::new();
    loop {
        let r = c.recv().expect("a frame before the connection closes");
        if r.header.trans != trans {
            continue;
        }
        let last = r.header.flags & cmd_flags::MORE == 0;
        frames.push((Instant::now(), r.header, r.payload));
        if last {
            return frames;
        }
    }
}

#[test]
fn each_exec_chunk_reaches_the_caller_before_the_worker_closes() {
    let node = srw_node(SHARD_COUNT);
    upload_echo(&node, "echo", PROFILE, "{}");
    for shard in 0..SHARD_COUNT {
        let key = key_on_shard(shard);
        let frames = timed_drip(&node, &key);
        assert_eq!(
            frames.len(),
            4,
            "three chunks and the ack (key on shard {shard})"
        );
        for (i, (_, h, payload)) in frames.iter().take(3).enumerate() {
            assert_eq!(h.status, 0);
            assert_ne!(h.flags & cmd_flags::MORE, 0, "chunk {i} announces more");
            let p = ExecPayload::decode(payload).expect("chunk is sph + event + data");
            assert_eq!(p.event, b"echo@drip");
            assert_eq!(p.data, format!("chunk-{i}").as_bytes());
        }
        let (ack_at, ack, _) = &frames[3];
        assert_eq!((ack.status, ack.size), (0, 0), "final ack");
        let first_at = frames[0].0;
        let second_at = frames[1].0;
        // Batched replies would all arrive together with the ack.
        let min_gap = Duration::from_millis(PAUSE_MS * 8 / 10);
        assert!(
            second_at.duration_since(first_at) >= min_gap,
            "chunk 1 came {:?} after chunk 0 (key on shard {shard})",
            second_at.duration_since(first_at)
        );
        assert!(
            ack_at.duration_since(first_at) >= 2 * min_gap,
            "the first chunk came only {:?} before the close (key on shard {shard})",
            ack_at.duration_since(first_at)
        );
    }
}
