//! `mdm dedupe --online`: the records go through the hub one at a time as the Lambda handlers
//! send them — ingest, then match and merge (`Hub::process`), with history and events kept as the
//! hub keeps them on AWS — on the in-process store. Slower than the batch engine; it exists to
//! show that both paths give the same clusters (`tests/match-scale-check.sh` compares them).

use super::reading::{prepare, Layout, Reading};
use mdm_core::hub::{Hub, HubConfig};
use mdm_core::store::memory::MemoryStore;
use mdm_core::SchemaRegistry;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

pub async fn run(
    registry: Arc<SchemaRegistry>,
    layout: Layout,
    inputs: &[std::path::PathBuf],
    systems: &[String],
    out: &Path,
) -> Result<usize, String> {
    let entity = layout.entity.clone();
    let hub = Hub::new(registry.clone(), MemoryStore::new()).with_config(HubConfig::default());
    let mut reading = Reading::new(layout, inputs.to_vec(), vec![0; inputs.len()]);
    let mut rows: Vec<(usize, String, String)> = Vec::new();
    while let Some((_, batch)) = reading.next_batch() {
        for row in batch {
            let p = prepare(&registry, row?)?;
            let key = p.record.key.clone();
            hub.ingest(&p.record).await.map_err(|e| format!("{}: ingest: {e}", p.record_id))?;
            let report = hub.process(&key).await.map_err(|e| format!("{}: match and merge: {e}", p.record_id))?;
            rows.push((p.file_index, p.record_id, report.outcome.golden_id().to_owned()));
        }
    }
    let mut text = String::from("source,record_id,golden_id\n");
    for (file, id, golden) in &rows {
        // A golden record a later merge took: the one its chain ends at.
        let last = hub
            .final_record(&entity, golden)
            .await
            .map_err(|e| e.to_string())?
            .map_or_else(|| golden.clone(), |g| g.golden_id.to_string());
        text.push_str(&format!("{},{id},{last}\n", systems.get(*file).map_or("", String::as_str)));
    }
    let mut f = std::fs::File::create(out).map_err(|e| format!("{}: cannot write: {e}", out.display()))?;
    f.write_all(text.as_bytes()).map_err(|e| format!("{}: {e}", out.display()))?;
    Ok(rows.len())
}
