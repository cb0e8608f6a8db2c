//! The local time of day, for schedules given in hours (the defrag window).
#![allow(unsafe_code)]

/// The local hour of day now (0-23); 0 when the C library cannot tell.
pub fn local_hour() -> u32 {
    // SAFETY: `time` with a null pointer only returns the time; `localtime_r` writes the
    // broken-down time into `tm`, a zeroed plain C struct on this stack frame.
    unsafe {
        let now = libc::time(std::ptr::null_mut());
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&now, &mut tm).is_null() {
            return 0;
        }
        u32::try_from(tm.tm_hour).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_local_hour_is_an_hour_of_the_day() {
        assert!(super::local_hour() < 24);
    }
}
