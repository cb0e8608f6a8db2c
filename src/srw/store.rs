//! How apps live in the store (the layout cocaine-tool wrote through Cocaine's elliptics
//! storage), and the manifest and profile documents (read in `documents`).
//!
//! ```text
//! namespace   key       value
//! apps        <name>    msgpack str (raw) holding the .tar / .tar.gz bytes
//! manifests   <name>    msgpack map of the manifest JSON
//! profiles    <name>    msgpack map of the profile JSON
//! apps        .list     msgpack array of str: app names (our own list record)
//! profiles    .list     msgpack array of str: profile names (our own list record)
//! ```
//! Key ids are `sha512(namespace ‖ 0 ‖ key)`. Cocaine listed apps through secondary tag
//! indexes, which this store does not have; the `.list` records replace them (a leading dot
//! cannot clash with an app name, which [`check_name`] refuses).

use super::SrwError;
use rmpv::Value;

mod documents;
pub use documents::{Manifest, Profile, CRASHLOG_LINES_MAX};

pub const APPS_NAMESPACE: &str = "apps";
pub const MANIFESTS_NAMESPACE: &str = "manifests";
pub const PROFILES_NAMESPACE: &str = "profiles";
/// Key of the list record inside `apps` and `profiles`.
pub const LIST_KEY: &str = ".list";

/// An app or profile name: non-empty, no `@`, `/`, NUL, and not starting with a dot.
pub fn check_name(name: &str) -> Result<(), SrwError> {
    let bad = name.is_empty()
        || name.starts_with('.')
        || name.len() > 255
        || name.chars().any(|c| matches!(c, '@' | '/' | '\0' | ' '));
    if bad {
        return Err(SrwError::BadName(name.to_string()));
    }
    Ok(())
}

/// JSON that may carry trailing commas before `}` or `]` (the tutorial's manifest does):
/// they are removed outside strings, then the text is parsed strictly.
pub fn parse_relaxed_json(text: &str) -> Result<serde_json::Value, SrwError> {
    let mut out = String::with_capacity(text.len());
    let mut in_str = false;
    let mut escaped = false;
    let chars: Vec<char> = text.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if in_str {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_str = false,
                _ => {}
            }
            continue;
        }
        if c == '"' {
            in_str = true;
        }
        if c == ',' {
            let next = chars.iter().skip(i + 1).find(|n| !n.is_whitespace());
            if matches!(next, Some('}') | Some(']')) {
                continue;
            }
        }
        out.push(c);
    }
    serde_json::from_str(&out).map_err(|e| SrwError::Json(e.to_string()))
}

/// JSON to msgpack (objects become maps with str keys).
pub fn json_to_msgpack(v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::Bool(b) => Value::Boolean(*b),
        serde_json::Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                Value::from(u)
            } else if let Some(i) = n.as_i64() {
                Value::from(i)
            } else {
                Value::F64(n.as_f64().unwrap_or(0.0))
            }
        }
        serde_json::Value::String(s) => Value::from(s.as_str()),
        serde_json::Value::Array(a) => Value::Array(a.iter().map(json_to_msgpack).collect()),
        serde_json::Value::Object(o) => Value::Map(
            o.iter()
                .map(|(k, v)| (Value::from(k.as_str()), json_to_msgpack(v)))
                .collect(),
        ),
    }
}

/// msgpack to JSON (str/bin keys and strings as lossy UTF-8).
pub fn msgpack_to_json(v: &Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        Value::Nil => J::Null,
        Value::Boolean(b) => J::Bool(*b),
        Value::Integer(i) => i
            .as_u64()
            .map(J::from)
            .or_else(|| i.as_i64().map(J::from))
            .unwrap_or(J::Null),
        Value::F32(f) => J::from(f64::from(*f)),
        Value::F64(f) => J::from(*f),
        Value::String(_) | Value::Binary(_) => J::String(
            super::frame::value_bytes(v)
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default(),
        ),
        Value::Array(a) => J::Array(a.iter().map(msgpack_to_json).collect()),
        Value::Map(m) => J::Object(
            m.iter()
                .map(|(k, v)| {
                    let key = super::frame::value_bytes(k)
                        .map(|b| String::from_utf8_lossy(b).into_owned())
                        .unwrap_or_else(|| k.to_string());
                    (key, msgpack_to_json(v))
                })
                .collect(),
        ),
        Value::Ext(_, _) => J::Null,
    }
}

