//! Source records written in bulk (`BatchWriteItem`, 25 items a call), for seeding a table with
//! a state built elsewhere: large test and benchmark states, and migrations that rebuild the
//! matching state afterwards with `mdm reindex`.

use super::*;

/// Items one `BatchWriteItem` call takes.
const BATCH_WRITE: usize = 25;

impl DynamoStore {
    /// Writes source records as they are, cross-references included, unconditionally (a
    /// stored version is replaced). Not for live traffic: no ordering, no suppression check.
    pub async fn load_sources(&self, records: &[SourceRecord]) -> Result<(), StoreError> {
        use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
        for chunk in records.chunks(BATCH_WRITE) {
            let mut requests = Vec::with_capacity(chunk.len());
            for r in chunk {
                let mut stored = r.clone();
                stored.golden_id = None;
                let mut item = source_key_item(&r.key);
                item.insert("kind".into(), s("source"));
                item.insert("source_seq".into(), n(r.seq));
                item.insert("first_seq".into(), n(r.first_seq));
                item.insert("data".into(), data(&stored)?);
                if let Some(g) = &r.golden_id {
                    item.insert("golden_id".into(), s(g.clone()));
                }
                let put = PutRequest::builder().set_item(Some(item)).build().map_err(build_err)?;
                requests.push(WriteRequest::builder().put_request(put).build());
            }
            let mut pending = Some(HashMap::from([(self.table.clone(), requests)]));
            for _ in 0..20 {
                let Some(batch) = pending.take().filter(|b| b.values().any(|v| !v.is_empty())) else { break };
                self.count(&self.counts.update_item);
                meter().request("BatchWriteItem");
                let out = self
                    .client
                    .batch_write_item()
                    .set_request_items(Some(batch))
                    .send()
                    .await
                    .map_err(unavailable("BatchWriteItem"))?;
                pending = out.unprocessed_items;
            }
            if pending.is_some_and(|b| b.values().any(|v| !v.is_empty())) {
                return Err(StoreError::Unavailable("BatchWriteItem left items unprocessed".into()));
            }
        }
        Ok(())
    }
}
