//! Keys and ids: the 64-byte ring id (`dnet_raw_id`), sha512 key hashing with an optional
//! namespace, and the hex id syntax of `dnet_ioclient -I`.

use sha2::{Digest, Sha512};

/// Size of an id on the ring and on the wire.
pub const ID_SIZE_BYTES: usize = 64;

/// A 64-byte ring id. Ordered as unsigned bytes (memcmp), like `dnet_id_cmp_str`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RawId(pub [u8; ID_SIZE_BYTES]);

impl Default for RawId {
    fn default() -> Self {
        RawId::ZERO
    }
}

impl RawId {
    /// The all-zero id.
    pub const ZERO: RawId = RawId([0u8; ID_SIZE_BYTES]);
    /// The all-ones id (the top of the ring).
    pub const MAX: RawId = RawId([0xffu8; ID_SIZE_BYTES]);

    /// sha512 of `key`, as `dnet_transform` computes it.
    pub fn from_key(key: &[u8]) -> RawId {
        RawId(Sha512::digest(key).into())
    }

    /// sha512(`namespace` ‖ 0x00 ‖ `key`); an empty namespace hashes the key alone.
    pub fn from_namespaced_key(namespace: &[u8], key: &[u8]) -> RawId {
        if namespace.is_empty() {
            return Self::from_key(key);
        }
        let mut hasher = Sha512::new();
        hasher.update(namespace);
        hasher.update([0u8]);
        hasher.update(key);
        RawId(hasher.finalize().into())
    }

    /// Parse a hex id as `dnet_parse_numeric_id` does: the text is cut into pairs of
    /// characters and each pair is read like `strtoul(pair, 16)`, so a pair counts only its
    /// leading hex digits ("1g" is 1, "g1" is 0). Missing bytes are zero; extra text is
    /// ignored. `-I somekey` therefore names the all-zero id, as the original does.
    pub fn from_hex_lenient(text: &str) -> RawId {
        fn nibble(c: u8) -> Option<u8> {
            match c {
                b'0'..=b'9' => Some(c - b'0'),
                b'a'..=b'f' => Some(c - b'a' + 10),
                b'A'..=b'F' => Some(c - b'A' + 10),
                _ => None,
            }
        }
        let mut out = [0u8; ID_SIZE_BYTES];
        for (slot, pair) in out.iter_mut().zip(text.as_bytes().chunks(2)) {
            let mut value = 0u8;
            for digit in pair.iter().map_while(|c| nibble(*c)) {
                value = (value << 4) | digit;
            }
            *slot = value;
        }
        RawId(out)
    }

    /// The first 8 bytes as a big-endian u64: the id's coarse position on the ring.
    pub fn prefix_u64(&self) -> u64 {
        let [b0, b1, b2, b3, b4, b5, b6, b7, ..] = self.0;
        u64::from_be_bytes([b0, b1, b2, b3, b4, b5, b6, b7])
    }

    /// Lower-case hex of all 64 bytes.
    pub fn to_hex(&self) -> String {
        hex_string(&self.0)
    }

    /// Lower-case hex of the first 6 bytes, as Elliptics prints ids in messages.
    pub fn short_hex(&self) -> String {
        hex_string(&self.0[..6])
    }
}

/// Lower-case hex of arbitrary bytes.
pub fn hex_string(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

impl std::fmt::Debug for RawId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RawId({}…)", self.short_hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_id_is_sha512_of_the_key_bytes() {
        let id = RawId::from_key(b"somekey");
        assert_eq!(id.short_hex(), "3ab1736f1f57");
    }

    #[test]
    fn namespace_changes_the_id_and_empty_namespace_does_not() {
        assert_eq!(RawId::from_namespaced_key(b"", b"k"), RawId::from_key(b"k"));
        assert_ne!(
            RawId::from_namespaced_key(b"ns", b"k"),
            RawId::from_key(b"k")
        );
        assert_eq!(
            RawId::from_namespaced_key(b"ns", b"k"),
            RawId::from_key(b"ns\0k")
        );
    }

    #[test]
    fn prefix_is_the_first_eight_bytes_big_endian() {
        let id = RawId::from_hex_lenient("0102030405060708ff");
        assert_eq!(id.prefix_u64(), 0x0102_0304_0506_0708);
        assert_eq!(RawId::MAX.prefix_u64(), u64::MAX);
    }

    #[test]
    fn lenient_hex_treats_non_hex_as_zero_and_pads() {
        assert_eq!(RawId::from_hex_lenient("somekey"), RawId::ZERO);
        let id = RawId::from_hex_lenient("ff011gg1a");
        assert_eq!(&id.0[..6], &[0xff, 0x01, 0x01, 0x00, 0x0a, 0x00]);
    }
}
