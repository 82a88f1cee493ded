//! Identifiers and key encoding shared by every store adapter.
//!
//! Key parts are percent-encoded (`%` → `%25`, `#` → `%23`) before they are joined with `#`, so a
//! value that contains `#` can never produce the same key as a different combination of parts.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;

/// Encodes one part of a composite key.
pub fn encode_part(part: &str) -> String {
    if !part.contains(['#', '%']) {
        return part.to_owned();
    }
    let mut out = String::with_capacity(part.len() + 4);
    for c in part.chars() {
        match c {
            '%' => out.push_str("%25"),
            '#' => out.push_str("%23"),
            _ => out.push(c),
        }
    }
    out
}

/// Decodes a part produced by [`encode_part`].
pub fn decode_part(part: &str) -> String {
    part.replace("%23", "#").replace("%25", "%")
}

/// Joins a prefix and parts into a key: `PREFIX#part#part`.
pub fn compose(prefix: &str, parts: &[&str]) -> String {
    let mut key = String::from(prefix);
    for p in parts {
        key.push('#');
        key.push_str(&encode_part(p));
    }
    key
}

/// The identity of one source record: which entity type, which source system, which id there.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceKey {
    pub entity: crate::record::Text,
    pub system: crate::record::Text,
    pub source_id: crate::record::Text,
}

impl SourceKey {
    pub fn new(
        entity: impl Into<crate::record::Text>,
        system: impl Into<crate::record::Text>,
        source_id: impl Into<crate::record::Text>,
    ) -> Self {
        Self { entity: entity.into(), system: system.into(), source_id: source_id.into() }
    }

    /// The partition key of the source item: `SRC#{entity}#{system}#{source_id}`.
    pub fn item_key(&self) -> String {
        compose("SRC", &[&self.entity, &self.system, &self.source_id])
    }

    /// Parses a key produced by [`SourceKey::item_key`].
    pub fn from_item_key(key: &str) -> Option<Self> {
        let mut parts = key.split('#');
        if parts.next()? != "SRC" {
            return None;
        }
        let entity = decode_part(parts.next()?);
        let system = decode_part(parts.next()?);
        let source_id = decode_part(parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        Some(Self::new(entity, system, source_id))
    }
}

impl fmt::Display for SourceKey {
    /// Source keys are identifiers, not attribute values, so they may appear in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.entity, self.system, self.source_id)
    }
}

/// Hex of the first `bytes` bytes of SHA-256 over the parts, separated by a NUL byte.
pub fn digest_hex(parts: &[&str], bytes: usize) -> String {
    hex(&digest(parts)[..bytes.min(32)])
}

/// SHA-256 over the parts, joined with NUL bytes (the bytes [`digest_hex`] shows).
pub fn digest(parts: &[&str]) -> [u8; 32] {
    let mut h = Sha256::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            h.update([0u8]);
        }
        h.update(p.as_bytes());
    }
    h.finalize().into()
}

/// Lower-case hexadecimal.
pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    push_hex(&mut out, bytes);
    out
}

/// Appends lower-case hexadecimal.
pub fn push_hex(out: &mut String, bytes: &[u8]) {
    /// The two digits of every byte value, looked up instead of computed per digit.
    const PAIRS: [[u8; 2]; 256] = {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut pairs = [[0u8; 2]; 256];
        let mut b = 0;
        while b < 256 {
            pairs[b] = [HEX[b >> 4], HEX[b & 0x0f]];
            b += 1;
        }
        pairs
    };
    // Spelled into a buffer and appended once: `String::push` per digit was most of the cost
    // of spelling out a stored key, which matching and merging do for every key of a record.
    let mut buf = [0u8; 64];
    for chunk in bytes.chunks(buf.len() / 2) {
        for (pair, b) in buf.chunks_exact_mut(2).zip(chunk) {
            pair.copy_from_slice(&PAIRS[usize::from(*b)]);
        }
        // Only ASCII digits and letters were written.
        out.push_str(std::str::from_utf8(&buf[..2 * chunk.len()]).unwrap_or_default());
    }
}

/// The id of a golden record created for a source record: derived from that first source key and
/// its generation (the `seq` of the record's first version since it was stored or last erased), so
/// that processing the same source record twice can never create two golden records, and a key
/// that comes back after an erasure never names a golden record used before.
pub fn golden_id_for(source: &SourceKey, generation: u64) -> String {
    let mut id = String::with_capacity(25);
    id.push('g');
    let generation = generation.to_string();
    push_hex(&mut id, &digest(&[&source.entity, &source.system, &source.source_id, &generation])[..12]);
    id
}

/// `GOLD#{entity}#{golden_id}`.
pub fn golden_item_key(entity: &str, golden_id: &str) -> String {
    compose("GOLD", &[entity, golden_id])
}

/// `BLK#{entity}#{block key}`: the block's golden ids and, for a strong key, its claim.
pub fn block_item_key(entity: &str, block_key: &str) -> String {
    compose("BLK", &[entity, block_key])
}

/// `TERM#{entity}#{term key}`: how many linked source records hold one value of a
/// term-frequency attribute (`crate::terms`).
pub fn term_item_key(entity: &str, term_key: &str) -> String {
    compose("TERM", &[entity, term_key])
}

