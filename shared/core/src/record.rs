//! Source records: validation of what a source system sends ("reject structure, keep values") and
//! the normalised record the hub stores.

use crate::keys::{digest_hex, SourceKey};
use crate::normalise::{self, NormaliseOptions};
use crate::schema::{AttributeType, EntitySchema, SchemaRegistry};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeSet;

/// Attribute names and values: short strings kept inline (up to 24 bytes) instead of on the heap.
/// A large batch run holds millions of them; most names, dates, codes and names of people fit.
pub type Text = compact_str::CompactString;

/// A data-quality issue: the value was kept raw because it could not be normalised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QualityIssue {
    pub attribute: String,
    pub code: String,
    pub message: String,
}

/// A normalised source record as the hub stores it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceRecord {
    pub key: SourceKey,
    /// Orders versions of this source record only (a CDC position, row version or update time).
    pub seq: u64,
    /// The source's own update time, for "most recent" across systems.
    pub updated_at_ms: Option<i64>,
    /// Attribute values: normalised, or raw (trimmed) where `invalid` names them.
    pub attributes: crate::attributes::AttributeMap<Text>,
    #[serde(default)]
    pub invalid: BTreeSet<String>,
    #[serde(default)]
    pub quality: Vec<QualityIssue>,
    pub quality_score: f64,
    /// Attributes the source says it has verified (e.g. a confirmed e-mail address).
    #[serde(default)]
    pub verified: BTreeSet<String>,
    /// Hash of the attribute values and verification flags: equal hashes, equal content.
    pub content_hash: String,
    pub correlation_id: String,
    pub received_at_ms: i64,
    /// Cross-reference: the golden record this source record belongs to (set by merge).
    #[serde(default)]
    pub golden_id: Option<String>,
    /// Held for a steward's review instead of matched: it matched an erased subject's
    /// suppression marker while suppression mode is `hold`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub held: bool,
    /// The `seq` of the first version of this record since it was first stored or last erased
    /// (set by the store): the generation a golden record it creates is named after, so a source
    /// key that comes back after an erasure never derives an id used before.
    #[serde(default)]
    pub first_seq: u64,
    /// Who sent this version (the token's subject, or the queue it came through): recorded
    /// with each stored version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<std::sync::Arc<str>>,
    /// A steward released this record from a hold: its key is exempt from suppression markers
    /// (kept by the store over later versions, like the cross-reference).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exempt: Option<std::sync::Arc<crate::golden::Exemption>>,
    /// This record's blocking keys, computed on first use (`blocking::keys_of`); never stored
    /// and ignored by `==`.
    #[serde(skip)]
    pub key_cache: KeyCache,
    /// Values as a superseded version of their normalisers gave them from the raw values,
    /// where that differs from the value kept (today: phone numbers as the hand-written
    /// normaliser read them before libphonenumber). Set by [`validate`] for the suppression
    /// check against markers written before the change (`erasure::suppression_keys`); never
    /// stored and ignored by `==`.
    #[serde(skip)]
    pub superseded: Superseded,
}

/// Attribute values as superseded normaliser versions gave them ([`SourceRecord::superseded`]).
/// Empty (the usual case), it takes no allocation and one word of the record (a `Vec` would
/// take three in each of the millions of records a batch holds).
#[derive(Debug, Clone, Default)]
#[allow(clippy::box_collection)]
pub struct Superseded(Option<Box<Vec<(Text, Text)>>>);

impl Superseded {
    /// Attribute name and superseded value, in the record's attribute order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().flat_map(|forms| forms.iter()).map(|(a, v)| (a.as_str(), v.as_str()))
    }

    pub fn is_empty(&self) -> bool {
        self.0.as_ref().is_none_or(|forms| forms.is_empty())
    }

    fn push(&mut self, attribute: &str, value: Text) {
        self.0.get_or_insert_with(Default::default).push((Text::from(attribute), value));
    }
}

impl PartialEq for Superseded {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// A record's blocking keys with their stored (digested) form, computed once per record value.
/// Records are not edited after validation, so the cache cannot go stale; a copy made after the
/// keys were computed shares them (the batch engine computes them before it stores a record).
/// Empty, it takes no allocation.
#[derive(Clone, Default)]
pub struct KeyCache(pub(crate) std::sync::OnceLock<std::sync::Arc<[crate::blocking::StoredKey]>>);

impl PartialEq for KeyCache {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl std::fmt::Debug for KeyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.get().is_some() { "KeyCache(filled)" } else { "KeyCache(empty)" })
    }
}

