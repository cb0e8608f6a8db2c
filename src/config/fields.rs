//! A walker over one JSON object of the config that reads fields the way Elliptics 2.26
//! does (integers as numbers or numeric strings, sizes with K/M/G/T), names the JSON path
//! in every error, and reports keys nobody read as warnings.

use super::ConfigError;
use serde_json::{Map, Value};

/// The fields of one JSON object, at `path` in the document.
pub(crate) struct Fields<'a> {
    path: String,
    map: &'a Map<String, Value>,
    seen: Vec<&'static str>,
}

/// The JSON path of `key` under `parent` ("" is the document root).
pub(crate) fn join_path(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl<'a> Fields<'a> {
    /// Walk `value`, which must be an object.
    pub(crate) fn object(value: &'a Value, path: String) -> Result<Self, ConfigError> {
        match value {
            Value::Object(map) => Ok(Fields {
                path,
                map,
                seen: Vec::new(),
            }),
            other => Err(ConfigError::field(
                &path,
                format!("expected an object, got {}", kind_of(other)),
            )),
        }
    }

    /// The JSON path of `key` in this object.
    pub(crate) fn path_of(&self, key: &str) -> String {
        join_path(&self.path, key)
    }

    /// The raw value of `key`, marking it as read. `null` counts as absent.
    pub(crate) fn raw(&mut self, key: &'static str) -> Option<&'a Value> {
        self.seen.push(key);
        self.map.get(key).filter(|value| !value.is_null())
    }

    /// Mark keys as known but unused (accepted for compatibility).
    pub(crate) fn accept(&mut self, keys: &[&'static str]) {
        self.seen.extend_from_slice(keys);
    }

    /// Fail with "missing required key" when `value` is `None`.
    pub(crate) fn required<T>(&self, key: &str, value: Option<T>) -> Result<T, ConfigError> {
        value.ok_or_else(|| ConfigError::field(&self.path_of(key), "missing required key"))
    }

    /// A sub-object of `key`, if present.
    pub(crate) fn object_of(
        &mut self,
        key: &'static str,
    ) -> Result<Option<Fields<'a>>, ConfigError> {
        let path = self.path_of(key);
        self.raw(key)
            .map(|value| Fields::object(value, path))
            .transpose()
    }

    /// A string.
    pub(crate) fn string(&mut self, key: &'static str) -> Result<Option<&'a str>, ConfigError> {
        match self.raw(key) {
            None => Ok(None),
            Some(Value::String(text)) => Ok(Some(text)),
            Some(other) => Err(self.type_error(key, "a string", other)),
        }
    }

    /// A boolean; 0 and 1 (numbers or strings) are accepted too.
    pub(crate) fn boolean(&mut self, key: &'static str) -> Result<Option<bool>, ConfigError> {
        let value = match self.raw(key) {
            None => return Ok(None),
            Some(value) => value,
        };
        match value {
            Value::Bool(flag) => Ok(Some(*flag)),
            Value::Number(n) if n.as_u64() == Some(0) => Ok(Some(false)),
            Value::Number(n) if n.as_u64() == Some(1) => Ok(Some(true)),
            Value::String(text) => match text.trim() {
                "true" | "1" => Ok(Some(true)),
                "false" | "0" => Ok(Some(false)),
                _ => Err(self.type_error(key, "true or false", value)),
            },
            other => Err(self.type_error(key, "true or false", other)),
        }
    }

    /// An array of strings.
    pub(crate) fn strings(
        &mut self,
        key: &'static str,
    ) -> Result<Option<Vec<&'a str>>, ConfigError> {
        let items = match self.raw(key) {
            None => return Ok(None),
            Some(Value::Array(items)) => items,
            Some(other) => return Err(self.type_error(key, "an array of strings", other)),
        };
        let mut out = Vec::with_capacity(items.len());
        for (index, item) in items.iter().enumerate() {
            match item {
                Value::String(text) => out.push(text.as_str()),
                other => {
                    let path = format!("{}[{index}]", self.path_of(key));
                    let problem = format!("expected a string, got {}", kind_of(other));
                    return Err(ConfigError::field(&path, problem));
                }
            }
        }
        Ok(Some(out))
    }

    /// An unsigned integer given as a number or a numeric string (decimal or 0x hex).
    pub(crate) fn unsigned(&mut self, key: &'static str) -> Result<Option<u64>, ConfigError> {
        self.number_with(key, "a non-negative integer", |text| {
            parse_unsigned(text, false)
        })
    }

    /// A byte size: a number, or a string with an optional K/M/G/T suffix (x1024^n).
    pub(crate) fn size_bytes(&mut self, key: &'static str) -> Result<Option<u64>, ConfigError> {
        self.number_with(key, "a size such as 1048576 or \"100G\"", |text| {
            parse_unsigned(text, true)
        })
    }

    /// A signed integer given as a number or a numeric string.
    pub(crate) fn signed(&mut self, key: &'static str) -> Result<Option<i64>, ConfigError> {
        let value = match self.raw(key) {
            None => return Ok(None),
            Some(value) => value,
        };
        let parsed = match value {
            Value::Number(n) => n.as_i64(),
            Value::String(text) => text.trim().parse::<i64>().ok(),
            _ => None,
        };
        parsed
            .map(Some)
            .ok_or_else(|| self.type_error(key, "an integer", value))
    }

    /// An unsigned integer that must fit `T`.
    pub(crate) fn unsigned_as<T: TryFrom<u64>>(
        &mut self,
        key: &'static str,
    ) -> Result<Option<T>, ConfigError> {
        let Some(value) = self.unsigned(key)? else {
            return Ok(None);
        };
        T::try_from(value).map(Some).map_err(|_| {
            let problem = format!("{value} is out of range");
            ConfigError::field(&self.path_of(key), problem)
        })
    }

    fn number_with(
        &mut self,
        key: &'static str,
        expected: &str,
        parse_text: impl Fn(&str) -> Option<u64>,
    ) -> Result<Option<u64>, ConfigError> {
        let value = match self.raw(key) {
            None => return Ok(None),
            Some(value) => value,
        };
        let parsed = match value {
            Value::Number(n) => n.as_u64(),
            Value::String(text) => parse_text(text.trim()),
            _ => None,
        };
        parsed
            .map(Some)
            .ok_or_else(|| self.type_error(key, expected, value))
    }

    fn type_error(&self, key: &str, expected: &str, got: &Value) -> ConfigError {
        let shown = match got {
            Value::String(text) => format!("{text:?}"),
            Value::Number(n) => n.to_string(),
            other => kind_of(other).to_string(),
        };
        ConfigError::field(
            &self.path_of(key),
            format!("expected {expected}, got {shown}"),
        )
    }

    /// JSON paths of the keys that were never read, in document order.
    pub(crate) fn unread_paths(&self) -> Vec<String> {
        self.map
            .keys()
            .filter(|key| !self.seen.contains(&key.as_str()))
            .map(|key| join_path(&self.path, key))
            .collect()
    }

    /// Report every key that was not read as a warning naming its JSON path.
    pub(crate) fn finish(self, warnings: &mut Vec<String>) {
        for path in self.unread_paths() {
            warnings.push(format!("{path}: unknown key, ignored"));
        }
    }
}

/// Parse a decimal or 0x-hex unsigned integer, with a K/M/G/T suffix when `sized`.
pub(crate) fn parse_unsigned(text: &str, sized: bool) -> Option<u64> {
    let (digits, shift) = match text.char_indices().last() {
        Some((at, suffix)) if sized && suffix.is_ascii_alphabetic() && !text.starts_with("0x") => {
            let shift = match suffix.to_ascii_uppercase() {
                'K' => 10,
                'M' => 20,
                'G' => 30,
                'T' => 40,
                _ => return None,
            };
            (text.get(..at)?, shift)
        }
        _ => (text, 0),
    };
    let value = match digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        Some(hex) => u64::from_str_radix(hex, 16).ok()?,
        None => digits.parse::<u64>().ok()?,
    };
    value.checked_mul(1u64 << shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_binary_suffixes_and_reject_overflow() {
        assert_eq!(parse_unsigned("100G", true), Some(100 << 30));
        assert_eq!(parse_unsigned("4k", true), Some(4096));
        assert_eq!(parse_unsigned("2T", true), Some(2 << 40));
        assert_eq!(parse_unsigned("7", true), Some(7));
        assert_eq!(parse_unsigned("0x10", false), Some(16));
        assert_eq!(parse_unsigned("100G", false), None);
        assert_eq!(parse_unsigned("16777216T", true), None);
        assert_eq!(parse_unsigned("5X", true), None);
        assert_eq!(parse_unsigned("", true), None);
        assert_eq!(parse_unsigned("G", true), None);
    }

    #[test]
    fn unread_keys_become_warnings_with_their_path() {
        let value: Value = serde_json::json!({"a": 1, "b": "2", "zzz": true});
        let mut fields = Fields::object(&value, "options".into()).unwrap();
        assert_eq!(fields.unsigned("a").unwrap(), Some(1));
        assert_eq!(fields.unsigned("b").unwrap(), Some(2));
        let mut warnings = Vec::new();
        fields.finish(&mut warnings);
        assert_eq!(
            warnings,
            vec!["options.zzz: unknown key, ignored".to_string()]
        );
    }

    #[test]
    fn wrong_types_name_the_path_and_the_value() {
        let value: Value = serde_json::json!({"n": "ten", "b": "maybe", "s": 3});
        let mut fields = Fields::object(&value, "backends[2]".into()).unwrap();
        let message = fields.unsigned("n").unwrap_err().to_string();
        assert!(message.starts_with("backends[2].n: expected"), "{message}");
        assert!(message.contains("\"ten\""), "{message}");
        assert!(fields.boolean("b").is_err());
        assert!(fields.string("s").is_err());
        assert!(fields.signed("n").is_err());
    }
}
