//! Times as the original tools print them, in UTC: `dnet_print_time`'s
//! "YYYY-MM-DD HH:MM:SS.uuuuuu" and `dnet_find`'s "YYYY-MM-DD HH:MM:SS UTC".

use crate::protocol::DnetTime;

fn since_epoch(t: &DnetTime) -> std::time::Duration {
    std::time::Duration::new(t.tsec, u32::try_from(t.tnsec.min(999_999_999)).unwrap_or(0))
}

/// `dnet_print_time`: "YYYY-MM-DD HH:MM:SS.uuuuuu" (UTC), the date the node's log lines carry.
pub fn print_time(t: &DnetTime) -> String {
    crate::log::format::civil_time(since_epoch(t))
}

/// The record time `dnet_find` prints: "YYYY-MM-DD HH:MM:SS UTC".
pub fn print_time_seconds(t: &DnetTime) -> String {
    let full = print_time(t);
    format!("{} UTC", full.split('.').next().unwrap_or(&full))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_print_as_the_original_tools_print_them() {
        let t = DnetTime {
            tsec: 1_796_282_328,
            tnsec: 733_452_000,
        };
        assert_eq!(print_time(&t), "2026-12-03 07:18:48.733452");
        let t = DnetTime {
            tsec: 1_796_282_256,
            tnsec: 0,
        };
        assert_eq!(print_time_seconds(&t), "2026-12-03 07:17:36 UTC");
        assert_eq!(
            print_time(&DnetTime::default()),
            "1970-01-01 00:00:00.000000"
        );
    }
}