impl SourceRecord {
    pub fn value(&self, attribute: &str) -> Option<&str> {
        self.attributes.get(attribute).map(Text::as_str)
    }

    pub fn is_valid(&self, attribute: &str) -> bool {
        self.attributes.contains_key(attribute) && !self.invalid.contains(attribute)
    }

    /// How many attributes carry a valid value (used by the most-complete rule).
    pub fn completeness(&self) -> usize {
        self.attributes.keys().filter(|a| !self.invalid.contains(a.as_str())).count()
    }
}

/// One schema attribute of a record: its value, whether the value is valid (normalised) and
/// whether the source verified it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Slot<'a> {
    pub value: Option<&'a str>,
    pub valid: bool,
    pub verified: bool,
}

impl SourceRecord {
    /// The record's values lined up with the schema's attributes (position `i` describes
    /// `schema.attributes[i]`): what matching and survivorship read, without a search per name.
    pub fn slots<'a>(&'a self, schema: &EntitySchema) -> Vec<Slot<'a>> {
        schema
            .align(&self.attributes)
            .into_iter()
            .zip(&schema.attributes)
            .map(|(value, def)| match value {
                None => Slot::default(),
                Some(v) => Slot {
                    value: Some(v.as_str()),
                    valid: self.invalid.is_empty() || !self.invalid.contains(&def.name),
                    verified: !self.verified.is_empty() && self.verified.contains(&def.name),
                },
            })
            .collect()
    }
}

/// A structural problem with one record: the record is rejected and nothing is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{message}")]
pub struct RecordError {
    pub code: &'static str,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl RecordError {
    fn new(code: &'static str, field: impl Into<Option<String>>, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), field: field.into() }
    }
}

pub const MAX_SOURCE_ID_LEN: usize = 256;
pub const MAX_SYSTEM_LEN: usize = 64;

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn required_str<'a>(obj: &'a serde_json::Map<String, Value>, field: &str) -> Result<&'a str, RecordError> {
    match obj.get(field) {
        None | Some(Value::Null) => {
            Err(RecordError::new("missing_field", field.to_owned(), format!("'{field}' is required")))
        }
        Some(Value::String(s)) if s.trim().is_empty() => {
            Err(RecordError::new("missing_field", field.to_owned(), format!("'{field}' must not be empty")))
        }
        Some(Value::String(s)) => Ok(s.trim()),
        Some(other) => Err(RecordError::new(
            "invalid_type",
            field.to_owned(),
            format!("'{field}' must be a string, got {}", json_kind(other)),
        )),
    }
}

