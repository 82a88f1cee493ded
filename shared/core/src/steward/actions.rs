//! Manual merge, split and pins.

use super::regroup::{members_without, plan_regroup, Group, Regroup};
use super::{outbox, survivor_first, StewardError, Target};
use crate::events::{Envelope, GoldenChanged, GoldenMerged, GoldenSplit, GoldenView, HubEvent};
use crate::golden::{Attribution, Cause, GoldenRecord, GoldenStatus, LabelSet, Pin};
use crate::hub::{Hub, HubError};
use crate::keys::{digest_hex, golden_id_for, SourceKey};
use crate::plan::changed_attributes;
use crate::record::SourceRecord;
use crate::store::{Store, WriteOp};

/// What a manual merge (or a review's `link`) did.
#[derive(Debug, Clone)]
pub struct Merged {
    pub survivor: GoldenRecord,
    /// The golden record merged away: it now answers `mergedInto` the survivor.
    pub merged: String,
}

/// What a split did.
#[derive(Debug, Clone)]
pub struct Split {
    pub golden: GoldenRecord,
    /// The golden record the named members now make up.
    pub split_off: GoldenRecord,
    /// It existed before (the record one of the members created, merged in since): re-activated.
    pub reactivated: bool,
}

/// The id of a golden record a split creates: from the record split and its version, never
/// from a source key (a record a source key names may exist already, merged into this one).
fn split_id(entity: &str, golden_id: &str, version: u64) -> String {
    format!("g{}", digest_hex(&["split", entity, golden_id, &version.to_string()], 12))
}

fn changed_names(old: Option<&GoldenRecord>, new: &GoldenRecord) -> Vec<String> {
    changed_attributes(old, new).into_iter().map(str::to_owned).collect()
}

fn updated(old: &GoldenRecord, new: &GoldenRecord, cause: Cause, corr: &str, now: i64) -> HubEvent {
    let envelope = Envelope::new(new, changed_names(Some(old), new), cause, corr, now);
    HubEvent::GoldenRecordUpdated(GoldenChanged { envelope, golden: GoldenView::of(new) })
}

impl<S: Store> Hub<S> {
    /// Merges two active golden records, each at the version the steward saw (`cause`: a manual
    /// merge, or a review's `link`). The survivor is
    /// chosen as for automatic merges (most members, then the oldest, then the smaller id);
    /// the other answers `mergedInto`. A keep-apart constraint between the two is dropped: the
    /// steward decided otherwise. `extra` writes go into the same transaction (a review task's
    /// resolution).
    pub async fn merge_golden(
        &self,
        a: &Target,
        b: &Target,
        who: &Attribution,
        cause: Cause,
        extra: impl Fn(&GoldenRecord) -> Vec<WriteOp>,
    ) -> Result<Merged, StewardError> {
        if a.golden_id == b.golden_id {
            return Err(StewardError::invalid("same_record", "with", "a golden record cannot be merged with itself"));
        }
        let schema = self.schema(&a.entity)?;
        for _ in 0..self.config().max_attempts {
            let (ga, gb) = (self.target_golden(a).await?, self.target_golden(b).await?);
            let (survivor, loser) = survivor_first(&ga, &gb);
            let keys: Vec<SourceKey> = survivor.members.iter().chain(loser.members.iter()).cloned().collect();
            let records = self.member_records(&keys).await?;
            let members: Vec<&SourceRecord> = keys.iter().filter_map(|k| records.get(k).map(|r| &**r)).collect();
            let claims = self.claims_around(&a.entity, &members, &[survivor, loser]).await?;
            let mut base = survivor.clone();
            base.merged_from = crate::plan::merged_from(Some(survivor), &[loser]);
            let apart: Vec<&str> = survivor.aliases().chain(loser.aliases()).collect();
            base.kept_apart = crate::plan::kept_apart(Some(survivor), &[loser]);
            base.kept_apart.retain(|k| !apart.contains(&k.as_str()));
            base.pins = crate::plan::pins_of(Some(survivor), &[loser]);
            let now = self.now_ms();
            let corr = format!("steward-merge-{}", digest_hex(&[&survivor.golden_id, &loser.golden_id], 8));
            let plan = plan_regroup(&Regroup {
                schema,
                groups: vec![Group { old: Some(survivor), base, members }],
                absorbed: vec![(loser, survivor.golden_id.clone())],
                claims: &claims,
                cause,
                who,
                correlation_id: &corr,
                now_ms: now,
                keep_history: self.config().keep_history,
            });
            let after = plan.goldens[0].clone();
            let mut more = extra(&after);
            // The decision as labelled pairs: every member of one with every member of the other.
            let labels =
                LabelSet::across(&a.entity, corr.clone(), "link", cause, now, &survivor.members, &loser.members);
            more.push(WriteOp::PutLabels(Box::new(labels)));
            if self.config().emit_events {
                let envelope = Envelope::new(&after, changed_names(Some(survivor), &after), cause, &corr, now);
                let event = HubEvent::GoldenRecordsMerged(GoldenMerged {
                    envelope,
                    merged_golden_ids: vec![loser.golden_id.clone()],
                    golden: GoldenView::of(&after),
                });
                more.push(outbox(event, now));
            }
            let merged = loser.golden_id.clone();
            let (main, follow_ups) = plan.pack(more).ok_or_else(too_large)?;
            if self.commit(main, follow_ups).await? {
                return Ok(Merged { survivor: after, merged });
            }
        }
        Err(HubError::TooManyConflicts(self.config().max_attempts).into())
    }

