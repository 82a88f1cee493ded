//! Entity schemas: configuration files that declare each entity type's attributes, how they are
//! normalised, compared, blocked and survived. Loaded and validated at start-up.

use crate::compare::ComparatorKind;
use crate::normalise::Normaliser;
use crate::survivorship::Rule;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The JSON shapes an attribute accepts; anything else is a structural error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttributeType {
    /// A JSON string.
    Text,
    /// A JSON string or integer (codes, phone numbers, postcodes).
    Identifier,
    /// A JSON string holding a date.
    Date,
    /// A JSON number or a string holding one.
    Number,
}

/// How a blocking key takes its part from an attribute value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockTransform {
    Value,
    Soundex,
    Initial,
    Year,
    Prefix3,
    FirstToken,
    /// `MM-DD` of a date: the birthday without the year.
    MonthDay,
    /// `YYYY-MM` of a date.
    YearMonth,
}

impl BlockTransform {
    pub fn name(self) -> &'static str {
        match self {
            Self::Value => "value",
            Self::Soundex => "soundex",
            Self::Initial => "initial",
            Self::Year => "year",
            Self::Prefix3 => "prefix3",
            Self::FirstToken => "first_token",
            Self::MonthDay => "month_day",
            Self::YearMonth => "year_month",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockPart {
    pub attribute: String,
    pub transform: BlockTransform,
}

/// One blocking key declared on an attribute, optionally combined with parts of other attributes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockingKeyDef {
    pub transform: BlockTransform,
    #[serde(default)]
    pub with: Vec<BlockPart>,
    /// A strong key: a new golden record claims it, so two concurrent records of one new entity
    /// cannot both create a golden record.
    #[serde(default)]
    pub claim: bool,
    /// The parts in sorted order, so that the key survives the attributes being swapped
    /// (`given_name` and `family_name` soundex, unordered).
    #[serde(default)]
    pub unordered: bool,
    /// A weak key (a birth date alone) helps only while its blocks are small: above this many
    /// golden records it is skipped as too common (the entity's `max_block_size` applies too).
    #[serde(default)]
    pub max_block_size: Option<usize>,
}

/// A comparator with its Fellegi-Sunter parameters: one m and one u probability per agreement
/// level (best first); the disagreement level takes the remaining probability mass.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComparatorDef {
    pub kind: ComparatorKind,
    #[serde(default)]
    pub thresholds: Vec<f64>,
    pub m: Vec<f64>,
    pub u: Vec<f64>,
    /// The weight of each level and then of disagreement, worked out on first use.
    #[serde(skip)]
    pub(crate) weights: std::sync::OnceLock<Box<[f64]>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttributeDef {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: AttributeType,
    #[serde(default)]
    pub normalisers: Vec<Normaliser>,
    pub comparator: ComparatorDef,
    #[serde(default)]
    pub blocking: Vec<BlockingKeyDef>,
    pub survivorship: Rule,
    /// Per-attribute override of the entity's source priority.
    #[serde(default)]
    pub source_priority: Option<Vec<String>>,
    /// Country calling code used by the `phone` normaliser for national numbers.
    #[serde(default)]
    pub default_country_code: Option<String>,
    /// Longest accepted value, in characters (structural limit).
    #[serde(default = "default_max_length")]
    pub max_length: usize,
    /// Weigh an exact agreement by how common the value is among stored records (a rare family
    /// name counts for more than a common one; `crate::terms`). Needs a comparator whose first
    /// level is exact equality.
    #[serde(default)]
    pub term_frequency: bool,
}

fn default_max_length() -> usize {
    1024
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatchingConfig {
    pub link_threshold: f64,
    pub review_threshold: f64,
    #[serde(default = "default_block_size")]
    pub max_block_size: usize,
    #[serde(default = "default_candidates")]
    pub max_candidates: usize,
    /// Pairs of attributes whose values sources often swap (given and family name; two address
    /// lines): a record scores the pair crosswise too, and the better reading counts.
    #[serde(default)]
    pub swaps: Vec<[String; 2]>,
    /// Attributes that agree or disagree together (the parts of an address): their summed weight
    /// is held between the group's bounds, so that one shared address does not count five times.
    #[serde(default)]
    pub groups: Vec<WeightGroup>,
    /// Records a store needs before term-frequency adjustment counts in full: the adjustment is
    /// weighed by `total / (total + k)`, so a store much smaller than `k` barely adjusts.
    #[serde(default = "default_tf_prior")]
    pub term_frequency_prior: f64,
}

fn default_tf_prior() -> f64 {
    1000.0
}

/// Correlated attributes whose combined evidence is bounded.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeightGroup {
    pub name: String,
    pub attributes: Vec<String>,
    /// Most the group adds to a score.
    pub max_weight: f64,
    /// Least it adds (a negative number: a person who moved disagrees on every part at once).
    pub min_weight: f64,
    /// `u` of other attributes among *different* entities that agree on the whole group (people
    /// who live together share an address, and with it a family name far more often than two
    /// people drawn at random). When a pair agrees exactly on every member both sides hold (at
    /// least two), these attributes are weighed log2(m / within-u) instead of log2(m / u), and
    /// without term-frequency adjustment. Per attribute, one `u` per agreement level as in its
    /// comparator; `mdm train` writes it when its input holds such pairs.
    #[serde(default)]
    pub within: BTreeMap<String, Vec<f64>>,
    /// Most some of the group's attributes add together when a pair agrees exactly on each of
    /// them, keyed by their names joined with `+` (`"locality+postcode"`): a town's name, postcode
    /// and state agree together and are one piece of evidence, not three. A pair agreeing on
    /// more members has the others' weights added to the subset's cap; of several subsets that
    /// apply, the lowest total counts. `mdm train` writes the subsets whose joint agreement is
    /// measurably commoner than their members' agreements multiplied.
    #[serde(default)]
    pub subsets: BTreeMap<String, f64>,
}

fn default_block_size() -> usize {
    100
}
fn default_candidates() -> usize {
    50
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SurvivorshipConfig {
    #[serde(default)]
    pub source_priority: Vec<String>,
    /// How far a source's `sourceUpdatedAt` may be ahead of the hub's clock, in seconds. A later
    /// time is flagged (`time_in_future`) and not used for "most recent": the time the hub
    /// received the record stands in.
    #[serde(default = "default_clock_skew")]
    pub max_clock_skew_s: u64,
}

fn default_clock_skew() -> u64 {
    300
}

/// What a deterministic rule does when it applies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleEffect {
    /// All named attributes equal (and valid) on both sides → LINK at once.
    #[default]
    Link,
    /// All named attributes valid on both sides and different → never an automatic LINK (a high
    /// score becomes REVIEW): e.g. two different valid GTINs are two products.
    BlockLink,
    /// Both sides hold every named attribute and their comparators find no agreement at all (not
    /// a typo, nickname or swap) → never an automatic LINK: e.g. same family name and address but
    /// another given name, birth date and e-mail address is a household member, not one person.
    ReviewIfAllDisagree,
}

/// A deterministic rule over named attributes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeterministicRule {
    pub name: String,
    pub attributes: Vec<String>,
    #[serde(default)]
    pub effect: RuleEffect,
    /// Only when the incoming record marks the attributes as verified.
    #[serde(default)]
    pub require_verified: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntitySchema {
    pub entity: String,
    #[serde(default)]
    pub description: String,
    pub matching: MatchingConfig,
    #[serde(default)]
    pub survivorship: SurvivorshipConfig,
    #[serde(default)]
    pub rules: Vec<DeterministicRule>,
    pub attributes: Vec<AttributeDef>,
    /// The names above resolved to attribute positions, once (when the schema is parsed, or on
    /// first use for a schema built another way).
    #[serde(skip)]
    layout: std::sync::OnceLock<Layout>,
}

/// Attribute positions (indices into [`EntitySchema::attributes`]) for the names that matching
/// refers to, so scoring a candidate never searches for an attribute by name.
#[derive(Debug, Clone, Default)]
pub(crate) struct Layout {
    /// Attribute positions in name order: records and golden records keep their attributes
    /// sorted by name, so one walk lines them up with the schema.
    pub(crate) by_name: Vec<usize>,
    pub(crate) swaps: Vec<[usize; 2]>,
    /// Per entry of `matching.groups`.
    pub(crate) groups: Vec<Vec<usize>>,
    /// Per entry of `matching.groups`: the attributes of its `within` table with their weights
    /// per level, then for disagreement (log2(m / within-u)).
    pub(crate) within: Vec<Vec<(usize, Vec<f64>)>>,
    /// Per attribute: how many of its comparator's levels read as the same value
    /// ([`crate::compare::ComparatorDef::same_value_levels`]).
    pub(crate) same_value: Vec<usize>,
    /// Per entry of `matching.groups`: its `subsets`, as attribute positions and cap.
    pub(crate) subsets: Vec<Vec<(Vec<usize>, f64)>>,
    /// Per entry of `rules`; `None` for a rule naming an attribute the schema lacks.
    pub(crate) rules: Vec<Option<Vec<usize>>>,
    /// Per attribute, per blocking definition: the kinds of key it makes, unclaimed and claimed
    /// (one shared copy each).
    pub(crate) key_kinds: Vec<Vec<[&'static crate::blocking::KeyKind; 2]>>,
    /// Per attribute, per blocking definition: the positions of its `with` parts' attributes
    /// (`None` for one the schema lacks: the part is then always missing).
    pub(crate) key_with: Vec<Vec<Vec<Option<usize>>>>,
    /// Every blocking definition as (attribute position, definition index), in the order of the
    /// names of the keys they make: a record's keys come out in name order without a sort.
    pub(crate) key_order: Vec<(usize, usize)>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SchemaError {
    #[error("{file}: cannot read: {reason}")]
    Unreadable { file: String, reason: String },
    #[error("{file}: not a valid entity schema: {reason}")]
    Syntax { file: String, reason: String },
    #[error("{file}: {reason}")]
    Invalid { file: String, reason: String },
    #[error("entity type '{0}' is defined twice")]
    Duplicate(String),
    #[error("no entity schema files found in {0}")]
    Empty(String),
}

impl EntitySchema {
    /// Parses and validates one schema file's text; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<Self, SchemaError> {
        let schema: EntitySchema = toml::from_str(text)
            .map_err(|e| SchemaError::Syntax { file: file.to_owned(), reason: e.to_string().trim().to_owned() })?;
        schema.validate().map_err(|reason| SchemaError::Invalid { file: file.to_owned(), reason })?;
        // Resolved now, while loading, rather than by the first record matched.
        let _ = schema.layout();
        Ok(schema)
    }

    /// Resolves names to positions. `validate` rejects unknown names; for a schema built without
    /// it, an unknown name counts as an attribute never present: a swap or a group leaves it out
    /// and a rule naming it never applies.
    fn lay_out(&self) -> Layout {
        let mut by_name: Vec<usize> = (0..self.attributes.len()).collect();
        by_name.sort_by(|a, b| self.attributes[*a].name.cmp(&self.attributes[*b].name));
        let index = |name: &String| self.attribute_index(name);
        Layout {
            by_name,
            swaps: self.matching.swaps.iter().filter_map(|[a, b]| Some([index(a)?, index(b)?])).collect(),
            groups: self.matching.groups.iter().map(|g| g.attributes.iter().filter_map(index).collect()).collect(),
            within: self
                .matching
                .groups
                .iter()
                .map(|g| {
                    g.within
                        .iter()
                        .filter_map(|(name, u)| {
                            let i = index(name)?;
                            let m = &self.attributes[i].comparator.m;
                            let rest = |p: &[f64]| 1.0 - p.iter().sum::<f64>();
                            let weights = m
                                .iter()
                                .zip(u)
                                .map(|(m, u)| (m / u).log2())
                                .chain([(rest(m) / rest(u)).log2()])
                                .collect();
                            Some((i, weights))
                        })
                        .collect()
                })
                .collect(),
            same_value: self.attributes.iter().map(|a| a.comparator.same_value_levels()).collect(),
            subsets: self
                .matching
                .groups
                .iter()
                .map(|g| {
                    g.subsets
                        .iter()
                        .filter_map(|(key, cap)| {
                            let at: Option<Vec<usize>> = key.split('+').map(|a| self.attribute_index(a)).collect();
                            Some((at?, *cap))
                        })
                        .collect()
                })
                .collect(),
            rules: self.rules.iter().map(|r| r.attributes.iter().map(index).collect()).collect(),
            key_kinds: self
                .attributes
                .iter()
                .map(|a| {
                    a.blocking
                        .iter()
                        .map(|b| crate::blocking::shared_kinds(&crate::blocking::key_name(&a.name, b), b))
                        .collect()
                })
                .collect(),
            key_with: self
                .attributes
                .iter()
                .map(|a| a.blocking.iter().map(|b| b.with.iter().map(|p| index(&p.attribute)).collect()).collect())
                .collect(),
            key_order: {
                let mut order: Vec<(String, usize, usize)> = self
                    .attributes
                    .iter()
                    .enumerate()
                    .flat_map(|(at, a)| {
                        a.blocking.iter().enumerate().map(move |(i, b)| (crate::blocking::key_name(&a.name, b), at, i))
                    })
                    .collect();
                order.sort();
                order.into_iter().map(|(_, at, i)| (at, i)).collect()
            },
        }
    }

    /// Attribute positions in the order of their names (the order attribute maps keep).
    pub fn positions_by_name(&self) -> impl Iterator<Item = usize> + '_ {
        self.layout().by_name.iter().copied()
    }

