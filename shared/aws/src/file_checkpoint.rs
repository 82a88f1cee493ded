//! The checkpoint of a bulk file (`FILE#…` items): where reading goes on and what its rows
//! became, saved after every chunk. A save is conditional on the progress it continues from, so
//! two invocations working on the same file (a notification delivered twice) never both go on:
//! the one whose save fails stops, and the rows it read again were duplicates (same `sourceSeq`).

use super::*;
use mdm_core::files::report::FileProgress;

fn file_key(name: &str) -> Item {
    HashMap::from([("pk".into(), s(keys::compose("FILE", &[name]))), ("sk".into(), s(META))])
}

impl DynamoStore {
    /// A file's checkpoint (a new file's is empty), read strongly.
    pub async fn file_progress(&self, name: &str) -> Result<FileProgress, StoreError> {
        let Some(item) = self.get(file_key(name), true).await? else { return Ok(FileProgress::default()) };
        let data = item
            .get("data")
            .and_then(|v| v.as_s().ok())
            .ok_or_else(|| StoreError::Corrupt(format!("file checkpoint {name}: no data")))?;
        serde_json::from_str(data).map_err(|e| StoreError::Corrupt(format!("file checkpoint {name}: {e}")))
    }

    /// Saves `progress` if the stored checkpoint is still the one `from` read (its rows consumed,
    /// not done) or there is none. `false`: another invocation got further; this one stops.
    pub async fn save_file_progress(
        &self,
        name: &str,
        from: &FileProgress,
        progress: &FileProgress,
    ) -> Result<bool, StoreError> {
        let data = serde_json::to_string(progress).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut item = file_key(name);
        item.insert("kind".into(), s("file"));
        item.insert("rows".into(), n(progress.rows));
        item.insert("invocations".into(), n(u64::from(progress.invocations)));
        item.insert("done".into(), AttributeValue::Bool(progress.done));
        item.insert("data".into(), s(data));
        meter().request("PutItem");
        meter().write("PutItem", &[Write::Put(&item)], false);
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR (#r = :r AND #i = :i AND #d = :f)")
            .expression_attribute_names("#r", "rows")
            .expression_attribute_names("#i", "invocations")
            .expression_attribute_names("#d", "done")
            .expression_attribute_values(":r", n(from.rows))
            .expression_attribute_values(":i", n(u64::from(from.invocations)))
            .expression_attribute_values(":f", AttributeValue::Bool(false))
            .send()
            .await;
        match put {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => Ok(false),
            Err(e) => Err(unavailable("PutItem")(e)),
        }
    }
}
