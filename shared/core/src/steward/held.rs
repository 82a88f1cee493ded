//! Records held under suppression mode `hold` (they carry an identifier of an erased subject):
//! a steward releases one — its source key is exempt from the markers from then on, and it is
//! matched and merged at once — or erases it.

use super::StewardError;
use crate::erasure::{self, ErasureReceipt, ErasureRequest};
use crate::golden::{Attribution, Exemption};
use crate::hub::{Hub, MergeReport};
use crate::keys::SourceKey;
use crate::record::SourceRecord;
use crate::store::{ReceiptStore, Store, WriteOp};
use std::sync::Arc;

impl<S: Store + ReceiptStore> Hub<S> {
    /// The held record at version `seq` (404 unknown, 409 not held, 412 another version).
    async fn held_record(&self, key: &SourceKey, seq: u64) -> Result<Arc<SourceRecord>, StewardError> {
        let r = self.store().get_source(key).await?.ok_or_else(|| StewardError::NotFound {
            code: "held_not_found",
            message: "no stored record with this key".into(),
        })?;
        if !r.held {
            return Err(StewardError::conflict("not_held", "the record is not held"));
        }
        if r.seq != seq {
            return Err(StewardError::StaleRecord { expected: seq, current: r.seq });
        }
        Ok(r)
    }

    /// Releases a held record: stored again, not held, with an exemption (actor, reason) that
    /// ingest, match and merge honour; then matched and merged.
    pub async fn release_held(
        &self,
        key: &SourceKey,
        seq: u64,
        who: &Attribution,
    ) -> Result<MergeReport, StewardError> {
        let held = self.held_record(key, seq).await?;
        let mut released = SourceRecord::clone(&held);
        released.held = false;
        released.golden_id = None;
        released.exempt =
            Some(Arc::new(Exemption { actor: who.actor.clone(), reason: who.reason.clone(), at_ms: self.now_ms() }));
        let op = WriteOp::ReleaseHeld { record: Box::new(released), seq };
        if !self.commit(vec![op], Vec::new()).await? {
            let now = self.store().get_source(key).await?.map_or(0, |r| r.seq);
            return Err(StewardError::StaleRecord { expected: seq, current: now });
        }
        Ok(self.process(key).await?)
    }

    /// Erases a held record (an erasure of its source key, scope `source`, requested by the
    /// steward): the receipt.
    pub async fn erase_held(
        &self,
        key: &SourceKey,
        seq: u64,
        who: &Attribution,
    ) -> Result<ErasureReceipt, StewardError> {
        self.held_record(key, seq).await?;
        let body = serde_json::json!({"entityType": key.entity.as_str(), "scope": "source",
                                      "sourceKey": {"system": key.system.as_str(), "sourceId": key.source_id.as_str()}});
        let failed = |e: erasure::ErasureError| StewardError::conflict("erasure_failed", e.to_string());
        let request = ErasureRequest::parse(self, &body, &who.actor).map_err(failed)?;
        let (receipt, _) = erasure::accept(self, &request).await.map_err(failed)?;
        Box::pin(erasure::process(self, &receipt.request_id)).await.map_err(failed)
    }
}
