//! The store conformance suite: one set of checks, generic over the port, that every adapter
//! (in-process, DynamoDB) must pass. Each check panics with a message naming what broke.
//!
//! `ns` isolates a run (it becomes part of the entity name), so the suite can run against a
//! shared table.

use super::*;
use crate::golden::{Cause, GoldenStatus, ReviewStatus};
use crate::record::SourceRecord;
use std::collections::BTreeSet;

fn source(entity: &str, id: &str, seq: u64, name: &str) -> SourceRecord {
    SourceRecord {
        key: SourceKey::new(entity, "crm", id),
        seq,
        updated_at_ms: Some(1_700_000_000_000),
        attributes: [("given_name", name.into())].into_iter().collect(),
        invalid: BTreeSet::new(),
        quality: vec![],
        quality_score: 1.0,
        verified: BTreeSet::new(),
        content_hash: format!("h-{name}"),
        correlation_id: "conformance".into(),
        received_at_ms: 1_700_000_000_000,
        golden_id: None,
        held: false,
        first_seq: seq,
        principal: None,
        exempt: None,
        key_cache: Default::default(),
        superseded: Default::default(),
    }
}

fn golden(entity: &str, id: &str, revision: u64) -> GoldenRecord {
    golden_record(entity, id, revision)
}

/// An active golden record for tests: one member (`crm/m#1`), one index key, no attributes.
pub fn golden_record(entity: &str, id: &str, revision: u64) -> GoldenRecord {
    GoldenRecord {
        entity: entity.into(),
        golden_id: id.into(),
        version: revision,
        revision,
        status: GoldenStatus::Active,
        attributes: Default::default(),
        members: vec![SourceKey::new(entity, "crm", "m#1")].into(),
        match_values: Default::default(),
        index_keys: [crate::index_keys::IndexKey::parse("k=1")].into_iter().collect(),
        claims: Default::default(),
        created_at_ms: 1,
        updated_at_ms: 1,
        merged_from: Vec::new(),
        kept_apart: Vec::new(),
        pins: Vec::new(),
        quality: None,
    }
}

fn history(g: &GoldenRecord) -> HistoryEntry {
    HistoryEntry::of(g, Cause::Ingest, "conformance", 1)
}

/// A stored key from its text.
fn key(text: &str) -> IndexKey {
    IndexKey::parse(text)
}

fn index(entity: &str, key: &str, g: &str) -> WriteOp {
    WriteOp::PutIndex { entity: entity.into(), key: key.into(), golden_id: g.into() }
}

fn claim(entity: &str, key: &str, g: &str, from: Option<&str>) -> WriteOp {
    WriteOp::PutClaim { entity: entity.into(), key: key.into(), golden_id: g.into(), from: from.map(str::to_owned) }
}

fn conflict<T: std::fmt::Debug>(r: Result<T, StoreError>, what: &str) {
    match r {
        Err(StoreError::Conflict(_)) => {}
        other => panic!("{what}: expected a conflict, got {other:?}"),
    }
}

/// Runs every check; returns their names.
pub async fn run_all<S: Store>(store: &S, ns: &str) -> Vec<&'static str> {
    let e = format!("conf_{ns}");
    conditional_source_put(store, &e).await;
    xref_survives_source_update(store, &e).await;
    golden_version_conflict(store, &e).await;
    transaction_all_or_nothing(store, &e).await;
    claim_conflict(store, &e).await;
    history_and_review(store, &e).await;
    index_lookup_and_cap(store, &e).await;
    add_to_blocks_returns_what_was_there(store, &e).await;
    transaction_limits(store, &e).await;
    outbox_round_trip(store, &e).await;
    batch_reads_skip_missing(store, &e).await;
    large_golden_records_round_trip(store, &e).await;
    review_queue_pages_oldest_first(store, &e).await;
    held_records_list_and_release(store, &e).await;
    term_counts_add_and_fall_to_nothing(store, &e).await;
    vec![
        "conditional_source_put",
        "xref_survives_source_update",
        "golden_version_conflict",
        "transaction_all_or_nothing",
        "claim_conflict",
        "history_and_review",
        "index_lookup_and_cap",
        "add_to_blocks_returns_what_was_there",
        "transaction_limits",
        "outbox_round_trip",
        "batch_reads_skip_missing",
        "large_golden_records_round_trip",
        "review_queue_pages_oldest_first",
        "held_records_list_and_release",
        "term_counts_add_and_fall_to_nothing",
    ]
}

/// Term counts: a key never counted reads 0; counting adds to each key and to the total once
/// per call; counting out takes them back down, and a key at zero reads 0 again (and is counted
/// afresh from there, not from below zero).
pub async fn term_counts_add_and_fall_to_nothing<S: Store>(store: &S, e: &str) {
    // Keys of this run only: an emulator's table may hold counts of earlier runs.
    let run = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let (a, b) = (
        crate::terms::term_key("family_name", &format!("rare{run}")),
        crate::terms::term_key("family_name", &format!("common{run}")),
    );
    let keys = [a.clone(), b.clone()];
    let before = store.term_counts(e, &keys).await.expect("read");
    assert_eq!(before.counts, vec![0, 0]);
    store.count_terms(e, &keys, 1).await.expect("count");
    store.count_terms(e, std::slice::from_ref(&b), 1).await.expect("count");
    store.count_terms(e, std::slice::from_ref(&b), 1).await.expect("count");
    let counted = store.term_counts(e, &keys).await.expect("read");
    assert_eq!(counted.counts, vec![1, 3]);
    assert_eq!(counted.total, before.total + 3);
    store.count_terms(e, std::slice::from_ref(&a), -1).await.expect("uncount");
    // Taken out twice (a resumed erasure): still nothing, and the next count starts at one.
    store.count_terms(e, std::slice::from_ref(&a), -1).await.expect("uncount");
    let after = store.term_counts(e, &keys).await.expect("read");
    assert_eq!(after.counts, vec![0, 3]);
    assert_eq!(after.total, before.total + 1);
    store.count_terms(e, std::slice::from_ref(&a), 1).await.expect("count");
    assert_eq!(store.term_counts(e, &keys).await.expect("read").counts, vec![1, 3]);
}

/// Held records are listed by key, page by page; a release stores the held version again, not
/// held and exempt (only that version: another one conflicts), and the exemption outlives
/// later versions, which pass the suppression markers.
pub async fn held_records_list_and_release<S: Store>(store: &S, e: &str) {
    let e = &format!("{e}_held");
    let held = |id: &str, seq: u64| {
        let mut r = source(e, id, seq, "h");
        r.held = true;
        r
    };
    store.put_source(&held("h1", 3), &[]).await.expect("put");
    store.put_source(&held("h2", 1), &[]).await.expect("put");
    store.put_source(&source(e, "h3", 1, "c"), &[]).await.expect("put");
    let first = store.held_records(e, None, 1).await.expect("page");
    assert_eq!(first.records.iter().map(|r| r.key.source_id.as_str()).collect::<Vec<_>>(), ["h1"]);
    let rest = store.held_records(e, first.next.as_deref(), 10).await.expect("page");
    assert_eq!(rest.records.iter().map(|r| r.key.source_id.as_str()).collect::<Vec<_>>(), ["h2"]);
    assert_eq!(rest.next, None);
    let mut released = held("h1", 3);
    released.held = false;
    released.exempt = Some(Arc::new(crate::golden::Exemption { actor: "s".into(), reason: "r".into(), at_ms: 1 }));
    let op = |seq| WriteOp::ReleaseHeld { record: Box::new(released.clone()), seq };
    conflict(store.transact(vec![op(2)]).await, "a release of another version");
    store.transact(vec![op(3)]).await.expect("release");
    let got = store.get_source(&released.key).await.expect("get").expect("stored");
    assert!(!got.held && got.exempt.is_some(), "{got:?}");
    let left = store.held_records(e, None, 10).await.expect("page");
    assert_eq!(left.records.iter().map(|r| r.key.source_id.as_str()).collect::<Vec<_>>(), ["h2"]);
    conflict(store.transact(vec![op(3)]).await, "released already");
    // A marker for the record's identifier: a later version of the released record passes.
    let marker = WriteOp::PutSuppression { entity: e.clone(), key: "k-h1".into(), request_id: "r".into() };
    store.transact(vec![marker]).await.expect("marker");
    let v4 = source(e, "h1", 4, "h4");
    assert_eq!(store.put_source(&v4, &["k-h1".into()]).await.expect("put"), SourceWrite::Written);
    assert!(store.get_source(&v4.key).await.expect("get").expect("stored").exempt.is_some(), "kept over versions");
    let other = source(e, "h9", 1, "x");
    assert_eq!(store.put_source(&other, &["k-h1".into()]).await.expect("put"), SourceWrite::Suppressed);
}

