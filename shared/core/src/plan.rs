//! Merge plans: given a match decision and the current state, a pure function returns every write
//! the change needs (golden records, history, cross-references, index, claims, review task, events).
//! The store applies the main transaction atomically; follow-up chunks are idempotent and ordered
//! so that every intermediate state still resolves to the survivor.

use crate::attributes::AttributeMap;
use crate::events::{Envelope, GoldenChanged, GoldenMerged, GoldenView, HubEvent, ReviewOpened};
use crate::golden::{
    Cause, GoldenRecord, GoldenStatus, HistoryEntry, MatchValue, MatchValues, ReviewStatus, ReviewTask,
};
use crate::index_keys::{IndexKey, KeySet};
use crate::keys::{digest_hex, golden_id_for, SourceKey};
use crate::matching::{MatchDecision, MatchResult};
use crate::record::SourceRecord;
use crate::schema::EntitySchema;
use crate::store::{Expect, OutboxEntry, WriteOp, MAX_TRANSACTION_ITEMS};
use crate::survivorship::{members_with_slots, Member};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Values kept per attribute for matching, at most.
pub const MAX_MATCH_VALUES: usize = 16;

/// A golden record with its member source records (as read, in any order).
#[derive(Debug, Clone)]
pub struct GoldenState {
    pub golden: GoldenRecord,
    pub members: Vec<std::sync::Arc<SourceRecord>>,
}

/// Everything [`plan_merge`] needs, read by the caller.
pub struct MergeInput<'a> {
    pub schema: &'a EntitySchema,
    /// The source record as currently stored.
    pub source: &'a SourceRecord,
    /// The active golden record the source already belongs to, if any.
    pub current: Option<&'a GoldenState>,
    /// Active golden records the decision links to (other than `current`).
    pub targets: &'a [GoldenState],
    pub result: &'a MatchResult,
    /// Current holders of the claim keys involved.
    pub claims: &'a BTreeMap<IndexKey, String>,
    /// The review task this decision would open exists already.
    pub review_exists: bool,
    pub now_ms: i64,
    /// Write history versions and the link reasons of cross-references (the batch engine turns
    /// both off: nobody reads them).
    pub keep_history: bool,
    /// Write events to the outbox (the batch engine turns this off: nobody publishes them).
    pub emit_events: bool,
    /// Claim holders that were merged into another golden record, resolved to the active one
    /// (holder → survivor). A claim still held by a record merged into ours is moved to ours.
    pub merged_holders: &'a BTreeMap<String, String>,
    /// Claim holders that do not exist: claims written ahead of a transaction that failed (see
    /// [`crate::store::ClaimStore::claim_times`]). Their claims are free to take.
    pub free_holders: &'a BTreeSet<String>,
    /// Items of the main transaction kept free for the caller (conditions it adds).
    pub reserved: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum MergeOutcome {
    Created { golden_id: String },
    Linked { golden_id: String },
    Merged { golden_id: String, merged: Vec<String> },
    Updated { golden_id: String },
    Unchanged { golden_id: String },
}

impl MergeOutcome {
    pub fn golden_id(&self) -> &str {
        match self {
            Self::Created { golden_id }
            | Self::Linked { golden_id }
            | Self::Merged { golden_id, .. }
            | Self::Updated { golden_id }
            | Self::Unchanged { golden_id } => golden_id,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::Created { .. } => "created",
            Self::Linked { .. } => "linked",
            Self::Merged { .. } => "merged",
            Self::Updated { .. } => "updated",
            Self::Unchanged { .. } => "unchanged",
        }
    }
}

