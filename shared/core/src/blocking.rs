//! Blocking keys: cheap keys under which golden records are indexed so that an incoming record is
//! compared only with the few golden records that share one of its keys.

use crate::index_keys::IndexKey;
use crate::normalise::soundex_code;
use crate::record::{Slot, SourceRecord};
use crate::schema::{BlockTransform, BlockingKeyDef, EntitySchema};
use std::collections::{BTreeMap, BTreeSet};

/// One blocking key of a record: `name` says how it was made (no values, safe to log), `value`
/// holds the key material (derived from attribute values: treat as personal data).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct BlockKey {
    pub name: String,
    pub value: String,
    /// A strong key, claimed by a new golden record.
    pub claim: bool,
    /// This key's own limit on golden records per block (below the entity's `max_block_size`).
    pub max_block_size: Option<usize>,
}

impl BlockKey {
    /// The key as stored in the index and in claims: `{name}={digest}`, where the digest is 128
    /// bits of SHA-256 over name and value. Stored keys (DynamoDB partition keys, which also
    /// travel in streams and metrics) therefore never hold attribute values.
    pub fn key(&self) -> String {
        format!("{}={}", self.name, crate::keys::digest_hex(&[&self.name, &self.value], 16))
    }

    /// The name part of a stored key (for counting and logging without values).
    pub fn name_of(stored: &str) -> &str {
        stored.split_once('=').map_or(stored, |(n, _)| n)
    }
}

/// A key part from one value: a piece of the value itself where the transform keeps one (no
/// copy; a record's keys are computed from a dozen of them), or a Soundex code, kept inline.
#[derive(Debug, Clone, Copy)]
enum Part<'a> {
    Piece(&'a str),
    Code([u8; 4]),
}

impl Part<'_> {
    fn as_str(&self) -> &str {
        match self {
            Part::Piece(s) => s,
            // A Soundex code is four ASCII letters and digits.
            Part::Code(c) => std::str::from_utf8(c).unwrap_or_default(),
        }
    }
}

impl PartialEq for Part<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Part<'_> {}

impl PartialOrd for Part<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Part<'_> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

fn transform(t: BlockTransform, v: &str) -> Option<Part<'_>> {
    let out = match t {
        BlockTransform::Value => v,
        BlockTransform::Soundex => return soundex_code(v).map(Part::Code),
        BlockTransform::Initial => {
            let (at, c) = v.char_indices().find(|(_, c)| c.is_alphanumeric())?;
            &v[at..at + c.len_utf8()]
        }
        BlockTransform::Year => {
            let y = v.get(..4)?;
            y.bytes().all(|b| b.is_ascii_digit()).then_some(y)?
        }
        BlockTransform::Prefix3 => &v[..v.char_indices().nth(3).map_or(v.len(), |(at, _)| at)],
        BlockTransform::FirstToken => v.split_whitespace().next()?,
        BlockTransform::MonthDay => date_piece(v, 5..10)?,
        BlockTransform::YearMonth => date_piece(v, 0..7)?,
    };
    (!out.is_empty()).then_some(Part::Piece(out))
}

/// A piece of a normalised date (`YYYY-MM-DD`); `None` for any other value.
fn date_piece(v: &str, range: std::ops::Range<usize>) -> Option<&str> {
    let b = v.as_bytes();
    let iso = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter().enumerate().all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    iso.then(|| &v[range])
}

/// A blocking key in its stored form (`BlockKey::key`), with what matching needs to know about
/// it. Holds no attribute value. Kept compact (24 bytes, no heap), because every stored source
/// record keeps its keys: what the key's name says is shared ([`KeyKind`]), the digest kept as
/// bytes, and [`StoredKey::stored`] spells the key out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    kind: &'static KeyKind,
    pub digest: [u8; 16],
}

/// What keys of one name share: the name, whether they are claimed, their own block limit.
/// There are few (two per blocking definition of the schemas loaded): each is made once, when a
/// schema is laid out, and lives as long as the process.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct KeyKind {
    name: KeyName,
    claim: bool,
    /// `u32::MAX` when there is none.
    block_limit: u32,
}