    /// Takes the named members out of a golden record into one of their own. If one of them
    /// created a golden record that was merged into this one since, that record is re-activated
    /// (same id, next version); otherwise the new record's id derives from this record and its
    /// version. Both are recomputed from their members, and a keep-apart constraint is written
    /// between them.
    pub async fn split_golden(
        &self,
        t: &Target,
        leaving: &[SourceKey],
        who: &Attribution,
    ) -> Result<Split, StewardError> {
        let schema = self.schema(&t.entity)?;
        if leaving.is_empty() {
            return Err(StewardError::invalid("invalid_body", "sources", "name at least one source record"));
        }
        for _ in 0..self.config().max_attempts {
            let g = self.target_golden(t).await?;
            if let Some(k) = leaving.iter().find(|k| !g.members.contains(k)) {
                return Err(StewardError::invalid(
                    "unknown_source",
                    "sources",
                    format!("{}/{} is not a member of golden record {}", k.system, k.source_id, g.golden_id),
                ));
            }
            let staying = members_without(&g, leaving);
            if staying.is_empty() {
                return Err(StewardError::invalid(
                    "split_all",
                    "sources",
                    "a split must leave at least one member (erase the subject to remove them all)",
                ));
            }
            let records = self.member_records(&g.members).await?;
            // A golden record a leaving member created, merged into this one since.
            let mut revived: Option<GoldenRecord> = None;
            for k in leaving {
                let Some(r) = records.get(k) else { continue };
                let own = golden_id_for(&r.key, r.first_seq);
                if !g.merged_from.contains(&own) {
                    continue;
                }
                if let Some(old) = self.store().get_golden(&t.entity, &own).await? {
                    if matches!(old.status, GoldenStatus::MergedInto { .. }) {
                        revived = Some(old);
                        break;
                    }
                }
            }
            let now = self.now_ms();
            let new_id =
                revived.as_ref().map_or_else(|| split_id(&t.entity, &g.golden_id, g.version), |r| r.golden_id.clone());
            let mut base_new = match &revived {
                Some(r) => r.clone(),
                None => GoldenRecord::empty(&g.entity, &new_id, now),
            };
            if !base_new.kept_apart.contains(&g.golden_id) {
                base_new.kept_apart.push(g.golden_id.clone());
            }
            let mut base_old = g.clone();
            if let Some(r) = &revived {
                let gone: Vec<&str> = r.aliases().collect();
                base_old.merged_from.retain(|m| !gone.contains(&m.as_str()));
            }
            if !base_old.kept_apart.contains(&new_id) {
                base_old.kept_apart.push(new_id.clone());
            }
            let old_members: Vec<&SourceRecord> = staying.iter().filter_map(|k| records.get(k).map(|r| &**r)).collect();
            let new_members: Vec<&SourceRecord> = leaving.iter().filter_map(|k| records.get(k).map(|r| &**r)).collect();
            let all: Vec<&SourceRecord> = old_members.iter().chain(new_members.iter()).copied().collect();
            let mut listed = vec![&g];
            listed.extend(revived.as_ref());
            let claims = self.claims_around(&t.entity, &all, &listed).await?;
            let corr = format!("steward-split-{}", digest_hex(&[&g.golden_id, &g.version.to_string()], 8));
            let plan = plan_regroup(&Regroup {
                schema,
                groups: vec![
                    Group { old: Some(&g), base: base_old, members: old_members },
                    Group { old: revived.as_ref(), base: base_new, members: new_members },
                ],
                absorbed: Vec::new(),
                claims: &claims,
                cause: Cause::Split,
                who,
                correlation_id: &corr,
                now_ms: now,
                keep_history: self.config().keep_history,
            });
            let (after, split_off) = (plan.goldens[0].clone(), plan.goldens[1].clone());
            let labels = LabelSet::across(&t.entity, corr.clone(), "distinct", Cause::Split, now, leaving, &staying);
            let mut events = vec![WriteOp::PutLabels(Box::new(labels))];
            if self.config().emit_events {
                let envelope = Envelope::new(&after, changed_names(Some(&g), &after), Cause::Split, &corr, now);
                events.push(outbox(
                    HubEvent::GoldenRecordSplit(GoldenSplit {
                        envelope,
                        split_golden_ids: vec![split_off.golden_id.clone()],
                        golden: GoldenView::of(&after),
                    }),
                    now,
                ));
                let event = match &revived {
                    Some(r) => updated(r, &split_off, Cause::Split, &corr, now),
                    None => {
                        let envelope =
                            Envelope::new(&split_off, changed_names(None, &split_off), Cause::Split, &corr, now);
                        HubEvent::GoldenRecordCreated(GoldenChanged { envelope, golden: GoldenView::of(&split_off) })
                    }
                };
                events.push(outbox(event, now));
            }
            let (main, follow_ups) = plan.pack(events).ok_or_else(too_large)?;
            if self.commit(main, follow_ups).await? {
                return Ok(Split { golden: after, split_off, reactivated: revived.is_some() });
            }
        }
        Err(HubError::TooManyConflicts(self.config().max_attempts).into())
    }