/// Open review tasks of one entity type come oldest first, page by page with the cursor; other
/// entity types and resolved tasks are not in the open queue.
pub async fn review_queue_pages_oldest_first<S: Store>(store: &S, e: &str) {
    let e = &format!("{e}_queue");
    let task = |id: &str, entity: &str, at: i64, status: ReviewStatus| ReviewTask {
        entity: entity.into(),
        task_id: id.into(),
        golden_id: format!("g-{id}"),
        source: SourceKey::new(entity, "crm", id),
        candidate_golden_ids: vec!["g-q".into()],
        score: 9.0,
        explanation: vec![],
        status,
        created_at_ms: at,
        resolution: None,
        expires_at: None,
    };
    let other = format!("{e}_other");
    let tasks = [
        task("q#3", e, 300, ReviewStatus::Open),
        task("q#1", e, 100, ReviewStatus::Open),
        task("q#2", e, 200, ReviewStatus::Open),
        task("q#0", &other, 50, ReviewStatus::Open),
        task("q#9", e, 10, ReviewStatus::Rejected),
    ];
    let ops = tasks.iter().map(|t| WriteOp::PutReview(Box::new(t.clone()))).collect();
    store.transact(ops).await.expect("reviews");
    let first = store.review_queue(e, true, None, 2).await.expect("page");
    let ids = |p: &ReviewPage| p.tasks.iter().map(|t| t.task_id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&first), ["q#1", "q#2"], "oldest first");
    let next = first.next.clone().expect("a cursor");
    let second = store.review_queue(e, true, Some(&next), 2).await.expect("page");
    assert_eq!((ids(&second), second.next.clone()), (vec!["q#3".to_owned()], None));
    let resolved = store.review_queue(e, false, None, 10).await.expect("resolved");
    assert_eq!(ids(&resolved), ["q#9"]);
    let backlog = store.review_backlog(e).await.expect("backlog");
    assert_eq!(backlog, ReviewBacklog { open: 3, oldest_opened_ms: Some(100) });
    let none = store.review_backlog(&format!("{e}_none")).await.expect("backlog");
    assert_eq!(none, ReviewBacklog::default());
}

/// A golden record far past one DynamoDB item (thousands of members, index keys and claims) is
/// stored and read back whole; it grows, shrinks back to a few members, and a write from a
/// stale revision still conflicts.
pub async fn large_golden_records_round_trip<S: Store>(store: &S, e: &str) {
    let big = |members: usize, revision: u64| {
        let mut g = golden(e, "g#large", revision);
        g.members =
            (0..members).map(|i| SourceKey::new(e, "feed", format!("member-{i:05}"))).collect::<Vec<_>>().into();
        g.index_keys = (0..members * 2).map(|i| key(&format!("phone.value={i:032x}"))).collect();
        g.claims = (0..members / 2).map(|i| key(&format!("phone.value={i:032x}"))).collect();
        g
    };
    let g1 = big(3_000, 1);
    store
        .transact(vec![WriteOp::PutGolden { golden: Arc::new(g1.clone()), expect: Expect::Absent }])
        .await
        .expect("create");
    assert_eq!(store.get_golden(e, "g#large").await.expect("get").as_ref(), Some(&g1), "read back whole");
    let mut g2 = big(3_001, 2);
    g2.index_keys = g2.index_keys.iter().skip(7).cloned().collect();
    store
        .transact(vec![WriteOp::PutGolden { golden: Arc::new(g2.clone()), expect: Expect::Revision(1) }])
        .await
        .expect("grow");
    assert_eq!(store.get_goldens(e, &["g#large".to_owned()]).await.expect("batch"), vec![g2.clone()]);
    conflict(
        store.transact(vec![WriteOp::PutGolden { golden: Arc::new(big(10, 2)), expect: Expect::Revision(1) }]).await,
        "a stale revision",
    );
    assert_eq!(store.get_golden(e, "g#large").await.expect("get").as_ref(), Some(&g2), "a lost race changes nothing");
    let g3 = big(2, 3);
    store
        .transact(vec![WriteOp::PutGolden { golden: Arc::new(g3.clone()), expect: Expect::Revision(2) }])
        .await
        .expect("shrink");
    assert_eq!(store.get_golden(e, "g#large").await.expect("get").as_ref(), Some(&g3), "small again");
}

/// New → written; same or lower seq → stale and nothing changes; higher → written.
pub async fn conditional_source_put<S: Store>(store: &S, e: &str) {
    let v2 = source(e, "s#1", 2, "v2");
    assert_eq!(
        store.put_source(&v2, &[]).await.expect("put v2"),
        SourceWrite::Written,
        "a new source record is written"
    );
    assert_eq!(store.get_source(&v2.key).await.expect("get").as_deref(), Some(&v2), "read back what was written");
    let v1 = source(e, "s#1", 1, "v1");
    assert_eq!(
        store.put_source(&v1, &[]).await.expect("put v1"),
        SourceWrite::Stale { stored_seq: 2 },
        "older seq is stale"
    );
    let dup = source(e, "s#1", 2, "dup");
    assert_eq!(
        store.put_source(&dup, &[]).await.expect("put dup"),
        SourceWrite::Stale { stored_seq: 2 },
        "equal seq is stale"
    );
    assert_eq!(
        store.get_source(&v2.key).await.expect("get").map(|r| r.content_hash.clone()),
        Some("h-v2".into()),
        "stale writes change nothing"
    );
    let v3 = source(e, "s#1", 3, "v3");
    assert_eq!(store.put_source(&v3, &[]).await.expect("put v3"), SourceWrite::Written);
    assert_eq!(store.get_source(&v3.key).await.expect("get").map(|r| r.seq), Some(3));
    assert_eq!(store.get_source(&SourceKey::new(e, "crm", "nope")).await.expect("get missing"), None);
    // The owned form follows the same conditions.
    let v4 = source(e, "s#1", 4, "v4");
    assert_eq!(store.put_source_owned(v4.clone(), &[]).await.expect("put v4"), SourceWrite::Written);
    let want = SourceRecord { first_seq: 2, ..v4.clone() };
    assert_eq!(
        store.get_source(&v4.key).await.expect("get").as_deref(),
        Some(&want),
        "read back the owned write, in the generation of its first version"
    );
    assert_eq!(
        store.put_source_owned(source(e, "s#1", 4, "again"), &[]).await.expect("put again"),
        SourceWrite::Stale { stored_seq: 4 },
        "an owned write of a stored seq is stale"
    );
    assert_eq!(store.get_source(&v4.key).await.expect("get").map(|r| r.content_hash.clone()), Some("h-v4".into()));
}

/// The cross-reference set by a merge survives a later source update (not a held one); SetXref
/// needs the source.
pub async fn xref_survives_source_update<S: Store>(store: &S, e: &str) {
    let r = source(e, "x1", 1, "a");
    store.put_source(&r, &[]).await.expect("put");
    store
        .transact(vec![WriteOp::SetXref { source: r.key.clone(), golden_id: "g-x".into(), why: None }])
        .await
        .expect("xref");
    store.put_source(&source(e, "x1", 2, "b"), &[]).await.expect("put v2");
    let got = store.get_source(&r.key).await.expect("get").expect("exists");
    assert_eq!(got.golden_id.as_deref(), Some("g-x"), "source update keeps the cross-reference");
    assert_eq!(got.seq, 2);
    assert_eq!(got.first_seq, 1, "an update keeps the generation (the first version's seq)");
    let mut held = source(e, "x1", 3, "c");
    held.held = true;
    store.put_source(&held, &[]).await.expect("put held v3");
    let got = store.get_source(&r.key).await.expect("get").expect("exists");
    assert!(got.held && got.golden_id.is_none(), "a held version drops the cross-reference");
    let missing = SourceKey::new(e, "crm", "never");
    conflict(
        store.transact(vec![WriteOp::SetXref { source: missing.clone(), golden_id: "g".into(), why: None }]).await,
        "SetXref on a missing source",
    );
    assert_eq!(store.get_source(&missing).await.expect("get"), None, "SetXref must not create a source item");
}