#[derive(Debug, Clone)]
pub struct MergePlan {
    pub outcome: MergeOutcome,
    /// The golden record holding the source after the plan.
    pub golden: GoldenRecord,
    /// Attribute values or member sources changed: version bumped, history and event written.
    pub effective: bool,
    pub review_task: Option<String>,
    /// One transaction, at most [`MAX_TRANSACTION_ITEMS`] items.
    pub writes: Vec<WriteOp>,
    /// Idempotent chunks applied after `writes`, in order.
    pub follow_ups: Vec<Vec<WriteOp>>,
    /// The events written to the outbox (none without `emit_events`).
    pub events: Vec<HubEvent>,
    /// The detail-types of the change's events, emitted or not.
    pub event_types: Vec<&'static str>,
}

/// The id of the review task a decision opens: stable, so a redelivery never opens a second one.
pub fn review_task_id(entity: &str, golden_id: &str, candidates: &[String]) -> String {
    let mut c: Vec<&str> = candidates.iter().map(String::as_str).collect();
    c.sort_unstable();
    let mut parts = vec![entity, golden_id];
    parts.extend(c);
    format!("r{}", digest_hex(&parts, 12))
}

/// Distinct values per attribute over the members (in join order), for matching.
pub fn match_values(schema: &EntitySchema, members: &[&SourceRecord]) -> AttributeMap<MatchValues> {
    member_match_values(schema, &members_with_slots(schema, members))
}

/// [`match_values`] for members whose slots are read already.
pub fn member_match_values(schema: &EntitySchema, members: &[Member<'_>]) -> AttributeMap<MatchValues> {
    let mut out: Vec<(&str, MatchValues)> = Vec::with_capacity(schema.attributes.len());
    for i in schema.positions_by_name() {
        let def = &schema.attributes[i];
        let mut vals = MatchValues::default();
        for (_, slots) in members {
            let Some(slot) = slots.get(i) else { continue };
            let Some(v) = slot.value else { continue };
            if let Some(m) = vals.iter_mut().find(|m| m.value == v && m.valid == slot.valid) {
                m.verified |= slot.verified;
            } else if vals.len() < MAX_MATCH_VALUES {
                vals.push(MatchValue { value: v.into(), valid: slot.valid, verified: slot.verified });
            }
        }
        if !vals.is_empty() {
            // Kept for the golden record's lifetime: no spare capacity.
            vals.shrink_to_fit();
            out.push((def.name.as_str(), vals));
        }
    }
    out.into_iter().collect()
}

/// Up to this many members listed, [`ordered_members`] searches instead of building maps.
const SMALL_GROUP: usize = 16;

/// Orders members: those of `first` in join order, then the others', then `extra`; later copies
/// of a key are dropped, and the freshest record of each key is used (for the record being
/// merged too: a member copy with a higher `seq` wins over it).
fn ordered_members<'a>(groups: &[&'a GoldenState], source: &'a SourceRecord) -> Vec<&'a SourceRecord> {
    let listed: usize = groups.iter().map(|g| g.golden.members.len()).sum();
    if listed <= SMALL_GROUP {
        // Most plans (every record creating its golden record, most links) list a few members:
        // searched in place, without two ordered maps and a copy of every key.
        searched_members(groups, source, listed)
    } else {
        mapped_members(groups, source)
    }
}

/// [`ordered_members`] by search: quadratic in the members listed.
fn searched_members<'a>(groups: &[&'a GoldenState], source: &'a SourceRecord, listed: usize) -> Vec<&'a SourceRecord> {
    let freshest = |k: &SourceKey| -> Option<&'a SourceRecord> {
        let member = groups.iter().rev().flat_map(|g| g.members.iter().rev()).find(|r| r.key == *k).map(|r| &**r);
        if *k == source.key {
            // The record being merged, unless a member copy read since is newer (the record may
            // come from a replica that is behind).
            return Some(member.filter(|m| m.seq > source.seq).unwrap_or(source));
        }
        member
    };
    let mut out: Vec<&SourceRecord> = Vec::with_capacity(listed + 1);
    for k in groups.iter().flat_map(|g| g.golden.members.iter()) {
        // A key listed again is taken already: no search for its record.
        if out.iter().any(|o| o.key == *k) {
            continue;
        }
        if let Some(r) = freshest(k) {
            out.push(r);
        }
    }
    if !out.iter().any(|o| o.key == source.key) {
        out.push(source);
    }
    out
}

