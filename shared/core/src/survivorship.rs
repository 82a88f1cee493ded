//! Survivorship: which member's value becomes the golden value of each attribute.

use crate::attributes::AttributeMap;
use crate::golden::{GoldenAttribute, Origin};
use crate::record::{Slot, SourceRecord};
use crate::schema::{AttributeDef, EntitySchema};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// The most trusted system wins (the schema's `source_priority` list).
    SourcePriority,
    /// The value with the latest `source_updated_at` wins.
    MostRecent,
    /// The value most members agree on wins.
    MostFrequent,
    /// The value from the member with the most valid attributes wins.
    MostComplete,
    /// The value of the earliest member that has one wins.
    FirstNonEmpty,
    /// A data steward pinned the value (`GoldenRecord::pins`): it wins over every member's.
    StewardPin,
}

#[derive(Clone, Copy)]
struct Candidate<'a> {
    join: usize,
    record: &'a SourceRecord,
    value: &'a str,
    valid: bool,
}

fn recency(r: &SourceRecord) -> i64 {
    r.updated_at_ms.unwrap_or(r.received_at_ms)
}

fn rank(priority: &[String], system: &str) -> usize {
    priority.iter().position(|s| s == system).unwrap_or(priority.len())
}

/// A member with its values lined up with the schema ([`SourceRecord::slots`]).
pub type Member<'a> = (&'a SourceRecord, Vec<Slot<'a>>);

/// Members (in join order) with their slots, read once for every attribute.
pub fn members_with_slots<'a>(schema: &EntitySchema, members: &[&'a SourceRecord]) -> Vec<Member<'a>> {
    members.iter().map(|r| (*r, r.slots(schema))).collect()
}