impl StoredKey {
    /// The key's name (`{attribute}.{transform}`...): no values, safe to log.
    pub fn name(&self) -> &'static str {
        self.kind.name.as_str()
    }

    /// The name's shared copy.
    pub fn key_name(&self) -> KeyName {
        self.kind.name
    }

    /// A strong key, claimed by a new golden record.
    pub fn claim(&self) -> bool {
        self.kind.claim
    }

    /// This key's own limit on golden records per block, if it has one.
    pub fn max_block_size(&self) -> Option<usize> {
        (self.kind.block_limit != u32::MAX).then_some(self.kind.block_limit as usize)
    }

    /// The key as stored: the same text as [`BlockKey::key`].
    pub fn stored(&self) -> String {
        let mut out = String::with_capacity(self.name().len() + 33);
        out.push_str(self.name());
        out.push('=');
        crate::keys::push_hex(&mut out, &self.digest);
        out
    }
}

/// The one copy of a key kind: the unclaimed and the claimed kind of a definition's keys.
pub(crate) fn shared_kinds(name: &str, b: &BlockingKeyDef) -> [&'static KeyKind; 2] {
    static KINDS: std::sync::Mutex<BTreeSet<&'static KeyKind>> = std::sync::Mutex::new(BTreeSet::new());
    let block_limit = b.max_block_size.map_or(u32::MAX, |n| u32::try_from(n).unwrap_or(u32::MAX));
    let name = shared_name(name);
    let mut kinds = KINDS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    [false, true].map(|claim| {
        let kind = KeyKind { name, claim, block_limit };
        if let Some(k) = kinds.get(&kind) {
            return *k;
        }
        let k: &'static KeyKind = Box::leak(Box::new(kind));
        kinds.insert(k);
        k
    })
}

/// The one copy of a key name. Names come from the schemas' blocking definitions (and from the
/// stored keys the hub wrote with them), so there are few, and they live as long as the process:
/// each is allocated once and never freed.
pub(crate) fn shared_name(name: &str) -> KeyName {
    type Names = BTreeMap<&'static str, &'static &'static str>;
    static NAMES: std::sync::Mutex<Names> = std::sync::Mutex::new(BTreeMap::new());
    let mut names = NAMES.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(n) = names.get(name) {
        return KeyName(n);
    }
    let text: &'static str = Box::leak(name.to_owned().into_boxed_str());
    let n: &'static &'static str = Box::leak(Box::new(text));
    names.insert(text, n);
    KeyName(n)
}

/// A key name as one pointer to its one copy ([`shared_name`]): an index key then takes 24 bytes
/// (a name as text would take 16 of its own). Equal names are usually the same copy, which
/// makes comparing them cheap; names are compared as text when they are not.
#[derive(Clone, Copy)]
pub struct KeyName(&'static &'static str);

impl KeyName {
    pub fn as_str(self) -> &'static str {
        self.0
    }

    /// A name outside the shared copies (tests of the comparisons' fallback).
    #[cfg(test)]
    pub(crate) fn unshared(name: &str) -> Self {
        let text: &'static str = Box::leak(name.to_owned().into_boxed_str());
        Self(Box::leak(Box::new(text)))
    }
}

impl std::ops::Deref for KeyName {
    type Target = str;

    fn deref(&self) -> &str {
        self.0
    }
}

impl PartialEq for KeyName {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self.0, other.0) || self.0 == other.0
    }
}

impl Eq for KeyName {}

impl PartialOrd for KeyName {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for KeyName {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        if std::ptr::eq(self.0, other.0) {
            std::cmp::Ordering::Equal
        } else {
            self.0.cmp(other.0)
        }
    }
}

impl std::fmt::Debug for KeyName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.0, f)
    }
}

