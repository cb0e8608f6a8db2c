//! A worker's stdout and stderr, read off its pipes into the node log with bounded memory
//! and a bounded rate.
//!
//! Each pipe is read in [`PIPE_READ_BYTES`] pieces; a line longer than [`LINE_BYTES_MAX`]
//! is cut there (the rest of it is counted, not kept), so a worker writing without newlines
//! costs the node one read buffer and one line buffer per pipe. Lines go to the log at most
//! [`LOG_LINES_PER_S`] a second per worker (a burst of [`LOG_LINES_BURST`]); the others are
//! dropped and counted, the log says so once when dropping starts and gives the totals
//! when the worker exits. The last lines (each cut to [`TAIL_LINE_BYTES_MAX`]) are kept
//! for the log line that reports a worker failing to start or dying.

use std::collections::VecDeque;
use std::io::Read;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

/// Bytes read from a pipe at once.
pub const PIPE_READ_BYTES: usize = 64 * 1024;
/// Longest line logged; the rest of a longer line is dropped.
pub const LINE_BYTES_MAX: usize = 4096;
/// Lines per second one worker may put in the log.
pub const LOG_LINES_PER_S: u32 = 100;
/// Lines a worker may log at once before the rate applies.
pub const LOG_LINES_BURST: u32 = 200;
/// Longest line kept in the tail shown when a worker fails.
pub const TAIL_LINE_BYTES_MAX: usize = 512;

/// What one worker's output did, shared by its two pipe readers.
#[derive(Debug)]
pub struct Output {
    tag: String,
    tail_lines_max: usize,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    tail: VecDeque<String>,
    tokens: f64,
    refilled: Instant,
    dropped_lines: u64,
    cut_bytes: u64,
    said_dropping: bool,
}