    pub(crate) fn layout(&self) -> &Layout {
        self.layout.get_or_init(|| self.lay_out())
    }

    /// A map's values lined up with this schema's attributes (position `i` holds the value of
    /// `attributes[i]`); names the schema does not declare are left out.
    pub fn align<'a, V>(&self, map: &'a crate::attributes::AttributeMap<V>) -> Vec<Option<&'a V>> {
        let order = self.layout().by_name.iter().map(|&i| (i, self.attributes[i].name.as_str()));
        map.aligned(order, self.attributes.len())
    }

    fn validate(&self) -> Result<(), String> {
        if !is_identifier(&self.entity) {
            return Err(format!("entity name '{}' must be lowercase letters, digits or '_'", self.entity));
        }
        if self.attributes.is_empty() {
            return Err("an entity needs at least one attribute".into());
        }
        let m = &self.matching;
        if !(m.link_threshold.is_finite() && m.review_threshold.is_finite()) || m.review_threshold > m.link_threshold {
            return Err("matching.review_threshold must be a number no greater than link_threshold".into());
        }
        if !(m.term_frequency_prior.is_finite() && m.term_frequency_prior >= 0.0) {
            return Err("matching.term_frequency_prior must be a number of records, 0 or more".into());
        }
        if m.max_block_size == 0 || m.max_candidates == 0 {
            return Err("matching.max_block_size and max_candidates must be at least 1".into());
        }
        let mut names = BTreeSet::new();
        for a in &self.attributes {
            if !is_identifier(&a.name) {
                return Err(format!("attribute name '{}' must be lowercase letters, digits or '_'", a.name));
            }
            if !names.insert(a.name.as_str()) {
                return Err(format!("attribute '{}' is declared twice", a.name));
            }
            if a.survivorship == Rule::StewardPin {
                return Err(format!(
                    "attribute '{}': steward_pin is the rule of pinned values, not a survivorship rule",
                    a.name
                ));
            }
        }
        for a in &self.attributes {
            let ctx = |r: String| format!("attribute '{}': {r}", a.name);
            crate::compare::validate_def(&a.comparator).map_err(ctx)?;
            for b in &a.blocking {
                for p in &b.with {
                    if !names.contains(p.attribute.as_str()) {
                        return Err(ctx(format!("blocking key refers to unknown attribute '{}'", p.attribute)));
                    }
                }
            }
            if let Some(cc) = &a.default_country_code {
                if cc.is_empty() || cc.len() > 3 || !cc.chars().all(|c| c.is_ascii_digit()) {
                    return Err(ctx("default_country_code must be 1-3 digits".into()));
                }
            }
            if a.max_length == 0 {
                return Err(ctx("max_length must be at least 1".into()));
            }
            if a.term_frequency && !a.comparator.first_level_is_exact() {
                return Err(ctx("term_frequency needs a comparator whose first level is exact equality".into()));
            }
        }
        let mut grouped = BTreeSet::new();
        for g in &m.groups {
            if !(g.max_weight.is_finite() && g.min_weight.is_finite() && g.min_weight <= 0.0 && g.max_weight >= 0.0) {
                return Err(format!("matching.groups '{}': needs min_weight <= 0 <= max_weight", g.name));
            }
            for a in &g.attributes {
                if !names.contains(a.as_str()) {
                    return Err(format!("matching.groups '{}': unknown attribute '{a}'", g.name));
                }
                if !grouped.insert(a.as_str()) {
                    return Err(format!("matching.groups: attribute '{a}' is in more than one group"));
                }
            }
            for (a, u) in &g.within {
                let ctx = |why: &str| format!("matching.groups '{}': within.{a}: {why}", g.name);
                let Some(def) = self.attributes.iter().find(|d| &d.name == a) else {
                    return Err(ctx("unknown attribute"));
                };
                if g.attributes.contains(a) {
                    return Err(ctx("is a member of the group"));
                }
                if u.len() != def.comparator.m.len() {
                    return Err(ctx(&format!(
                        "needs {} values, one per level of its comparator",
                        def.comparator.m.len()
                    )));
                }
                if !u.iter().all(|x| *x > 0.0 && *x < 1.0) || u.iter().sum::<f64>() >= 1.0 {
                    return Err(ctx("values must lie between 0 and 1 and sum to less than 1"));
                }
            }
            for (key, cap) in &g.subsets {
                let ctx = |why: &str| format!("matching.groups '{}': subsets.\"{key}\": {why}", g.name);
                let parts: Vec<&str> = key.split('+').collect();
                if let Some(a) = parts.iter().find(|a| !g.attributes.iter().any(|m| m == *a)) {
                    return Err(ctx(&format!("'{a}' is not a member of the group")));
                }
                if parts.len() < 2 || parts.iter().collect::<BTreeSet<_>>().len() != parts.len() {
                    return Err(ctx("needs two or more different members joined with '+'"));
                }
                if !(cap.is_finite() && *cap >= 0.0) {
                    return Err(ctx("the cap must be a number >= 0"));
                }
            }
        }
        for [a, b] in &m.swaps {
            if a == b || !names.contains(a.as_str()) || !names.contains(b.as_str()) {
                return Err(format!("matching.swaps: [{a}, {b}] must name two different attributes of this entity"));
            }
        }
        for r in &self.rules {
            if r.attributes.is_empty() {
                return Err(format!("rule '{}' names no attribute", r.name));
            }
            for attr in &r.attributes {
                if !names.contains(attr.as_str()) {
                    return Err(format!("rule '{}' refers to unknown attribute '{attr}'", r.name));
                }
            }
        }
        Ok(())
    }

    pub fn attribute_index(&self, name: &str) -> Option<usize> {
        self.attributes.iter().position(|a| a.name == name)
    }

    pub fn attribute(&self, name: &str) -> Option<&AttributeDef> {
        self.attributes.iter().find(|a| a.name == name)
    }

    /// Source priority for an attribute: its own list, else the entity's.
    pub fn priority_for<'a>(&'a self, attr: &'a AttributeDef) -> &'a [String] {
        attr.source_priority.as_deref().unwrap_or(&self.survivorship.source_priority)
    }
}