/// [`ordered_members`] through maps.
fn mapped_members<'a>(groups: &[&'a GoldenState], source: &'a SourceRecord) -> Vec<&'a SourceRecord> {
    let mut by_key: BTreeMap<&SourceKey, &SourceRecord> = BTreeMap::new();
    for g in groups {
        for r in &g.members {
            by_key.insert(&r.key, r);
        }
    }
    // The record being merged, unless a member copy read since is newer (a replica behind).
    if by_key.get(&source.key).is_none_or(|m| m.seq <= source.seq) {
        by_key.insert(&source.key, source);
    }
    let mut seen: BTreeSet<&SourceKey> = BTreeSet::new();
    let mut out = Vec::with_capacity(by_key.len());
    for g in groups {
        for k in g.golden.members.iter() {
            if let Some(r) = by_key.get(k) {
                if seen.insert(k) {
                    out.push(*r);
                }
            }
        }
    }
    if seen.insert(&source.key) {
        out.push(source);
    }
    out
}

/// The survivor's list of records merged into it, with the losers and theirs added.
/// The survivor's keep-apart constraints and the losers': they stand against the survivor now.
pub(crate) fn kept_apart(survivor: Option<&GoldenRecord>, losers: &[&GoldenRecord]) -> Vec<String> {
    let mut out: Vec<String> = survivor.map(|s| s.kept_apart.clone()).unwrap_or_default();
    for l in losers {
        for id in &l.kept_apart {
            if !out.contains(id) {
                out.push(id.clone());
            }
        }
    }
    out
}

/// Why a record joins `golden_id`: it created it, or the decision linked it (the rule or the
/// score of the candidate it joined, with the explanation). `None` when neither applies (a
/// lost cross-reference written again).
fn link_of(result: &MatchResult, created: bool, golden_id: &str, now: i64) -> Option<crate::golden::Link> {
    use crate::golden::{Link, LinkKind};
    let bare = |how| Link {
        how,
        golden_id: golden_id.to_owned(),
        rule: None,
        score: None,
        explanation: Vec::new(),
        cause: None,
        actor: None,
        reason: None,
        at_ms: now,
    };
    if created {
        return Some(bare(LinkKind::Created));
    }
    let MatchDecision::Link { golden_ids } = &result.decision else { return None };
    let c = result.candidates.iter().find(|c| c.golden_id == golden_id || golden_ids.contains(&c.golden_id))?;
    let mut link = bare(if c.rule.is_some() { LinkKind::Rule } else { LinkKind::Score });
    link.rule = c.rule.clone();
    link.score = Some(c.score);
    link.explanation = c.attributes.clone();
    Some(link)
}

/// A value that did not change keeps the provenance it was set with (its `sourceSeq`). Both
/// maps are sorted by name: walked side by side.
pub(crate) fn keep_provenance(old: &GoldenRecord, attributes: &mut AttributeMap<crate::golden::GoldenAttribute>) {
    let mut olds = old.attributes.iter().peekable();
    for (name, attr) in attributes.iter_mut() {
        while olds.next_if(|(n, _)| n.as_str() < name.as_str()).is_some() {}
        if let Some((_, prev)) = olds.next_if(|(n, _)| *n == name) {
            if prev.value == attr.value && prev.from == attr.from && prev.rule == attr.rule {
                // The earlier `sourceSeq`; validity as the normalisers judge it now.
                let valid = attr.valid;
                *attr = prev.clone();
                attr.valid = valid;
            }
        }
    }
}