/// Validates and normalises one record in wire form:
/// `{"entityType","sourceSystem","sourceId","sourceSeq","sourceUpdatedAt"?,"attributes":{…},"verified"?:[…],"correlationId"?}`.
///
/// Structural problems reject the record; values that fail normalisation are kept raw and flagged.
pub fn validate(registry: &SchemaRegistry, input: &Value, received_at_ms: i64) -> Result<SourceRecord, RecordError> {
    let obj = input.as_object().ok_or_else(|| {
        RecordError::new("invalid_type", None, format!("a record must be an object, got {}", json_kind(input)))
    })?;
    const KNOWN: [&str; 8] = [
        "entityType",
        "sourceSystem",
        "sourceId",
        "sourceSeq",
        "sourceUpdatedAt",
        "attributes",
        "verified",
        "correlationId",
    ];
    if let Some(unknown) = obj.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return Err(RecordError::new("unknown_field", unknown.clone(), format!("unknown field '{unknown}'")));
    }
    let entity = required_str(obj, "entityType")?;
    let schema = schema_of(registry, entity)?;
    let system = checked_system(required_str(obj, "sourceSystem")?)?;
    let source_id = checked_source_id(required_str(obj, "sourceId")?)?;
    let seq = match obj.get("sourceSeq") {
        None | Some(Value::Null) => {
            return Err(RecordError::new("missing_field", "sourceSeq".to_owned(), "'sourceSeq' is required"))
        }
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) if !s.is_empty() && s.chars().all(|c| c.is_ascii_digit()) => s.parse().ok(),
        Some(_) => None,
    }
    .ok_or_else(|| {
        RecordError::new(
            "invalid_field",
            "sourceSeq".to_owned(),
            "'sourceSeq' must be a non-negative integer (or a string of digits)",
        )
    })?;
    let updated_at_ms = match obj.get("sourceUpdatedAt") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(crate::time::parse_rfc3339(s.trim()).ok_or_else(|| {
            RecordError::new(
                "invalid_field",
                "sourceUpdatedAt".to_owned(),
                "'sourceUpdatedAt' must be an RFC 3339 time",
            )
        })?),
        Some(other) => {
            return Err(RecordError::new(
                "invalid_type",
                "sourceUpdatedAt".to_owned(),
                format!("'sourceUpdatedAt' must be a string, got {}", json_kind(other)),
            ))
        }
    };
    let correlation_id = match obj.get("correlationId") {
        None | Some(Value::Null) => default_correlation_id(entity, &system, source_id, seq),
        Some(Value::String(s))
            if !s.is_empty()
                && s.len() <= 128
                && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_:.".contains(c)) =>
        {
            s.clone()
        }
        Some(_) => {
            return Err(RecordError::new(
                "invalid_field",
                "correlationId".to_owned(),
                "'correlationId' must be 1-128 letters, digits or '-_:.'",
            ))
        }
    };
    let attrs = match obj.get("attributes") {
        None | Some(Value::Null) => {
            return Err(RecordError::new("missing_field", "attributes".to_owned(), "'attributes' is required"))
        }
        Some(Value::Object(m)) => m,
        Some(other) => {
            return Err(RecordError::new(
                "invalid_type",
                "attributes".to_owned(),
                format!("'attributes' must be an object, got {}", json_kind(other)),
            ))
        }
    };
    let mut verified = BTreeSet::new();
    match obj.get("verified") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for item in items {
                let name = item.as_str().filter(|n| schema.attribute(n).is_some()).ok_or_else(|| {
                    RecordError::new(
                        "invalid_field",
                        "verified".to_owned(),
                        "'verified' must list attribute names of the entity",
                    )
                })?;
                verified.insert(name.to_owned());
            }
        }
        Some(other) => {
            return Err(RecordError::new(
                "invalid_type",
                "verified".to_owned(),
                format!("'verified' must be an array, got {}", json_kind(other)),
            ))
        }
    }
    let key = SourceKey::new(entity, system, source_id);
    let attrs = attrs.iter().map(|(name, v)| (name.as_str(), v));
    normalise_attributes(schema, key, seq, updated_at_ms, attrs, verified, correlation_id, received_at_ms, true)
}

/// A record read from a flat source such as a CSV row: every value is text. Empty values are
/// missing; where a name repeats, the last non-empty value counts (as in a JSON object).
#[derive(Debug, Clone, Copy)]
pub struct FlatRecord<'a> {
    pub entity: &'a str,
    pub system: &'a str,
    pub source_id: &'a str,
    pub seq: u64,
    /// Attribute name and raw value, in any order.
    pub attributes: &'a [(&'a str, &'a str)],
}

