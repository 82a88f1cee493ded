//! `mdm reindex` on the emulator: resumable page by page, restores lost index items, idempotent.
mod common;

use common::*;
use mdm_aws::reindex::{self, ReindexJob};
use mdm_core::store::{BlockIndex, GoldenStore, IndexKey};
use mdm_core::{Hub, SchemaRegistry, SourceKey};
use serde_json::json;
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reindex_resumes_restores_lost_index_items_and_changes_nothing_the_second_time() {
    let Some(s) = stack("reindex").await else { return };
    let people =
        [("Ada", "Lovelace", "1815-12-10"), ("Alan", "Turing", "1912-06-23"), ("Grace", "Hopper", "1906-12-09")];
    let records = people
        .iter()
        .enumerate()
        .map(|(i, (g, f, d))| {
            customer(
                "crm",
                &format!("r-{i}"),
                1,
                json!({"given_name": g, "family_name": f, "date_of_birth": d,
                "email": format!("{}@example.org", g.to_lowercase())}),
            )
        })
        .collect();
    s.post(records).await;
    s.drain().await;
    let ada = s.golden_of(&SourceKey::new("customer", "crm", "r-0")).await;
    // The block items of Ada's keys are lost (a restore from backup without them, a new key).
    let keys: Vec<IndexKey> = ada.index_keys.iter().cloned().collect();
    for k in &keys {
        s.ddb
            .delete_item()
            .table_name(s.table())
            .key(
                "pk",
                aws_sdk_dynamodb::types::AttributeValue::S(mdm_core::keys::block_item_key("customer", &k.text())),
            )
            .key("sk", aws_sdk_dynamodb::types::AttributeValue::S("META".into()))
            .send()
            .await
            .expect("delete");
    }
    let found =
        |hits: Vec<mdm_core::store::BlockHit>| hits.iter().filter(|h| h.golden_ids.contains(&ada.golden_id)).count();
    assert_eq!(found(s.store.lookup("customer", &keys, &[]).await.expect("lookup")), 0);

    let registry = Arc::new(SchemaRegistry::built_in().expect("schemas"));
    let hub = Hub::new(registry, s.store.clone());
    let job = |run: &str, max_pages| ReindexJob { run: run.into(), rewrite: false, page: 1, max_pages };
    let partial = reindex::run(&hub, &job("first", Some(1))).await.expect("one page");
    assert!(!partial.done && partial.cursor.is_some(), "stopped after one page, resumable");
    let done = reindex::run(&hub, &job("first", None)).await.expect("resumed");
    assert!(done.done);
    assert_eq!(done.counts.values().sum::<u64>(), 3, "every golden record once: {:?}", done.counts);
    assert_eq!(found(s.store.lookup("customer", &keys, &[]).await.expect("lookup")), keys.len(), "restored");
    let g = s.store.get_golden("customer", &ada.golden_id).await.expect("get").expect("ada");
    assert_eq!(g.version, ada.version, "no effective change");

    let without_jobs = |items: Vec<Item>| {
        let mut v: Vec<String> = items
            .into_iter()
            .filter(|i| !i.get("pk").and_then(|p| p.as_s().ok()).is_some_and(|p| p.starts_with("JOB#")))
            .map(|i| {
                let mut kv: Vec<String> = i.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
                kv.sort();
                kv.join(",")
            })
            .collect();
        v.sort();
        v
    };
    let before = without_jobs(s.scan().await);
    let again = reindex::run(&hub, &job("second", None)).await.expect("again");
    assert_eq!(again.counts.get("current"), Some(&3), "{:?}", again.counts);
    assert_eq!(without_jobs(s.scan().await), before, "a second run changes nothing");
}
