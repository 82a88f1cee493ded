//! Concurrency on the in-process store: no duplicate golden records and no lost updates.
//!
//! A wrapper store holds the first transaction of every task at a barrier until all tasks have
//! read and planned, so the race is forced on every run rather than left to scheduling luck.
mod common;

use common::*;
use mdm_core::golden::{GoldenRecord, HistoryEntry, ReviewTask};
use mdm_core::record::{validate, SourceRecord};
use mdm_core::store::memory::MemoryStore;
use mdm_core::store::*;
use mdm_core::{Hub, SchemaRegistry, SourceKey};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::Barrier;

const TASKS: usize = 16;

struct Racing {
    inner: MemoryStore,
    barrier: Barrier,
    held: AtomicUsize,
}

impl Racing {
    fn new() -> Self {
        Self { inner: MemoryStore::new(), barrier: Barrier::new(TASKS), held: AtomicUsize::new(usize::MAX) }
    }
    /// From now on, the next `TASKS` transactions wait for each other.
    fn arm(&self) {
        self.held.store(0, Ordering::SeqCst);
    }
}

impl mdm_core::store::TermStore for Racing {}

impl SourceStore for Racing {
    async fn put_source(&self, r: &SourceRecord, guards: &[String]) -> Result<SourceWrite, StoreError> {
        self.inner.put_source(r, guards).await
    }
    async fn get_source(&self, k: &SourceKey) -> Result<Option<std::sync::Arc<SourceRecord>>, StoreError> {
        self.inner.get_source(k).await
    }
    async fn is_suppressed(&self, e: &str, k: &[String]) -> Result<bool, StoreError> {
        self.inner.is_suppressed(e, k).await
    }
    async fn get_sources(&self, k: &[SourceKey]) -> Result<Vec<std::sync::Arc<SourceRecord>>, StoreError> {
        self.inner.get_sources(k).await
    }
}
impl GoldenStore for Racing {
    async fn get_golden(&self, e: &str, id: &str) -> Result<Option<GoldenRecord>, StoreError> {
        self.inner.get_golden(e, id).await
    }
    async fn get_goldens(&self, e: &str, ids: &[String]) -> Result<Vec<GoldenRecord>, StoreError> {
        self.inner.get_goldens(e, ids).await
    }
    async fn history(&self, e: &str, id: &str) -> Result<Vec<HistoryEntry>, StoreError> {
        self.inner.history(e, id).await
    }
}
impl BlockIndex for Racing {
    async fn lookup(&self, e: &str, k: &[IndexKey], caps: &[usize]) -> Result<Vec<BlockHit>, StoreError> {
        self.inner.lookup(e, k, caps).await
    }
    async fn add_to_blocks(&self, e: &str, k: &[IndexKey], g: &str, cap: usize) -> Result<Vec<BlockHit>, StoreError> {
        self.inner.add_to_blocks(e, k, g, cap).await
    }
}
impl ClaimStore for Racing {
    async fn get_claims(&self, e: &str, k: &[IndexKey]) -> Result<BTreeMap<IndexKey, String>, StoreError> {
        self.inner.get_claims(e, k).await
    }
}
impl ReviewStore for Racing {
    async fn get_review(&self, e: &str, t: &str) -> Result<Option<ReviewTask>, StoreError> {
        self.inner.get_review(e, t).await
    }
    async fn review_queue(&self, e: &str, open: bool, after: Option<&str>, n: usize) -> Result<ReviewPage, StoreError> {
        self.inner.review_queue(e, open, after, n).await
    }
    async fn review_backlog(&self, e: &str) -> Result<ReviewBacklog, StoreError> {
        self.inner.review_backlog(e).await
    }
    async fn labels(&self, e: &str, after: Option<&str>, n: usize) -> Result<LabelPage, StoreError> {
        self.inner.labels(e, after, n).await
    }
    async fn held_records(&self, e: &str, after: Option<&str>, n: usize) -> Result<HeldPage, StoreError> {
        self.inner.held_records(e, after, n).await
    }
}
impl Outbox for Racing {
    async fn pending_events(&self, limit: usize) -> Result<Vec<OutboxEntry>, StoreError> {
        self.inner.pending_events(limit).await
    }
    async fn delete_events(&self, ids: &[String]) -> Result<(), StoreError> {
        self.inner.delete_events(ids).await
    }
    async fn pending_events_of(&self, e: &str, ids: &[String]) -> Result<Vec<OutboxEntry>, StoreError> {
        self.inner.pending_events_of(e, ids).await
    }
}
impl Transactor for Racing {
    async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        if self.held.fetch_add(1, Ordering::SeqCst) < TASKS {
            self.barrier.wait().await;
        }
        self.inner.transact(ops).await
    }
}

