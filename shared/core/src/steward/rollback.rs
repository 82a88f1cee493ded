//! Rollback: a new version of a golden record whose membership and values equal an earlier
//! version's. Members linked since are split off (together, into a golden record of their own,
//! kept apart from this one); members split off since come back from the golden records that
//! hold them now (a record left without members is merged into this one); values survivorship
//! would no longer produce are pinned with reason `rollback to vN`. Erased members and values
//! never come back: a version an erasure removed cannot be rolled back to (409 `version_erased`).

use super::regroup::{plan_regroup, Group, Regroup};
use super::{outbox, StewardError, Target};
use crate::events::{Envelope, GoldenChanged, GoldenView, HubEvent};
use crate::golden::{Attribution, Cause, GoldenRecord, Pin, PIN_SOURCE};
use crate::hub::{Hub, HubError};
use crate::keys::{digest_hex, SourceKey};
use crate::plan::changed_attributes;
use crate::record::SourceRecord;
use crate::store::Store;
use std::collections::BTreeMap;

/// What a rollback did.
#[derive(Debug, Clone)]
pub struct RolledBack {
    pub golden: GoldenRecord,
    /// The golden record the members linked since now make up, if there were any.
    pub split_off: Option<GoldenRecord>,
    /// Golden records members came back from (recomputed, or merged into this one when none
    /// were left).
    pub donors: Vec<String>,
    /// Values pinned to equal the version rolled back to (removable like any pin).
    pub pins: Vec<Pin>,
}

fn event(old: Option<&GoldenRecord>, new: &GoldenRecord, corr: &str, now: i64) -> HubEvent {
    let changed = changed_attributes(old, new).into_iter().map(str::to_owned).collect();
    let envelope = Envelope::new(new, changed, Cause::Rollback, corr, now);
    let golden = GoldenView::of(new);
    match old {
        Some(_) => HubEvent::GoldenRecordUpdated(GoldenChanged { envelope, golden }),
        None => HubEvent::GoldenRecordCreated(GoldenChanged { envelope, golden }),
    }
}

