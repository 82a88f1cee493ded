//! Identity resolution: score an incoming record against candidate golden records
//! (Fellegi-Sunter weights, deterministic rules) and decide LINK / REVIEW / NEW, with an
//! explanation per attribute.

use crate::compare::{weight_at, Comparison};
use crate::golden::{GoldenRecord, MatchValue};
use crate::record::{Slot, SourceRecord};
use crate::schema::{AttributeDef, EntitySchema, RuleEffect};
use crate::terms::TermCounts;
use serde::{Deserialize, Serialize};
use std::borrow::Borrow;

/// How one attribute contributed to a score. Carries no attribute values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttributeExplanation {
    pub attribute: crate::record::Text,
    /// Comparator level, e.g. `exact`, `similarity>=0.92`, `different`, or `missing`; prefixed
    /// `swapped:` when the value agreed with the other attribute of a swap pair.
    pub level: crate::record::Text,
    pub weight: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Band {
    Link,
    Review,
    NoMatch,
}

/// The score of one candidate golden record, with its explanation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CandidateScore {
    pub golden_id: String,
    pub score: f64,
    pub band: Band,
    /// The deterministic rule that decided, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// A rule that forbids an automatic link (the pair goes to review at most).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked_by: Option<String>,
    pub attributes: Vec<AttributeExplanation>,
}

/// What to do with an incoming record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "decision")]
pub enum MatchDecision {
    /// Belongs to these golden records (best first); more than one means the record bridges
    /// them and they merge.
    Link { golden_ids: Vec<String> },
    /// Possibly the same as these: a steward decides; the record stays in its own golden record.
    Review { golden_ids: Vec<String> },
    /// A new entity.
    New,
}

/// Counts about candidate retrieval (key names only, never key values).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockingStats {
    pub keys: usize,
    pub too_common: Vec<String>,
    pub candidates: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MatchResult {
    pub decision: MatchDecision,
    /// Scored candidates, best first (the record's own golden record excluded).
    pub candidates: Vec<CandidateScore>,
    pub blocking: BlockingStats,
}

/// Most golden records one bridging record may merge at once; the rest are left for review.
pub const MAX_MERGE_FAN_IN: usize = 8;

/// The best comparison of a record's value with any of a golden record's values (`None` when it
/// holds none).
fn best(def: &AttributeDef, value: &str, valid: bool, theirs: &[MatchValue]) -> Option<Comparison> {
    theirs
        .iter()
        .map(|c| def.comparator.compare(value, &c.value, valid && c.valid))
        .max_by(|a, b| a.weight.total_cmp(&b.weight))
}

/// Scores a record against one golden record: the best agreement over every value its members
/// hold, summed over attributes; a missing value on either side is neutral.
pub fn score(schema: &EntitySchema, record: &SourceRecord, golden: &GoldenRecord) -> CandidateScore {
    score_with(schema, &record.slots(schema), golden, &TermCounts::default())
}