/// A record's blocking keys with their stored forms, computed on first use and kept with the
/// record (and its clones): digesting keys is a large part of matching a record, and merge plans
/// need the keys of every member again. A record is always keyed under its own entity's schema.
pub fn keys_of<'r>(schema: &EntitySchema, record: &'r SourceRecord) -> &'r [StoredKey] {
    record.key_cache.0.get_or_init(|| stored_keys_of(schema, record).into())
}

/// The name of the keys a blocking definition makes (no values): `{attribute}.{transform}`, then
/// `+{attribute}.{transform}` per further part, then `.unordered` if the parts are sorted.
pub(crate) fn key_name(attribute: &str, b: &BlockingKeyDef) -> String {
    let mut name = format!("{attribute}.{}", b.transform.name());
    for part in &b.with {
        name.push('+');
        name.push_str(&part.attribute);
        name.push('.');
        name.push_str(part.transform.name());
    }
    if b.unordered {
        name.push_str(".unordered");
    }
    name
}

/// A blocking definition's parts for a record: the transformed values (sorted if unordered),
/// whether each was a valid value, or `None` when a part is missing. Reads the record's values
/// lined up with the schema (`slots`, by attribute position; `with` holds the positions of the
/// definition's `with` parts), so no value is looked up by name.
fn key_parts<'a>(
    slots: &[Slot<'a>],
    at: usize,
    with: &[Option<usize>],
    b: &BlockingKeyDef,
    parts: &mut Vec<Part<'a>>,
) -> Option<bool> {
    parts.clear();
    let first = slots.get(at)?;
    parts.push(first.value.and_then(|v| transform(b.transform, v))?);
    let mut all_valid = first.valid;
    for (part, at) in b.with.iter().zip(with) {
        let slot = slots.get((*at)?)?;
        parts.push(slot.value.and_then(|v| transform(part.transform, v))?);
        all_valid &= slot.valid;
    }
    if b.unordered {
        parts.sort_unstable();
    }
    Some(all_valid)
}

/// [`block_keys`] in their stored form, digested straight from the parts (the same bytes as
/// `BlockKey::key`: SHA-256 over name, a zero byte and the parts joined by `|`), with the names
/// spelled once per schema, in name order.
fn stored_keys_of(schema: &EntitySchema, record: &SourceRecord) -> Vec<StoredKey> {
    use sha2::{Digest, Sha256};
    let layout = schema.layout();
    let kinds = &layout.key_kinds;
    let slots = record.slots(schema);
    let mut out: Vec<StoredKey> = Vec::with_capacity(layout.key_order.len());
    let mut parts = Vec::with_capacity(4);
    // Definitions in the order of their keys' names, as `block_keys` gives them (a name belongs
    // to one definition).
    for &(at, i) in &layout.key_order {
        let (Some(b), Some([unclaimed, claimed]), Some(with)) = (
            schema.attributes.get(at).and_then(|a| a.blocking.get(i)),
            kinds.get(at).and_then(|k| k.get(i)),
            layout.key_with.get(at).and_then(|w| w.get(i)),
        ) else {
            continue;
        };
        let name = unclaimed.name.as_str();
        let Some(all_valid) = key_parts(&slots, at, with, b, &mut parts) else { continue };
        let mut h = Sha256::new();
        h.update(name.as_bytes());
        h.update([0u8]);
        for (i, p) in parts.iter().enumerate() {
            if i > 0 {
                h.update(b"|");
            }
            h.update(p.as_str().as_bytes());
        }
        let mut digest = [0u8; 16];
        digest.copy_from_slice(&h.finalize()[..16]);
        let kind = if b.claim && all_valid { claimed } else { unclaimed };
        out.push(StoredKey { kind, digest });
    }
    debug_assert!(out.windows(2).all(|w| w[0].name() <= w[1].name()), "keys come in name order");
    out.dedup();
    out
}