fn is_identifier(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Every entity type the hub knows, by name.
#[derive(Debug, Clone)]
pub struct SchemaRegistry {
    schemas: BTreeMap<String, EntitySchema>,
}

const BUILT_IN: &[(&str, &str)] = &[
    ("entities/customer.toml", include_str!("../entities/customer.toml")),
    ("entities/product.toml", include_str!("../entities/product.toml")),
];

/// The text of a built-in schema file (`shared/core/entities/{entity}.toml`).
pub fn built_in_text(entity: &str) -> Option<&'static str> {
    BUILT_IN.iter().find(|(f, _)| *f == format!("entities/{entity}.toml")).map(|(_, t)| *t)
}

impl SchemaRegistry {
    /// The schemas shipped with the hub (`shared/core/entities/*.toml`).
    pub fn built_in() -> Result<Self, SchemaError> {
        Self::from_texts(BUILT_IN.iter().map(|(f, t)| (f.to_string(), t.to_string())))
    }

    /// Loads every `*.toml` file of a folder instead of the built-in set.
    pub fn from_dir(dir: &Path) -> Result<Self, SchemaError> {
        let shown = dir.display().to_string();
        let entries = std::fs::read_dir(dir)
            .map_err(|e| SchemaError::Unreadable { file: shown.clone(), reason: e.to_string() })?;
        let mut files = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| SchemaError::Unreadable { file: shown.clone(), reason: e.to_string() })?;
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "toml") {
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| SchemaError::Unreadable { file: path.display().to_string(), reason: e.to_string() })?;
                files.push((path.display().to_string(), text));
            }
        }
        if files.is_empty() {
            return Err(SchemaError::Empty(shown));
        }
        files.sort();
        Self::from_texts(files)
    }

    pub fn from_texts(files: impl IntoIterator<Item = (String, String)>) -> Result<Self, SchemaError> {
        let mut schemas = BTreeMap::new();
        for (file, text) in files {
            let s = EntitySchema::parse(&file, &text)?;
            if schemas.contains_key(&s.entity) {
                return Err(SchemaError::Duplicate(s.entity));
            }
            schemas.insert(s.entity.clone(), s);
        }
        Ok(Self { schemas })
    }

    pub fn get(&self, entity: &str) -> Option<&EntitySchema> {
        self.schemas.get(entity)
    }

    pub fn entities(&self) -> impl Iterator<Item = &str> {
        self.schemas.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_resolves_names_to_positions() {
        let r = SchemaRegistry::built_in().expect("built-in schemas are valid");
        let c = r.get("customer").expect("customer");
        let names: Vec<&str> = c.positions_by_name().map(|i| c.attributes[i].name.as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(names, sorted, "positions in name order");
        assert_eq!(names.len(), c.attributes.len());
        let layout = c.layout();
        for ([a, b], [ia, ib]) in c.matching.swaps.iter().zip(&layout.swaps) {
            assert_eq!((c.attributes[*ia].name.as_str(), c.attributes[*ib].name.as_str()), (a.as_str(), b.as_str()));
        }
        assert_eq!(layout.rules.len(), c.rules.len());
        assert!(layout.rules.iter().all(Option::is_some));
    }

    #[test]
    fn a_schema_built_without_validation_never_indexes_an_unknown_name() {
        let text = r#"
            entity = "thing"
            rules = [{ name = "r", attributes = ["a", "nope"] }]
            [matching]
            link_threshold = 5.0
            review_threshold = 2.0
            swaps = [["a", "nope"]]
            groups = [{ name = "g", attributes = ["a", "nope"], min_weight = -1.0, max_weight = 1.0 }]
            [[attributes]]
            name = "a"
            type = "text"
            survivorship = "most_recent"
            comparator = { kind = "exact", m = [0.9], u = [0.001] }
        "#;
        let schema: EntitySchema = toml::from_str(text).expect("deserialises");
        let layout = schema.layout();
        assert!(layout.swaps.is_empty());
        assert_eq!(layout.groups, vec![vec![0]]);
        assert_eq!(layout.rules, vec![None], "a rule naming an unknown attribute never applies");
        assert!(EntitySchema::parse("thing.toml", text).is_err(), "parsing rejects the unknown names");
    }

    #[test]
    fn built_in_schemas_load() {
        let r = SchemaRegistry::built_in().expect("built-in schemas are valid");
        assert_eq!(r.entities().collect::<Vec<_>>(), vec!["customer", "product"]);
        let c = r.get("customer").expect("customer");
        for a in [
            "given_name",
            "family_name",
            "date_of_birth",
            "email",
            "phone",
            "street_number",
            "address_line1",
            "address_line2",
            "locality",
            "postcode",
            "region",
            "country",
            "national_id",
        ] {
            assert!(c.attribute(a).is_some(), "customer.{a}");
        }
        let p = r.get("product").expect("product");
        for a in ["sku", "gtin", "name", "brand", "category", "size", "price", "currency"] {
            assert!(p.attribute(a).is_some(), "product.{a}");
        }
    }

    fn minimal(extra: &str) -> String {
        format!(
            "entity = \"thing\"\n[matching]\nlink_threshold = 5.0\nreview_threshold = 2.0\n{extra}\n\
             [[attributes]]\nname = \"code\"\ntype = \"identifier\"\ncomparator = {{ kind = \"exact\", m = [0.9], u = [0.01] }}\nsurvivorship = \"most_recent\"\n"
        )
    }

    #[test]
    fn a_new_entity_type_needs_only_a_file() {
        let r = SchemaRegistry::from_texts([("thing.toml".to_string(), minimal(""))]).expect("valid");
        assert!(r.get("thing").is_some());
    }

    #[test]
    fn errors_name_the_file_and_the_problem() {
        let bad = minimal("").replace("\"exact\"", "\"telepathy\"");
        let e = EntitySchema::parse("thing.toml", &bad).unwrap_err();
        assert!(matches!(e, SchemaError::Syntax { .. }), "{e}");
        assert!(e.to_string().starts_with("thing.toml"));

        let bad = minimal("").replace("u = [0.01]", "u = [1.5]");
        let e = EntitySchema::parse("thing.toml", &bad).unwrap_err();
        assert!(e.to_string().contains("attribute 'code'"), "{e}");

        let bad = minimal("[[rules]]\nname = \"r\"\nattributes = [\"nope\"]\n");
        let e = EntitySchema::parse("thing.toml", &bad).unwrap_err();
        assert!(e.to_string().contains("unknown attribute 'nope'"), "{e}");

        let bad = minimal("").replace("review_threshold = 2.0", "review_threshold = 9.0");
        assert!(EntitySchema::parse("thing.toml", &bad).is_err());

        // A group's `within` table names attributes outside the group, one `u` per level.
        let customer = built_in_text("customer").expect("customer");
        let with = |key: &str, table: &str| {
            customer.replacen("min_weight = -6.0 }", &format!("min_weight = -6.0, {key} = {{ {table} }} }}"), 1)
        };
        let refused = |key: &str, cases: &[(&str, &str)]| {
            for (table, why) in cases {
                let e = EntitySchema::parse("c.toml", &with(key, table)).unwrap_err();
                assert!(e.to_string().contains(why), "{table}: {e}");
            }
        };
        assert!(EntitySchema::parse("c.toml", &with("within", "family_name = [0.8, 0.1, 0.01]")).is_ok());
        refused(
            "within",
            &[
                ("nope = [0.5]", "within.nope: unknown attribute"),
                ("postcode = [0.5, 0.1]", "within.postcode: is a member of the group"),
                ("family_name = [0.8]", "within.family_name: needs 3 values"),
                ("family_name = [0.8, 0.3, 0.01]", "within.family_name: values must lie between 0 and 1"),
            ],
        );
        // Its `subsets`: two or more different members joined with `+`, each capped at >= 0.
        let c = EntitySchema::parse("c.toml", &with("subsets", "\"locality+postcode\" = 9.0")).expect("valid");
        let at = |n: &str| c.attribute_index(n).expect("attribute");
        assert_eq!(c.layout().subsets[0], vec![(vec![at("locality"), at("postcode")], 9.0)]);
        refused(
            "subsets",
            &[
                ("\"locality+family_name\" = 9.0", "'family_name' is not a member of the group"),
                ("\"locality\" = 9.0", "needs two or more different members"),
                ("\"locality+locality\" = 9.0", "needs two or more different members"),
                ("\"locality+postcode\" = -1.0", "the cap must be a number >= 0"),
            ],
        );

        let dup = [("a.toml".to_string(), minimal("")), ("b.toml".to_string(), minimal(""))];
        assert_eq!(SchemaRegistry::from_texts(dup).unwrap_err(), SchemaError::Duplicate("thing".into()));
    }
}