/// The survivor's pins, and the losers' on attributes the survivor has not pinned.
pub fn pins_of(survivor: Option<&GoldenRecord>, losers: &[&GoldenRecord]) -> Vec<crate::golden::Pin> {
    let mut out: Vec<crate::golden::Pin> = survivor.map(|s| s.pins.clone()).unwrap_or_default();
    for l in losers {
        for p in &l.pins {
            if !out.iter().any(|o| o.attribute == p.attribute) {
                out.push(p.clone());
            }
        }
    }
    out
}

pub(crate) fn merged_from(survivor: Option<&GoldenRecord>, losers: &[&GoldenRecord]) -> Vec<String> {
    let mut out: Vec<String> = survivor.map(|s| s.merged_from.clone()).unwrap_or_default();
    for l in losers {
        for id in std::iter::once(&l.golden_id).chain(&l.merged_from) {
            if !out.contains(id) {
                out.push(id.clone());
            }
        }
    }
    out
}

/// The attributes whose golden value differs from `old`'s (all of them for a new record), in name
/// order. Borrowed: the names are spelled out only for events.
pub(crate) fn changed_attributes<'a>(old: Option<&'a GoldenRecord>, new: &'a GoldenRecord) -> Vec<&'a str> {
    let mut names = Vec::new();
    // Both maps are sorted by name: walked side by side, no name is looked up.
    let mut a = old.into_iter().flat_map(|o| o.attributes.iter()).peekable();
    let mut b = new.attributes.iter().peekable();
    loop {
        let (name, before, after) = match (a.peek(), b.peek()) {
            (None, None) => break,
            (Some((n, v)), None) => (n.as_str(), Some(v.value.as_str()), None),
            (None, Some((n, v))) => (n.as_str(), None, Some(v.value.as_str())),
            (Some((x, v)), Some((y, w))) => match x.as_str().cmp(y.as_str()) {
                std::cmp::Ordering::Less => (x.as_str(), Some(v.value.as_str()), None),
                std::cmp::Ordering::Greater => (y.as_str(), None, Some(w.value.as_str())),
                std::cmp::Ordering::Equal => (x.as_str(), Some(v.value.as_str()), Some(w.value.as_str())),
            },
        };
        if before.is_some() {
            a.next();
        }
        if after.is_some() {
            b.next();
        }
        if old.is_none() || before != after {
            names.push(name);
        }
    }
    names
}