/// `TERMS#{entity}`: how many linked source records the term counts of an entity type count.
pub fn term_total_key(entity: &str) -> String {
    compose("TERMS", &[entity])
}

/// `HELD#{entity}`: the records of an entity type held under suppression mode `hold`, sorted by
/// source key.
pub fn held_list_key(entity: &str) -> String {
    compose("HELD", &[entity])
}

/// `LABEL#{entity}`: steward decisions as labelled record pairs, sorted by time.
pub fn labels_key(entity: &str) -> String {
    compose("LABEL", &[entity])
}

/// `REV#{entity}#{task_id}`.
pub fn review_item_key(entity: &str, task_id: &str) -> String {
    compose("REV", &[entity, task_id])
}

/// `REVG#{entity}#{golden_id}`: the partition that indexes the review tasks naming a golden
/// record (as holder or candidate), one item per task.
pub fn review_mention_key(entity: &str, golden_id: &str) -> String {
    compose("REVG", &[entity, golden_id])
}

/// `REVQ#{entity}#{open|resolved}`: the review queue of an entity type, sorted by
/// [`crate::store::review_queue_position`] (opening time, then task id).
pub fn review_queue_key(entity: &str, open: bool) -> String {
    compose("REVQ", &[entity, if open { "open" } else { "resolved" }])
}

/// `SUP#{entity}#{keyed hash}`: a suppression marker of an erased subject's identifier.
pub fn suppression_item_key(entity: &str, mac: &str) -> String {
    compose("SUP", &[entity, mac])
}

/// `ERA#{request_id}`: an erasure receipt.
pub fn erasure_item_key(request_id: &str) -> String {
    compose("ERA", &[request_id])
}

/// HMAC-SHA-256 (RFC 2104, RustCrypto `hmac`) of `parts` joined by a unit separator,
/// hex-encoded (first `bytes` bytes).
pub fn hmac_hex(secret: &[u8], parts: &[&str], bytes: usize) -> String {
    use hmac::{Hmac, Mac};
    // Any key length is accepted (a longer one is hashed first), so this cannot fail.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else { unreachable!("HMAC takes keys of any length") };
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            mac.update(&[0x1f]);
        }
        mac.update(p.as_bytes());
    }
    hex(&mac.finalize().into_bytes()[..bytes.min(32)])
}

/// Sort key of a history version: `V#{version:010}`.
pub fn history_sort_key(version: u64) -> String {
    format!("V#{version:010}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test case 2: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            hmac_hex(b"Jefe", &["what do ya want for nothing?"], 32),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Test case 6: a key longer than the block.
        assert_eq!(
            hmac_hex(&[0xaa; 131], &["Test Using Larger Than Block-Size Key - Hash Key First"], 32),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    /// Markers and request ids already stored stay valid: the values the hand-written HMAC gave.
    #[test]
    fn stored_markers_and_request_ids_keep_their_bytes() {
        assert_eq!(
            hmac_hex(b"test-secret", &["customer", "email.value", "anna.kowalski@example.com"], 16),
            "1f449b61ad6426abf6f1258fa70e2dc5"
        );
        assert_eq!(
            hmac_hex(
                b"test-secret",
                &["erasure", "customer", "email=anna.kowalski@example.com", "subject", "false"],
                12
            ),
            "a21385a9e741ced8b9b3fd26"
        );
    }

    #[test]
    fn hash_in_a_value_cannot_collide_with_another_split() {
        let a = SourceKey::new("customer", "crm#x", "1");
        let b = SourceKey::new("customer", "crm", "x#1");
        assert_ne!(a.item_key(), b.item_key());
        assert_eq!(SourceKey::from_item_key(&a.item_key()), Some(a));
        assert_eq!(SourceKey::from_item_key(&b.item_key()), Some(b));
    }

    #[test]
    fn percent_round_trips() {
        for v in ["50%", "%23", "#%#", "plain"] {
            assert_eq!(decode_part(&encode_part(v)), v);
        }
        assert_ne!(compose("X", &["%23"]), compose("X", &["#"]));
    }

    #[test]
    fn hex_spells_every_byte_in_order() {
        let bytes: Vec<u8> = (0..=40u8).map(|b| b.wrapping_mul(37)).collect();
        let mut out = String::from("k=");
        push_hex(&mut out, &bytes);
        let expected: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(out, format!("k={expected}"));
    }

    #[test]
    fn golden_id_is_stable_and_distinct() {
        let a = SourceKey::new("customer", "crm", "1");
        assert_eq!(golden_id_for(&a, 7), golden_id_for(&a.clone(), 7));
        assert_ne!(golden_id_for(&a, 7), golden_id_for(&SourceKey::new("customer", "crm", "2"), 7));
        assert_ne!(golden_id_for(&a, 7), golden_id_for(&a, 8), "another generation, another id");
        // 'g' and the first 12 bytes of the digest of key and generation, in hex.
        assert_eq!(golden_id_for(&a, 7), format!("g{}", digest_hex(&[&a.entity, &a.system, &a.source_id, "7"], 12)));
        assert_eq!(golden_id_for(&a, 7).len(), 25);
    }
}
