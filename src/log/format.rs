//! The line format, after the 2.26 samples' pattern
//! `%(timestamp)s %(request_id)s/%(lwp)s/%(pid)s %(severity)s: %(message)s %(...L)s`:
//!
//! ```text
//! 2026-12-03 08:40:00.123456 00000000000004d2/23456/23450 ERROR: disk I/O error cmd=READ status=-5 trace_id=00000000000004d2 trans=7
//! ```
//!
//! The request id is the request's `trace_id` (zeros outside a request), severities carry
//! the original's names (DEBUG, INFO, WARNING, ERROR), and a line written while a request
//! is being served ends with its `trace_id` and `trans` ([`RequestScope`]). The severity is
//! coloured only when the sink is a terminal.

use std::cell::Cell;
use std::fmt::Write as _;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

thread_local! {
    /// The request this thread is serving right now: `(trace_id, trans)`.
    static CURRENT: Cell<Option<(u64, u64)>> = const { Cell::new(None) };
}

/// While alive, lines logged on this thread name the request `(trace_id, trans)`; the
/// previous request (if any) is restored on drop.
#[derive(Debug)]
pub struct RequestScope {
    previous: Option<(u64, u64)>,
}

impl RequestScope {
    pub fn enter(trace_id: u64, trans: u64) -> RequestScope {
        let previous = CURRENT.with(|c| c.replace(Some((trace_id, trans))));
        RequestScope { previous }
    }
}

impl Drop for RequestScope {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.previous));
    }
}

/// The request this thread serves now, if any.
pub fn current_request() -> Option<(u64, u64)> {
    CURRENT.with(Cell::get)
}

pin_project_lite::pin_project! {
    /// A future whose every poll runs inside the [`RequestScope`] of one request: the lines
    /// it logs carry the request's ids even when other requests' tasks run in between.
    #[derive(Debug)]
    pub struct InRequest<F> {
        ids: (u64, u64),
        #[pin]
        inner: F,
    }
}

/// Run `fut` inside the scope of request `(trace_id, trans)` at every poll.
pub fn in_request<F: Future>(trace_id: u64, trans: u64, fut: F) -> InRequest<F> {
    InRequest {
        ids: (trace_id, trans),
        inner: fut,
    }
}

impl<F: Future> Future for InRequest<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _scope = RequestScope::enter(this.ids.0, this.ids.1);
        this.inner.poll(cx)
    }
}

/// The original's severity name of a `tracing` level.
pub fn severity_name(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "ERROR",
        Level::WARN => "WARNING",
        Level::INFO => "INFO",
        Level::DEBUG | Level::TRACE => "DEBUG",
    }
}

fn severity_colour(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "\x1b[31m",
        Level::WARN => "\x1b[33m",
        Level::INFO => "\x1b[32m",
        Level::DEBUG | Level::TRACE => "\x1b[34m",
    }
}

/// "YYYY-MM-DD HH:MM:SS.uuuuuu" (UTC) of a time since the epoch.
pub fn civil_time(since_epoch: std::time::Duration) -> String {
    let secs = since_epoch.as_secs();
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
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
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{:06}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since_epoch.subsec_micros()
    )
}

/// The node's line format (see the module header).
#[derive(Debug, Clone, Copy, Default)]
pub struct LineFormat;

impl<S, N> FormatEvent<S, N> for LineFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let request = current_request();
        let level = event.metadata().level();
        let mut head = civil_time(now);
        let _ = write!(
            head,
            " {:016x}/{}/{} ",
            request.map_or(0, |r| r.0),
            rustix::thread::gettid().as_raw_nonzero(),
            std::process::id()
        );
        writer.write_str(&head)?;
        if writer.has_ansi_escapes() {
            write!(
                writer,
                "{}{}\x1b[0m: ",
                severity_colour(level),
                severity_name(level)
            )?;
        } else {
            write!(writer, "{}: ", severity_name(level))?;
        }
        ctx.format_fields(writer.by_ref(), event)?;
        if let Some((trace_id, trans)) = request {
            write!(writer, " trace_id={trace_id:016x} trans={trans}")?;
        }
        writeln!(writer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_scope_names_the_request_until_dropped_and_restores_the_outer_one() {
        assert_eq!(current_request(), None);
        {
            let _outer = RequestScope::enter(1, 2);
            {
                let _inner = RequestScope::enter(3, 4);
                assert_eq!(current_request(), Some((3, 4)));
            }
            assert_eq!(current_request(), Some((1, 2)));
        }
        assert_eq!(current_request(), None);
    }

    #[test]
    fn civil_time_prints_the_utc_date_with_microseconds() {
        let t = std::time::Duration::new(1_700_000_000, 123_456_000);
        assert_eq!(civil_time(t), "2023-11-14 22:13:20.123456");
    }
}
