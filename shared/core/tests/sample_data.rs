//! The demo's sample data (infra/local/sample) through the in-process engine: the same match and
//! merge code as the Lambda path, checked against the generator's ground truth.
mod common;

use mdm_core::record::validate;
use mdm_core::store::{GoldenStore, SourceStore};
use mdm_core::{GoldenStatus, SourceKey};
use std::collections::{BTreeMap, HashMap};

fn sample_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../infra/local/sample")
}

#[tokio::test]
async fn sample_data_resolves_to_the_ground_truth() {
    let hub = common::hub();
    let mut keys = Vec::new();
    for system in ["crm", "erp", "webshop"] {
        let text = std::fs::read_to_string(sample_dir().join(format!("{system}.jsonl"))).expect("sample file");
        for line in text.lines() {
            let input: serde_json::Value = serde_json::from_str(line).expect("json line");
            let Ok(record) = validate(hub.registry(), &input, 0) else { continue };
            if hub.ingest(&record).await.expect("ingest") == mdm_core::store::SourceWrite::Written {
                hub.process(&record.key).await.expect("process");
            }
            keys.push(record.key);
        }
    }
    let truth: BTreeMap<String, String> =
        serde_json::from_str(&std::fs::read_to_string(sample_dir().join("truth.json")).expect("truth")).expect("json");
    let mut golden_of: HashMap<SourceKey, String> = HashMap::new();
    for k in &keys {
        let src = hub.store().get_source(k).await.expect("get").expect("stored");
        let mut id = src.golden_id.clone().expect("linked");
        while let Some(g) = hub.store().get_golden(&k.entity, &id).await.expect("get") {
            match g.status {
                GoldenStatus::MergedInto { survivor } => id = survivor,
                _ => break,
            }
        }
        golden_of.insert(k.clone(), id);
    }
    let items: Vec<(&SourceKey, &String, &String)> = golden_of
        .iter()
        .filter_map(|(k, g)| truth.get(&format!("{}/{}", k.system, k.source_id)).map(|t| (k, g, t)))
        .collect();
    let (mut tp, mut fp, mut fn_) = (0, 0, 0);
    let mut wrong = Vec::new();
    for i in 0..items.len() {
        for j in i + 1..items.len() {
            match (items[i].1 == items[j].1, items[i].2 == items[j].2) {
                (true, true) => tp += 1,
                (true, false) => {
                    fp += 1;
                    wrong.push(format!("linked {} + {}", items[i].0, items[j].0));
                }
                (false, true) => {
                    fn_ += 1;
                    wrong.push(format!("missed {} + {}", items[i].0, items[j].0));
                }
                _ => {}
            }
        }
    }
    let precision = tp as f64 / (tp + fp).max(1) as f64;
    let recall = tp as f64 / (tp + fn_).max(1) as f64;
    eprintln!(
        "precision {precision:.3} recall {recall:.3}\n{}",
        wrong.iter().take(20).cloned().collect::<Vec<_>>().join("\n")
    );
    assert!(precision >= 0.98 && recall >= 0.98, "precision {precision:.3} recall {recall:.3}: {wrong:?}");
}
