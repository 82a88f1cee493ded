//! Regrouping: the writes of a steward action that changes which source records make up which
//! golden records (manual merge, split, pin, rollback). A pure function of what was read, like
//! a merge plan: every golden record taking part is recomputed from its members (survivorship
//! with pins, provenance, match values, index entries, claims), written conditionally on the
//! revision read, with a history version naming the action's actor and reason.

use crate::golden::{Attribution, Cause, GoldenRecord, GoldenStatus, HistoryEntry};
use crate::index_keys::IndexKey;
use crate::keys::SourceKey;
use crate::plan::{keep_provenance, member_match_values};
use crate::record::SourceRecord;
use crate::schema::EntitySchema;
use crate::store::{Expect, WriteOp, MAX_TRANSACTION_ITEMS};
use crate::survivorship::{apply_pins, members_with_slots, survive_members};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// One golden record after the change.
pub struct Group<'a> {
    /// As read (`None`: the change creates it).
    pub old: Option<&'a GoldenRecord>,
    /// Its identity after the change: id, times, `merged_from`, `kept_apart`, pins (members,
    /// values and matching state are computed here; the status becomes active).
    pub base: GoldenRecord,
    /// Its members after the change, in join order.
    pub members: Vec<&'a SourceRecord>,
}

/// Everything [`plan_regroup`] needs, read by the caller.
pub struct Regroup<'a> {
    pub schema: &'a EntitySchema,
    pub groups: Vec<Group<'a>>,
    /// Golden records this change merges away, each with the id it then points to.
    pub absorbed: Vec<(&'a GoldenRecord, String)>,
    /// Current holders of claim keys that no golden record taking part lists.
    pub claims: &'a BTreeMap<IndexKey, String>,
    pub cause: Cause,
    pub who: &'a Attribution,
    pub correlation_id: &'a str,
    pub now_ms: i64,
    pub keep_history: bool,
}

/// The change's writes before the caller adds its own (events, review task).
pub struct RegroupPlan {
    /// The golden records after the change, in the order of [`Regroup::groups`].
    pub goldens: Vec<GoldenRecord>,
    /// Whether each changed effectively (values, members or status): a new version.
    pub effective: Vec<bool>,
    /// Golden records, history versions and claims: the transaction's core.
    pub core: Vec<WriteOp>,
    /// Cross-references and index entries: in the transaction as far as room allows.
    pub maintenance: Vec<WriteOp>,
}

impl RegroupPlan {
    /// The transaction (core, the caller's `extra`, then as much maintenance as fits) and the
    /// idempotent chunks that follow it. `None` when core and extra alone exceed one transaction.
    pub fn pack(self, extra: Vec<WriteOp>) -> Option<(Vec<WriteOp>, Vec<Vec<WriteOp>>)> {
        let mut main = self.core;
        main.extend(extra);
        if main.len() > MAX_TRANSACTION_ITEMS {
            return None;
        }
        let room = MAX_TRANSACTION_ITEMS - main.len();
        let mut rest = self.maintenance.into_iter();
        main.extend(rest.by_ref().take(room));
        let rest: Vec<WriteOp> = rest.collect();
        Some((main, rest.chunks(MAX_TRANSACTION_ITEMS).map(<[WriteOp]>::to_vec).collect()))
    }
}

/// A golden record recomputed from its members: survivorship, then its pins, provenance kept
/// where a value did not change, match values and index keys (claims are assigned later).
fn rebuild(schema: &EntitySchema, group: &Group<'_>, now: i64) -> (GoldenRecord, Vec<IndexKey>) {
    let with_slots = members_with_slots(schema, &group.members);
    let mut attributes = survive_members(schema, &with_slots);
    apply_pins(&mut attributes, &group.base.pins);
    if let Some(old) = group.old {
        keep_provenance(old, &mut attributes);
    }
    let (index_keys, claim_keys) = crate::blocking::stored_key_lists(schema, group.members.iter().copied());
    let mut g = group.base.clone();
    g.status = GoldenStatus::Active;
    g.quality = Some(crate::survivorship::quality(schema, &attributes));
    g.attributes = attributes.into();
    g.members = Arc::new(group.members.iter().map(|r| r.key.clone()).collect());
    g.match_values = member_match_values(schema, &with_slots).into();
    g.index_keys = index_keys.into_iter().collect();
    g.claims = Default::default();
    g.updated_at_ms = now;
    (g, claim_keys)
}

/// Whether a recomputed record differs from its old state for readers: values with provenance,
/// members, status or pins.
fn effective(old: Option<&GoldenRecord>, new: &GoldenRecord) -> bool {
    old.is_none_or(|o| {
        o.attributes != new.attributes || o.members != new.members || o.status != new.status || o.pins != new.pins
    })
}