/// [`validate`] for a [`FlatRecord`]: the same checks and normalisation, and the same record
/// as the JSON object with those fields gives, without building one — and without the
/// superseded forms of its values ([`SourceRecord::superseded`]), which only the hub's
/// suppression check reads (the batch engine has no markers).
pub fn validate_flat(
    registry: &SchemaRegistry,
    flat: &FlatRecord<'_>,
    received_at_ms: i64,
) -> Result<SourceRecord, RecordError> {
    let required = |field: &str, v: &'_ str| -> Result<(), RecordError> {
        if v.trim().is_empty() {
            return Err(RecordError::new("missing_field", field.to_owned(), format!("'{field}' must not be empty")));
        }
        Ok(())
    };
    required("entityType", flat.entity)?;
    let entity = flat.entity.trim();
    let schema = schema_of(registry, entity)?;
    required("sourceSystem", flat.system)?;
    let system = checked_system(flat.system.trim())?;
    required("sourceId", flat.source_id)?;
    let source_id = checked_source_id(flat.source_id.trim())?;
    let correlation_id = default_correlation_id(entity, &system, source_id, flat.seq);
    // Sorted by name, the last non-empty value of a repeated name kept: a JSON object's view.
    // Fields given in name order without repeats (the batch engine lines its columns up so)
    // need neither the search nor the sort.
    let mut attrs: Vec<(&str, &str)> = Vec::with_capacity(flat.attributes.len());
    if flat.attributes.windows(2).all(|w| w[0].0 < w[1].0) {
        attrs.extend(flat.attributes.iter().filter(|(_, v)| !v.is_empty()));
    } else {
        for &(name, value) in flat.attributes.iter().filter(|(_, v)| !v.is_empty()) {
            match attrs.iter_mut().find(|(n, _)| *n == name) {
                Some(kept) => kept.1 = value,
                None => attrs.push((name, value)),
            }
        }
        attrs.sort_unstable_by_key(|(n, _)| *n);
    }
    let key = SourceKey::new(entity, system, source_id);
    normalise_attributes(
        schema,
        key,
        flat.seq,
        None,
        attrs.into_iter(),
        BTreeSet::new(),
        correlation_id,
        received_at_ms,
        false,
    )
}

fn schema_of<'r>(registry: &'r SchemaRegistry, entity: &str) -> Result<&'r EntitySchema, RecordError> {
    registry.get(entity).ok_or_else(|| {
        RecordError::new("unknown_entity_type", "entityType".to_owned(), format!("unknown entity type '{entity}'"))
    })
}

/// The source system, lower case, if it is a valid name (inline: a name is short).
fn checked_system(system: &str) -> Result<Text, RecordError> {
    let system = if system.bytes().any(|b| b.is_ascii_uppercase()) || !system.is_ascii() {
        system.to_lowercase().into()
    } else {
        Text::from(system)
    };
    if system.len() > MAX_SYSTEM_LEN
        || !system.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        return Err(RecordError::new(
            "invalid_field",
            "sourceSystem".to_owned(),
            format!("'sourceSystem' must be 1-{MAX_SYSTEM_LEN} letters, digits, '_', '-' or '.'"),
        ));
    }
    Ok(system)
}

fn checked_source_id(source_id: &str) -> Result<&str, RecordError> {
    if source_id.chars().count() > MAX_SOURCE_ID_LEN || source_id.chars().any(char::is_control) {
        return Err(RecordError::new(
            "invalid_field",
            "sourceId".to_owned(),
            format!("'sourceId' must be at most {MAX_SOURCE_ID_LEN} characters without control characters"),
        ));
    }
    Ok(source_id)
}

fn default_correlation_id(entity: &str, system: &str, source_id: &str, seq: u64) -> String {
    digest_hex(&[entity, system, source_id, &seq.to_string()], 8)
}

/// An attribute's value as it arrives: a JSON value (API, queues) or text (a CSV field).
pub(crate) trait RawValue {
    /// The value's text (`None`: missing), or a structural error.
    fn text(&self, kind: AttributeType, name: &str) -> Result<Option<std::borrow::Cow<'_, str>>, RecordError>;
}

impl RawValue for Value {
    fn text(&self, kind: AttributeType, name: &str) -> Result<Option<std::borrow::Cow<'_, str>>, RecordError> {
        attribute_text(kind, name, self)
    }
}

impl RawValue for str {
    fn text(&self, _: AttributeType, _: &str) -> Result<Option<std::borrow::Cow<'_, str>>, RecordError> {
        Ok(Some(self.into()))
    }
}

/// The string form of an attribute's JSON value, or a structural error.
fn attribute_text<'v>(
    schema_kind: AttributeType,
    name: &str,
    v: &'v Value,
) -> Result<Option<std::borrow::Cow<'v, str>>, RecordError> {
    let wrong = |v: &Value, want: &str| {
        RecordError::new(
            "invalid_type",
            format!("attributes.{name}"),
            format!("attribute '{name}' must be {want}, got {}", json_kind(v)),
        )
    };
    match (schema_kind, v) {
        (_, Value::Null) => Ok(None),
        (_, Value::String(s)) => Ok(Some(s.as_str().into())),
        (AttributeType::Identifier, Value::Number(n)) if n.is_u64() || n.is_i64() => Ok(Some(n.to_string().into())),
        (AttributeType::Number, Value::Number(n)) => Ok(Some(n.to_string().into())),
        (AttributeType::Text | AttributeType::Date, v) => Err(wrong(v, "a string")),
        (AttributeType::Identifier, v) => Err(wrong(v, "a string or an integer")),
        (AttributeType::Number, v) => Err(wrong(v, "a number or a string")),
    }
}

