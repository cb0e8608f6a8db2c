//! Requests the node makes itself, sent to one peer together (server-send's WRITEs): every
//! frame of the batch in one push on the link, the small parts copied into one buffer and
//! the large ones written as they are, one waiter slot per request, and one wake-up once
//! the last of them is answered (or expired, or failed with the link).
//!
//! Each request goes out as an ordinary frame, so the peer serves them one by one as it
//! serves any client's; only this side's bookkeeping is shared.
//!
//! | bytes            | what                                                  |
//! |------------------|-------------------------------------------------------|
//! | 0..120           | `dnet_cmd` of request 1 (trans from the link, size)   |
//! | 120..120+head    | its `head` (e.g. `dnet_io_attr`)                      |
//! | ..+value         | its `value`                                           |
//! | ...              | request 2, 3, ... the same way                        |

use super::link_to;
use crate::node::link::{BatchPending as Pending, Waiter};
use crate::node::reply::Frames;
use crate::node::shard::Shard;
use crate::protocol::{errno, CmdHeader, HEADER_SIZE_BYTES};
use crate::runtime::sync::oneshot;
use bytes::{Bytes, BytesMut};
use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Parts up to this size are copied into the batch's buffer; larger ones are written as
/// they are (no copy of a large value).
const INLINE_PART_BYTES: usize = 4096;

/// One request of a batch: its header (trans and size are filled in here) and its payload,
/// `head` then `value`.
#[derive(Debug)]
pub struct Outgoing {
    pub header: CmdHeader,
    pub head: Bytes,
    pub value: Bytes,
}

/// Send every request of `requests` to `peer` at once and wait until each is answered:
/// their statuses in the same order (0, the first error a reply carried, -ETIMEDOUT past
/// `timeout_ms`, or -ECONNRESET when the link dies).
pub async fn request_batch(
    shard: &Rc<Shard>,
    peer: SocketAddr,
    requests: Vec<Outgoing>,
    timeout_ms: u64,
) -> Vec<i32> {
    let count = requests.len();
    if count == 0 {
        return Vec::new();
    }
    let (tx, rx) = oneshot();
    let pending = Rc::new(Pending {
        statuses: RefCell::new(vec![0; count]),
        left: Cell::new(count),
        done: RefCell::new(Some(tx)),
    });
    let deadline = Instant::now() + Duration::from_millis(timeout_ms);
    let link = link_to(shard, peer);
    let inline: usize = requests
        .iter()
        .map(|r| HEADER_SIZE_BYTES + inline_len(&r.head) + inline_len(&r.value))
        .sum();
    let mut buf = BytesMut::with_capacity(inline);
    let mut frames = Frames::new();
    {
        let mut waiters = link.waiters.borrow_mut();
        for (index, req) in requests.into_iter().enumerate() {
            let mut header = req.header;
            header.trans = link.take_trans();
            header.size = (req.head.len() + req.value.len()) as u64;
            waiters.insert(
                header.trans,
                Waiter::Batch {
                    batch: pending.clone(),
                    index,
                    deadline,
                },
            );
            buf.extend_from_slice(&header.encode());
            for part in [req.head, req.value] {
                if part.len() <= INLINE_PART_BYTES {
                    buf.extend_from_slice(&part);
                } else {
                    if !buf.is_empty() {
                        frames.push_raw(buf.split().freeze());
                    }
                    frames.push_raw(part);
                }
            }
        }
    }
    if !buf.is_empty() {
        frames.push_raw(buf.freeze());
    }
    link.out.push(frames);
    // The link answers every waiter (reply, sweep, or its death), so the batch completes.
    rx.await.unwrap_or_else(|_| vec![errno::ECONNRESET; count])
}

fn inline_len(part: &Bytes) -> usize {
    if part.len() <= INLINE_PART_BYTES {
        part.len()
    } else {
        0
    }
}