impl Output {
    /// The output of worker `tag`, keeping its last `tail_lines_max` lines.
    pub fn new(tag: String, tail_lines_max: usize) -> Arc<Output> {
        Arc::new(Output {
            tag,
            tail_lines_max,
            state: Mutex::new(State {
                tail: VecDeque::new(),
                tokens: f64::from(LOG_LINES_BURST),
                refilled: Instant::now(),
                dropped_lines: 0,
                cut_bytes: 0,
                said_dropping: false,
            }),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The last lines, oldest first, joined for a log line (`|` between lines).
    pub fn tail(&self) -> String {
        let s = self.state();
        s.tail.iter().cloned().collect::<Vec<_>>().join(" | ")
    }

    /// Lines dropped by the rate limit and bytes cut off long lines, so far.
    pub fn dropped(&self) -> (u64, u64) {
        let s = self.state();
        (s.dropped_lines, s.cut_bytes)
    }

    /// Whole lines (already cut) read from `stream` in one piece, with the bytes cut off
    /// each: the ones the rate allows go to the log, the last ones to the tail.
    fn lines(&self, stream: &str, lines: &[(&[u8], u64)]) {
        let logged = {
            let mut s = self.state();
            let cut: u64 = lines.iter().map(|(_, c)| *c).sum();
            s.cut_bytes = s.cut_bytes.saturating_add(cut);
            let keep = lines.len().min(self.tail_lines_max);
            for (line, _) in lines.get(lines.len() - keep..).unwrap_or_default() {
                if s.tail.len() >= self.tail_lines_max {
                    s.tail.pop_front();
                }
                let line = line.get(..TAIL_LINE_BYTES_MAX).unwrap_or(line);
                s.tail.push_back(String::from_utf8_lossy(line).into_owned());
            }
            let now = Instant::now();
            let earned = now.duration_since(s.refilled).as_secs_f64() * f64::from(LOG_LINES_PER_S);
            s.tokens = (s.tokens + earned).min(f64::from(LOG_LINES_BURST));
            s.refilled = now;
            let allowed = lines.len().min(s.tokens as usize);
            s.tokens -= allowed as f64;
            let dropped = (lines.len() - allowed) as u64;
            s.dropped_lines = s.dropped_lines.saturating_add(dropped);
            if dropped > 0 && !s.said_dropping {
                s.said_dropping = true;
                tracing::warn!(
                    worker = %self.tag,
                    "worker writes more than {LOG_LINES_PER_S} lines/s: dropping lines from the log (counted)"
                );
            }
            allowed
        };
        for (line, cut) in lines.get(..logged).unwrap_or_default() {
            let text = String::from_utf8_lossy(line);
            if *cut > 0 {
                tracing::info!(worker = %self.tag, stream, "{text} [{cut} more bytes of this line dropped]");
            } else {
                tracing::info!(worker = %self.tag, stream, "{text}");
            }
        }
    }

    /// Read `pipe` to its end, line by line, with bounded memory.
    pub fn read_pipe(&self, mut pipe: impl Read, stream: &str) {
        let mut buf = vec![0u8; PIPE_READ_BYTES];
        // The line that continues past the current read, cut at LINE_BYTES_MAX.
        let mut carry: Vec<u8> = Vec::with_capacity(256);
        let mut carry_cut: u64 = 0;
        loop {
            let n = match pipe.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let read = buf.get(..n).unwrap_or_default();
            let mut whole: Vec<(&[u8], u64)> = Vec::new();
            let mut first: Option<(Vec<u8>, u64)> = None;
            let mut rest = read;
            while let Some(i) = rest.iter().position(|b| *b == b'\n') {
                let piece = rest.get(..i).unwrap_or_default();
                rest = rest.get(i + 1..).unwrap_or_default();
                if first.is_none() && (!carry.is_empty() || carry_cut > 0) {
                    let cut = append_cut(&mut carry, piece);
                    first = Some((std::mem::take(&mut carry), carry_cut + cut));
                    carry_cut = 0;
                    continue;
                }
                let keep = piece.len().min(LINE_BYTES_MAX);
                whole.push((
                    piece.get(..keep).unwrap_or_default(),
                    (piece.len() - keep) as u64,
                ));
            }
            if let Some((line, cut)) = &first {
                self.lines(stream, &[(line.as_slice(), *cut)]);
            }
            if !whole.is_empty() {
                self.lines(stream, &whole);
            }
            carry_cut += append_cut(&mut carry, rest);
        }
        if !carry.is_empty() || carry_cut > 0 {
            self.lines(stream, &[(carry.as_slice(), carry_cut)]);
        }
    }
}

/// Append `piece` to `line` up to [`LINE_BYTES_MAX`]; the bytes cut.
fn append_cut(line: &mut Vec<u8>, piece: &[u8]) -> u64 {
    let keep = piece.len().min(LINE_BYTES_MAX.saturating_sub(line.len()));
    line.extend_from_slice(piece.get(..keep).unwrap_or_default());
    (piece.len() - keep) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_are_cut_and_the_tail_keeps_the_last_lines() {
        let out = Output::new("app/w".into(), 2);
        let mut input = vec![b'x'; 3 * LINE_BYTES_MAX];
        input.extend_from_slice(b"\nsecond\nthird");
        out.read_pipe(&input[..], "stderr");
        assert_eq!(out.tail(), "second | third");
        assert_eq!(out.dropped(), (0, 2 * LINE_BYTES_MAX as u64));
    }

    #[test]
    fn lines_beyond_the_burst_are_dropped_and_counted() {
        let out = Output::new("app/w".into(), 1);
        let input = "line\n".repeat(LOG_LINES_BURST as usize + 1000);
        out.read_pipe(input.as_bytes(), "stdout");
        let (dropped, _) = out.dropped();
        // The rate refills a little while the lines are read; most of the excess is dropped.
        assert!(dropped >= 900, "dropped {dropped}");
        assert_eq!(out.tail(), "line");
    }
}
