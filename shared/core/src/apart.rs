//! Keep-apart constraints: a data steward's decision that two golden records are different
//! entities. Matching never links across one (`matching::KEEP_APART`), a merge plan never joins
//! two records one separates (a decision made before it is made again), and a merge moves the
//! losers' constraints to the survivor (`GoldenRecord::kept_apart`).

use super::*;

impl<S: Store> Hub<S> {
    /// Writes a keep-apart constraint between two active golden records (on both, conditional on
    /// the revisions read, in one transaction): from then on no record links or merges them
    /// automatically; a record resembling both joins the closer one and a review task names the
    /// other. Not an effective change (no new version). Idempotent.
    pub async fn keep_apart(&self, entity: &str, a: &str, b: &str) -> Result<(), HubError> {
        let schema = self.schema(entity)?;
        for _ in 0..self.config.max_attempts {
            let found = self.resolve(&schema.entity, &[a.to_owned(), b.to_owned()]).await?;
            let (Some(ga), Some(gb)) = (found.get(a), found.get(b)) else {
                return Err(HubError::Store(StoreError::Invalid("both golden records must be active".into())));
            };
            if ga.golden_id == gb.golden_id {
                return Err(HubError::Store(StoreError::Invalid(
                    "one golden record cannot be kept apart from itself".into(),
                )));
            }
            if ga.kept_apart_from(gb) {
                return Ok(());
            }
            let now = self.now_ms();
            let with = |g: &GoldenRecord, other: &str| {
                let read = g.revision;
                let mut g = g.clone();
                g.kept_apart.push(other.to_owned());
                g.revision += 1;
                g.updated_at_ms = now;
                WriteOp::PutGolden { golden: Arc::new(g), expect: crate::store::Expect::Revision(read) }
            };
            let ops = vec![with(ga, &gb.golden_id), with(gb, &ga.golden_id)];
            match self.store.transact(ops).await {
                Ok(()) => return Ok(()),
                Err(e) if e.is_conflict() => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(HubError::TooManyConflicts(self.config.max_attempts))
    }

    /// Takes the ids in `names` out of the keep-apart constraints of the active records among
    /// `holders` (an erasure of the records those ids name). Idempotent; retried on conflicts.
    pub async fn drop_constraints_naming(
        &self,
        entity: &str,
        holders: &[String],
        names: &std::collections::BTreeSet<&str>,
    ) -> Result<(), HubError> {
        for _ in 0..self.config.max_attempts {
            let found = self.resolve(entity, holders).await?;
            let mut ops = Vec::new();
            let mut seen = BTreeSet::new();
            for g in found.values() {
                if !seen.insert(g.golden_id.clone()) || !g.kept_apart.iter().any(|k| names.contains(k.as_str())) {
                    continue;
                }
                let read = g.revision;
                let mut kept = GoldenRecord::clone(g);
                kept.kept_apart.retain(|k| !names.contains(k.as_str()));
                kept.revision += 1;
                kept.updated_at_ms = self.now_ms();
                ops.push(WriteOp::PutGolden { golden: Arc::new(kept), expect: crate::store::Expect::Revision(read) });
            }
            let mut conflicted = false;
            for chunk in ops.chunks(crate::store::MAX_TRANSACTION_ITEMS) {
                match self.store.transact(chunk.to_vec()).await {
                    Ok(()) => {}
                    Err(e) if e.is_conflict() => conflicted = true,
                    Err(e) => return Err(e.into()),
                }
            }
            if !conflicted {
                return Ok(());
            }
        }
        Err(HubError::TooManyConflicts(self.config.max_attempts))
    }
}