/// Computes the change's writes.
pub fn plan_regroup(input: &Regroup<'_>) -> RegroupPlan {
    let schema = input.schema;
    let now = input.now_ms;
    let entity: Arc<str> = schema.entity.as_str().into();
    let mut goldens = Vec::with_capacity(input.groups.len());
    let mut wanted: Vec<BTreeSet<IndexKey>> = Vec::with_capacity(input.groups.len());
    for group in &input.groups {
        let (g, claim_keys) = rebuild(schema, group, now);
        goldens.push(g);
        wanted.push(claim_keys.into_iter().collect());
    }

    // Claims: the holder keeps a key its members still have; a key a record taking part
    // gives up goes to the first group that wants it (moved, conditional on the holder), or
    // is released; a free key is taken; a key another golden record holds stays with it.
    let taking_part: BTreeSet<&str> = input
        .groups
        .iter()
        .map(|g| g.base.golden_id.as_str())
        .chain(input.absorbed.iter().map(|(a, _)| a.golden_id.as_str()))
        .collect();
    let mut holders: BTreeMap<IndexKey, String> = input.claims.clone();
    for old in input.groups.iter().filter_map(|g| g.old).chain(input.absorbed.iter().map(|(a, _)| *a)) {
        for k in old.claims.iter() {
            holders.insert(k.clone(), old.golden_id.clone());
        }
    }
    let keys: BTreeSet<IndexKey> = wanted.iter().flatten().cloned().chain(holders.keys().cloned()).collect();
    let mut held: Vec<Vec<IndexKey>> = vec![Vec::new(); goldens.len()];
    let mut claim_ops = Vec::new();
    for key in keys {
        let holder = holders.get(&key).map(String::as_str);
        if holder.is_some_and(|h| !taking_part.contains(h)) {
            continue;
        }
        let keeps =
            holder.and_then(|h| goldens.iter().position(|g| g.golden_id == h)).filter(|i| wanted[*i].contains(&key));
        if let Some(i) = keeps {
            held[i].push(key);
            continue;
        }
        match (wanted.iter().position(|w| w.contains(&key)), holder) {
            (Some(i), from) => {
                claim_ops.push(WriteOp::PutClaim {
                    entity: entity.clone(),
                    key: key.clone(),
                    golden_id: goldens[i].golden_id.as_str().into(),
                    from: from.map(str::to_owned),
                });
                held[i].push(key);
            }
            (None, Some(h)) => {
                claim_ops.push(WriteOp::DeleteClaim { entity: schema.entity.clone(), key, holder: h.to_owned() })
            }
            (None, None) => {}
        }
    }

    let mut core = Vec::new();
    let mut maintenance = Vec::new();
    let mut effective_flags = Vec::with_capacity(goldens.len());
    for ((group, g), claims) in input.groups.iter().zip(goldens.iter_mut()).zip(held) {
        g.claims = claims.into_iter().collect();
        let changed = effective(group.old, g);
        effective_flags.push(changed);
        match group.old {
            Some(old) => {
                g.version = old.version + u64::from(changed);
                g.revision = old.revision + 1;
                g.created_at_ms = old.created_at_ms;
            }
            None => {
                g.version = 1;
                g.revision = 1;
                g.created_at_ms = now;
            }
        }
        let expect = group.old.map_or(Expect::Absent, |o| Expect::Revision(o.revision));
        core.push(WriteOp::PutGolden { golden: Arc::new(g.clone()), expect });
        if changed && input.keep_history {
            let entry = HistoryEntry::of(g, input.cause, input.correlation_id, now).by(input.who);
            core.push(WriteOp::PutHistory(Box::new(entry)));
        }
        let id: Arc<str> = g.golden_id.as_str().into();
        for r in &group.members {
            if r.golden_id.as_deref() != Some(g.golden_id.as_str()) {
                let why = crate::golden::Link::by_steward(&g.golden_id, input.cause, input.who, now);
                maintenance.push(WriteOp::SetXref {
                    source: r.key.clone(),
                    golden_id: g.golden_id.clone(),
                    why: Some(Arc::new(why)),
                });
            }
        }
        let none = Default::default();
        let old_keys = group.old.map_or(&none, |o| &o.index_keys);
        for k in g.index_keys.difference(old_keys) {
            maintenance.push(WriteOp::PutIndex { entity: entity.clone(), key: k.clone(), golden_id: id.clone() });
        }
        for k in old_keys.difference(&g.index_keys) {
            maintenance.push(WriteOp::DeleteIndex { entity: entity.clone(), key: k.clone(), golden_id: id.clone() });
        }
    }
    for (a, survivor) in &input.absorbed {
        let merged = a.merged_into(survivor, now);
        core.push(WriteOp::PutGolden { golden: Arc::new(merged.clone()), expect: Expect::Revision(a.revision) });
        if input.keep_history {
            let entry = HistoryEntry::of(&merged, Cause::Merge, input.correlation_id, now).by(input.who);
            core.push(WriteOp::PutHistory(Box::new(entry)));
        }
        let id: Arc<str> = a.golden_id.as_str().into();
        for k in a.index_keys.iter() {
            maintenance.push(WriteOp::DeleteIndex { entity: entity.clone(), key: k.clone(), golden_id: id.clone() });
        }
    }
    core.extend(claim_ops);
    // Cross-references first: a member must lead to its golden record before index entries
    // help anyone find it.
    maintenance.sort_by_key(|op| !matches!(op, WriteOp::SetXref { .. }));
    RegroupPlan { goldens, effective: effective_flags, core, maintenance }
}

/// The member keys of `golden` minus `leaving`, in join order.
pub fn members_without(golden: &GoldenRecord, leaving: &[SourceKey]) -> Vec<SourceKey> {
    golden.members.iter().filter(|k| !leaving.contains(k)).cloned().collect()
}