/// One attribute value checked and normalised as a source record's would be (a steward's
/// pinned value): an unknown attribute, a value of the wrong type, an empty or too long value,
/// or one its normalisers refuse is an error naming the attribute.
pub fn normalise_value(schema: &EntitySchema, name: &str, v: &Value) -> Result<Text, RecordError> {
    let field = format!("attributes.{name}");
    let def = schema.attribute(name).ok_or_else(|| {
        RecordError::new(
            "unknown_attribute",
            field.clone(),
            format!("entity type '{}' has no attribute '{name}'", schema.entity),
        )
    })?;
    let raw = v.text(def.kind, name)?.filter(|r| !r.trim().is_empty());
    let Some(raw) = raw else {
        return Err(RecordError::new("invalid_value", field, format!("attribute '{name}' needs a value")));
    };
    if raw.chars().count() > def.max_length {
        return Err(RecordError::new(
            "value_too_long",
            field,
            format!("attribute '{name}' is longer than {} characters", def.max_length),
        ));
    }
    let opts = NormaliseOptions { default_country_code: def.default_country_code.as_deref() };
    normalise::apply(&def.normalisers, &raw, opts)
        .map_err(|e| RecordError::new("invalid_value", field, format!("attribute '{name}': {e}")))
}

/// Attributes in name order (a JSON object's order), normalised into the source record;
/// `with_superseded` also keeps the values superseded normaliser versions give, where they
/// differ ([`SourceRecord::superseded`]).
#[allow(clippy::too_many_arguments)]
pub(crate) fn normalise_attributes<'a, V: RawValue + ?Sized + 'a>(
    schema: &EntitySchema,
    key: SourceKey,
    seq: u64,
    updated_at_ms: Option<i64>,
    attrs: impl ExactSizeIterator<Item = (&'a str, &'a V)>,
    verified: BTreeSet<String>,
    correlation_id: String,
    received_at_ms: i64,
    with_superseded: bool,
) -> Result<SourceRecord, RecordError> {
    // Collected in the input's order, then made a map at once.
    let mut values: Vec<(Text, Text)> = Vec::with_capacity(attrs.len());
    let mut invalid = BTreeSet::new();
    let mut quality = Vec::new();
    let mut superseded = Superseded::default();
    for (name, v) in attrs {
        let def = schema.attribute(name).ok_or_else(|| {
            RecordError::new(
                "unknown_attribute",
                format!("attributes.{name}"),
                format!("entity type '{}' has no attribute '{name}'", schema.entity),
            )
        })?;
        let Some(raw) = v.text(def.kind, name)? else { continue };
        if raw.chars().count() > def.max_length {
            return Err(RecordError::new(
                "value_too_long",
                format!("attributes.{name}"),
                format!("attribute '{name}' is longer than {} characters", def.max_length),
            ));
        }
        if raw.trim().is_empty() {
            continue;
        }
        let opts = NormaliseOptions { default_country_code: def.default_country_code.as_deref() };
        let normalised = normalise::apply(&def.normalisers, &raw, opts);
        if with_superseded {
            if let Some(Ok(old)) = normalise::apply_superseded(&def.normalisers, &raw, opts) {
                if normalised.as_ref().ok() != Some(&old) {
                    superseded.push(name, old);
                }
            }
        }
        match normalised {
            Ok(n) => {
                values.push((Text::from(name), n));
            }
            Err(e) => {
                values.push((Text::from(name), Text::from(raw.trim())));
                invalid.insert(name.to_owned());
                quality.push(QualityIssue {
                    attribute: name.to_owned(),
                    code: e.code().to_owned(),
                    message: e.to_string(),
                });
            }
        }
    }
    let skew_ms = i64::try_from(schema.survivorship.max_clock_skew_s.saturating_mul(1000)).unwrap_or(i64::MAX);
    let updated_at_ms = match updated_at_ms {
        Some(t) if t > received_at_ms.saturating_add(skew_ms) => {
            quality.push(QualityIssue {
                attribute: "sourceUpdatedAt".to_owned(),
                code: "time_in_future".to_owned(),
                message: format!(
                    "'sourceUpdatedAt' is more than {} s ahead of the hub's clock: not used for survivorship",
                    schema.survivorship.max_clock_skew_s
                ),
            });
            None
        }
        other => other,
    };
    let values: crate::attributes::AttributeMap<Text> = values.into_iter().collect();
    let present = values.len();
    let quality_score = if present == 0 { 0.0 } else { (present - invalid.len()) as f64 / present as f64 };
    let content_hash = content_hash(&values, &verified);
    Ok(SourceRecord {
        key,
        seq,
        updated_at_ms,
        attributes: values,
        invalid,
        quality,
        quality_score,
        verified,
        content_hash,
        correlation_id,
        received_at_ms,
        golden_id: None,
        held: false,
        first_seq: seq,
        principal: None,
        exempt: None,
        key_cache: KeyCache::default(),
        superseded,
    })
}