/// Absent → created; created again → conflict; revision check detects concurrent writers.
pub async fn golden_version_conflict<S: Store>(store: &S, e: &str) {
    let g1 = golden(e, "g#v", 1);
    store
        .transact(vec![WriteOp::PutGolden { golden: Arc::new(g1.clone()), expect: Expect::Absent }])
        .await
        .expect("create");
    conflict(
        store.transact(vec![WriteOp::PutGolden { golden: Arc::new(g1.clone()), expect: Expect::Absent }]).await,
        "create twice",
    );
    let g2 = golden(e, "g#v", 2);
    store
        .transact(vec![WriteOp::PutGolden { golden: Arc::new(g2.clone()), expect: Expect::Revision(1) }])
        .await
        .expect("update r1→r2");
    let stale = golden(e, "g#v", 2);
    conflict(
        store.transact(vec![WriteOp::PutGolden { golden: Arc::new(stale), expect: Expect::Revision(1) }]).await,
        "update from a stale revision",
    );
    let got = store.get_golden(e, "g#v").await.expect("get").expect("exists");
    assert_eq!(got, g2, "a lost race changes nothing");
    conflict(
        store
            .transact(vec![WriteOp::PutGolden {
                golden: Arc::new(golden(e, "g#none", 2)),
                expect: Expect::Revision(1),
            }])
            .await,
        "update of a missing golden record",
    );
    assert_eq!(store.get_golden(e, "g#none").await.expect("get"), None);
}

/// A transaction whose last operation fails leaves none of its items.
pub async fn transaction_all_or_nothing<S: Store>(store: &S, e: &str) {
    let a = golden(e, "g-atomic", 1);
    let src = source(e, "atomic", 1, "a");
    store.put_source(&src, &[]).await.expect("put");
    let taken = golden(e, "g-taken", 1);
    store
        .transact(vec![WriteOp::PutGolden { golden: Arc::new(taken.clone()), expect: Expect::Absent }])
        .await
        .expect("setup");
    let ops = vec![
        WriteOp::PutGolden { golden: Arc::new(a.clone()), expect: Expect::Absent },
        WriteOp::PutHistory(Box::new(history(&a))),
        index(e, "k=atomic", "g-atomic"),
        claim(e, "c=atomic", "g-atomic", None),
        WriteOp::SetXref { source: src.key.clone(), golden_id: "g-atomic".into(), why: None },
        WriteOp::PutGolden { golden: Arc::new(golden(e, "g-taken", 5)), expect: Expect::Revision(7) },
    ];
    conflict(store.transact(ops).await, "transaction with a failing condition");
    assert_eq!(store.get_golden(e, "g-atomic").await.expect("get"), None, "no golden item left");
    assert!(store.history(e, "g-atomic").await.expect("history").is_empty(), "no history item left");
    // An adapter may write index entries ahead of the transaction (the DynamoDB adapter does, at
    // half the write units): such an entry can only name the golden record that was not created.
    let hits = store.lookup(e, &[key("k=atomic")], &[10]).await.expect("lookup");
    assert!(hits.iter().flat_map(|h| h.golden_ids.iter()).all(|g| g == "g-atomic"), "no other index entry");
    // Likewise new claims (the DynamoDB adapter writes them ahead, at half the write units):
    // one left behind names the golden record that was not created.
    let left = store.get_claims(e, &[key("c=atomic")]).await.expect("claims");
    assert!(left.values().all(|g| g == "g-atomic"), "no other claim: {left:?}");
    assert_eq!(store.get_source(&src.key).await.expect("get").and_then(|r| r.golden_id.clone()), None, "no xref left");
    assert_eq!(store.get_golden(e, "g-taken").await.expect("get"), Some(taken), "the other golden record is untouched");
}

/// A claim is held by one golden record: a second taker conflicts; a move needs the holder.
pub async fn claim_conflict<S: Store>(store: &S, e: &str) {
    store.transact(vec![claim(e, "email.value=a#b", "g1", None)]).await.expect("first claim");
    conflict(store.transact(vec![claim(e, "email.value=a#b", "g2", None)]).await, "second claim of a held key");
    store.transact(vec![claim(e, "email.value=a#b", "g1", None)]).await.expect("re-claim by the holder is idempotent");
    conflict(
        store.transact(vec![claim(e, "email.value=a#b", "g3", Some("g2"))]).await,
        "move from a golden record that does not hold it",
    );
    store.transact(vec![claim(e, "email.value=a#b", "g2", Some("g1"))]).await.expect("move from the holder");
    let held = store.get_claims(e, &[key("email.value=a#b"), key("free")]).await.expect("claims");
    assert_eq!(held.get(&key("email.value=a#b")).map(String::as_str), Some("g2"));
    assert_eq!(held.len(), 1, "free keys are left out");
}

/// History versions are write-once and listed oldest first; review tasks read back.
pub async fn history_and_review<S: Store>(store: &S, e: &str) {
    let mut g = golden(e, "g-h", 1);
    for v in [2u64, 1, 3] {
        g.version = v;
        store.transact(vec![WriteOp::PutHistory(Box::new(history(&g)))]).await.expect("history");
    }
    conflict(store.transact(vec![WriteOp::PutHistory(Box::new(history(&g)))]).await, "history version written twice");
    let versions: Vec<u64> = store.history(e, "g-h").await.expect("history").iter().map(|h| h.version).collect();
    assert_eq!(versions, vec![1, 2, 3], "oldest first");
    let task = ReviewTask {
        entity: e.into(),
        task_id: "r#1".into(),
        golden_id: "g-h".into(),
        source: SourceKey::new(e, "crm", "1"),
        candidate_golden_ids: vec!["g-x".into()],
        score: 9.5,
        explanation: vec![],
        status: ReviewStatus::Open,
        created_at_ms: 1,
        resolution: None,
        expires_at: None,
    };
    store.transact(vec![WriteOp::PutReview(Box::new(task.clone()))]).await.expect("review");
    assert_eq!(store.get_review(e, "r#1").await.expect("get review"), Some(task));
    assert_eq!(store.get_review(e, "r#2").await.expect("get review"), None);
}

/// Lookups return golden ids per key; a key over the cap is reported too common.
pub async fn index_lookup_and_cap<S: Store>(store: &S, e: &str) {
    let ops =
        (0..3).map(|i| index(e, "family=smith|1980", &format!("g{i}"))).chain([index(e, "email=a@x", "g0")]).collect();
    store.transact(ops).await.expect("index");
    let keys = vec![key("family=smith|1980"), key("email=a@x"), key("none")];
    let hits = store.lookup(e, &keys, &[2]).await.expect("lookup");
    let by: BTreeMap<_, _> = hits.iter().map(|h| (h.key.to_string(), h)).collect();
    assert!(by["family=smith|1980"].too_common, "3 > cap 2");
    assert!(by["family=smith|1980"].golden_ids.is_empty(), "too common keys give no candidates");
    assert_eq!(by["email=a@x"].golden_ids, vec!["g0".to_string()]);
    assert!(by["none"].golden_ids.is_empty() && !by["none"].too_common);
    let wide = store.lookup(e, &keys[..1], &[5]).await.expect("lookup");
    let mut ids = wide[0].golden_ids.clone();
    ids.sort();
    assert_eq!(ids, vec!["g0", "g1", "g2"]);
    store
        .transact(vec![WriteOp::DeleteIndex { entity: e.into(), key: "email=a@x".into(), golden_id: "g0".into() }])
        .await
        .expect("delete");
    assert!(store.lookup(e, &keys[1..2], &[5]).await.expect("lookup")[0].golden_ids.is_empty());
    // A cap per key: the first key's block (3 ids) is too common under its own cap of 2, the same
    // block under the next key's cap of 5 is not; keys past the end of the caps take the last.
    let twice = [key("family=smith|1980"), key("family=smith|1980"), key("family=smith|1980")];
    let hits = store.lookup(e, &twice, &[2, 5]).await.expect("lookup");
    assert!(hits[0].too_common && hits[0].golden_ids.is_empty(), "3 > its cap 2");
    assert!(!hits[1].too_common && hits[1].golden_ids.len() == 3, "3 <= its cap 5");
    assert!(!hits[2].too_common && hits[2].golden_ids.len() == 3, "the last cap, 5");
    let uncapped = store.lookup(e, &twice[..1], &[]).await.expect("lookup");
    assert_eq!(uncapped[0].golden_ids.len(), 3, "no caps, no cap");
}