fn racing_hub() -> Arc<Hub<Racing>> {
    Arc::new(Hub::new(Arc::new(SchemaRegistry::built_in().expect("schemas")), Racing::new()))
}

async fn run_all(hub: &Arc<Hub<Racing>>, inputs: Vec<serde_json::Value>) {
    let mut handles = Vec::new();
    for input in inputs {
        let hub = Arc::clone(hub);
        handles.push(tokio::spawn(async move {
            let record = validate(hub.registry(), &input, 0).expect("valid");
            hub.ingest(&record).await.expect("ingest");
            hub.process(&record.key).await.expect("process")
        }));
    }
    for h in handles {
        h.await.expect("task");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_concurrent_records_of_one_new_person_make_one_golden_record() {
    let hub = racing_hub();
    hub.store().arm();
    let inputs = (0..TASKS)
        .map(|i| {
            let given = if i % 2 == 0 { "Tomasz" } else { "Tomas" };
            customer(
                &format!("shop{}", i % 4),
                &format!("t-{i}"),
                1,
                json!({
                "given_name": given, "family_name": "Nowak", "date_of_birth": "1977-09-30",
                "email": "tomasz.nowak@example.net", "postcode": "CF10 1EP"}),
            )
        })
        .collect();
    run_all(&hub, inputs).await;
    let active = hub.store().inner.active_goldens("customer");
    assert_eq!(
        active.len(),
        1,
        "exactly one golden record: {:?}",
        active.iter().map(|g| &g.golden_id).collect::<Vec<_>>()
    );
    assert_eq!(active[0].members.len(), TASKS, "every record is a member");
    assert_eq!(hub.store().inner.counts().goldens_merged, 0, "never created twice and merged afterwards");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_concurrent_updates_of_one_golden_record_lose_nothing() {
    let hub = racing_hub();
    let first = customer(
        "crm",
        "base",
        1,
        json!({
        "given_name": "Ingrid", "family_name": "Solberg", "date_of_birth": "1969-04-02",
        "email": "ingrid.solberg@example.no", "phone": "+47 912 34 567"}),
    );
    let record = validate(hub.registry(), &first, 0).expect("valid");
    hub.ingest(&record).await.expect("ingest");
    let created = hub.process(&record.key).await.expect("process");
    let golden_id = created.outcome.golden_id().to_owned();

    hub.store().arm();
    let inputs = (0..TASKS)
        .map(|i| {
            customer(
                "webshop",
                &format!("u-{i}"),
                1,
                json!({
                "given_name": "Ingrid", "family_name": "Solberg", "date_of_birth": "1969-04-02",
                "email": "ingrid.solberg@example.no", "locality": format!("Town{i}")}),
            )
        })
        .collect();
    run_all(&hub, inputs).await;
    let g = hub.store().get_golden("customer", &golden_id).await.expect("get").expect("exists");
    assert_eq!(g.members.len(), TASKS + 1, "no lost update: every linked source is a member");
    let history = hub.store().history("customer", &golden_id).await.expect("history");
    assert_eq!(g.version, TASKS as u64 + 1, "version counts the effective changes");
    assert_eq!(history.len() as u64, g.version, "one history version per effective change");
    let versions: Vec<u64> = history.iter().map(|h| h.version).collect();
    assert_eq!(versions, (1..=g.version).collect::<Vec<_>>());
}
