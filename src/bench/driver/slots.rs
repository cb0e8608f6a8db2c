//! The request slots: issuing a slot's next operation, counting its parts' replies,
//! finishing it into the recorder and ledger, and failing a broken client's slots.

use super::super::Op;
use super::{Driver, Phase, Slot};
use crate::protocol::errno;

impl Driver {
    pub(super) fn kick_idle_slots(&mut self) {
        for client in 0..self.slots.len() {
            for slot in 0..self.slots[client].len() {
                if self.client_alive[client] && !self.slots[client][slot].active {
                    self.issue(client, slot);
                }
            }
        }
    }

    /// Send the next operation on (client, slot), if the phase wants one.
    pub(super) fn issue(&mut self, client: usize, slot: usize) {
        let (op, key) = match self.phase {
            Phase::Fill => {
                if self.fill_next >= self.keys.len() {
                    return;
                }
                self.fill_next += 1;
                (Op::Write, self.fill_next - 1)
            }
            Phase::Warmup | Phase::Measure => {
                if self.phase == Phase::Measure {
                    if let Some(limit) = self.config.requests {
                        if self.measured_issued >= limit {
                            self.phase = Phase::Drain;
                            return;
                        }
                    }
                    self.measured_issued += 1;
                }
                (
                    self.config.mix.sample(&mut self.rng),
                    self.keys.sample(&mut self.rng),
                )
            }
            Phase::Drain => return,
        };
        let s = &mut self.slots[client][slot];
        s.seq = s.seq.wrapping_add(1) & 0xFFFF_FFFF_FFFF;
        let trans = slot as u64 | (s.seq << 16);
        let size_class = if op == Op::Write && self.write_sizes.len() > 1 {
            self.rng.below(self.write_sizes.len() as u64) as usize
        } else {
            0
        };
        *s = Slot {
            op,
            key,
            size_class,
            start: self.now,
            seq: s.seq,
            pending: 0,
            status: 0,
            active: true,
            measured: self.phase == Phase::Measure,
        };
        let id = *self.keys.id(key);
        let groups = if op.to_all_groups() {
            0..self.config.groups.len()
        } else {
            self.group_turn = (self.group_turn + 1) % self.config.groups.len();
            self.group_turn..self.group_turn + 1
        };
        for g in groups {
            let (node, backend) = self.routes[g][key];
            let c = client * self.nodes + node;
            let (t, out, group) = (
                &self.templates[node],
                &mut self.conns[c].out,
                self.config.groups[g],
            );
            if op == Op::Write {
                t.append_write(size_class, &id, group, backend, trans, out);
            } else {
                t.append(op, &id, group, backend, trans, out);
            }
            self.slots[client][slot].pending += 1;
            self.dirty.push(c);
        }
    }

    pub(super) fn part_done(&mut self, client: usize, trans: u64, status: i32) {
        let slot = (trans & 0xFFFF) as usize;
        let Some(s) = self.slots[client].get_mut(slot) else {
            return;
        };
        if !s.active || s.seq != trans >> 16 || s.pending == 0 {
            return;
        }
        s.pending -= 1;
        if s.status == 0 {
            s.status = status;
        }
        if s.pending > 0 {
            return;
        }
        s.active = false;
        let done = *s;
        self.finish(done);
        if self.client_alive[client] {
            self.issue(client, slot);
        }
    }

    fn finish(&mut self, s: Slot) {
        match s.op {
            Op::Write => {
                let size = self.write_sizes.get(s.size_class).copied().unwrap_or(0);
                self.ledger.written(s.key, size, s.status);
            }
            Op::Remove => self.ledger.removed(s.key, s.status),
            _ => {}
        }
        if s.measured {
            let latency_ns = self.now.saturating_duration_since(s.start).as_nanos();
            let latency_ns = u64::try_from(latency_ns).unwrap_or(u64::MAX);
            self.rec.record(s.op, latency_ns, s.status);
            if let Some(log) = self.intervals.as_mut() {
                log.record(latency_ns, s.status);
            }
        } else if self.phase == Phase::Fill {
            self.fill_done += 1;
            if s.status != 0 {
                self.fill_errors += 1;
            }
        }
    }

    pub(super) fn fail_client(&mut self, client: usize, status: i32) {
        self.client_alive[client] = false;
        for slot in 0..self.slots[client].len() {
            let s = &mut self.slots[client][slot];
            if s.active {
                s.active = false;
                s.status = status;
                let done = *s;
                self.finish(done);
            }
        }
    }

    pub(super) fn timeout_unfinished(&mut self) {
        if self.config.requests.is_none() {
            return; // a timed run simply stops; in-flight requests are not counted
        }
        for client in 0..self.slots.len() {
            if self.client_alive[client] {
                self.fail_client(client, errno::ETIMEDOUT);
            }
        }
    }
}