/// Adding a golden record to blocks returns what each block held before, capped like a lookup.
pub async fn add_to_blocks_returns_what_was_there<S: Store>(store: &S, e: &str) {
    let ops = vec![index(e, "add=k1", "g1"), index(e, "add=k1", "g2"), index(e, "add=k3", "g1")];
    store.transact(ops).await.expect("index");
    let keys = [key("add=k1"), key("add=k2"), key("add=k3")];
    let held = store.add_to_blocks(e, &keys, "g3", 1).await.expect("add");
    assert_eq!(held.iter().map(|h| h.key.to_string()).collect::<Vec<_>>(), ["add=k1", "add=k2", "add=k3"]);
    assert!(held[0].too_common && held[0].golden_ids.is_empty(), "2 > cap 1");
    assert!(!held[1].too_common && held[1].golden_ids.is_empty(), "a new block");
    assert_eq!(held[2].golden_ids, ["g1"]);
    let now = store.lookup(e, &keys, &[10]).await.expect("lookup");
    let sorted = |h: &BlockHit| {
        let mut ids = h.golden_ids.clone();
        ids.sort();
        ids
    };
    assert_eq!(sorted(&now[0]), ["g1", "g2", "g3"]);
    assert_eq!(sorted(&now[1]), ["g3"]);
    assert_eq!(sorted(&now[2]), ["g1", "g3"]);
}

/// More than 100 items, or one item twice, is refused before anything is written.
pub async fn transaction_limits<S: Store>(store: &S, e: &str) {
    let ops: Vec<WriteOp> = (0..=MAX_TRANSACTION_ITEMS).map(|i| index(e, &format!("lim{i}"), "g")).collect();
    assert_eq!(store.transact(ops).await, Err(StoreError::TooLarge(MAX_TRANSACTION_ITEMS + 1)));
    assert!(store.lookup(e, &[key("lim0")], &[5]).await.expect("lookup")[0].golden_ids.is_empty());
    let twice = vec![index(e, "dup", "g"), index(e, "dup", "g")];
    assert!(matches!(store.transact(twice).await, Err(StoreError::Invalid(_))));
}

/// Events written in a transaction wait in the outbox until deleted.
pub async fn outbox_round_trip<S: Store>(store: &S, e: &str) {
    let g = golden(e, "g-out", 1);
    let ev = crate::events::HubEvent::GoldenRecordCreated(crate::events::GoldenChanged {
        envelope: crate::events::Envelope::new(&g, vec![], Cause::Ingest, "c", 1),
        golden: crate::events::GoldenView::of(&g),
    });
    let entry = OutboxEntry::new(format!("{e}-ev1"), 1, ev);
    store.transact(vec![WriteOp::PutOutbox(Box::new(entry.clone()))]).await.expect("outbox");
    let pending = store.pending_events(1000).await.expect("pending");
    assert!(pending.contains(&entry), "event is pending");
    store.delete_events(std::slice::from_ref(&entry.event_id)).await.expect("delete");
    let pending = store.pending_events(1000).await.expect("pending");
    assert!(!pending.iter().any(|p| p.event_id == entry.event_id), "delivered event is gone");
}

pub async fn batch_reads_skip_missing<S: Store>(store: &S, e: &str) {
    let a = source(e, "b1", 1, "a");
    store.put_source(&a, &[]).await.expect("put");
    let got = store.get_sources(&[a.key.clone(), SourceKey::new(e, "crm", "zz")]).await.expect("batch");
    assert_eq!(got, vec![std::sync::Arc::new(a)]);
    let g = golden(e, "g-b", 1);
    store
        .transact(vec![WriteOp::PutGolden { golden: Arc::new(g.clone()), expect: Expect::Absent }])
        .await
        .expect("golden");
    let got = store.get_goldens(e, &["g-b".to_string(), "g-zz".to_string()]).await.expect("batch");
    assert_eq!(got, vec![g]);
}

/// Runs the read-API checks ([`LookupStore`]); returns their names.
pub async fn run_lookups<S: Store + LookupStore>(store: &S, ns: &str) -> Vec<&'static str> {
    let e = format!("conf_{ns}");
    lookups_resolve_claims_and_xrefs(store, &e).await;
    golden_refs_across_entities(store, &e).await;
    history_pages(store, &e).await;
    vec!["lookups_resolve_claims_and_xrefs", "golden_refs_across_entities", "history_pages"]
}

/// Claims resolve to their holder, source keys to their cross-reference; unknown identifiers and
/// stored-but-unlinked sources are left out, also past one batch (more than 100 identifiers).
fn link(golden_id: &str) -> crate::golden::Link {
    crate::golden::Link {
        how: crate::golden::LinkKind::Score,
        golden_id: golden_id.into(),
        rule: None,
        score: Some(12.5),
        explanation: vec![crate::matching::AttributeExplanation {
            attribute: "email".into(),
            level: "exact".into(),
            weight: 9.25,
        }],
        cause: None,
        actor: None,
        reason: None,
        at_ms: 7,
    }
}

pub async fn lookups_resolve_claims_and_xrefs<S: Store + LookupStore>(store: &S, e: &str) {
    let linked = source(e, "l1", 1, "a");
    let unlinked = source(e, "l2", 1, "b");
    store.put_source(&linked, &[]).await.expect("put");
    store.put_source(&unlinked, &[]).await.expect("put");
    let ops = vec![
        WriteOp::PutGolden { golden: Arc::new(golden(e, "g-l", 1)), expect: Expect::Absent },
        WriteOp::SetXref { source: linked.key.clone(), golden_id: "g-l".into(), why: Some(Arc::new(link("g-l"))) },
        claim(e, "sku.value=abc", "g-l", None),
    ];
    store.transact(ops).await.expect("golden with xref and claim");
    // Why it is a member is stored with the link; a source update and a cross-reference
    // written without a reason (a merge moving it) keep it; a held version drops it.
    assert_eq!(store.get_link(&linked.key).await.expect("link"), Some(link("g-l")));
    assert_eq!(store.get_link(&unlinked.key).await.expect("link"), None);
    store.put_source(&source(e, "l1", 2, "a2"), &[]).await.expect("update");
    store
        .transact(vec![WriteOp::SetXref { source: linked.key.clone(), golden_id: "g-l".into(), why: None }])
        .await
        .expect("moved");
    assert_eq!(store.get_link(&linked.key).await.expect("link"), Some(link("g-l")));
    let mut held = source(e, "l2", 2, "b2");
    held.held = true;
    store
        .transact(vec![WriteOp::SetXref {
            source: unlinked.key.clone(),
            golden_id: "g-l".into(),
            why: Some(Arc::new(link("g-l"))),
        }])
        .await
        .expect("xref");
    store.put_source(&held, &[]).await.expect("held");
    assert_eq!(store.get_link(&unlinked.key).await.expect("link"), None, "a held version is no member");
    let mut asked = vec![
        Lookup::Claim { entity: e.into(), key: "sku.value=abc".into() },
        Lookup::Source(linked.key.clone()),
        Lookup::Source(unlinked.key.clone()),
    ];
    asked.extend((0..120).map(|i| Lookup::Claim { entity: e.into(), key: format!("sku.value=none{i}") }));
    asked.push(Lookup::Source(SourceKey::new(e, "crm", "never")));
    let got = store.resolve_lookups(&asked).await.expect("resolve");
    assert_eq!(got.len(), 2, "only the claim and the linked source resolve: {got:?}");
    assert_eq!(got.get(&asked[0]).map(String::as_str), Some("g-l"));
    assert_eq!(got.get(&asked[1]).map(String::as_str), Some("g-l"));
}

/// One call reads golden records of two entity types; missing ones are left out.
pub async fn golden_refs_across_entities<S: Store + LookupStore>(store: &S, e: &str) {
    let other = format!("{e}_other");
    let a = golden(e, "g-r1", 1);
    let b = golden(&other, "g-r2", 1);
    store
        .transact(vec![
            WriteOp::PutGolden { golden: Arc::new(a.clone()), expect: Expect::Absent },
            WriteOp::PutGolden { golden: Arc::new(b.clone()), expect: Expect::Absent },
        ])
        .await
        .expect("goldens");
    let mut refs = vec![(e.to_owned(), "g-r1".to_owned()), (other.clone(), "g-r2".to_owned())];
    refs.extend((0..110).map(|i| (e.to_owned(), format!("g-missing{i}"))));
    let mut got = store.get_golden_refs(&refs).await.expect("refs");
    got.sort_by(|x, y| x.golden_id.cmp(&y.golden_id));
    assert_eq!(got, vec![a, b]);
}