/// Picks the surviving value of the schema's attribute at `position` among members (given in
/// join order). Valid values are preferred to values kept raw; ties are broken by recency,
/// priority, then join order, so the result never depends on the order records were read in.
pub fn survive_attribute(schema: &EntitySchema, position: usize, members: &[Member<'_>]) -> Option<GoldenAttribute> {
    survive_from(schema, position, members, &Origins::new(members.len()))
}

/// Each member's [`Origin`], made on first use and shared by the attributes it supplies.
struct Origins(Vec<std::cell::OnceCell<Origin>>);

impl Origins {
    fn new(members: usize) -> Self {
        Self((0..members).map(|_| std::cell::OnceCell::new()).collect())
    }

    fn of(&self, join: usize, record: &SourceRecord) -> Origin {
        match self.0.get(join) {
            Some(cell) => cell.get_or_init(|| Origin::of(&record.key)).clone(),
            None => Origin::of(&record.key),
        }
    }
}

fn survive_from(
    schema: &EntitySchema,
    position: usize,
    members: &[Member<'_>],
    origins: &Origins,
) -> Option<GoldenAttribute> {
    let def: &AttributeDef = schema.attributes.get(position)?;
    let all = || {
        members.iter().enumerate().filter_map(move |(join, (record, slots))| {
            let slot = slots.get(position)?;
            slot.value.map(|value| Candidate { join, record, value, valid: slot.valid })
        })
    };
    let any_valid = all().any(|c| c.valid);
    let cands = || all().filter(move |c| !any_valid || c.valid);
    let priority = schema.priority_for(def);
    let frequency = |v: &str| cands().filter(|c| c.value == v).count();
    let tie = |c: &Candidate| (std::cmp::Reverse(recency(c.record)), rank(priority, &c.record.key.system), c.join);
    let best = match def.survivorship {
        Rule::SourcePriority => cands().min_by_key(|c| (rank(priority, &c.record.key.system), tie(c))),
        Rule::MostRecent => cands().min_by_key(|c| tie(c)),
        Rule::MostFrequent => cands().min_by_key(|c| (std::cmp::Reverse(frequency(c.value)), tie(c))),
        Rule::MostComplete => cands().min_by_key(|c| {
            (std::cmp::Reverse(c.record.completeness()), std::cmp::Reverse(c.value.chars().count()), tie(c))
        }),
        // Refused by schema validation; read as first non-empty should one get here.
        Rule::FirstNonEmpty | Rule::StewardPin => cands().min_by_key(|c| c.join),
    }?;
    Some(GoldenAttribute::of(best.record, origins.of(best.join, best.record), best.value, def.survivorship, best.valid))
}

impl GoldenAttribute {
    /// `value`, taken from `record` (whose origin is `from`) under `rule`.
    fn of(record: &SourceRecord, from: Origin, value: &str, rule: Rule, valid: bool) -> Self {
        Self { value: value.into(), from, source_seq: record.seq, rule, valid }
    }
}

/// A golden record's data quality: the share of the entity type's attributes it holds a valid
/// value for, in thousandths (rounded). The same measure as the ingest function's
/// `DataQualityPercent` of a source record, taken over the surviving values; a pinned value
/// counts as valid (a steward chose it).
pub fn quality(schema: &EntitySchema, attributes: &AttributeMap<GoldenAttribute>) -> u16 {
    let total = schema.attributes.len();
    if total == 0 {
        return 1000;
    }
    let valid = attributes.iter().filter(|(name, a)| a.valid && schema.attribute(name).is_some()).count();
    ((valid * 1000 + total / 2) / total) as u16
}

/// Golden attributes with provenance from the members (in join order).
pub fn survive(schema: &EntitySchema, members: &[&SourceRecord]) -> AttributeMap<GoldenAttribute> {
    survive_members(schema, &members_with_slots(schema, members))
}

/// [`survive`] for members whose slots are read already.
pub fn survive_members(schema: &EntitySchema, members: &[Member<'_>]) -> AttributeMap<GoldenAttribute> {
    if let [(record, slots)] = members {
        // One member (a new golden record): each of its values survives, whatever the rule.
        let from = Origin::of(&record.key);
        return schema
            .positions_by_name()
            .filter_map(|i| {
                let def = &schema.attributes[i];
                let slot = slots.get(i)?;
                let attr = GoldenAttribute::of(record, from.clone(), slot.value?, def.survivorship, slot.valid);
                Some((def.name.as_str(), attr))
            })
            .collect();
    }
    let origins = Origins::new(members.len());
    schema
        .positions_by_name()
        .filter_map(|i| survive_from(schema, i, members, &origins).map(|a| (schema.attributes[i].name.as_str(), a)))
        .collect()
}

/// Pinned values win: each pin replaces its attribute's value, with provenance `steward` /
/// the pin's actor and rule `steward_pin`.
pub fn apply_pins(attributes: &mut AttributeMap<GoldenAttribute>, pins: &[crate::golden::Pin]) {
    for pin in pins {
        let attr = GoldenAttribute {
            value: pin.value.clone(),
            from: Origin::new(crate::golden::PIN_SOURCE, &pin.actor),
            source_seq: 0,
            rule: Rule::StewardPin,
            valid: true,
        };
        attributes.insert(pin.attribute.as_str(), attr);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::SourceKey;
    use crate::schema::SchemaRegistry;
    use std::collections::BTreeSet;

    fn rec(system: &str, id: &str, updated: i64, attrs: &[(&str, &str)]) -> SourceRecord {
        SourceRecord {
            key: SourceKey::new("customer", system, id),
            seq: 1,
            updated_at_ms: Some(updated),
            attributes: attrs.iter().map(|(k, v)| (*k, (*v).into())).collect(),
            invalid: BTreeSet::new(),
            quality: vec![],
            quality_score: 1.0,
            verified: BTreeSet::new(),
            content_hash: String::new(),
            correlation_id: String::new(),
            received_at_ms: 0,
            golden_id: None,
            held: false,
            first_seq: 1,
            principal: None,
            exempt: None,
            key_cache: Default::default(),
            superseded: Default::default(),
        }
    }

    #[test]
    fn each_rule_picks_and_names_its_winner() {
        let reg = SchemaRegistry::built_in().expect("schemas");
        let s = reg.get("customer").expect("customer");
        let a = rec("webshop", "w1", 300, &[("given_name", "jon"), ("email", "new@x.com"), ("country", "GB")]);
        let b = rec(
            "crm",
            "c1",
            100,
            &[("given_name", "john"), ("email", "old@x.com"), ("country", "GB"), ("locality", "leeds")],
        );
        let c = rec("erp", "e1", 200, &[("given_name", "johnny"), ("country", "IE")]);
        let g = survive(s, &[&a, &b, &c]);
        assert_eq!(g["given_name"].value, "john", "crm has priority");
        assert_eq!(g["given_name"].rule, Rule::SourcePriority);
        assert_eq!(g["email"].value, "new@x.com", "most recent");
        assert_eq!(g["email"].source(), "webshop");
        assert_eq!(g["country"].value, "GB", "most frequent");
        assert_eq!(g["locality"].source_id(), "c1");
    }

    #[test]
    fn a_single_member_gives_what_each_rule_would_pick() {
        let reg = SchemaRegistry::built_in().expect("schemas");
        let s = reg.get("customer").expect("customer");
        let mut r =
            rec("webshop", "w1", 300, &[("given_name", "jon"), ("date_of_birth", "1999-02-31"), ("country", "GB")]);
        r.invalid.insert("date_of_birth".into());
        let members = members_with_slots(s, &[&r]);
        let by_rule: AttributeMap<GoldenAttribute> = (0..s.attributes.len())
            .filter_map(|i| survive_attribute(s, i, &members).map(|a| (s.attributes[i].name.as_str(), a)))
            .collect();
        let fast = survive(s, &[&r]);
        assert_eq!(fast, by_rule);
        assert_eq!(fast.len(), 3);
        assert_eq!(fast["date_of_birth"].value, "1999-02-31", "a raw value survives when it is the only one");
        assert_eq!(fast["given_name"].source_id(), "w1");
    }

    #[test]
    fn valid_values_beat_raw_ones_and_order_does_not_matter() {
        let reg = SchemaRegistry::built_in().expect("schemas");
        let s = reg.get("customer").expect("customer");
        let mut bad = rec("crm", "c1", 500, &[("date_of_birth", "1999-02-31")]);
        bad.invalid.insert("date_of_birth".into());
        let good = rec("webshop", "w1", 100, &[("date_of_birth", "1999-02-13")]);
        assert_eq!(survive(s, &[&bad, &good])["date_of_birth"].value, "1999-02-13");
        assert_eq!(survive(s, &[&good, &bad]), survive(s, &[&good, &bad]));
        let x = rec("crm", "c2", 100, &[("email", "a@x.com")]);
        let y = rec("erp", "e2", 100, &[("email", "b@x.com")]);
        assert_eq!(survive(s, &[&x, &y])["email"].value, survive(s, &[&y, &x])["email"].value);
    }

    #[test]
    fn quality_counts_valid_surviving_values_over_the_schema_and_says_which_are_raw() {
        let reg = SchemaRegistry::built_in().expect("schemas");
        let s = reg.get("customer").expect("customer");
        let total = s.attributes.len();
        let mut raw = rec("crm", "c1", 500, &[("given_name", "ann"), ("date_of_birth", "1999-02-31")]);
        raw.invalid.insert("date_of_birth".into());
        let alone = survive(s, &[&raw]);
        assert!(!alone["date_of_birth"].valid, "only a raw value: it survives, marked");
        assert!(alone["given_name"].valid);
        let per_mille = |n: usize| ((n * 1000 + total / 2) / total) as u16;
        assert_eq!(quality(s, &alone), per_mille(1), "one valid value of {total}");
        let good = rec("webshop", "w1", 100, &[("date_of_birth", "1999-02-13"), ("email", "ann@x.com")]);
        let both = survive(s, &[&raw, &good]);
        assert!(both["date_of_birth"].valid);
        assert_eq!(quality(s, &both), per_mille(3));
        let mut pinned = alone.clone();
        let pin = crate::golden::Pin {
            attribute: "date_of_birth".into(),
            value: "1999-03-01".into(),
            actor: "steward".into(),
            reason: "checked".into(),
            at_ms: 0,
            source: None,
        };
        apply_pins(&mut pinned, &[pin]);
        assert_eq!(quality(s, &pinned), per_mille(2), "a pinned value counts as valid");
    }
}