fn encode(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = rmpv::encode::write_value(&mut out, v);
    out
}

/// Deepest nesting of arrays and maps a stored record may have (manifests and profiles are
/// a few levels deep); deeper records are refused rather than decoded recursively.
pub const RECORD_NESTING_MAX: usize = 64;

fn decode(bytes: &[u8], what: &'static str) -> Result<Value, SrwError> {
    let mut cur = std::io::Cursor::new(bytes);
    let v = rmpv::decode::read_value_with_max_depth(&mut cur, RECORD_NESTING_MAX).map_err(|e| {
        SrwError::Record {
            what,
            problem: e.to_string(),
        }
    })?;
    if usize::try_from(cur.position()).ok() != Some(bytes.len()) {
        return Err(SrwError::Record {
            what,
            problem: "trailing bytes after the msgpack value".into(),
        });
    }
    Ok(v)
}

/// The `apps/<name>` record: the package as a msgpack str, as cocaine-tool wrote it.
pub fn encode_package(package: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(package.len() + 5);
    let len = u32::try_from(package.len()).unwrap_or(u32::MAX);
    let _ = rmp::encode::write_str_len(&mut out, len);
    out.extend_from_slice(package);
    out
}

/// The package bytes of an `apps/<name>` record (str or bin).
pub fn decode_package(record: &[u8]) -> Result<Vec<u8>, SrwError> {
    match decode(record, "apps record")? {
        Value::String(s) => Ok(s.into_bytes()),
        Value::Binary(b) => Ok(b),
        _ => Err(SrwError::Record {
            what: "apps record",
            problem: "not a msgpack string".into(),
        }),
    }
}

/// A `manifests/<name>` or `profiles/<name>` record from its JSON document.
pub fn encode_document(doc: &serde_json::Value) -> Vec<u8> {
    encode(&json_to_msgpack(doc))
}

/// The JSON document of a manifest or profile record (must be a map).
pub fn decode_document(record: &[u8], what: &'static str) -> Result<serde_json::Value, SrwError> {
    let v = decode(record, what)?;
    if !v.is_map() {
        return Err(SrwError::Record {
            what,
            problem: "not a msgpack map".into(),
        });
    }
    Ok(msgpack_to_json(&v))
}

/// A `.list` record.
pub fn encode_list(names: &[String]) -> Vec<u8> {
    encode(&Value::Array(
        names.iter().map(|n| Value::from(n.as_str())).collect(),
    ))
}

/// The names in a `.list` record.
pub fn decode_list(record: &[u8]) -> Result<Vec<String>, SrwError> {
    match decode(record, "list record")? {
        Value::Array(a) => Ok(a
            .iter()
            .filter_map(super::frame::value_bytes)
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect()),
        _ => Err(SrwError::Record {
            what: "list record",
            problem: "not a msgpack array".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn deeply_nested_record_is_refused() {
        let mut bytes = vec![0x81, 0xa1, b'k'];
        bytes.extend(std::iter::repeat_n(0x91u8, 100_000));
        bytes.push(0x90);
        assert!(matches!(
            decode_document(&bytes, "manifest"),
            Err(SrwError::Record { .. })
        ));
    }

    #[test]
    fn tutorial_manifest_with_trailing_comma_parses() {
        let doc = parse_relaxed_json("{\n    \"slave\" : \"test_app.py\",\n}\n").unwrap();
        let m = Manifest::from_json(&doc).unwrap();
        assert_eq!(m.slave, "test_app.py");
        let kept = parse_relaxed_json(r#"{"a": "x,}", "b": [1,2,]}"#).unwrap();
        assert_eq!(kept["a"], "x,}");
        assert_eq!(kept["b"], serde_json::json!([1, 2]));
    }

    #[test]
    fn package_record_is_a_msgpack_str_of_the_tar_bytes() {
        let tar = vec![0u8, 1, 2, 255];
        let rec = encode_package(&tar);
        assert_eq!(rec[0], 0xa4);
        assert_eq!(decode_package(&rec).unwrap(), tar);
    }

    #[test]
    fn documents_and_lists_roundtrip() {
        let doc = serde_json::json!({"slave": "x", "environment": {"A": "1"}, "n": 3});
        let back = decode_document(&encode_document(&doc), "manifest").unwrap();
        assert_eq!(back, doc);
        let names = vec!["a".to_string(), "b".to_string()];
        assert_eq!(decode_list(&encode_list(&names)).unwrap(), names);
    }
}