/// History pages: oldest first, after a version, at most `limit`.
pub async fn history_pages<S: Store + LookupStore>(store: &S, e: &str) {
    let mut g = golden(e, "g-p", 1);
    for v in 1..=5u64 {
        g.version = v;
        store.transact(vec![WriteOp::PutHistory(Box::new(history(&g)))]).await.expect("history");
    }
    let page = |after, limit| async move {
        store.history_page(e, "g-p", after, limit).await.expect("page").iter().map(|h| h.version).collect::<Vec<_>>()
    };
    assert_eq!(page(0, 2).await, vec![1, 2]);
    assert_eq!(page(2, 2).await, vec![3, 4]);
    assert_eq!(page(4, 10).await, vec![5]);
    assert_eq!(page(5, 10).await, Vec::<u64>::new());
    assert_eq!(store.history_page(e, "g-none", 0, 10).await.expect("page"), vec![]);
}

/// Runs the erasure checks ([`ReceiptStore`] and the erasure operations); returns their names.
pub async fn run_erasure<S: Store + ReceiptStore + LookupStore>(store: &S, ns: &str) -> Vec<&'static str> {
    let e = format!("conf_{ns}");
    suppression_guards_the_source_write(store, &e).await;
    tombstones_keep_the_sequence(store, &e).await;
    erasure_deletes(store, &e).await;
    receipts_lock_optimistically(store, &e).await;
    suppression_check_guards_a_transaction(store, &e).await;
    batched_source_writes_end_as_one_after_another(store, &e).await;
    vec![
        "batched_source_writes_end_as_one_after_another",
        "suppression_guards_the_source_write",
        "tombstones_keep_the_sequence",
        "erasure_deletes",
        "receipts_lock_optimistically",
        "suppression_check_guards_a_transaction",
    ]
}

/// A transaction with a suppression check of a key that has a marker fails as suppressed (not as
/// a conflict worth retrying) and writes nothing; with checks of other keys it goes through. The
/// marker lookup is the store's too.
pub async fn suppression_check_guards_a_transaction<S: Store + ReceiptStore>(store: &S, e: &str) {
    let marker = WriteOp::PutSuppression { entity: e.into(), key: "mac-t".into(), request_id: "er1".into() };
    store.transact(vec![marker]).await.expect("marker");
    let check = |key: &str| WriteOp::CheckUnsuppressed { entity: e.into(), key: key.into() };
    let put = |id: &str| WriteOp::PutGolden { golden: Arc::new(golden(e, id, 1)), expect: Expect::Absent };
    let stopped = store.transact(vec![put("g-sup"), check("mac-other"), check("mac-t")]).await;
    assert!(stopped.as_ref().is_err_and(StoreError::is_suppressed), "{stopped:?}");
    assert!(!stopped.as_ref().is_err_and(StoreError::is_conflict), "not a conflict to retry");
    assert_eq!(store.get_golden(e, "g-sup").await.expect("get"), None, "nothing written");
    store.transact(vec![put("g-sup"), check("mac-other")]).await.expect("no marker for this key");
    assert!(store.get_golden(e, "g-sup").await.expect("get").is_some());
    let keys = ["mac-none".to_owned(), "mac-t".to_owned()];
    assert!(store.is_suppressed(e, &keys).await.expect("read"));
    assert!(!store.is_suppressed(e, &keys[..1]).await.expect("read"));
    assert!(!store.is_suppressed(&format!("{e}_other"), &keys).await.expect("read"), "markers are per entity type");
}

/// A source write fails as suppressed when a marker exists for one of its guards, and writes
/// nothing; other guards and other entity types are not affected.
pub async fn suppression_guards_the_source_write<S: Store + ReceiptStore>(store: &S, e: &str) {
    let marker = WriteOp::PutSuppression { entity: e.into(), key: "mac-1".into(), request_id: "er1".into() };
    store.transact(vec![marker.clone()]).await.expect("marker");
    store.transact(vec![marker]).await.expect("a marker is idempotent");
    let r = source(e, "s1", 1, "a");
    let guards = ["mac-0".to_string(), "mac-1".to_string()];
    assert_eq!(store.put_source(&r, &guards).await.expect("put"), SourceWrite::Suppressed);
    assert_eq!(store.get_source(&r.key).await.expect("get"), None, "nothing written");
    assert_eq!(store.put_source(&r, &["mac-2".to_string()]).await.expect("put"), SourceWrite::Written);
    // A suppressed newer version leaves the stored one as it was.
    let newer = source(e, "s1", 2, "b");
    assert_eq!(store.put_source(&newer, &guards).await.expect("put"), SourceWrite::Suppressed);
    assert_eq!(store.get_source(&r.key).await.expect("get").as_deref(), Some(&r), "the stored version is kept");
    let other = source(&format!("{e}_other"), "s1", 1, "a");
    assert_eq!(
        store.put_source(&other, &guards).await.expect("put"),
        SourceWrite::Written,
        "markers are per entity type"
    );
}

/// A batch of source writes (`put_sources`) ends as the same writes one after another: results in
/// order, stale and suppressed as alone, and a key written twice in the batch ending right however
/// its two versions' markers fall (the suppressed one taken back, the other kept).
pub async fn batched_source_writes_end_as_one_after_another<S: Store + ReceiptStore>(store: &S, e: &str) {
    let marker = WriteOp::PutSuppression { entity: e.into(), key: "mac-b".into(), request_id: "er-b".into() };
    store.transact(vec![marker]).await.expect("marker");
    let erased = ["mac-b".to_string()];
    let clean = ["mac-c".to_string()];
    let none: [String; 0] = [];
    let old = source(e, "b-stale", 5, "a");
    assert_eq!(store.put_source(&old, &none).await.expect("put"), SourceWrite::Written);
    let (fresh, stale, gone) = (source(e, "b-new", 1, "a"), source(e, "b-stale", 4, "b"), source(e, "b-gone", 1, "a"));
    // The same key twice: its first version suppressed, its second not; and the other way round.
    let (first_out, second_in) = (source(e, "b-twice", 1, "a"), source(e, "b-twice", 2, "b"));
    let (first_in, second_out) = (source(e, "b-again", 1, "a"), source(e, "b-again", 2, "b"));
    let batch: Vec<(&SourceRecord, &[String])> = vec![
        (&fresh, &clean),
        (&stale, &clean),
        (&gone, &erased),
        (&first_out, &erased),
        (&second_in, &clean),
        (&first_in, &clean),
        (&second_out, &erased),
    ];
    let got: Vec<SourceWrite> = store.put_sources(&batch).await.into_iter().map(|r| r.expect("write")).collect();
    assert_eq!(
        got,
        [
            SourceWrite::Written,
            SourceWrite::Stale { stored_seq: 5 },
            SourceWrite::Suppressed,
            SourceWrite::Suppressed,
            SourceWrite::Written,
            SourceWrite::Written,
            SourceWrite::Suppressed,
        ]
    );
    let get = |r: &SourceRecord| {
        let key = r.key.clone();
        async move { store.get_source(&key).await.expect("get").map(|s| s.seq) }
    };
    assert_eq!(get(&fresh).await, Some(1));
    assert_eq!(get(&old).await, Some(5), "the stale version changed nothing");
    assert_eq!(get(&gone).await, None, "the suppressed record is not stored");
    assert_eq!(get(&second_in).await, Some(2), "the later, unsuppressed version stays");
    assert_eq!(get(&first_in).await, Some(1), "the suppressed later version is taken back to the one before");
}