    /// Pins `value` on an attribute (validated and normalised like a source value): it wins
    /// survivorship with rule `steward_pin` until it is removed. `None` removes the pin, and
    /// survivorship's value comes back.
    pub async fn pin_value(
        &self,
        t: &Target,
        attribute: &str,
        value: Option<&serde_json::Value>,
        who: &Attribution,
    ) -> Result<GoldenRecord, StewardError> {
        let schema = self.schema(&t.entity)?;
        if schema.attribute(attribute).is_none() {
            return Err(StewardError::invalid(
                "unknown_attribute",
                "attribute",
                format!("entity type '{}' has no attribute '{attribute}'", t.entity),
            ));
        }
        let normalised = match value {
            Some(v) => Some(crate::record::normalise_value(schema, attribute, v).map_err(|e| {
                StewardError::Invalid { code: e.code, message: e.message, field: Some("value".into()) }
            })?),
            None => None,
        };
        for _ in 0..self.config().max_attempts {
            let g = self.target_golden(t).await?;
            if normalised.is_none() && !g.pins.iter().any(|p| p.attribute == attribute) {
                return Err(StewardError::not_found("pin_not_found", format!("no value is pinned on '{attribute}'")));
            }
            let records = self.member_records(&g.members).await?;
            let members: Vec<&SourceRecord> = g.members.iter().filter_map(|k| records.get(k).map(|r| &**r)).collect();
            let now = self.now_ms();
            let mut base = g.clone();
            base.pins.retain(|p| p.attribute != attribute);
            if let Some(v) = &normalised {
                // The member that holds this value, if one does: erasing it removes the pin.
                let source = members.iter().find(|m| m.value(attribute) == Some(v.as_str())).map(|m| m.key.clone());
                base.pins.push(Pin {
                    attribute: attribute.to_owned(),
                    value: v.clone(),
                    actor: who.actor.clone(),
                    reason: who.reason.clone(),
                    at_ms: now,
                    source,
                });
            }
            let claims = self.claims_around(&t.entity, &members, &[&g]).await?;
            let corr = format!("steward-pin-{}", digest_hex(&[&g.golden_id, &g.version.to_string(), attribute], 8));
            let plan = plan_regroup(&Regroup {
                schema,
                groups: vec![Group { old: Some(&g), base, members }],
                absorbed: Vec::new(),
                claims: &claims,
                cause: crate::golden::Cause::Pin,
                who,
                correlation_id: &corr,
                now_ms: now,
                keep_history: self.config().keep_history,
            });
            let after = plan.goldens[0].clone();
            let mut events = Vec::new();
            if self.config().emit_events && plan.effective[0] {
                events.push(outbox(updated(&g, &after, Cause::Pin, &corr, now), now));
            }
            let (main, follow_ups) = plan.pack(events).ok_or_else(too_large)?;
            if self.commit(main, follow_ups).await? {
                return Ok(after);
            }
        }
        Err(HubError::TooManyConflicts(self.config().max_attempts).into())
    }
}

pub(super) fn too_large() -> StewardError {
    StewardError::conflict(
        "change_too_large",
        "the change names more golden records and claims than one transaction can write",
    )
}
