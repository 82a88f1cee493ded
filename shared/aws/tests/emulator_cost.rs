//! The capacity meter against real DynamoDB calls on the emulator: the units it charges for a
//! golden record are those of the item as stored, item data is deflated, index entries are
//! written outside the merge transaction, events travel in history items, and the reads that can
//! be eventually consistent are. (Its own test binary: the meter is process-wide.)
mod common;

use common::*;
use mdm_aws::capacity::{item_size, meter, write_units};
use mdm_core::SourceKey;
use serde_json::json;

#[tokio::test]
async fn the_meter_charges_what_is_stored() {
    let Some(s) = stack("cost").await else { return };
    meter().remember_item_sizes(true);
    meter().reset();
    s.post(vec![customer(
        "crm",
        "m-1",
        1,
        json!({"given_name": "Maren", "family_name": "Okafor", "date_of_birth": "1984-09-17",
               "email": "maren.okafor@example.no", "phone": "+47 912 34 567", "street_number": "12",
               "address_line1": "Storgata", "locality": "Oslo", "postcode": "0155"}),
    )])
    .await;
    s.drain().await;
    let tally = meter().tally();

    // The golden record as stored: its data deflated (a binary attribute), readable as JSON.
    let golden = s.golden_of(&SourceKey::new("customer", "crm", "m-1")).await;
    let raw = s
        .ddb
        .get_item()
        .table_name(s.table())
        .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(format!("GOLD#customer#{}", golden.golden_id)))
        .key("sk", aws_sdk_dynamodb::types::AttributeValue::S("META".into()))
        .send()
        .await
        .expect("get")
        .item
        .expect("golden item");
    assert!(raw["data"].as_b().is_ok(), "golden data over 256 bytes is stored deflated");
    let text = mdm_aws::dynamo::data_text(&raw).expect("inflates").expect("data");
    assert!(text.contains(&golden.golden_id), "the inflated data is the record's JSON");

    // One new golden record: its transactional write costs twice its stored size in KB.
    let charged = tally.dynamo[&("TransactWriteItems", "golden")];
    assert_eq!(charged.items, 1);
    assert_eq!(charged.write_units, 2 * write_units(item_size(&raw)));

    // A claim is its block item's golden_id, set ahead of the transaction by the update that
    // also adds the golden record to the block: one unit, and no entry written besides.
    let claims = tally.dynamo[&("UpdateItem", "claim")];
    assert!(golden.claims.len() >= 2, "e-mail and phone are claimed");
    assert_eq!((claims.items as usize, claims.write_units), (golden.claims.len(), claims.items));
    assert!(!tally.dynamo.contains_key(&("TransactWriteItems", "claim")), "no claim in the transaction");
    // A record that creates its golden record takes its claims without reading them.
    assert!(!tally.dynamo.contains_key(&("BatchGetItem", "claim")), "no claim is read");
    // The other entries go by UpdateItem, one block item each, one unit each, never in the
    // transaction.
    let index = tally.dynamo.get(&("UpdateItem", "index")).copied().unwrap_or_default();
    assert_eq!(
        index.items as usize,
        golden.index_keys.len() - golden.claims.len(),
        "one block addition per unclaimed blocking key"
    );
    assert_eq!(index.write_units, index.items);
    assert!(!tally.dynamo.contains_key(&("TransactWriteItems", "index")));
    // Every block was empty. The matcher reads each block eventually consistently, half a unit;
    // the merge handler's recheck of the NEW decision reads nothing: it rides on the additions.
    let reads = tally.dynamo[&("BatchGetItem", "index")];
    assert_eq!(reads.read_units, 0.5 * golden.index_keys.len() as f64, "the matcher's reads only");
    assert!(!tally.dynamo.contains_key(&("Query", "index")), "no block is queried");
    // The GoldenRecordCreated event travels in the history item: no outbox item is written,
    // read or deleted; the publisher reads the history item, eventually consistently.
    assert!(!tally.dynamo.keys().any(|(_, kind)| *kind == "outbox"), "{:?}", tally.dynamo.keys());
    let history_reads = tally.dynamo[&("GetItem", "history")];
    assert_eq!(history_reads.items, 1);
    assert_eq!(history_reads.read_units, 0.5);
    // The matcher and the merge handler read the source record eventually consistently (it is
    // there, at the version their messages name): half a unit each.
    let source_reads = tally.dynamo[&("GetItem", "source")];
    assert_eq!((source_reads.items, source_reads.read_units), (2, 1.0));
    // Ingest writes the record outside a transaction and reads the suppression markers of its
    // identifiers (e-mail, phone) strongly, one unit each; the merge reads them again just before
    // its transaction; no ConditionCheck is written.
    assert!(!tally.dynamo.contains_key(&("TransactWriteItems", "suppression")));
    let markers = tally.dynamo[&("BatchGetItem", "suppression")];
    assert_eq!((markers.items, markers.read_units), (0, 4.0), "two missing markers read strongly, twice");
}