fn content_hash(values: &crate::attributes::AttributeMap<Text>, verified: &BTreeSet<String>) -> String {
    let mut parts: Vec<&str> = Vec::with_capacity(values.len() * 2 + verified.len() + 1);
    for (k, v) in values {
        parts.push(k);
        parts.push(v);
    }
    parts.push("\u{1}verified");
    parts.extend(verified.iter().map(String::as_str));
    digest_hex(&parts, 16)
}

#[cfg(test)]
mod tests {
    /// A `sourceUpdatedAt` beyond the entity's clock skew ahead of the hub's clock is flagged and
    /// not used by survivorship (the receive time stands in); one within the skew is kept.
    #[test]
    fn a_time_far_in_the_future_is_flagged_and_not_trusted() {
        let registry = crate::SchemaRegistry::built_in().expect("schemas");
        let now = crate::time::parse_rfc3339("2026-12-06T12:00:00Z").expect("time");
        let at = |t: &str| {
            super::validate(
                &registry,
                &serde_json::json!({"entityType": "customer", "sourceSystem": "crm", "sourceId": "1", "sourceSeq": 1,
                    "sourceUpdatedAt": t, "attributes": {"given_name": "Ann"}}),
                now,
            )
            .expect("valid")
        };
        let far = at("9999-12-31T23:59:59Z");
        assert_eq!(far.updated_at_ms, None, "not trusted for most-recent");
        let flag = far.quality.iter().find(|q| q.attribute == "sourceUpdatedAt").expect("flagged");
        assert_eq!(flag.code, "time_in_future");
        let near = at("2026-12-06T12:04:00Z");
        assert_eq!(near.updated_at_ms, crate::time::parse_rfc3339("2026-12-06T12:04:00Z"), "within the skew");
        assert!(near.quality.is_empty());
    }

    use super::*;
    use serde_json::json;

    fn reg() -> SchemaRegistry {
        SchemaRegistry::built_in().expect("schemas")
    }

    fn base() -> Value {
        json!({"entityType":"customer","sourceSystem":"CRM","sourceId":"c-1","sourceSeq":3,
               "sourceUpdatedAt":"2026-01-02T03:04:05Z",
               "attributes":{"given_name":" Zoë ","email":"ZOE@Example.com","date_of_birth":"1999-02-31","phone":null}})
    }

