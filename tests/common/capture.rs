//! The wire captures of the original 2.26.11.1 server (`tests/data/wire-captures/*.txt`,
//! recorded from the original server and clients) as frames:
//! each message's direction and its bytes, read back from the hexdump rows.

use std::path::PathBuf;

/// One captured elliptics message.
#[derive(Debug, Clone)]
pub struct Message {
    pub from_client: bool,
    pub bytes: Vec<u8>,
}

/// Every message of capture `name`, in order.
pub fn load(name: &str) -> Vec<Message> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/wire-captures")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "the 2.26 wire capture {} is part of the repository: {e}",
            path.display()
        )
    });
    let mut out: Vec<Message> = Vec::new();
    for line in text.lines() {
        if line.starts_with("message #") {
            out.push(Message {
                from_client: line.contains("(client -> server)"),
                bytes: Vec::new(),
            });
            continue;
        }
        // Hexdump rows: 4 spaces, 4 hex offset digits, 2 spaces, up to 16 bytes, ASCII.
        let Some(row) = line.strip_prefix("    ") else {
            continue;
        };
        let Some((offset, rest)) = row.split_once("  ") else {
            continue;
        };
        if offset.len() != 4 || !offset.chars().all(|c| c.is_ascii_hexdigit()) {
            continue;
        }
        let hex = rest.get(..48).unwrap_or(rest);
        let msg = out.last_mut().expect("row before message");
        msg.bytes.extend(
            hex.split_whitespace()
                .map(|b| u8::from_str_radix(b, 16).expect("hex byte")),
        );
    }
    out
}