/// Computes the writes for one source record given the decision and the current state.
pub fn plan_merge(input: &MergeInput<'_>) -> MergePlan {
    let schema = input.schema;
    let source = input.source;
    let now = input.now_ms;

    // Which golden records take part: the current one, plus link targets.
    let mut group: Vec<&GoldenState> = input.current.into_iter().collect();
    if let MatchDecision::Link { .. } = input.result.decision {
        for t in input.targets {
            if !group.iter().any(|g| g.golden.golden_id == t.golden.golden_id) {
                group.push(t);
            }
        }
    }
    // Survivor: most members, then oldest, then smallest id.
    group.sort_by(|a, b| {
        b.golden
            .members
            .len()
            .cmp(&a.golden.members.len())
            .then(a.golden.created_at_ms.cmp(&b.golden.created_at_ms))
            .then(a.golden.golden_id.cmp(&b.golden.golden_id))
    });
    let survivor_old: Option<&GoldenRecord> = group.first().map(|g| &g.golden);
    let losers: Vec<&GoldenRecord> = group.iter().skip(1).map(|g| &g.golden).collect();
    let loser_ids: BTreeSet<&str> = losers.iter().map(|l| l.golden_id.as_str()).collect();
    let golden_id = survivor_old.map_or_else(|| golden_id_for(&source.key, source.first_seq), |g| g.golden_id.clone());

    let members = ordered_members(&group, source);
    let with_slots = members_with_slots(schema, &members);
    let mut attributes = crate::survivorship::survive_members(schema, &with_slots);
    // Pinned values win (the survivor's; a loser's pin on an attribute the survivor has not
    // pinned moves with it).
    let pins = pins_of(survivor_old, &losers);
    crate::survivorship::apply_pins(&mut attributes, &pins);
    if let Some(old) = survivor_old {
        keep_provenance(old, &mut attributes);
    }
    let quality = crate::survivorship::quality(schema, &attributes);
    let (index_keys, mut claim_keys) = crate::blocking::stored_key_lists(schema, members.iter().copied());
    if !losers.is_empty() {
        for l in &losers {
            claim_keys.extend(l.claims.iter().cloned());
        }
        claim_keys.sort_unstable();
        claim_keys.dedup();
    }

    // Claims: take free ones, move the losers', leave ones held by other golden records alone.
    // New claims sized once: a write is a few hundred bytes, and growing a vector copies them.
    // Moved claims are rare: their vector grows when one is.
    let mut new_claims = Vec::with_capacity(claim_keys.len());
    let mut moved_claims = Vec::new();
    // Collected, then sorted and deduplicated into the golden record's set.
    let mut held: Vec<IndexKey> = Vec::with_capacity(survivor_old.map_or(0, |g| g.claims.len()) + claim_keys.len());
    held.extend(survivor_old.iter().flat_map(|g| g.claims.iter().cloned()));
    // The entity type and golden id, shared by the plan's claim and index writes.
    let entity: Arc<str> = schema.entity.as_str().into();
    let id: Arc<str> = golden_id.as_str().into();
    for key in &claim_keys {
        let op = |from: Option<String>| WriteOp::PutClaim {
            entity: entity.clone(),
            key: key.clone(),
            golden_id: id.clone(),
            from,
        };
        match input.claims.get(key).map(String::as_str) {
            Some(h) if h == golden_id => {
                held.push(key.clone());
            }
            Some(h)
                if loser_ids.contains(h)
                    || input.merged_holders.get(h) == Some(&golden_id)
                    || input.free_holders.contains(h) =>
            {
                moved_claims.push(op(Some(h.to_owned())));
                held.push(key.clone());
            }
            None => {
                new_claims.push(op(None));
                held.push(key.clone());
            }
            Some(_) => {}
        }
    }

    let member_keys: Vec<SourceKey> = members.iter().map(|r| r.key.clone()).collect();
    let mut golden = GoldenRecord {
        entity: schema.entity.clone(),
        golden_id: golden_id.clone(),
        version: 1,
        revision: 1,
        status: GoldenStatus::Active,
        attributes: attributes.into(),
        members: member_keys.into(),
        match_values: member_match_values(schema, &with_slots).into(),
        index_keys: index_keys.into_iter().collect(),
        claims: held.into_iter().collect(),
        created_at_ms: now,
        updated_at_ms: now,
        merged_from: merged_from(survivor_old, &losers),
        kept_apart: kept_apart(survivor_old, &losers),
        pins,
        quality: Some(quality),
    };
    let (effective, needs_write) = match survivor_old {
        None => (true, true),
        Some(old) => {
            let effective = !changed_attributes(Some(old), &golden).is_empty()
                || old.members != golden.members
                || !losers.is_empty();
            let stored_differs = old.attributes != golden.attributes
                || old.match_values != golden.match_values
                || old.index_keys != golden.index_keys
                || old.claims != golden.claims
                || old.quality != golden.quality;
            (effective, effective || stored_differs)
        }
    };
    if let Some(old) = survivor_old {
        golden.version = old.version + u64::from(effective);
        golden.revision = old.revision + 1;
        golden.created_at_ms = old.created_at_ms;
        golden.updated_at_ms = if needs_write { now } else { old.updated_at_ms };
        if !needs_write {
            golden = old.clone();
        }
    }

    // Golden record, history and cross-reference, the losers', events and claims, then as much
    // index maintenance as fits: sized once (a write is about a hundred bytes; growing the vector
    // copies them).
    let old_keys = survivor_old.map(|g| &g.index_keys);
    let maintenance = golden.index_keys.len()
        + moved_claims.len()
        + members.len()
        + old_keys.map_or(0, KeySet::len)
        + losers.iter().map(|l| l.index_keys.len()).sum::<usize>();
    let fixed = 6 + 2 * losers.len() + new_claims.len();
    let mut main: Vec<WriteOp> = Vec::with_capacity(fixed.max((fixed + maintenance).min(MAX_TRANSACTION_ITEMS)));
    // Events only where they are emitted (a batch run emits none).
    let mut events = Vec::new();
    let cause = if losers.is_empty() { Cause::Ingest } else { Cause::Merge };
    let corr = source.correlation_id.as_str();
    if needs_write {
        let expect = survivor_old.map_or(Expect::Absent, |g| Expect::Revision(g.revision));
        main.push(WriteOp::PutGolden { golden: Arc::new(golden.clone()), expect });
        if effective && input.keep_history {
            main.push(WriteOp::PutHistory(Box::new(HistoryEntry::of(&golden, cause, corr, now))));
        }
    }
    for l in &losers {
        let merged = l.merged_into(&golden_id, now);
        main.push(WriteOp::PutGolden { golden: Arc::new(merged.clone()), expect: Expect::Revision(l.revision) });
        if input.keep_history {
            main.push(WriteOp::PutHistory(Box::new(HistoryEntry::of(&merged, Cause::Merge, corr, now))));
        }
    }
    if source.golden_id.as_deref() != Some(golden_id.as_str()) {
        // The audit trail: why it is a member (none where history is off: the batch engine).
        let why = input
            .keep_history
            .then(|| link_of(input.result, survivor_old.is_none(), &golden_id, now))
            .flatten()
            .map(Arc::new);
        main.push(WriteOp::SetXref { source: source.key.clone(), golden_id: golden_id.clone(), why });
    }

    // Events and the review task.
    let mut event_types = Vec::with_capacity(2);
    if effective {
        event_types.push(match (survivor_old, losers.is_empty()) {
            (None, _) => "GoldenRecordCreated",
            (Some(_), true) => "GoldenRecordUpdated",
            (Some(_), false) => "GoldenRecordsMerged",
        });
    }
    if effective && input.emit_events {
        let changed = changed_attributes(survivor_old, &golden).into_iter().map(str::to_owned).collect();
        let envelope = Envelope::new(&golden, changed, cause, corr, now).received(source.received_at_ms);
        let view = GoldenView::of(&golden);
        events.push(match (survivor_old, losers.is_empty()) {
            (None, _) => HubEvent::GoldenRecordCreated(GoldenChanged { envelope, golden: view }),
            (Some(_), true) => HubEvent::GoldenRecordUpdated(GoldenChanged { envelope, golden: view }),
            (Some(_), false) => HubEvent::GoldenRecordsMerged(GoldenMerged {
                envelope,
                merged_golden_ids: losers.iter().map(|l| l.golden_id.clone()).collect(),
                golden: view,
            }),
        });
    }
    let mut review_task = None;
    let reviewed = input.result.review_candidates();
    if !reviewed.is_empty() {
        let golden_ids = &reviewed;
        let task_id = review_task_id(&schema.entity, &golden_id, golden_ids);
        if !input.review_exists {
            let explanation: Vec<_> =
                input.result.candidates.iter().filter(|c| golden_ids.contains(&c.golden_id)).cloned().collect();
            let score = explanation.first().map_or(0.0, |c| c.score);
            main.push(WriteOp::PutReview(Box::new(ReviewTask {
                entity: schema.entity.clone(),
                task_id: task_id.clone(),
                golden_id: golden_id.clone(),
                source: source.key.clone(),
                candidate_golden_ids: golden_ids.clone(),
                score,
                explanation,
                status: ReviewStatus::Open,
                created_at_ms: now,
                resolution: None,
                expires_at: None,
            })));
            event_types.push("ReviewTaskOpened");
            events.push(HubEvent::ReviewTaskOpened(ReviewOpened {
                envelope: Envelope::new(&golden, Vec::new(), Cause::Ingest, corr, now),
                task_id: task_id.clone(),
                candidate_golden_ids: golden_ids.clone(),
                score,
            }));
            review_task = Some(task_id);
        }
    }
    if input.emit_events {
        for e in &events {
            main.push(WriteOp::PutOutbox(Box::new(OutboxEntry::new(e.event_id(), now, e.clone()))));
        }
    }
    main.extend(new_claims);

    // Index and cross-reference maintenance: adds before moves before deletes.
    let mut rest: Vec<WriteOp> = Vec::with_capacity(maintenance);
    let none = KeySet::default();
    for k in golden.index_keys.difference(old_keys.unwrap_or(&none)) {
        rest.push(WriteOp::PutIndex { entity: entity.clone(), key: k.clone(), golden_id: id.clone() });
    }
    rest.extend(moved_claims);
    for r in &members {
        if r.key != source.key && r.golden_id.as_deref() != Some(golden_id.as_str()) {
            rest.push(WriteOp::SetXref { source: r.key.clone(), golden_id: golden_id.clone(), why: None });
        }
    }
    if let Some(old) = old_keys {
        for k in old.difference(&golden.index_keys) {
            rest.push(WriteOp::DeleteIndex { entity: entity.clone(), key: k.clone(), golden_id: id.clone() });
        }
    }
    for l in &losers {
        let loser: Arc<str> = l.golden_id.as_str().into();
        for k in l.index_keys.iter() {
            rest.push(WriteOp::DeleteIndex { entity: entity.clone(), key: k.clone(), golden_id: loser.clone() });
        }
    }
    // Fill the main transaction, then chunk the rest.
    let mut follow_ups = Vec::new();
    let max = MAX_TRANSACTION_ITEMS.saturating_sub(input.reserved);
    let room = max.saturating_sub(main.len());
    let mut rest = rest.into_iter();
    main.extend(rest.by_ref().take(room));
    let rest: Vec<WriteOp> = rest.collect();
    for chunk in rest.chunks(MAX_TRANSACTION_ITEMS) {
        follow_ups.push(chunk.to_vec());
    }
    if main.len() > max {
        // Only with extraordinary numbers of new claims: later ones go in a follow-up.
        let extra = main.split_off(max);
        follow_ups.insert(0, extra);
    }
    // The stored golden record lists only the index entries and claims the main transaction
    // writes. If a follow-up chunk is lost, the next plan for this golden record sees the
    // difference and writes it again: maintenance heals itself.
    if !follow_ups.is_empty() {
        let mut index_keys: BTreeSet<IndexKey> = old_keys.map(KeySet::to_set).unwrap_or_default();
        let mut claims: BTreeSet<IndexKey> = survivor_old.map(|g| g.claims.to_set()).unwrap_or_default();
        for op in &main {
            match op {
                WriteOp::PutIndex { key, golden_id: g, .. } if **g == *golden_id => {
                    index_keys.insert(key.clone());
                }
                WriteOp::DeleteIndex { key, golden_id: g, .. } if **g == *golden_id => {
                    index_keys.remove(key);
                }
                WriteOp::PutClaim { key, golden_id: g, .. } if **g == *golden_id => {
                    claims.insert(key.clone());
                }
                _ => {}
            }
        }
        golden.index_keys = index_keys.into();
        golden.claims = claims.into();
        for op in main.iter_mut() {
            match op {
                WriteOp::PutGolden { golden: g, .. } if g.golden_id == golden_id => {
                    let g = std::sync::Arc::make_mut(g);
                    g.index_keys = golden.index_keys.clone();
                    g.claims = golden.claims.clone();
                }
                _ => {}
            }
        }
    }

    let outcome = match (survivor_old, losers.is_empty()) {
        (None, _) => MergeOutcome::Created { golden_id: golden_id.clone() },
        (Some(_), false) => MergeOutcome::Merged {
            golden_id: golden_id.clone(),
            merged: losers.iter().map(|l| l.golden_id.clone()).collect(),
        },
        (Some(_), true) if input.current.is_none() => MergeOutcome::Linked { golden_id: golden_id.clone() },
        (Some(_), true) if effective => MergeOutcome::Updated { golden_id: golden_id.clone() },
        (Some(_), true) => MergeOutcome::Unchanged { golden_id: golden_id.clone() },
    };
    if !input.emit_events {
        events.clear();
    }
    MergePlan { outcome, golden, effective, review_task, writes: main, follow_ups, events, event_types }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::SchemaRegistry;

    fn record(registry: &SchemaRegistry, id: &str, seq: u64) -> Arc<SourceRecord> {
        let input = serde_json::json!({"entityType": "customer", "sourceSystem": "crm", "sourceId": id,
                                       "sourceSeq": seq, "attributes": {"given_name": format!("n{id}v{seq}")}});
        Arc::new(crate::record::validate(registry, &input, 0).expect("valid"))
    }

    /// A golden record listing `listed` (in join order) with `members` read for it.
    fn state(id: &str, listed: &[&Arc<SourceRecord>], members: &[&Arc<SourceRecord>]) -> GoldenState {
        GoldenState {
            golden: GoldenRecord {
                entity: "customer".into(),
                golden_id: id.into(),
                version: 1,
                revision: 1,
                status: GoldenStatus::Active,
                attributes: Default::default(),
                members: Arc::new(listed.iter().map(|r| r.key.clone()).collect()),
                match_values: Default::default(),
                index_keys: Default::default(),
                claims: Default::default(),
                created_at_ms: 0,
                updated_at_ms: 0,
                merged_from: Vec::new(),
                kept_apart: Vec::new(),
                pins: Vec::new(),
                quality: None,
            },
            members: members.iter().map(|r| Arc::clone(r)).collect(),
        }
    }

    fn ids(members: &[&SourceRecord]) -> Vec<String> {
        members.iter().map(|r| format!("{}v{}", r.key.source_id, r.seq)).collect()
    }

    #[test]
    fn members_are_ordered_alike_by_search_and_by_maps() {
        let registry = SchemaRegistry::built_in().expect("schemas");
        let (a1, a2, b, c, s1, s2) = (
            record(&registry, "a", 1),
            record(&registry, "a", 2),
            record(&registry, "b", 1),
            record(&registry, "c", 1),
            record(&registry, "s", 1),
            record(&registry, "s", 2),
        );
        // `a` is listed by both golden records, read stale (v1) for the first and fresh (v2) for
        // the second; the source is listed by the first at v1 and arrives at v2; `c` is listed
        // but could not be read.
        let first = state("g1", &[&a1, &s1, &c], &[&a1, &s1]);
        let second = state("g2", &[&b, &a1], &[&b, &a2]);
        let groups = [&first, &second];
        let searched = searched_members(&groups, &s2, 5);
        assert_eq!(ids(&searched), ["av2", "sv2", "bv1"]);
        assert_eq!(ids(&mapped_members(&groups, &s2)), ids(&searched));
        assert_eq!(ids(&ordered_members(&[], &s1)), ["sv1"], "a record creating its golden record");

        // Past the small-group bound the maps are used; both still agree.
        let many: Vec<Arc<SourceRecord>> =
            (0..2 * SMALL_GROUP).map(|i| record(&registry, &format!("m{i}"), 1)).collect();
        let listed: Vec<&Arc<SourceRecord>> = many.iter().collect();
        let (left, right) = listed.split_at(SMALL_GROUP);
        let big = [&state("g3", left, left), &state("g4", right, right)];
        let mapped = ordered_members(&big, &s1);
        assert_eq!(mapped.len(), 2 * SMALL_GROUP + 1);
        assert_eq!(ids(&searched_members(&big, &s1, many.len())), ids(&mapped));
    }
}