/// A tombstone hides the record from reads, keeps its sequence against late or duplicate
/// deliveries, lets a newer version in, and refuses to replace a version newer than it knows.
pub async fn tombstones_keep_the_sequence<S: Store + ReceiptStore + LookupStore>(store: &S, e: &str) {
    let r = source(e, "t1", 5, "a");
    store.put_source(&r, &[]).await.expect("put");
    let tomb = |seq| WriteOp::PutTombstone { source: r.key.clone(), seq, request_id: "er1".into(), unlinked: false };
    conflict(store.transact(vec![tomb(4)]).await, "a tombstone older than the stored version");
    let g = golden(e, "g-t1", 1);
    store.transact(vec![WriteOp::PutGolden { golden: Arc::new(g), expect: Expect::Absent }]).await.expect("golden");
    store
        .transact(vec![WriteOp::SetXref { source: r.key.clone(), golden_id: "g-t1".into(), why: None }])
        .await
        .expect("xref");
    let unlinked = WriteOp::PutTombstone { source: r.key.clone(), seq: 5, request_id: "er1".into(), unlinked: true };
    conflict(store.transact(vec![unlinked]).await, "an unlinked-only tombstone over a linked record");
    assert!(store.get_source(&r.key).await.expect("get").is_some(), "the linked record stays");
    store.transact(vec![tomb(5)]).await.expect("tombstone");
    store.transact(vec![tomb(5)]).await.expect("a tombstone is idempotent");
    assert_eq!(store.get_source(&r.key).await.expect("get"), None, "a tombstone is no record");
    assert!(store.get_sources(std::slice::from_ref(&r.key)).await.expect("batch").is_empty());
    for seq in [3, 5] {
        let late = source(e, "t1", seq, "a");
        assert_eq!(store.put_source(&late, &[]).await.expect("put"), SourceWrite::Stale { stored_seq: 5 }, "seq {seq}");
    }
    let lookups = store.resolve_lookups(&[Lookup::Source(r.key.clone())]).await.expect("resolve");
    assert!(lookups.is_empty(), "a tombstone resolves to nothing");
    let newer = source(e, "t1", 6, "b");
    assert_eq!(store.put_source(&newer, &[]).await.expect("put"), SourceWrite::Written);
    let back = store.get_source(&r.key).await.expect("get").expect("stored again");
    assert_eq!((back.seq, back.first_seq), (6, 6), "a record back after its tombstone starts a new generation");
}

/// History, claims, reviews and outbox items are deleted; a claim held by another record is not.
pub async fn erasure_deletes<S: Store + ReceiptStore>(store: &S, e: &str) {
    let g = golden(e, "g-d", 1);
    let task = ReviewTask {
        entity: e.into(),
        task_id: "r-d".into(),
        golden_id: "g-other".into(),
        source: SourceKey::new(e, "crm", "9"),
        candidate_golden_ids: vec!["g-d".into()],
        score: 9.0,
        explanation: vec![],
        status: ReviewStatus::Open,
        created_at_ms: 1,
        resolution: None,
        expires_at: None,
    };
    let ev = OutboxEntry {
        slim: false,
        event_id: format!("ev-{e}"),
        created_at_ms: 1,
        event: crate::events::HubEvent::GoldenRecordErased(crate::events::GoldenErased {
            envelope: crate::events::Envelope::new(&g, vec![], Cause::Erasure, "c", 1),
            request_id: "er1".into(),
            sources: vec![],
        }),
    };
    store
        .transact(vec![
            WriteOp::PutHistory(Box::new(history(&g))),
            claim(e, "email=1", "g-d", None),
            claim(e, "email=2", "g-other", None),
            WriteOp::PutReview(Box::new(task)),
            WriteOp::PutOutbox(Box::new(ev.clone())),
        ])
        .await
        .expect("setup");
    assert_eq!(store.reviews_mentioning(e, &["g-d".into()]).await.expect("reviews").len(), 1, "as a candidate");
    assert!(store.reviews_mentioning(e, &["g-zz".into()]).await.expect("reviews").is_empty());
    conflict(
        store
            .transact(vec![WriteOp::DeleteClaim { entity: e.into(), key: "email=2".into(), holder: "g-d".into() }])
            .await,
        "deleting another record's claim",
    );
    store
        .transact(vec![
            WriteOp::DeleteHistory { entity: e.into(), golden_id: "g-d".into(), version: 1 },
            WriteOp::DeleteClaim { entity: e.into(), key: "email=1".into(), holder: "g-d".into() },
            WriteOp::DeleteReview { entity: e.into(), task_id: "r-d".into() },
            WriteOp::DeleteOutbox { event_id: ev.event_id.clone() },
        ])
        .await
        .expect("deletes");
    assert!(store.history(e, "g-d").await.expect("history").is_empty());
    let claims = store.get_claims(e, &[key("email=1"), key("email=2")]).await.expect("claims");
    assert_eq!(claims.keys().collect::<Vec<_>>(), vec![&key("email=2")]);
    assert_eq!(store.get_review(e, "r-d").await.expect("review"), None);
    assert!(store.pending_events(1000).await.expect("outbox").iter().all(|o| o.event_id != ev.event_id));
    store
        .transact(vec![WriteOp::DeleteClaim { entity: e.into(), key: "email=1".into(), holder: "g-d".into() }])
        .await
        .expect("deleting a claim that is gone already is a no-op");
}

/// Receipts: revision 1 only once, then each revision over the one before.
pub async fn receipts_lock_optimistically<S: Store + ReceiptStore>(store: &S, e: &str) {
    let id = format!("er-{e}");
    assert_eq!(store.get_receipt(&id).await.expect("get"), None);
    store.put_receipt(&id, 1, "{\"n\":1}").await.expect("create");
    conflict(store.put_receipt(&id, 1, "{\"n\":9}").await, "creating twice");
    conflict(store.put_receipt(&id, 3, "{\"n\":3}").await, "skipping a revision");
    store.put_receipt(&id, 2, "{\"n\":2}").await.expect("update");
    assert_eq!(store.get_receipt(&id).await.expect("get").as_deref(), Some("{\"n\":2}"));
}

/// A store that fails on purpose: delegates everything to `inner`, except that the n-th
/// transaction after [`Faulty::fail_at`] fails as unavailable (a crash half-way, for tests), and
/// that [`SourceStore::get_source_at`] can stand in for a replica that lags behind.
pub struct Faulty<S> {
    pub inner: S,
    countdown: std::sync::atomic::AtomicI64,
    /// The transaction the countdown fails is applied first, and its answer lost.
    lose_answer: std::sync::atomic::AtomicBool,
    /// The next transaction drops its suppression checks, as one whose check came before the
    /// markers were written.
    skip_checks: std::sync::atomic::AtomicBool,
    replica_xref: std::sync::Mutex<Option<Option<String>>>,
    /// A version replica reads return instead of the stored one.
    replica_version: std::sync::Mutex<Option<Arc<SourceRecord>>>,
    lose_xrefs: std::sync::atomic::AtomicBool,
    claim_times: std::sync::Mutex<BTreeMap<IndexKey, i64>>,
    /// [`Faulty::crash_at`]: calls left until the crash (any call, read or write), and whether
    /// a write then applies and loses its answer.
    crash_countdown: std::sync::atomic::AtomicI64,
    crash_lost: std::sync::atomic::AtomicBool,
    calls: std::sync::atomic::AtomicU64,
    /// [`Faulty::blind_lookups`].
    blind: std::sync::atomic::AtomicBool,
    /// [`Faulty::hold_next_transaction`].
    hold: std::sync::Mutex<Option<Arc<tokio::sync::Barrier>>>,
}

fn injected() -> StoreError {
    StoreError::Unavailable("injected failure".into())
}

fn injected_after() -> StoreError {
    StoreError::Unavailable("injected failure after the call".into())
}

impl<S> Faulty<S> {
    /// The `k`-th store call from now (1 = the next; reads and writes alike) fails once as
    /// unavailable: before it does anything, or — `lost` — a write is applied and its answer
    /// lost. Later calls succeed. A crash at every step of a scenario is this for every `k`.
    pub fn crash_at(&self, k: i64, lost: bool) {
        self.crash_lost.store(lost, std::sync::atomic::Ordering::SeqCst);
        self.crash_countdown.store(k, std::sync::atomic::Ordering::SeqCst);
    }