/// Every blocking key of a record. Keys whose parts are missing are skipped; a claim key needs
/// every part to be a valid (normalised) value.
pub fn block_keys(schema: &EntitySchema, record: &SourceRecord) -> Vec<BlockKey> {
    let slots = record.slots(schema);
    let mut keys = BTreeSet::new();
    let mut parts = Vec::new();
    for (at, (def, withs)) in schema.attributes.iter().zip(&schema.layout().key_with).enumerate() {
        for (b, with) in def.blocking.iter().zip(withs) {
            let Some(all_valid) = key_parts(&slots, at, with, b, &mut parts) else { continue };
            keys.insert(BlockKey {
                name: key_name(&def.name, b),
                value: parts.iter().map(Part::as_str).collect::<Vec<_>>().join("|"),
                claim: b.claim && all_valid,
                max_block_size: b.max_block_size,
            });
        }
    }
    keys.into_iter().collect()
}

/// The stored keys (`BlockKey::key`) of every blocking key of these records: all of them, and
/// the claim keys among them.
pub fn stored_keys<'a>(
    schema: &EntitySchema,
    records: impl IntoIterator<Item = &'a SourceRecord, IntoIter: Clone>,
) -> (BTreeSet<IndexKey>, BTreeSet<IndexKey>) {
    let (index, claims) = stored_key_lists(schema, records);
    (index.into_iter().collect(), claims.into_iter().collect())
}