/// `mine` is the record's side, read once per record ([`SourceRecord::slots`]), not once per
/// candidate.
fn score_with(schema: &EntitySchema, mine: &[Slot<'_>], golden: &GoldenRecord, terms: &TermCounts) -> CandidateScore {
    let layout = schema.layout();
    let theirs: Vec<&[MatchValue]> = schema
        .align(&golden.match_values)
        .into_iter()
        .map(|v| v.map_or(&[][..], crate::golden::MatchValues::as_slice))
        .collect();
    // Per attribute: the best comparison over the golden record's values, or `None` (missing).
    let mut parts: Vec<Option<(Comparison, bool)>> = schema
        .attributes
        .iter()
        .zip(mine)
        .zip(&theirs)
        .map(|((def, m), t)| Some((best(def, m.value?, m.valid, t)?, false)))
        .collect();
    // Swapped pairs: the crosswise reading counts when it scores higher.
    for &[ia, ib] in &layout.swaps {
        let (Some((sa, _)), Some((sb, _))) = (parts[ia], parts[ib]) else { continue };
        let (da, db) = (&schema.attributes[ia], &schema.attributes[ib]);
        // Crosswise, each comparator scores at most its best level: when the straight reading
        // has both at theirs, nothing can beat it (the test below could not pass), and the two
        // comparisons are not made. Most candidates that are the same person stop here.
        if sa.weight + sb.weight + 1e-9 >= da.comparator.max_weight() + db.comparator.max_weight() {
            continue;
        }
        let (Some(ra), Some(rb)) = (mine[ia].value, mine[ib].value) else { continue };
        let (Some(ca), Some(cb)) = (best(da, ra, mine[ia].valid, theirs[ib]), best(db, rb, mine[ib].valid, theirs[ia]))
        else {
            continue;
        };
        if ca.weight + cb.weight > sa.weight + sb.weight + 1e-9 {
            parts[ia] = Some((ca, true));
            parts[ib] = Some((cb, true));
        }
    }
    let mut total = 0.0;
    let mut attributes = Vec::with_capacity(schema.attributes.len());
    for ((def, part), m) in schema.attributes.iter().zip(&parts).zip(mine) {
        if m.value.is_none() {
            continue;
        }
        let (level, weight) = match part {
            None => (crate::record::Text::const_new("missing"), 0.0),
            Some((c, swapped)) => {
                total += c.weight;
                let name = def.comparator.level_name(c.level);
                let level = if *swapped { compact_str::format_compact!("swapped:{name}") } else { name };
                (level, (c.weight * 1000.0).round() / 1000.0)
            }
        };
        attributes.push(AttributeExplanation { attribute: def.name.as_str().into(), level, weight });
    }
    // Correlated groups: a subset agreed on exactly adds at most its cap, and the group's summed
    // weight is held between its bounds; the explanation shows the adjustment as its own line, so
    // the weights still add up to the score.
    for ((g, members), subsets) in schema.matching.groups.iter().zip(&layout.groups).zip(&layout.subsets) {
        let sum: f64 = members.iter().filter_map(|&i| parts[i].map(|(c, _)| c.weight)).sum();
        let exact = |i: usize| parts[i].filter(|(c, _)| c.level == Some(0)).map(|(c, _)| c.weight);
        let excess = subsets
            .iter()
            .filter_map(|(attrs, cap)| Some(attrs.iter().map(|&i| exact(i)).sum::<Option<f64>>()? - cap))
            .fold(0.0, f64::max);
        let bounded = (sum - excess).clamp(g.min_weight, g.max_weight);
        if (bounded - sum).abs() > 1e-9 {
            total += bounded - sum;
            let level = if sum > bounded { "capped" } else { "floored" };
            attributes.push(AttributeExplanation {
                attribute: compact_str::format_compact!("group:{}", g.name),
                level: level.into(),
                weight: ((bounded - sum) * 1000.0).round() / 1000.0,
            });
        }
    }
    // A group agreed on as a whole (people who live together share an address): the attributes
    // of its `within` table weigh what they say among such pairs, as one adjustment line. An
    // attribute weighed within two groups (an e-mail address among housemates and among
    // namesakes) weighs the less of the two once: each table knows one group only, and each
    // subtracting from the same weight would count the overlap twice.
    let mut weighed: Vec<Option<f64>> = vec![None; parts.len()];
    for (g, (members, within)) in schema.matching.groups.iter().zip(layout.groups.iter().zip(&layout.within)) {
        if within.is_empty() || !group_agrees(members, &parts, &layout.same_value) {
            continue;
        }
        let table = |w: usize| within.iter().find(|(a, _)| *a == w).map(|(_, t)| t);
        // The change from what attribute `i` weighs now to `target`, when `target` is lower or
        // the attribute not yet weighed within a group.
        let mut adjust = 0.0;
        let mut weigh = |i: usize, target: f64, raw: f64| {
            let now = weighed[i].unwrap_or(raw);
            let next = if weighed[i].is_some() { target.min(now) } else { target };
            weighed[i] = Some(next);
            next - now
        };
        for (i, (c, _)) in parts.iter().enumerate().filter_map(|(i, p)| Some((i, (*p)?))).filter(|(_, (_, s))| !s) {
            let Some(weights) = table(i) else { continue };
            adjust += weigh(i, weight_at(weights, c.level), c.weight);
        }
        // Read crosswise, each value was compared with the other attribute of its swap pair, and
        // which side's fields were swapped is not known: a given name agreeing with a family
        // name is a family name agreeing if the golden record's were swapped, a given name if the
        // record's were. Among such pairs the two say different things (housemates share a family
        // name, not a given name); the reading that says less for a match counts.
        for &[a, b] in &layout.swaps {
            let (Some((ca, true)), Some((cb, true))) = (parts[a], parts[b]) else { continue };
            let reading = |ta: usize, tb: usize| -> Option<(f64, f64)> {
                Some((weight_at(table(ta)?, ca.level), weight_at(table(tb)?, cb.level)))
            };
            let Some((wa, wb)) =
                [reading(a, b), reading(b, a)]
                    .into_iter()
                    .flatten()
                    .reduce(|x, y| if y.0 + y.1 < x.0 + x.1 { y } else { x })
            else {
                continue;
            };
            adjust += weigh(a, wa, ca.weight) + weigh(b, wb, cb.weight);
        }
        total += adjust;
        attributes.push(AttributeExplanation {
            attribute: compact_str::format_compact!("group:{}", g.name),
            level: "within".into(),
            weight: (adjust * 1000.0).round() / 1000.0,
        });
    }
    // Exact agreement on a value whose frequency is known: weighed by how rare it is, as its own
    // line after the group bounds (a capped group keeps the evidence of a rare name).
    for (i, (def, part)) in schema.attributes.iter().zip(&parts).enumerate() {
        if weighed[i].is_some() {
            continue;
        }
        let (Some((c, false)), Some(count)) = (part, terms.count(i)) else { continue };
        if c.level != Some(0) || !def.term_frequency {
            continue;
        }
        let Some(&u) = def.comparator.u.first() else { continue };
        let adjust = crate::terms::adjustment(u, count, terms.total, schema.matching.term_frequency_prior);
        if adjust.abs() > 1e-9 {
            total += adjust;
            attributes.push(AttributeExplanation {
                attribute: compact_str::format_compact!("tf:{}", def.name),
                level: "term_frequency".into(),
                weight: (adjust * 1000.0).round() / 1000.0,
            });
        }
    }
    // A rule attribute's valid value on our side, and the golden record's values.
    let sides = |i: usize| {
        let v = mine[i].value.filter(|_| mine[i].valid)?;
        Some((v, theirs[i]))
    };
    let rules = || schema.rules.iter().zip(&layout.rules).filter_map(|(r, at)| Some((r, at.as_ref()?)));
    let blocked_by = rules()
        .filter(|(r, _)| r.effect != RuleEffect::Link)
        .find(|(rule, attributes)| {
            if rule.effect == RuleEffect::ReviewIfAllDisagree {
                // Both sides hold every named attribute and no comparison finds any agreement.
                return attributes.iter().all(|&i| parts[i].is_some_and(|(c, _)| c.level.is_none()));
            }
            attributes.iter().all(|&i| {
                let Some((v, theirs)) = sides(i) else { return false };
                let mut valid = theirs.iter().filter(|m| m.valid).peekable();
                valid.peek().is_some() && valid.all(|m| m.value != v)
            })
        })
        .map(|(r, _)| r.name.clone());
    let rule = rules()
        .filter(|(r, _)| r.effect == RuleEffect::Link)
        .find(|(rule, attributes)| {
            attributes.iter().all(|&i| {
                let Some((v, theirs)) = sides(i) else { return false };
                if rule.require_verified && !mine[i].verified {
                    return false;
                }
                theirs.iter().any(|m| m.valid && m.value == v && (!rule.require_verified || m.verified))
            })
        })
        .map(|(r, _)| r.name.clone());
    let total = (total * 1000.0).round() / 1000.0;
    let band = if blocked_by.is_some() {
        if rule.is_some() || total >= schema.matching.review_threshold {
            Band::Review
        } else {
            Band::NoMatch
        }
    } else if rule.is_some() || total >= schema.matching.link_threshold {
        Band::Link
    } else if total >= schema.matching.review_threshold {
        Band::Review
    } else {
        Band::NoMatch
    };
    CandidateScore { golden_id: golden.golden_id.clone(), score: total, band, rule, blocked_by, attributes }
}

/// The other attribute of the swap pair `[a, b]`, if `i` is one of them.
fn partner(i: usize, a: usize, b: usize) -> Option<usize> {
    (i == a).then_some(b).or((i == b).then_some(a))
}

/// Whether a pair agrees on a group as a whole: every member both sides hold agrees on one value
/// (exactly, or at a level that says as much: `same_value` per attribute), and at least two do.
fn group_agrees(members: &[usize], parts: &[Option<(Comparison, bool)>], same_value: &[usize]) -> bool {
    let mut present = 0;
    for &i in members {
        if let Some((c, _)) = parts[i] {
            if c.level.is_none_or(|l| l >= same_value[i]) {
                return false;
            }
            present += 1;
        }
    }
    present >= 2
}

/// Whether two golden records hold different valid values for every attribute of a
/// `block_link` rule (two different valid GTINs: two products).
fn conflict(schema: &EntitySchema, a: &GoldenRecord, b: &GoldenRecord) -> bool {
    schema.rules.iter().filter(|r| r.effect == RuleEffect::BlockLink).any(|rule| {
        rule.attributes.iter().all(|attr| {
            fn valid<'g>(g: &'g GoldenRecord, attr: &str) -> Vec<&'g str> {
                g.match_values
                    .get(attr)
                    .map_or(&[][..], crate::golden::MatchValues::as_slice)
                    .iter()
                    .filter(|m| m.valid)
                    .map(|m| m.value.as_str())
                    .collect()
            }
            let (va, vb) = (valid(a, attr), valid(b, attr));
            !va.is_empty() && !vb.is_empty() && va.iter().all(|v| !vb.contains(v))
        })
    })
}

