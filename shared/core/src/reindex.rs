//! Rebuilding a golden record's matching state from its members' source records, after a change
//! of schema (blocking keys, claims), of normalisers or of the store's layout. The plan is the
//! one a record linking to its own golden record makes: index entries follow from the members as
//! they are now (the ones no member supports any more are taken out), new strong keys are
//! claimed, and claims the record holds stay (a merge or an erasure releases a claim). Identity
//! is not decided again. Survivorship runs as on any change: after a change of its rules a value
//! may change, which is an effective change with its history version and event. A record whose
//! state is current is not written (`rewrite` writes it anyway, so an adapter stores it in its
//! current layout); its index entries and claims are written again all the same (both idempotent).
//! Suppression markers written under a superseded normaliser version are migrated on the way,
//! from the members' values (`erasure::migrate_markers`).

use super::*;

/// What reindexing one golden record did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reindexed {
    /// Index entries, claims or the stored record were written.
    Rebuilt,
    /// Its matching state was current.
    Current,
    /// Not active (merged or erased), or without members: nothing to index.
    Skipped,
}

impl<S: Store> Hub<S> {
    /// Rebuilds the index entries and claims of one golden record from its members (see the
    /// module). Conditional on the revision read, retried on a conflict; idempotent.
    pub async fn reindex_golden(&self, entity: &str, golden_id: &str, rewrite: bool) -> Result<Reindexed, HubError> {
        let schema = self.schema(entity)?;
        for _ in 0..self.config.max_attempts {
            let Some(golden) = self.store.get_golden(&schema.entity, golden_id).await? else {
                return Ok(Reindexed::Skipped);
            };
            if !golden.is_active() {
                return Ok(Reindexed::Skipped);
            }
            let members = self.store.get_sources(&golden.members).await?;
            // Markers written under a superseded normaliser get their current form where a
            // member holds the value (docs/privacy.md, "When a normaliser changes").
            for m in &members {
                crate::erasure::migrate_markers(self, m).await?;
            }
            // The plan is made for a member that lists this golden record as its own.
            let Some(source) = members.iter().find(|m| m.golden_id.as_deref() == Some(golden_id) && !m.held) else {
                return Ok(Reindexed::Skipped);
            };
            let result = MatchResult {
                decision: MatchDecision::Link { golden_ids: vec![golden_id.to_owned()] },
                candidates: Vec::new(),
                blocking: Default::default(),
            };
            let reads = PlanReads { replica: false, heal: false, assume_free_claims: false, reindex: true };
            let mut plan = match self.plan(source, &result, reads).await {
                Err(HubError::Store(e)) if e.is_conflict() => continue,
                other => other?,
            };
            plan.writes.retain(|op| !matches!(op, WriteOp::CheckUnsuppressed { .. }));
            let changed = !plan.writes.is_empty();
            if !changed {
                if !rewrite {
                    self.reassert_entries(&golden).await?;
                    return Ok(Reindexed::Current);
                }
                let mut again = golden.clone();
                again.revision += 1;
                plan.writes.push(WriteOp::PutGolden {
                    golden: Arc::new(again),
                    expect: crate::store::Expect::Revision(golden.revision),
                });
            }
            match self.store.transact(std::mem::take(&mut plan.writes)).await {
                Ok(()) => {}
                Err(e) if e.is_conflict() => continue,
                Err(e) => return Err(e.into()),
            }
            for chunk in std::mem::take(&mut plan.follow_ups) {
                self.store.transact(chunk).await?;
            }
            self.reassert_entries(&plan.golden).await?;
            return Ok(if changed || rewrite { Reindexed::Rebuilt } else { Reindexed::Current });
        }
        Err(HubError::TooManyConflicts(self.config.max_attempts))
    }

    /// Writes every index entry and claim the golden record lists again (both idempotent): an
    /// entry lost from the index, or written under a key the stored list already named, is
    /// back. A claim another golden record holds stays that record's. If the record changed
    /// meanwhile (an erasure, a merge that moved it away), what it no longer lists is taken out
    /// again: the writes here carry no condition on it.
    pub async fn reassert_entries(&self, golden: &GoldenRecord) -> Result<(), HubError> {
        self.write_entries(golden).await?;
        let now = self.store.get_golden(&golden.entity, &golden.golden_id).await?;
        if now.as_ref().is_some_and(|n| n.revision == golden.revision) {
            return Ok(());
        }
        let (keys, claims) = match &now {
            Some(n) if n.is_active() => (n.index_keys.to_set(), n.claims.to_set()),
            _ => Default::default(),
        };
        let entity: Arc<str> = golden.entity.as_str().into();
        let id: Arc<str> = golden.golden_id.as_str().into();
        let undo: Vec<WriteOp> = golden
            .index_keys
            .iter()
            .filter(|k| !keys.contains(*k))
            .map(|k| WriteOp::DeleteIndex { entity: entity.clone(), key: k.clone(), golden_id: id.clone() })
            .chain(golden.claims.iter().filter(|k| !claims.contains(*k)).map(|k| WriteOp::DeleteClaim {
                entity: golden.entity.clone(),
                key: k.clone(),
                holder: golden.golden_id.clone(),
            }))
            .collect();
        for chunk in undo.chunks(crate::store::MAX_TRANSACTION_ITEMS) {
            self.store.transact(chunk.to_vec()).await?;
        }
        Ok(())
    }

    async fn write_entries(&self, golden: &GoldenRecord) -> Result<(), HubError> {
        let entity: Arc<str> = golden.entity.as_str().into();
        let id: Arc<str> = golden.golden_id.as_str().into();
        let entries: Vec<WriteOp> = golden
            .index_keys
            .iter()
            .map(|k| WriteOp::PutIndex { entity: entity.clone(), key: k.clone(), golden_id: id.clone() })
            .collect();
        for chunk in entries.chunks(crate::store::MAX_TRANSACTION_ITEMS) {
            self.store.transact(chunk.to_vec()).await?;
        }
        // Only claims not held by it already: taking a claim again would move its lease time.
        let listed: Vec<IndexKey> = golden.claims.iter().cloned().collect();
        let held =
            if listed.is_empty() { Default::default() } else { self.store.get_claims(&golden.entity, &listed).await? };
        let claims: Vec<WriteOp> = listed
            .iter()
            .filter(|k| held.get(*k).map(String::as_str) != Some(golden.golden_id.as_str()))
            .map(|k| WriteOp::PutClaim { entity: entity.clone(), key: k.clone(), golden_id: id.clone(), from: None })
            .collect();
        for chunk in claims.chunks(crate::store::MAX_TRANSACTION_ITEMS) {
            match self.store.transact(chunk.to_vec()).await {
                Err(e) if e.is_conflict() => {
                    for op in chunk {
                        match self.store.transact(vec![op.clone()]).await {
                            Err(e) if e.is_conflict() => {}
                            other => other?,
                        }
                    }
                }
                other => other?,
            }
        }
        Ok(())
    }
}