    /// Store calls made so far (to size a crash-at-every-step loop).
    pub fn calls(&self) -> u64 {
        self.calls.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// `Some(lost)` when this call is the one [`Faulty::crash_at`] named.
    fn crash_step(&self) -> Option<bool> {
        self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        (self.crash_countdown.fetch_sub(1, std::sync::atomic::Ordering::SeqCst) == 1)
            .then(|| self.crash_lost.load(std::sync::atomic::Ordering::SeqCst))
    }

    /// A read at the crash step fails (there is no answer to lose).
    fn read_step(&self) -> Result<(), StoreError> {
        match self.crash_step() {
            Some(_) => Err(injected()),
            None => Ok(()),
        }
    }

    pub fn new(inner: S) -> Self {
        Self {
            inner,
            countdown: std::sync::atomic::AtomicI64::new(-1),
            lose_answer: std::sync::atomic::AtomicBool::new(false),
            skip_checks: std::sync::atomic::AtomicBool::new(false),
            replica_xref: std::sync::Mutex::new(None),
            replica_version: std::sync::Mutex::new(None),
            lose_xrefs: std::sync::atomic::AtomicBool::new(false),
            claim_times: std::sync::Mutex::new(BTreeMap::new()),
            crash_countdown: std::sync::atomic::AtomicI64::new(-1),
            crash_lost: std::sync::atomic::AtomicBool::new(false),
            calls: std::sync::atomic::AtomicU64::new(0),
            blind: std::sync::atomic::AtomicBool::new(false),
            hold: std::sync::Mutex::new(None),
        }
    }

    /// The next transaction meets the test at `barrier` twice before it is sent (arrived, then
    /// released): whatever the test does in between happens between that transaction's reads
    /// and its write, as a writer racing it would.
    pub fn hold_next_transaction(&self, barrier: Arc<tokio::sync::Barrier>) {
        if let Ok(mut h) = self.hold.lock() {
            *h = Some(barrier);
        }
    }

    /// From now on (`true`), [`BlockIndex::lookup`] finds every block empty, as a replica of the
    /// index that has not yet seen what another Lambda instance wrote a moment ago (the instance's
    /// own overlay of recent writes does not have it either). Writes still answer from the
    /// primary.
    pub fn blind_lookups(&self, on: bool) {
        self.blind.store(on, std::sync::atomic::Ordering::SeqCst);
    }

    /// The `n`-th transaction from now (1 = the next) fails; later ones succeed again.
    pub fn fail_at(&self, n: i64) {
        self.lose_answer.store(false, std::sync::atomic::Ordering::SeqCst);
        self.countdown.store(n, std::sync::atomic::Ordering::SeqCst);
    }

    /// The `n`-th transaction from now is applied, and then fails as unavailable: the answer of
    /// a write that happened is lost (a timeout, a crash right after the call).
    pub fn lose_answer_at(&self, n: i64) {
        self.lose_answer.store(true, std::sync::atomic::Ordering::SeqCst);
        self.countdown.store(n, std::sync::atomic::Ordering::SeqCst);
    }

    /// The next transaction with suppression checks goes through without them, as a merge whose
    /// check came just before an erasure wrote its markers.
    pub fn skip_suppression_checks_once(&self) {
        self.skip_checks.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// The next transaction is written without its cross-references and then fails, as an
    /// adapter that writes them after its transaction does when it crashes in between.
    pub fn lose_xrefs_once(&self) {
        self.lose_xrefs.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Answers [`ClaimStore::claim_times`] with these times, as an adapter that writes claims
    /// ahead of its transaction would.
    pub fn claims_taken_at(&self, times: BTreeMap<String, i64>) {
        if let Ok(mut t) = self.claim_times.lock() {
            *t = times.into_iter().map(|(k, at)| (IndexKey::parse(&k), at)).collect();
        }
    }

    /// From now on, replica reads ([`SourceStore::get_source_at`]) of this record's key return
    /// this version (with the stored cross-reference), as a replica behind the latest write would.
    pub fn stale_version(&self, record: SourceRecord) {
        if let Ok(mut v) = self.replica_version.lock() {
            *v = Some(Arc::new(record));
        }
    }

    /// From now on, replica reads ([`SourceStore::get_source_at`]) return the stored record with
    /// this cross-reference, as a replica that missed the latest one would.
    pub fn stale_xref(&self, golden_id: Option<&str>) {
        if let Ok(mut x) = self.replica_xref.lock() {
            *x = Some(golden_id.map(str::to_owned));
        }
    }
}

impl<S: SourceStore> SourceStore for Faulty<S> {
    async fn put_source(&self, r: &SourceRecord, guards: &[String]) -> Result<SourceWrite, StoreError> {
        match self.crash_step() {
            Some(false) => Err(injected()),
            Some(true) => self.inner.put_source(r, guards).await.and(Err(injected_after())),
            None => self.inner.put_source(r, guards).await,
        }
    }
    async fn get_source(&self, k: &SourceKey) -> Result<Option<Arc<SourceRecord>>, StoreError> {
        self.read_step()?;
        self.inner.get_source(k).await
    }
    async fn get_source_at(&self, k: &SourceKey, seq: u64) -> Result<Option<Arc<SourceRecord>>, StoreError> {
        self.read_step()?;
        let stale = self.replica_xref.lock().ok().and_then(|x| x.clone());
        let found = self.inner.get_source_at(k, seq).await?;
        let older = self.replica_version.lock().ok().and_then(|v| v.clone()).filter(|v| v.key == *k && v.seq >= seq);
        let found = match (found, older) {
            (Some(f), Some(o)) => Some(Arc::new(SourceRecord { golden_id: f.golden_id.clone(), ..(*o).clone() })),
            (found, _) => found,
        };
        Ok(match stale {
            Some(xref) => found.map(|r| Arc::new(SourceRecord { golden_id: xref, ..(*r).clone() })),
            None => found,
        })
    }
    async fn is_suppressed(&self, e: &str, k: &[String]) -> Result<bool, StoreError> {
        self.read_step()?;
        self.inner.is_suppressed(e, k).await
    }
    async fn get_sources(&self, k: &[SourceKey]) -> Result<Vec<Arc<SourceRecord>>, StoreError> {
        self.read_step()?;
        self.inner.get_sources(k).await
    }
}

impl<S: GoldenStore> GoldenStore for Faulty<S> {
    async fn get_golden(&self, e: &str, id: &str) -> Result<Option<GoldenRecord>, StoreError> {
        self.read_step()?;
        self.inner.get_golden(e, id).await
    }
    async fn get_goldens(&self, e: &str, ids: &[String]) -> Result<Vec<GoldenRecord>, StoreError> {
        self.read_step()?;
        self.inner.get_goldens(e, ids).await
    }
    async fn history(&self, e: &str, id: &str) -> Result<Vec<HistoryEntry>, StoreError> {
        self.read_step()?;
        self.inner.history(e, id).await
    }
}

impl<S: BlockIndex> BlockIndex for Faulty<S> {
    async fn lookup(&self, e: &str, k: &[IndexKey], caps: &[usize]) -> Result<Vec<BlockHit>, StoreError> {
        self.read_step()?;
        let hits = self.inner.lookup(e, k, caps).await?;
        if self.blind.load(std::sync::atomic::Ordering::SeqCst) {
            return Ok(hits.into_iter().map(|h| BlockHit { golden_ids: Vec::new(), ..h }).collect());
        }
        Ok(hits)
    }
    async fn add_to_blocks(&self, e: &str, k: &[IndexKey], g: &str, cap: usize) -> Result<Vec<BlockHit>, StoreError> {
        match self.crash_step() {
            Some(false) => Err(injected()),
            Some(true) => self.inner.add_to_blocks(e, k, g, cap).await.and(Err(injected_after())),
            None => self.inner.add_to_blocks(e, k, g, cap).await,
        }
    }
}

impl<S: ClaimStore> ClaimStore for Faulty<S> {
    async fn get_claims(&self, e: &str, k: &[IndexKey]) -> Result<BTreeMap<IndexKey, String>, StoreError> {
        self.read_step()?;
        self.inner.get_claims(e, k).await
    }
    async fn claim_times(&self, e: &str, k: &[IndexKey]) -> Result<BTreeMap<IndexKey, i64>, StoreError> {
        self.read_step()?;
        let times = self.claim_times.lock().map(|t| t.clone()).unwrap_or_default();
        let mut out = self.inner.claim_times(e, k).await?;
        out.extend(k.iter().filter_map(|key| times.get(key).map(|t| (key.clone(), *t))));
        Ok(out)
    }
}

impl<S: ReviewStore> ReviewStore for Faulty<S> {
    async fn labels(&self, e: &str, after: Option<&str>, n: usize) -> Result<LabelPage, StoreError> {
        self.read_step()?;
        self.inner.labels(e, after, n).await
    }
    async fn held_records(&self, e: &str, after: Option<&str>, n: usize) -> Result<HeldPage, StoreError> {
        self.read_step()?;
        self.inner.held_records(e, after, n).await
    }
    async fn review_backlog(&self, entity: &str) -> Result<super::ReviewBacklog, StoreError> {
        self.read_step()?;
        self.inner.review_backlog(entity).await
    }
    async fn review_queue(
        &self,
        entity: &str,
        open: bool,
        after: Option<&str>,
        limit: usize,
    ) -> Result<super::ReviewPage, StoreError> {
        self.read_step()?;
        self.inner.review_queue(entity, open, after, limit).await
    }
    async fn get_review(&self, e: &str, t: &str) -> Result<Option<ReviewTask>, StoreError> {
        self.read_step()?;
        self.inner.get_review(e, t).await
    }
}

impl<S: Outbox> Outbox for Faulty<S> {
    async fn pending_events(&self, limit: usize) -> Result<Vec<OutboxEntry>, StoreError> {
        self.read_step()?;
        self.inner.pending_events(limit).await
    }
    async fn delete_events(&self, ids: &[String]) -> Result<(), StoreError> {
        match self.crash_step() {
            Some(false) => Err(injected()),
            Some(true) => self.inner.delete_events(ids).await.and(Err(injected_after())),
            None => self.inner.delete_events(ids).await,
        }
    }
    async fn pending_events_of(&self, e: &str, ids: &[String]) -> Result<Vec<OutboxEntry>, StoreError> {
        self.read_step()?;
        self.inner.pending_events_of(e, ids).await
    }
}

impl<S: crate::publish::EventItems> crate::publish::EventItems for Faulty<S> {
    async fn events_in(&self, item: &crate::publish::EventItem) -> Result<Option<Vec<OutboxEntry>>, StoreError> {
        self.read_step()?;
        self.inner.events_in(item).await
    }
    async fn unpublished(&self, before_ms: i64, limit: usize) -> Result<Vec<crate::publish::EventItem>, StoreError> {
        self.read_step()?;
        self.inner.unpublished(before_ms, limit).await
    }
    async fn mark_delivered(&self, items: &[crate::publish::EventItem]) -> Result<(), StoreError> {
        match self.crash_step() {
            Some(false) => Err(injected()),
            Some(true) => self.inner.mark_delivered(items).await.and(Err(injected_after())),
            None => self.inner.mark_delivered(items).await,
        }
    }
}

impl<S: Transactor> Transactor for Faulty<S> {
    async fn settle_suppression(&self, markers_at_ms: i64, now_ms: i64) {
        self.inner.settle_suppression(markers_at_ms, now_ms).await
    }
    async fn transact(&self, mut ops: Vec<WriteOp>) -> Result<(), StoreError> {
        let held = self.hold.lock().ok().and_then(|mut h| h.take());
        if let Some(barrier) = held {
            // Arrived at the write; then released by the test.
            barrier.wait().await;
            barrier.wait().await;
        }
        if ops.iter().any(|op| matches!(op, WriteOp::CheckUnsuppressed { .. }))
            && self.skip_checks.swap(false, std::sync::atomic::Ordering::SeqCst)
        {
            ops.retain(|op| !matches!(op, WriteOp::CheckUnsuppressed { .. }));
        }
        match self.crash_step() {
            Some(false) => return Err(injected()),
            Some(true) => return self.inner.transact(ops).await.and(Err(injected_after())),
            None => {}
        }
        if self.countdown.fetch_sub(1, std::sync::atomic::Ordering::SeqCst) == 1 {
            if self.lose_answer.load(std::sync::atomic::Ordering::SeqCst) {
                self.inner.transact(ops).await?;
                return Err(StoreError::Unavailable("injected failure after the transaction".into()));
            }
            return Err(StoreError::Unavailable("injected failure".into()));
        }
        if self.lose_xrefs.swap(false, std::sync::atomic::Ordering::SeqCst) {
            let kept: Vec<WriteOp> = ops.into_iter().filter(|op| !matches!(op, WriteOp::SetXref { .. })).collect();
            self.inner.transact(kept).await?;
            return Err(StoreError::Unavailable("injected failure after the transaction".into()));
        }
        self.inner.transact(ops).await
    }
}

impl<S: ReceiptStore> ReceiptStore for Faulty<S> {
    async fn get_receipt(&self, id: &str) -> Result<Option<String>, StoreError> {
        self.read_step()?;
        self.inner.get_receipt(id).await
    }
    async fn put_receipt(&self, id: &str, revision: u64, json: &str) -> Result<(), StoreError> {
        match self.crash_step() {
            Some(false) => Err(injected()),
            Some(true) => self.inner.put_receipt(id, revision, json).await.and(Err(injected_after())),
            None => self.inner.put_receipt(id, revision, json).await,
        }
    }
    async fn reviews_mentioning(&self, e: &str, ids: &[String]) -> Result<Vec<ReviewTask>, StoreError> {
        self.read_step()?;
        self.inner.reviews_mentioning(e, ids).await
    }
}

impl<S: TermStore> TermStore for Faulty<S> {
    async fn term_counts(&self, e: &str, keys: &[String]) -> Result<crate::terms::TermTotals, StoreError> {
        self.read_step()?;
        self.inner.term_counts(e, keys).await
    }
    async fn count_terms(&self, e: &str, keys: &[String], delta: i64) -> Result<(), StoreError> {
        match self.crash_step() {
            Some(false) => Err(injected()),
            Some(true) => self.inner.count_terms(e, keys, delta).await.and(Err(injected_after())),
            None => self.inner.count_terms(e, keys, delta).await,
        }
    }
}

impl<S: LookupStore> LookupStore for Faulty<S> {
    async fn resolve_lookups(&self, l: &[Lookup]) -> Result<HashMap<Lookup, String>, StoreError> {
        self.read_step()?;
        self.inner.resolve_lookups(l).await
    }
    async fn get_golden_refs(&self, r: &[(String, String)]) -> Result<Vec<GoldenRecord>, StoreError> {
        self.read_step()?;
        self.inner.get_golden_refs(r).await
    }
    async fn get_link(&self, key: &SourceKey) -> Result<Option<crate::golden::Link>, StoreError> {
        self.read_step()?;
        self.inner.get_link(key).await
    }
    async fn history_page(&self, e: &str, id: &str, after: u64, limit: usize) -> Result<Vec<HistoryEntry>, StoreError> {
        self.read_step()?;
        self.inner.history_page(e, id, after, limit).await
    }
}

/// What is wrong with the state of these active golden records in a store (empty: nothing):
/// a source record listed by two of them, a member whose cross-reference leads elsewhere, a
/// claim or index entry a record lists that the store does not hold for it, and a block or
/// claim naming a golden record that does not exist. Run after every steward test.
pub async fn audit<S: Store>(store: &S, goldens: &[GoldenRecord]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut owner: BTreeMap<&SourceKey, &str> = BTreeMap::new();
    for g in goldens.iter().filter(|g| g.is_active()) {
        for m in g.members.iter() {
            if let Some(other) = owner.insert(m, &g.golden_id) {
                problems.push(format!("{m} is a member of {other} and {}", g.golden_id));
            }
        }
        let members: Vec<SourceKey> = g.members.to_vec();
        let stored = store.get_sources(&members).await.unwrap_or_default();
        for m in g.members.iter() {
            let xref = stored.iter().find(|s| &s.key == m).and_then(|s| s.golden_id.clone());
            let mut at = xref.clone();
            // Follow merged-into pointers a few hops.
            for _ in 0..8 {
                let Some(id) = at.clone() else { break };
                match store.get_golden(&g.entity, &id).await.ok().flatten().map(|r| r.status) {
                    Some(GoldenStatus::MergedInto { survivor }) => at = Some(survivor),
                    _ => break,
                }
            }
            if at.as_deref() != Some(g.golden_id.as_str()) {
                problems.push(format!("{m} is a member of {} but its cross-reference names {xref:?}", g.golden_id));
            }
        }
        let claims: Vec<IndexKey> = g.claims.iter().cloned().collect();
        let holders = store.get_claims(&g.entity, &claims).await.unwrap_or_default();
        for k in &claims {
            if holders.get(k) != Some(&g.golden_id) {
                problems.push(format!("{} lists claim {} held by {:?}", g.golden_id, k.name(), holders.get(k)));
            }
        }
        let keys: Vec<IndexKey> = g.index_keys.iter().cloned().collect();
        let caps = vec![usize::MAX; keys.len()];
        let hits = store.lookup(&g.entity, &keys, &caps).await.unwrap_or_default();
        let mut named: BTreeSet<String> = holders.into_values().collect();
        for k in &keys {
            let hit = hits.iter().find(|h| &h.key == k);
            if !hit.is_some_and(|h| h.golden_ids.contains(&g.golden_id)) {
                problems.push(format!("{} lists index key {} that its block does not name", g.golden_id, k.name()));
            }
        }
        named.extend(hits.into_iter().flat_map(|h| h.golden_ids));
        let named: Vec<String> = named.into_iter().collect();
        let found = store.get_goldens(&g.entity, &named).await.unwrap_or_default();
        for id in &named {
            if !found.iter().any(|f| &f.golden_id == id) {
                problems.push(format!("a block or claim near {} names {id}, which does not exist", g.golden_id));
            }
        }
    }
    problems
}