/// What a candidate's `blocked_by` says when a keep-apart constraint holds it at REVIEW.
pub const KEEP_APART: &str = "keep_apart";

impl MatchResult {
    /// The golden records a review task is opened for: those of a REVIEW decision, or, beside a
    /// LINK, the candidates a keep-apart constraint held back from it (the record joins the
    /// closer side; a steward decides about the other).
    pub fn review_candidates(&self) -> Vec<String> {
        match &self.decision {
            MatchDecision::Review { golden_ids } => golden_ids.clone(),
            MatchDecision::Link { golden_ids } => self
                .candidates
                .iter()
                .filter(|c| c.blocked_by.as_deref() == Some(KEEP_APART) && !golden_ids.contains(&c.golden_id))
                .map(|c| c.golden_id.clone())
                .collect(),
            MatchDecision::New => Vec::new(),
        }
    }
}

/// The link targets one record may join together: best first, then every other one that does
/// not conflict with those kept under a `block_link` rule or a keep-apart constraint. A record without a GTIN that resembles
/// two flavours of one product line links to the closer one; it does not merge two products
/// whose GTINs differ.
///
/// Nor does a record join two golden records that disagree outright on an attribute it lacks: it
/// cannot tell which of the two it belongs to. A record without a given name beside twins (same
/// family name, birth date and address, other given names) links to the closer one and merges
/// nothing; a record holding the e-mail address of one and the phone of the other, where the
/// two hold nothing contrary, merges them.
fn compatible<G: Borrow<GoldenRecord>>(
    schema: &EntitySchema,
    mine: &[Slot<'_>],
    candidates: &[G],
    links: Vec<String>,
) -> Vec<String> {
    if links.len() < 2 {
        return links;
    }
    let by_id = |id: &str| candidates.iter().map(Borrow::borrow).find(|g: &&GoldenRecord| g.golden_id == id);
    let mut kept: Vec<String> = Vec::with_capacity(links.len());
    for id in links {
        let Some(g) = by_id(&id) else { continue };
        if kept
            .iter()
            .filter_map(|k| by_id(k))
            .all(|k| !conflict(schema, k, g) && !k.kept_apart_from(g) && !contrary_where_missing(schema, mine, k, g))
        {
            kept.push(id);
        }
    }
    kept
}

/// Whether golden records `a` and `b` disagree outright (no value of one agrees with any value
/// of the other at any level, read straight or across its swap pair) on an attribute the record
/// (`mine`) holds no value for.
fn contrary_where_missing(schema: &EntitySchema, mine: &[Slot<'_>], a: &GoldenRecord, b: &GoldenRecord) -> bool {
    let (va, vb) = (schema.align(&a.match_values), schema.align(&b.match_values));
    fn values<'g>(v: &[Option<&'g crate::golden::MatchValues>], i: usize) -> &'g [MatchValue] {
        v[i].map_or(&[][..], |m| m.as_slice())
    }
    let agree = |def: &AttributeDef, xs: &[MatchValue], ys: &[MatchValue]| {
        xs.iter()
            .any(|x| ys.iter().any(|y| def.comparator.compare(&x.value, &y.value, x.valid && y.valid).level.is_some()))
    };
    let layout = schema.layout();
    schema.attributes.iter().enumerate().any(|(i, def)| {
        let (xs, ys) = (values(&va, i), values(&vb, i));
        if mine[i].value.is_some() || xs.is_empty() || ys.is_empty() || agree(def, xs, ys) {
            return false;
        }
        // Read across a swap pair (one of them holds a given name as the family name and the
        // family name as the given name), they may agree: both crosswise comparisons must.
        !layout
            .swaps
            .iter()
            .filter_map(|[p, q]| partner(i, *p, *q))
            .any(|j| agree(def, xs, values(&vb, j)) && agree(&schema.attributes[j], values(&va, j), ys))
    })
}