impl<S: Store> Hub<S> {
    /// Rolls a golden record back to version `to` (see the module documentation).
    pub async fn rollback_golden(&self, t: &Target, to: u64, who: &Attribution) -> Result<RolledBack, StewardError> {
        let schema = self.schema(&t.entity)?;
        for _ in 0..self.config().max_attempts {
            let g = self.target_golden(t).await?;
            if to == 0 || to >= g.version {
                return Err(StewardError::invalid(
                    "invalid_version",
                    "version",
                    format!("roll back to an earlier version than {}", g.version),
                ));
            }
            let history = self.store().history(&t.entity, &t.golden_id).await?;
            let Some(then) = history.into_iter().find(|h| h.version == to) else {
                return Err(StewardError::conflict(
                    "version_erased",
                    format!("version {to} is not kept: an erasure removed it (or history is off)"),
                ));
            };
            if then.member_count.is_some() {
                return Err(StewardError::conflict(
                    "version_too_large",
                    "that version did not keep its member list (more than 1,000 members)",
                ));
            }
            let wanted: Vec<SourceKey> = then.snapshot.members.iter().cloned().collect();
            let leaving: Vec<SourceKey> = g.members.iter().filter(|k| !wanted.contains(k)).cloned().collect();
            let returning: Vec<SourceKey> = wanted.iter().filter(|k| !g.members.contains(k)).cloned().collect();
            let mut keys: Vec<SourceKey> = g.members.to_vec();
            keys.extend(returning.iter().cloned());
            let mut records = self.member_records(&keys).await?;
            // Where each returning member is now (erased ones stay gone).
            let mut donors: BTreeMap<String, GoldenRecord> = BTreeMap::new();
            for k in &returning {
                let Some(r) = records.get(k) else { continue };
                let Some(at) = &r.golden_id else { continue };
                if let Some(d) = self.final_record(&t.entity, at).await?.filter(GoldenRecord::is_active) {
                    if d.golden_id != g.golden_id && !donors.contains_key(&d.golden_id) {
                        donors.insert(d.golden_id.clone(), d);
                    }
                }
            }
            let donor_keys: Vec<SourceKey> = donors.values().flat_map(|d| d.members.iter().cloned()).collect();
            records.extend(self.member_records(&donor_keys).await?);
            let now = self.now_ms();
            let corr =
                format!("steward-rollback-{}", digest_hex(&[&g.golden_id, &g.version.to_string(), &to.to_string()], 8));

            let members: Vec<&SourceRecord> = wanted.iter().filter_map(|k| records.get(k).map(|r| &**r)).collect();
            if members.is_empty() {
                return Err(StewardError::conflict("version_erased", "no member of that version is left"));
            }
            let mut base = g.clone();
            let mut groups = Vec::new();
            let mut absorbed = Vec::new();
            let mut listed: Vec<&GoldenRecord> = vec![&g];
            let mut donor_ids = Vec::new();
            for d in donors.values() {
                listed.push(d);
                donor_ids.push(d.golden_id.clone());
                // Constraints between this record and a donor give way: the steward asked for
                // the members back.
                base.kept_apart.retain(|k| !d.aliases().any(|a| a == k));
                let rest: Vec<&SourceRecord> = d
                    .members
                    .iter()
                    .filter(|k| !returning.contains(k))
                    .filter_map(|k| records.get(k).map(|r| &**r))
                    .collect();
                if rest.is_empty() {
                    absorbed.push((d, g.golden_id.clone()));
                    base.merged_from = crate::plan::merged_from(Some(&base), &[d]);
                } else {
                    let mut kept = d.clone();
                    kept.kept_apart.retain(|k| !g.aliases().any(|a| a == k));
                    groups.push(Group { old: Some(d), base: kept, members: rest });
                }
            }
            // Values that version had which survivorship would not give now: pinned.
            let plain = crate::survivorship::survive(schema, &members);
            let reason = format!("rollback to v{to}");
            let mut pins: Vec<Pin> = Vec::new();
            for (name, attr) in then.snapshot.attributes.iter() {
                if plain.get(name).is_some_and(|a| a.value == attr.value) {
                    continue;
                }
                let source = (attr.source() != PIN_SOURCE)
                    .then(|| SourceKey::new(&t.entity, attr.source(), attr.source_id()))
                    .filter(|k| records.contains_key(k));
                pins.push(Pin {
                    attribute: name.to_string(),
                    value: attr.value.clone(),
                    actor: who.actor.clone(),
                    reason: reason.clone(),
                    at_ms: now,
                    source,
                });
            }
            base.pins = pins.clone();
            let mut all: Vec<Group<'_>> = vec![Group { old: Some(&g), base, members }];
            let split_members: Vec<&SourceRecord> =
                leaving.iter().filter_map(|k| records.get(k).map(|r| &**r)).collect();
            let split_id =
                format!("g{}", digest_hex(&["rollback", &t.entity, &g.golden_id, &g.version.to_string()], 12));
            if !split_members.is_empty() {
                all[0].base.kept_apart.push(split_id.clone());
                all.push(Group {
                    old: None,
                    base: GoldenRecord {
                        kept_apart: vec![g.golden_id.clone()],
                        ..GoldenRecord::empty(&g.entity, &split_id, now)
                    },
                    members: split_members,
                });
            }
            let has_split = all.len() > 1;
            all.extend(groups);
            let every: Vec<&SourceRecord> = all.iter().flat_map(|gr| gr.members.iter().copied()).collect();
            let claims = self.claims_around(&t.entity, &every, &listed).await?;
            let plan = plan_regroup(&Regroup {
                schema,
                groups: all,
                absorbed,
                claims: &claims,
                cause: Cause::Rollback,
                who,
                correlation_id: &corr,
                now_ms: now,
                keep_history: self.config().keep_history,
            });
            let after = plan.goldens.clone();
            let mut events = Vec::new();
            if has_split {
                let labels = crate::golden::LabelSet::across(
                    &t.entity,
                    corr.clone(),
                    "distinct",
                    Cause::Rollback,
                    now,
                    &leaving,
                    &wanted,
                );
                events.push(crate::store::WriteOp::PutLabels(Box::new(labels)));
            }
            if self.config().emit_events {
                events.push(outbox(event(Some(&g), &after[0], &corr, now), now));
                for (i, n) in after.iter().enumerate().skip(1) {
                    let old = if has_split && i == 1 { None } else { donors.get(&n.golden_id) };
                    events.push(outbox(event(old, n, &corr, now), now));
                }
            }
            let (main, follow_ups) = plan.pack(events).ok_or_else(super::actions::too_large)?;
            if self.commit(main, follow_ups).await? {
                let split_off = has_split.then(|| after[1].clone());
                return Ok(RolledBack { golden: after[0].clone(), split_off, donors: donor_ids, pins });
            }
        }
        Err(HubError::TooManyConflicts(self.config().max_attempts).into())
    }
}
