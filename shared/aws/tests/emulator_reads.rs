//! Eventually consistent reads on the emulator: the matcher's source read falls back to a strong
//! read when the replica is behind, and the merge handler's index lookups add the entries its own
//! process wrote. (The emulator is always consistent, so "behind" is played by removing the item
//! behind the store's back and by asking for a newer version than the one stored.)
mod common;

use aws_sdk_dynamodb::types::AttributeValue;
use common::*;
use mdm_aws::DynamoStore;
use mdm_core::store::{BlockIndex, ClaimStore, GoldenStore, IndexKey, SourceStore, Transactor, WriteOp};
use mdm_core::{keys, SourceKey};
use serde_json::json;
use std::sync::atomic::Ordering;

/// A stored key from its text.
fn key(text: &str) -> IndexKey {
    IndexKey::parse(text)
}

/// A customer's index entry: added, or taken out.
fn put(key: &str, golden_id: &str) -> WriteOp {
    WriteOp::PutIndex { entity: "customer".into(), key: key.into(), golden_id: golden_id.into() }
}

fn unindex(key: &str, golden_id: &str) -> WriteOp {
    WriteOp::DeleteIndex { entity: "customer".into(), key: key.into(), golden_id: golden_id.into() }
}

fn gets(store: &DynamoStore) -> u64 {
    store.counts().get_item.load(Ordering::Relaxed)
}

#[tokio::test]
async fn the_matchers_source_read_is_strong_only_when_the_replica_is_behind() {
    let Some(s) = stack("reads-src").await else { return };
    s.post(vec![customer(
        "crm",
        "r-1",
        3,
        json!({"given_name": "Ines", "family_name": "Moreau", "email": "ines@example.fr"}),
    )])
    .await;
    let key = SourceKey::new("customer", "crm", "r-1");
    let matcher = DynamoStore::new(s.ddb.clone(), s.table()).eventual_reads();

    let at3 = matcher.get_source_at(&key, 3).await.expect("read").expect("stored");
    assert_eq!((at3.seq, gets(&matcher)), (3, 1), "the replica has version 3: one eventually consistent read");

    let at4 = matcher.get_source_at(&key, 4).await.expect("read").expect("stored");
    assert_eq!((at4.seq, gets(&matcher)), (3, 3), "asked for 4, replica has 3: read again, strongly");

    let missing = SourceKey::new("customer", "crm", "nobody");
    assert!(matcher.get_source_at(&missing, 1).await.expect("read").is_none());
    assert_eq!(gets(&matcher), 5, "a missing record is read again, strongly");

    let strong = DynamoStore::new(s.ddb.clone(), s.table());
    assert_eq!(strong.get_source_at(&key, 3).await.expect("read").map(|r| r.seq), Some(3));
    assert_eq!(gets(&strong), 1, "a strongly reading store reads once");
}

#[tokio::test]
async fn the_merge_handlers_lookups_add_its_own_recent_index_entries() {
    let Some(s) = stack("reads-idx").await else { return };
    let merger = DynamoStore::new(s.ddb.clone(), s.table()).merge_reads();
    merger.transact(vec![put("email=aa", "g1"), put("phone=bb", "g1"), put("phone=bb", "g2")]).await.expect("write");

    // A replica that has not seen the writes yet: the block items are not there.
    for key in ["email=aa", "phone=bb"] {
        s.ddb
            .delete_item()
            .table_name(s.table())
            .key("pk", AttributeValue::S(keys::block_item_key("customer", key)))
            .key("sk", AttributeValue::S("META".into()))
            .send()
            .await
            .expect("delete");
    }
    let keys = [key("email=aa"), key("phone=bb"), key("dob=cc")];
    let hits = merger.lookup("customer", &keys, &[1]).await.expect("lookup");
    assert_eq!(hits[0].golden_ids, ["g1"], "its own entry is found");
    assert!(hits[1].too_common && hits[1].golden_ids.is_empty(), "own entries count toward the block cap");
    assert!(hits[2].golden_ids.is_empty());

    // Another process (and a strongly reading store) sees only what the table holds.
    let other = DynamoStore::new(s.ddb.clone(), s.table()).merge_reads();
    assert!(other.lookup("customer", &keys, &[1]).await.expect("lookup").iter().all(|h| h.golden_ids.is_empty()));

    // An entry this process deleted is no longer added.
    merger.transact(vec![unindex("email=aa", "g1")]).await.expect("delete");
    assert!(merger.lookup("customer", &keys[..1], &[1]).await.expect("lookup")[0].golden_ids.is_empty());
}

