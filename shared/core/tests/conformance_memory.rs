//! The store conformance suite on the in-process adapter.
use mdm_core::store::{conformance, memory::MemoryStore};

#[tokio::test]
async fn in_process_store_passes_the_conformance_suite() {
    let store = MemoryStore::new();
    let passed = conformance::run_all(&store, "mem").await;
    assert_eq!(passed.len(), 15);
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
    assert_eq!(passed.len(), 6);
}

/// A store sized ahead for a batch run (every table given room) behaves like any other.
#[tokio::test]
async fn a_store_sized_ahead_passes_the_conformance_suite() {
    use mdm_core::store::memory::Expected;
    let store = MemoryStore::with_expected(Expected { sources: 1_000, goldens: 1_000, blocks: 5_000, claims: 2_000 });
    assert_eq!(conformance::run_all(&store, "mem").await.len(), 15);
    assert_eq!(conformance::run_lookups(&store, "mem").await.len(), 3);
    assert_eq!(conformance::run_erasure(&store, "mem").await.len(), 6);
}
