//! Decode errors: every failure names the structure and field that was wrong.

/// Why a byte sequence is not a valid frame or body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// More bytes are needed before the structure can be decoded.
    #[error("incomplete input: need {needed} more bytes")]
    Incomplete { needed: usize },
    /// A length field announces more bytes than the configured limit allows.
    #[error("{field} is {len} bytes, over the limit of {max}")]
    TooLarge {
        field: &'static str,
        len: u64,
        max: u64,
    },
    /// A body is shorter than the structure it must hold.
    #[error("{field}: body is {actual} bytes, expected at least {expected}")]
    TooShort {
        field: &'static str,
        expected: usize,
        actual: usize,
    },
    /// A body holds bytes after the structure it must hold.
    #[error("{field}: {extra} unexpected trailing bytes")]
    Trailing { field: &'static str, extra: usize },
    /// A length field disagrees with the bytes actually present.
    #[error("{field} declares {declared} bytes but {actual} are present")]
    SizeMismatch {
        field: &'static str,
        declared: u64,
        actual: u64,
    },
    /// A field holds a value outside its domain.
    #[error("{field}: invalid value {value}")]
    InvalidValue { field: &'static str, value: i64 },
}