/// [`stored_keys`] as sorted lists without duplicates (cheaper to build than B-trees).
pub fn stored_key_lists<'a>(
    schema: &EntitySchema,
    records: impl IntoIterator<Item = &'a SourceRecord, IntoIter: Clone>,
) -> (Vec<IndexKey>, Vec<IndexKey>) {
    let records = records.into_iter();
    // Sized once: growing per record was a reallocation per member of every merge plan.
    let (mut all, mut claimed) = (0, 0);
    for r in records.clone() {
        let keys = keys_of(schema, r);
        all += keys.len();
        claimed += keys.iter().filter(|k| k.claim()).count();
    }
    let mut index = Vec::with_capacity(all);
    let mut claims = Vec::with_capacity(claimed);
    for r in records {
        for k in keys_of(schema, r) {
            let key = IndexKey::from(k);
            if k.claim() {
                claims.push(key.clone());
            }
            index.push(key);
        }
    }
    for keys in [&mut index, &mut claims] {
        keys.sort_unstable();
        keys.dedup();
    }
    (index, claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::validate;
    use crate::schema::SchemaRegistry;
    use serde_json::json;

    /// The transforms as they were written when each part was a new string: the borrowed pieces
    /// must spell the same parts.
    fn owned_transform(t: BlockTransform, v: &str) -> Option<String> {
        let out = match t {
            BlockTransform::Value => v.to_owned(),
            BlockTransform::Soundex => crate::normalise::soundex(v)?,
            BlockTransform::Initial => v.chars().find(|c| c.is_alphanumeric())?.to_string(),
            BlockTransform::Year => {
                let y = v.get(..4)?;
                y.chars().all(|c| c.is_ascii_digit()).then(|| y.to_owned())?
            }
            BlockTransform::Prefix3 => v.chars().take(3).collect(),
            BlockTransform::FirstToken => v.split_whitespace().next()?.to_owned(),
            BlockTransform::MonthDay | BlockTransform::YearMonth => {
                let iso = v.len() == 10
                    && v.chars().enumerate().all(|(i, c)| if i == 4 || i == 7 { c == '-' } else { c.is_ascii_digit() });
                let (from, to) = if t == BlockTransform::MonthDay { (5, 10) } else { (0, 7) };
                iso.then(|| v[from..to].to_owned())?
            }
        };
        (!out.is_empty()).then_some(out)
    }

    #[test]
    fn key_parts_are_pieces_of_the_value_where_the_transform_keeps_one() {
        let values = [
            "",
            " ",
            "a",
            "ab",
            "abc",
            "abcd",
            "1984-07-21",
            "198",
            "19x4-01-01",
            "  ánna marie",
            "-ö",
            "--",
            "ßüñ",
            "東京都",
            "o'brien",
            "mac donald",
            "  ",
            "x y",
            "2024",
            "é",
            "1984-07-21",
            "1984-07-2x",
            "84-07-21",
        ];
        use BlockTransform::*;
        for t in [Value, Soundex, Initial, Year, Prefix3, FirstToken, MonthDay, YearMonth] {
            for v in values {
                assert_eq!(transform(t, v).map(|p| p.as_str().to_owned()), owned_transform(t, v), "{t:?} of {v:?}");
            }
        }
        assert!(matches!(transform(Prefix3, "ábcd"), Some(Part::Piece("ábc"))));
        assert!(matches!(transform(Initial, "-ö"), Some(Part::Piece("ö"))));
        assert!(matches!(transform(Soundex, "Robert"), Some(Part::Code(c)) if c == *b"R163"));
        assert!(matches!(transform(MonthDay, "1984-07-21"), Some(Part::Piece("07-21"))));
        assert!(matches!(transform(YearMonth, "1984-07-21"), Some(Part::Piece("1984-07"))));
    }

    #[test]
    fn customer_keys() {
        let reg = SchemaRegistry::built_in().expect("schemas");
        let r = validate(
            &reg,
            &json!({"entityType":"customer","sourceSystem":"crm","sourceId":"1","sourceSeq":1,"attributes":{
                "given_name":"Anna","family_name":"Smith","date_of_birth":"1980-05-01","email":"a@x.com",
                "phone":"07400123456","postcode":"LS1 4AP"}}),
            0,
        )
        .expect("valid");
        let keys = block_keys(reg.get("customer").expect("customer"), &r);
        let plain: Vec<(String, String)> = keys.iter().map(|k| (k.name.clone(), k.value.clone())).collect();
        for (name, value) in [
            ("family_name.soundex+date_of_birth.year", "S530|1980"),
            ("email.value", "a@x.com"),
            ("phone.value", "+447400123456"),
            ("postcode.value+given_name.initial", "LS14AP|a"),
            ("given_name.soundex+family_name.soundex.unordered", "A500|S530"),
        ] {
            assert!(plain.contains(&(name.to_string(), value.to_string())), "{name} in {plain:?}");
        }
        for k in &keys {
            let stored = k.key();
            assert!(stored.starts_with(&format!("{}=", k.name)));
            assert!(!stored.contains(&k.value), "stored keys hold no values: {stored}");
            assert_eq!(BlockKey::name_of(&stored), k.name);
        }
        let claims: Vec<_> =
            block_keys(reg.get("customer").expect("customer"), &r).into_iter().filter(|k| k.claim).collect();
        assert_eq!(claims.len(), 3, "email, phone, name+dob: {claims:?}");
    }

    #[test]
    fn stored_keys_spell_out_the_block_key() {
        let reg = SchemaRegistry::built_in().expect("schemas");
        let schema = reg.get("customer").expect("customer");
        let r = validate(
            &reg,
            &json!({"entityType":"customer","sourceSystem":"crm","sourceId":"1","sourceSeq":1,"attributes":{
                "given_name":"Anna","family_name":"Smith","date_of_birth":"1980-05-01","postcode":"LS1 4AP"}}),
            0,
        )
        .expect("valid");
        let keys = block_keys(schema, &r);
        let stored = keys_of(schema, &r);
        assert_eq!(keys.len(), stored.len());
        for (k, s) in keys.iter().zip(stored) {
            assert_eq!(s.stored(), k.key());
            assert_eq!(s.max_block_size(), k.max_block_size, "{}", k.name);
            assert_eq!(s.claim(), k.claim);
        }
        assert!(keys.iter().any(|k| k.max_block_size.is_some()), "some customer keys have their own limit");
        assert!(std::ptr::eq(keys_of(schema, &r).as_ptr(), stored.as_ptr()), "computed once per record");
        assert_eq!(std::mem::size_of::<StoredKey>(), 24, "every stored record keeps its keys");
    }

    /// `keys_of` digests the parts straight away; `block_keys` joins them and `BlockKey::key`
    /// digests that. Both must give the same stored keys, in the same order, for every kind of
    /// key: they are DynamoDB partition keys.
    #[test]
    fn stored_keys_match_the_block_keys_for_every_kind_of_key() {
        let reg = SchemaRegistry::built_in().expect("schemas");
        let records = [
            json!({"entityType":"customer","sourceSystem":"crm","sourceId":"1","sourceSeq":1,"attributes":{
                "given_name":"Anna","family_name":"Kowalski","date_of_birth":"1984-07-21","email":"a.k@example.com",
                "phone":"07700 900461","street_number":"12","address_line1":"Harbour Street","address_line2":"Flat 3",
                "locality":"Leeds","postcode":"LS1 4AP","region":"West Yorkshire","country":"GB"}}),
            json!({"entityType":"customer","sourceSystem":"web","sourceId":"2","sourceSeq":1,"attributes":{
                "given_name":"Kowalski","family_name":"Anna","date_of_birth":"21/07/1984","email":"not-an-email",
                "postcode":"ls14ap"}}),
            json!({"entityType":"customer","sourceSystem":"web","sourceId":"3","sourceSeq":1,"attributes":{
                "family_name":"Ó Súilleabháin","date_of_birth":"31/02/1990","phone":"12"}}),
            json!({"entityType":"product","sourceSystem":"erp","sourceId":"4","sourceSeq":1,"attributes":{
                "gtin":"4006381333931","sku":"AB-12","name":"Stabilo Boss Original, yellow","brand":"Stabilo","size":"10 pcs"}}),
        ];
        let mut names = BTreeSet::new();
        for input in &records {
            let r = validate(&reg, input, 0).expect("valid");
            let schema = reg.get(&r.key.entity).expect("schema");
            let keys = block_keys(schema, &r);
            let stored = keys_of(schema, &r);
            let spelled: Vec<String> = stored.iter().map(StoredKey::stored).collect();
            assert_eq!(spelled, keys.iter().map(BlockKey::key).collect::<Vec<_>>(), "{input}");
            for (k, s) in keys.iter().zip(stored) {
                assert_eq!((s.claim(), s.max_block_size()), (k.claim, k.max_block_size), "{}", k.name);
            }
            names.extend(keys.iter().map(|k| k.name.clone()));
        }
        assert!(names.iter().any(|n| n.ends_with(".unordered")), "{names:?}");
        assert!(names.iter().any(|n| n.contains('+')), "{names:?}");
        assert!(names.iter().any(|n| n.starts_with("gtin")), "{names:?}");
    }

    #[test]
    fn unordered_keys_survive_swapped_names() {
        let reg = SchemaRegistry::built_in().expect("schemas");
        let schema = reg.get("customer").expect("customer");
        let rec = |given: &str, family: &str| {
            let r = json!({"entityType":"customer","sourceSystem":"crm","sourceId":"1","sourceSeq":1,
                           "attributes":{"given_name":given,"family_name":family}});
            block_keys(schema, &validate(&reg, &r, 0).expect("valid"))
        };
        let (a, b) = (rec("Georgia", "Hague"), rec("Hague", "Georgia"));
        let name = "given_name.soundex+family_name.soundex.unordered";
        let pick = |keys: &[BlockKey]| keys.iter().find(|k| k.name == name).map(BlockKey::key);
        assert!(pick(&a).is_some());
        assert_eq!(pick(&a), pick(&b));
    }

    #[test]
    fn raw_values_never_claim() {
        let reg = SchemaRegistry::built_in().expect("schemas");
        let r = validate(
            &reg,
            &json!({"entityType":"customer","sourceSystem":"crm","sourceId":"1","sourceSeq":1,"attributes":{"email":"not-an-email"}}),
            0,
        )
        .expect("valid");
        let keys = block_keys(reg.get("customer").expect("customer"), &r);
        assert_eq!(keys.len(), 1);
        assert!(!keys[0].claim);
    }
}