    #[test]
    fn a_flat_record_validates_as_its_json_object_does() {
        let reg = reg();
        let attributes = [
            ("given_name", " Zoë "),
            ("email", "ZOE@Example.com"),
            ("date_of_birth", "1999-02-31"),
            ("phone", ""),
            ("postcode", "ls1 4ap"),
            ("postcode", ""),
            ("family_name", "smith"),
            ("family_name", "Smyth"),
        ];
        let flat =
            FlatRecord { entity: "customer", system: " CRM ", source_id: "c-1", seq: 3, attributes: &attributes };
        let json = json!({"entityType":"customer","sourceSystem":"CRM","sourceId":"c-1","sourceSeq":3,
            "attributes":{"given_name":" Zoë ","email":"ZOE@Example.com","date_of_birth":"1999-02-31",
                          "postcode":"ls1 4ap","family_name":"Smyth"}});
        let (a, b) = (validate_flat(&reg, &flat, 7).expect("flat"), validate(&reg, &json, 7).expect("json"));
        assert_eq!(a, b);
        assert_eq!(a.content_hash, b.content_hash);
        assert_eq!(a.correlation_id, b.correlation_id);
        assert_eq!(a.attributes.get("family_name").map(|v| v.as_str()), Some("smyth"), "the last value counts");
        assert!(a.invalid.contains("date_of_birth"), "an impossible date is kept raw and flagged");
        // The same fields in name order without repeats (taken as they come) give the same record.
        let sorted = [
            ("date_of_birth", "1999-02-31"),
            ("email", "ZOE@Example.com"),
            ("family_name", "Smyth"),
            ("given_name", " Zoë "),
            ("phone", ""),
            ("postcode", "ls1 4ap"),
        ];
        let in_order = validate_flat(&reg, &FlatRecord { attributes: &sorted, ..flat }, 7).expect("flat");
        assert_eq!(in_order, a);
        assert_eq!(in_order.content_hash, a.content_hash);

        for (flat, code) in [
            (FlatRecord { entity: "planet", ..flat }, "unknown_entity_type"),
            (FlatRecord { system: "c r m", ..flat }, "invalid_field"),
            (FlatRecord { system: " ", ..flat }, "missing_field"),
            (FlatRecord { source_id: "a\u{7}b", ..flat }, "invalid_field"),
            (FlatRecord { attributes: &[("shoe_size", "42")], ..flat }, "unknown_attribute"),
        ] {
            assert_eq!(validate_flat(&reg, &flat, 0).map_err(|e| e.code), Err(code), "{flat:?}");
        }
    }

    #[test]
    fn slots_line_values_up_with_the_schema() {
        let reg = reg();
        let schema = reg.get("customer").expect("customer");
        let mut rec = base();
        rec["verified"] = json!(["email"]);
        let mut r = validate(&reg, &rec, 0).expect("valid record");
        // Names the schema does not declare (a record stored under an older schema) are passed
        // over, wherever they fall in name order.
        for extra in ["aaa", "email_old", "zzz"] {
            r.attributes.insert(extra, Text::from("x"));
        }
        let slots = r.slots(schema);
        assert_eq!(slots.len(), schema.attributes.len());
        for (def, slot) in schema.attributes.iter().zip(&slots) {
            let name = def.name.as_str();
            assert_eq!(slot.value, r.value(name), "{name}");
            assert_eq!(slot.valid, r.is_valid(name), "{name}");
            assert_eq!(slot.verified, r.verified.contains(name), "{name}");
        }
        let at = |name: &str| slots[schema.attribute_index(name).expect(name)];
        assert_eq!(at("email"), Slot { value: Some("zoe@example.com"), valid: true, verified: true });
        assert_eq!(at("date_of_birth"), Slot { value: Some("1999-02-31"), valid: false, verified: false });
        assert_eq!(at("phone"), Slot::default());
    }

    #[test]
    fn values_are_normalised_and_bad_values_kept_raw() {
        let received = crate::time::parse_rfc3339("2026-01-02T04:00:00Z").expect("time");
        let r = validate(&reg(), &base(), received).expect("valid record");
        assert_eq!(r.key, SourceKey::new("customer", "crm", "c-1"));
        assert_eq!(r.value("given_name"), Some("zoe"));
        assert_eq!(r.value("email"), Some("zoe@example.com"));
        assert_eq!(r.value("date_of_birth"), Some("1999-02-31"), "impossible date kept raw");
        assert!(r.invalid.contains("date_of_birth"));
        assert_eq!(r.quality[0].code, "invalid_date");
        assert!(!r.quality[0].message.contains("1999"), "no value echoed");
        assert!(r.value("phone").is_none(), "null is missing");
        assert!((r.quality_score - 2.0 / 3.0).abs() < 1e-9);
        assert_eq!(r.updated_at_ms, crate::time::parse_rfc3339("2026-01-02T03:04:05Z"));
    }

