//! The store conformance suite on the in-process adapter.
use mdm_core::store::{conformance, memory::MemoryStore};

#[tokio::test]
async fn in_process_store_passes_the_conformance_suite() {
    let store = MemoryStore::new();
    let passed = conformance::run_all(&store, "mem").await;
    assert_eq!(passed.len(), 11);
}

#[tokio::test]
async fn in_process_store_passes_the_read_api_checks() {
    let store = MemoryStore::new();
    let passed = conformance::run_lookups(&store, "mem").await;
    assert_eq!(passed.len(), 3);
}

#[tokio::test]
async fn in_process_store_passes_the_erasure_checks() {
    let store = MemoryStore::new();
    let passed = conformance::run_erasure(&store, "mem").await;
    assert_eq!(passed.len(), 4);
}