#[tokio::test]
async fn the_merge_handlers_claim_reads_add_its_own_claims_and_reread_failed_ones_strongly() {
    let Some(s) = stack("reads-claim").await else { return };
    let merger = DynamoStore::new(s.ddb.clone(), s.table()).merge_reads();
    let claim = |key: &str, g: &str| WriteOp::PutClaim {
        entity: "customer".into(),
        key: key.into(),
        golden_id: g.into(),
        from: None,
    };
    merger.transact(vec![claim("email=aa", "g1")]).await.expect("claim");
    // A replica that has not seen it yet.
    s.ddb
        .delete_item()
        .table_name(s.table())
        .key("pk", AttributeValue::S(keys::block_item_key("customer", "email=aa")))
        .key("sk", AttributeValue::S("META".into()))
        .send()
        .await
        .expect("delete");
    let read = merger.get_claims("customer", &[key("email=aa")]).await.expect("claims");
    assert_eq!(read.get(&key("email=aa")).map(String::as_str), Some("g1"), "its own claim is found");

    // Another process holds phone=bb; a claim written on a read that missed it fails its condition.
    let other = DynamoStore::new(s.ddb.clone(), s.table());
    other.transact(vec![claim("phone=bb", "g9")]).await.expect("other claim");
    let err = merger.transact(vec![claim("phone=bb", "g2")]).await.expect_err("held by g9");
    assert!(err.is_conflict(), "{err}");
    let batches = |st: &DynamoStore| st.counts().batch_get_item.load(Ordering::Relaxed);
    let before = batches(&merger);
    let read = merger.get_claims("customer", &[key("phone=bb"), key("dob=cc")]).await.expect("claims");
    assert_eq!(read.get(&key("phone=bb")).map(String::as_str), Some("g9"));
    assert_eq!(batches(&merger) - before, 2, "the failed key strongly, the other eventually consistently");
}

/// A merge that creates a golden record learns from its own index writes what the blocks held:
/// one `UpdateItem` per block, no read. A block holding more than the store's cap is left alone.
#[tokio::test]
async fn index_writes_return_what_the_blocks_held() {
    let Some(s) = stack("reads-add").await else { return };
    let store = DynamoStore::new(s.ddb.clone(), s.table()).merge_reads().with_block_cap(2);
    store.transact(vec![put("email=aa", "g1"), put("dob=dd", "g1"), put("dob=dd", "g2")]).await.expect("write");
    let reads = |st: &DynamoStore| {
        st.counts().batch_get_item.load(Ordering::Relaxed) + st.counts().query.load(Ordering::Relaxed)
    };
    let before = reads(&store);
    let keys = [key("email=aa"), key("dob=dd"), key("new=ee")];
    let held = store.add_to_blocks("customer", &keys, "g3", 1).await.expect("add");
    assert_eq!(reads(&store), before, "nothing is read");
    assert_eq!((held[0].golden_ids.clone(), held[0].too_common), (vec!["g1".to_owned()], false));
    assert!(held[1].too_common && held[1].golden_ids.is_empty(), "two golden records > cap 1");
    assert!(held[2].golden_ids.is_empty() && !held[2].too_common);
    let strong = DynamoStore::new(s.ddb.clone(), s.table());
    let now = strong.lookup("customer", &keys, &[10]).await.expect("lookup");
    assert_eq!(now[0].golden_ids, ["g1", "g3"]);
    assert_eq!(now[1].golden_ids, ["g1", "g2", "g3"], "the store's cap is 2: a third id still fits");
    assert_eq!(now[2].golden_ids, ["g3"]);
    // Full (three ids > the store's cap of 2): left as it is, reported too common.
    let held = store.add_to_blocks("customer", &keys[1..2], "g4", 10).await.expect("add");
    assert!(held[0].too_common);
    let now = strong.lookup("customer", &keys[1..2], &[10]).await.expect("lookup");
    assert_eq!(now[0].golden_ids, ["g1", "g2", "g3"], "a full block does not grow");
    // Deletes take the id out of the set.
    store.transact(vec![unindex("email=aa", "g1")]).await.expect("delete");
    assert_eq!(strong.lookup("customer", &keys[..1], &[10]).await.expect("lookup")[0].golden_ids, ["g3"]);
}

