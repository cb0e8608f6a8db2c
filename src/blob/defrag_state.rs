//! What the owner of a log asks of its defragmentation and what it reports: the level
//! asked for (eblob's `start` = every sealed file holding removed records, `compact` =
//! only files whose removed share reached `defrag_percentage`), a stop request, the state
//! shown in BACKEND_STATUS, counters for the monitor, and the timed check: every
//! `defrag_timeout` seconds, inside the hours `defrag_time` +- `defrag_splay` (local
//! time, wrapping at midnight, [`crate::io::clock::local_hour`]), a compact pass is started.

use std::cell::Cell;
use std::time::{Duration, Instant};

/// Which files a defrag pass rewrites.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefragLevel {
    /// Every sealed file holding removed records.
    Start,
    /// Sealed files whose removed bytes reached `defrag_percentage` of the file.
    Compact,
}

/// `dnet_backend_status.defrag_state` values this log reports.
pub mod state {
    pub const NOT_STARTED: u32 = 0;
    pub const DATA_SORT: u32 = 1;
    pub const COMPACT: u32 = 3;
}

/// A snapshot of a log's defragmentation, for BACKEND_STATUS and the monitor.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DefragStatus {
    /// One of [`state`].
    pub state: u32,
    /// Passes finished (or stopped) since open.
    pub runs: u64,
    pub files_rewritten: u64,
    /// Bytes of data files given back.
    pub bytes_freed: u64,
    /// Sealed files whose removed share reached `defrag_percentage` now.
    pub files_wanting: u64,
}

/// The defrag requests and counters of one log.
#[derive(Debug)]
pub struct DefragControl {
    pub(super) requested: Cell<Option<DefragLevel>>,
    pub(super) running: Cell<Option<DefragLevel>>,
    pub(super) stop: Cell<bool>,
    pub(super) runs: Cell<u64>,
    pub(super) files_rewritten: Cell<u64>,
    pub(super) bytes_freed: Cell<u64>,
    last_timed: Cell<Instant>,
}

impl Default for DefragControl {
    fn default() -> Self {
        DefragControl {
            requested: Cell::new(None),
            running: Cell::new(None),
            stop: Cell::new(false),
            runs: Cell::new(0),
            files_rewritten: Cell::new(0),
            bytes_freed: Cell::new(0),
            last_timed: Cell::new(Instant::now()),
        }
    }
}

/// When timed defrags may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DefragSchedule {
    /// `defrag_timeout`: seconds between timed checks; 0 = never.
    pub timeout_s: u64,
    /// `defrag_time`: hour of day (0-23) the window is centred on.
    pub time_hour: u32,
    /// `defrag_splay`: hours either side of `time_hour`; 12 or more = any hour.
    pub splay_hours: u32,
}

impl Default for DefragSchedule {
    /// eblob's defaults: a check a day, between 00:00 and 06:00.
    fn default() -> Self {
        DefragSchedule {
            timeout_s: 86_400,
            time_hour: 3,
            splay_hours: 3,
        }
    }
}

impl DefragSchedule {
    /// Whether `hour` (0-23) lies in `time_hour` +- `splay_hours`, across midnight.
    pub fn hour_in_window(&self, hour: u32) -> bool {
        let hour = hour % 24;
        let centre = self.time_hour % 24;
        let apart = hour.abs_diff(centre);
        apart.min(24 - apart) <= self.splay_hours
    }
}

impl DefragControl {
    /// Ask for a pass at `level` (a compact request does not narrow a start request).
    pub fn request(&self, level: DefragLevel) {
        self.stop.set(false);
        if self.requested.get() != Some(DefragLevel::Start) {
            self.requested.set(Some(level));
        }
    }

    /// A timed check is due (and now counts as done) when `defrag_timeout` has passed
    /// and the local hour is inside the window.
    pub fn timed_check_due(&self, schedule: &DefragSchedule, hour: u32) -> bool {
        if schedule.timeout_s == 0
            || self.last_timed.get().elapsed() < Duration::from_secs(schedule.timeout_s)
        {
            return false;
        }
        self.last_timed.set(Instant::now());
        schedule.hour_in_window(hour)
    }

    pub fn state(&self) -> u32 {
        match self.running.get() {
            None => state::NOT_STARTED,
            Some(DefragLevel::Start) => state::DATA_SORT,
            Some(DefragLevel::Compact) => state::COMPACT,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_wraps_at_midnight() {
        let s = DefragSchedule {
            timeout_s: 1,
            time_hour: 23,
            splay_hours: 2,
        };
        assert!(s.hour_in_window(23) && s.hour_in_window(0) && s.hour_in_window(1));
        assert!(s.hour_in_window(21) && !s.hour_in_window(2) && !s.hour_in_window(12));
        let any = DefragSchedule {
            splay_hours: 12,
            ..s
        };
        assert!((0..24).all(|h| any.hour_in_window(h)));
    }

    #[test]
    fn a_start_request_is_not_narrowed_to_compact() {
        let c = DefragControl::default();
        c.request(DefragLevel::Start);
        c.request(DefragLevel::Compact);
        assert_eq!(c.requested.get(), Some(DefragLevel::Start));
    }
}

/// Where a defrag may be stopped on purpose, to test crash handling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefragStop {
    /// Run to the end.
    Never,
    /// After the new files are durable, before the commit marker.
    BeforeMarker,
    /// After the commit marker, before the renames.
    BeforeRename,
}
