//! Times as the original tools print them, in UTC: `dnet_print_time`'s
//! "YYYY-MM-DD HH:MM:SS.uuuuuu" and `dnet_find`'s "YYYY-MM-DD HH:MM:SS UTC".

use crate::protocol::DnetTime;

/// (year, month, day, hour, minute, second) of `tsec` seconds since 1970-01-01 UTC.
fn civil(tsec: u64) -> (i64, i64, i64, u64, u64, u64) {
    let days = i64::try_from(tsec / 86_400).unwrap_or(0);
    let rem = tsec % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day, rem / 3600, rem % 3600 / 60, rem % 60)
}

/// `dnet_print_time`: "YYYY-MM-DD HH:MM:SS.uuuuuu" (UTC).
pub fn print_time(t: &DnetTime) -> String {
    let (y, mo, d, h, mi, s) = civil(t.tsec);
    format!(
        "{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}.{:06}",
        t.tnsec / 1000
    )
}

/// The record time `dnet_find` prints: "YYYY-MM-DD HH:MM:SS UTC".
pub fn print_time_seconds(t: &DnetTime) -> String {
    let (y, mo, d, h, mi, s) = civil(t.tsec);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02} UTC")
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