/// New claims are written ahead of the transaction: one the failed transaction leaves behind
/// names the golden record that was not created, with the time it was taken.
#[tokio::test]
async fn claims_written_ahead_of_a_failed_transaction_carry_their_time() {
    let Some(s) = stack("reads-ahead").await else { return };
    let store = DynamoStore::new(s.ddb.clone(), s.table()).merge_reads();
    let golden = |id: &str, revision: u64| mdm_core::GoldenRecord {
        entity: "customer".into(),
        golden_id: id.into(),
        version: revision,
        revision,
        status: mdm_core::GoldenStatus::Active,
        attributes: Default::default(),
        members: vec![SourceKey::new("customer", "crm", "m-1")].into(),
        match_values: Default::default(),
        index_keys: Default::default(),
        claims: Default::default(),
        created_at_ms: 1,
        updated_at_ms: 1,
        merged_from: Vec::new(),
        kept_apart: Vec::new(),
        pins: Vec::new(),
        quality: None,
    };
    store
        .transact(vec![WriteOp::PutGolden {
            golden: std::sync::Arc::new(golden("g-taken", 1)),
            expect: mdm_core::store::Expect::Absent,
        }])
        .await
        .expect("setup");
    let before = mdm_core::time::now_ms();
    let failing = vec![
        WriteOp::PutGolden { golden: std::sync::Arc::new(golden("g-new", 1)), expect: mdm_core::store::Expect::Absent },
        WriteOp::PutClaim { entity: "customer".into(), key: "email=zz".into(), golden_id: "g-new".into(), from: None },
        WriteOp::PutGolden {
            golden: std::sync::Arc::new(golden("g-taken", 5)),
            expect: mdm_core::store::Expect::Revision(7),
        },
    ];
    assert!(store.transact(failing).await.expect_err("revision 7 is not stored").is_conflict());
    let strong = DynamoStore::new(s.ddb.clone(), s.table());
    let held = strong.get_claims("customer", &[key("email=zz")]).await.expect("claims");
    assert_eq!(
        held.get(&key("email=zz")).map(String::as_str),
        Some("g-new"),
        "the claim names the golden record not created"
    );
    assert_eq!(strong.get_golden("customer", "g-new").await.expect("get"), None);
    let times = strong.claim_times("customer", &[key("email=zz"), key("free=yy")]).await.expect("times");
    assert_eq!(times.len(), 1);
    assert!(times[&key("email=zz")] >= before && times[&key("email=zz")] <= mdm_core::time::now_ms());
    // Another golden record cannot take it meanwhile; the one it names can.
    let other = WriteOp::PutClaim {
        entity: "customer".into(),
        key: "email=zz".into(),
        golden_id: "g-other".into(),
        from: None,
    };
    assert!(store.transact(vec![other]).await.expect_err("held").is_conflict());
    let again =
        WriteOp::PutClaim { entity: "customer".into(), key: "email=zz".into(), golden_id: "g-new".into(), from: None };
    store.transact(vec![again]).await.expect("the retry takes its own claim again");
}