/// Scores every candidate (active golden records, own golden record excluded by the caller or by
/// `own`) and decides. Candidates are golden records, owned or shared.
pub fn decide<G: Borrow<GoldenRecord>>(
    schema: &EntitySchema,
    record: &SourceRecord,
    candidates: &[G],
    own: Option<&GoldenRecord>,
    blocking: BlockingStats,
    terms: &TermCounts,
) -> MatchResult {
    let mine = record.slots(schema);
    let own_id = own.map(|o| o.golden_id.as_str());
    let mut scored: Vec<CandidateScore> = candidates
        .iter()
        .map(Borrow::borrow)
        .filter(|g: &&GoldenRecord| g.is_active() && Some(g.golden_id.as_str()) != own_id)
        .map(|g| {
            let mut c = score_with(schema, &mine, g, terms);
            // A steward decided the record's own golden record and this one are different
            // entities: neither linked nor proposed for review again (the score stays, as
            // explanation).
            if c.band != Band::NoMatch && own.is_some_and(|o| o.kept_apart_from(g)) {
                c.band = Band::NoMatch;
                c.blocked_by = Some(KEEP_APART.into());
            }
            c
        })
        .collect();
    scored.sort_by(|a, b| {
        b.rule.is_some().cmp(&a.rule.is_some()).then(b.score.total_cmp(&a.score)).then(a.golden_id.cmp(&b.golden_id))
    });
    let ids = |band: Band| -> Vec<String> {
        scored.iter().filter(|c| c.band == band).take(MAX_MERGE_FAN_IN).map(|c| c.golden_id.clone()).collect()
    };
    let links = compatible(schema, &mine, candidates, ids(Band::Link));
    // Link candidates a keep-apart constraint with a closer one held back: at most a review.
    let by_id = |id: &str| candidates.iter().map(Borrow::borrow).find(|g: &&GoldenRecord| g.golden_id == id);
    for c in scored.iter_mut().filter(|c| c.band == Band::Link && !links.contains(&c.golden_id)) {
        let held =
            by_id(&c.golden_id).is_some_and(|g| links.iter().filter_map(|l| by_id(l)).any(|l| l.kept_apart_from(g)));
        if held {
            c.band = Band::Review;
            c.blocked_by = Some(KEEP_APART.into());
        }
    }
    let decision = if !links.is_empty() {
        MatchDecision::Link { golden_ids: links }
    } else {
        let reviews: Vec<String> = scored
            .iter()
            .filter(|c| c.band == Band::Review)
            .take(MAX_MERGE_FAN_IN)
            .map(|c| c.golden_id.clone())
            .collect();
        if reviews.is_empty() {
            MatchDecision::New
        } else {
            MatchDecision::Review { golden_ids: reviews }
        }
    };
    MatchResult { decision, candidates: scored, blocking }
}
