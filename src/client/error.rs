//! Client errors: every failure carries the Elliptics errno (`status`, negative) and the
//! Elliptics-style message, e.g.
//! `"1:3ab1736f1f57: Failed to process READ command: No such file or directory: -2"`.

use crate::key::RawId;
use crate::protocol::{command, errno};

/// A failed client operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ClientError {
    /// Negative errno (`-2` ENOENT, `-6` ENXIO, `-110` ETIMEDOUT, …).
    pub status: i32,
    /// Human-readable text in the Elliptics format.
    pub message: String,
}

impl ClientError {
    /// An error with an explicit message.
    pub fn new(status: i32, message: impl Into<String>) -> ClientError {
        ClientError {
            status,
            message: message.into(),
        }
    }

    /// An error with only the strerror text: `"<strerror>: <status>"`.
    pub fn from_status(status: i32) -> ClientError {
        ClientError::new(status, format!("{}: {}", errno::message(status), status))
    }

    /// The per-command failure message Elliptics prints:
    /// `"<group>:<6-byte id hex>: Failed to process <CMD> command: <strerror>: <status>"`.
    pub fn command(status: i32, group: u32, id: &RawId, cmd: i32) -> ClientError {
        let name = command::name(cmd).unwrap_or("UNKNOWN");
        ClientError::new(
            status,
            format!(
                "{}:{}: Failed to process {} command: {}: {}",
                group,
                id.short_hex(),
                name,
                errno::message(status),
                status
            ),
        )
    }

    /// No route to any node of `group` (-ENXIO).
    pub fn no_route(group: u32, id: &RawId, cmd: i32) -> ClientError {
        ClientError::command(errno::ENXIO, group, id, cmd)
    }

    /// The checker found no successful entry among `total` sent requests.
    pub fn insufficient(total: usize, last: Option<&ClientError>) -> ClientError {
        let status = last.map_or(errno::ENXIO, |e| e.status);
        let tail = last.map_or_else(
            || ClientError::from_status(status).message,
            |e| e.message.clone(),
        );
        ClientError::new(
            status,
            format!("insufficient results count due to checker: 0 of {total} ({total}): {tail}"),
        )
    }

    /// A protocol violation by the peer (-EPROTO).
    pub fn protocol(what: impl std::fmt::Display) -> ClientError {
        ClientError::new(
            errno::EPROTO,
            format!("protocol error: {what}: {}", errno::EPROTO),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_error_reads_like_elliptics() {
        let id = RawId::from_key(b"somekey");
        let e = ClientError::command(errno::ENOENT, 1, &id, command::READ);
        assert_eq!(
            e.to_string(),
            "1:3ab1736f1f57: Failed to process READ command: No such file or directory: -2"
        );
        assert_eq!(e.status, errno::ENOENT);
    }

    #[test]
    fn checker_failure_without_entries_is_enxio() {
        let e = ClientError::insufficient(0, None);
        assert_eq!(e.status, errno::ENXIO);
        assert_eq!(
            e.message,
            "insufficient results count due to checker: 0 of 0 (0): No such device or address: -6"
        );
    }
}
