//! The sockets: reading replies off a connection and matching them to their slots, and
//! writing out each dirty connection's pending requests.

use super::{Driver, REPLY_MAX_BYTES};
use crate::protocol::{cmd_flags, errno, split_frame, HEADER_SIZE_BYTES};
use std::io::{ErrorKind, Read, Write};

impl Driver {
    pub(super) fn read_conn(&mut self, c: usize) {
        let mut replies = std::mem::take(&mut self.replies);
        let mut broken = false;
        let conn = &mut self.conns[c];
        loop {
            if conn.in_len == conn.inbuf.len() {
                // Only a frame larger than the buffer gets here: grow to fit it.
                let need = match split_frame(&conn.inbuf[..conn.in_len], REPLY_MAX_BYTES) {
                    Err(crate::protocol::DecodeError::Incomplete { needed }) => needed,
                    _ => {
                        broken = true;
                        break;
                    }
                };
                let new_len = conn.in_len + need.max(HEADER_SIZE_BYTES);
                conn.inbuf.resize(new_len, 0);
            }
            match conn.stream.read(&mut conn.inbuf[conn.in_len..]) {
                Ok(0) => {
                    broken = true;
                    break;
                }
                Ok(n) => {
                    conn.in_len += n;
                    let mut used = 0;
                    loop {
                        match split_frame(&conn.inbuf[used..conn.in_len], REPLY_MAX_BYTES) {
                            Ok((frame, len)) => {
                                used += len;
                                let h = frame.header;
                                if h.is_reply() && h.flags & cmd_flags::MORE == 0 {
                                    replies.push((h.trans, h.status));
                                }
                            }
                            Err(crate::protocol::DecodeError::Incomplete { .. }) => break,
                            Err(_) => {
                                broken = true;
                                break;
                            }
                        }
                    }
                    conn.inbuf.copy_within(used..conn.in_len, 0);
                    conn.in_len -= used;
                    if broken {
                        break;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => {
                    broken = true;
                    break;
                }
            }
        }
        let client = c / self.nodes;
        for (trans, status) in replies.drain(..) {
            self.part_done(client, trans, status);
        }
        self.replies = replies;
        if broken {
            self.fail_client(client, errno::ECONNRESET);
        }
    }

    pub(super) fn flush_dirty(&mut self) {
        let mut dirty = std::mem::take(&mut self.dirty);
        dirty.sort_unstable();
        dirty.dedup();
        for c in dirty.drain(..) {
            let conn = &mut self.conns[c];
            let mut broken = false;
            while conn.out_pos < conn.out.len() {
                match conn.stream.write(&conn.out[conn.out_pos..]) {
                    Ok(0) => {
                        broken = true;
                        break;
                    }
                    Ok(n) => conn.out_pos += n,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(_) => {
                        broken = true;
                        break;
                    }
                }
            }
            if conn.out_pos == conn.out.len() {
                conn.out.clear();
                conn.out_pos = 0;
            }
            if broken {
                self.fail_client(c / self.nodes, errno::ECONNRESET);
            }
        }
        self.dirty = dirty;
    }
}