    #[test]
    fn structural_errors_reject() {
        let cases: Vec<(Value, &str, Option<&str>)> = vec![
            (json!([1]), "invalid_type", None),
            (
                json!({"entityType":"planet","sourceSystem":"a","sourceId":"1","sourceSeq":1,"attributes":{}}),
                "unknown_entity_type",
                Some("entityType"),
            ),
            (
                json!({"entityType":"customer","sourceSystem":"a","sourceSeq":1,"attributes":{}}),
                "missing_field",
                Some("sourceId"),
            ),
            (
                json!({"entityType":"customer","sourceSystem":"a","sourceId":"  ","sourceSeq":1,"attributes":{}}),
                "missing_field",
                Some("sourceId"),
            ),
            (
                json!({"entityType":"customer","sourceId":"1","sourceSeq":1,"attributes":{}}),
                "missing_field",
                Some("sourceSystem"),
            ),
            (
                json!({"entityType":"customer","sourceSystem":"a","sourceId":"1","attributes":{}}),
                "missing_field",
                Some("sourceSeq"),
            ),
            (
                json!({"entityType":"customer","sourceSystem":"a","sourceId":"1","sourceSeq":-1,"attributes":{}}),
                "invalid_field",
                Some("sourceSeq"),
            ),
            (
                json!({"entityType":"customer","sourceSystem":"a","sourceId":1,"sourceSeq":1,"attributes":{}}),
                "invalid_type",
                Some("sourceId"),
            ),
            (
                json!({"entityType":"customer","sourceSystem":"a","sourceId":"1","sourceSeq":1,"attributes":{"shoe_size":"9"}}),
                "unknown_attribute",
                Some("attributes.shoe_size"),
            ),
            (
                json!({"entityType":"customer","sourceSystem":"a","sourceId":"1","sourceSeq":1,"attributes":{"given_name":{"x":1}}}),
                "invalid_type",
                Some("attributes.given_name"),
            ),
            (
                json!({"entityType":"customer","sourceSystem":"a","sourceId":"1","sourceSeq":1,"attributes":{"email":true}}),
                "invalid_type",
                Some("attributes.email"),
            ),
            (
                json!({"entityType":"customer","sourceSystem":"a","sourceId":"1","sourceSeq":1,"attributes":[]}),
                "invalid_type",
                Some("attributes"),
            ),
            (
                json!({"entityType":"customer","sourceSystem":"a","sourceId":"1","sourceSeq":1,"sourceUpdatedAt":"soon","attributes":{}}),
                "invalid_field",
                Some("sourceUpdatedAt"),
            ),
            (
                json!({"entityType":"customer","sourceSystem":"a b","sourceId":"1","sourceSeq":1,"attributes":{}}),
                "invalid_field",
                Some("sourceSystem"),
            ),
            (
                json!({"entityType":"customer","sourceSystem":"a","sourceId":"1","sourceSeq":1,"attributes":{},"extra":1}),
                "unknown_field",
                Some("extra"),
            ),
        ];
        for (input, code, field) in cases {
            let e = validate(&reg(), &input, 0).expect_err(&input.to_string());
            assert_eq!(e.code, code, "{input}");
            assert_eq!(e.field.as_deref(), field, "{input}");
        }
    }

    #[test]
    fn identifiers_accept_integers_and_numbers_accept_strings() {
        let r = validate(
            &reg(),
            &json!({"entityType":"product","sourceSystem":"erp","sourceId":"p1","sourceSeq":"12",
                    "attributes":{"gtin":4006381333931u64,"price":"9,99","sku":"ab-12"}}),
            0,
        )
        .expect("valid");
        assert_eq!(r.seq, 12);
        assert_eq!(r.value("gtin"), Some("04006381333931"));
        assert_eq!(r.value("price"), Some("9.99"));
        assert_eq!(r.value("sku"), Some("AB12"));
        assert!(r.invalid.is_empty());
    }

    #[test]
    fn content_hash_depends_on_values_only() {
        let a = validate(&reg(), &base(), 0).expect("valid");
        let mut later = base();
        later["sourceSeq"] = json!(9);
        let b = validate(&reg(), &later, 5).expect("valid");
        assert_eq!(a.content_hash, b.content_hash);
        later["attributes"]["given_name"] = json!("Zoey");
        let c = validate(&reg(), &later, 5).expect("valid");
        assert_ne!(a.content_hash, c.content_hash);
    }
}
