//! Bulk files on the emulator: files dropped into the bucket (moto's S3 notifies the files queue)
//! read by the real files handler, rows through the ingest path up to the match queue, reports
//! and `FileIngested` events, checkpoints across invocations, gzip, and files that name no feed.
mod common;

use aws_lambda_events::sqs::SqsEvent;
use common::*;
use mdm_aws::handlers::{files, Ctx};
use mdm_core::store::SourceStore;
use mdm_core::SourceKey;
use serde_json::{json, Value};
use std::io::Write;

const FEEDS: &str = r#"{"customer/webshop": {"idColumn": "customer_no", "map": ["surname=family_name", "mail=email"]},
                        "customer/partner": {"idColumn": "id", "map": ["mail=email"]}}"#;

/// A stack with the test's feeds; S3's test event (sent when the bucket's notification is set up)
/// is taken off the files queue, by the handler, which must accept it.
async fn files_stack(name: &str) -> Option<TestStack> {
    let s = stack_with(name, &[("FileFeeds", FEEDS)]).await?;
    let ctx = files_ctx(&s, None).await;
    assert_eq!(run_files(&s, &ctx).await, 1, "S3's test event");
    Some(s)
}

/// The files function as the template configures it, reading at most `rows` rows an invocation.
async fn files_ctx(s: &TestStack, rows: Option<u64>) -> Ctx {
    let sdk = mdm_aws::config::sdk_config().await;
    let mut settings = s.res.settings_for("mdm-files").expect("settings");
    settings.files.rows_per_invocation = rows;
    Ctx::new(&sdk, settings, "files").expect("files ctx")
}

/// Plays the files queue's event-source mapping (batch size 1) until the queue is empty; the
/// invocations it made.
async fn run_files(s: &TestStack, ctx: &Ctx) -> usize {
    invoke_files(s, ctx, 200).await.len()
}

/// At most `max` invocations of the files handler, one message each; the messages' bodies.
async fn invoke_files(s: &TestStack, ctx: &Ctx, max: usize) -> Vec<String> {
    let url = s.queue("FilesQueue");
    let mut bodies = Vec::new();
    for _ in 0..max {
        let out = s
            .sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(1)
            .wait_time_seconds(0)
            .visibility_timeout(30)
            .send()
            .await
            .expect("receive");
        let Some(m) = out.messages().first() else { break };
        let event: SqsEvent = serde_json::from_value(json!({"Records": [{
            "messageId": m.message_id(), "receiptHandle": m.receipt_handle(), "body": m.body(),
            "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {}, "eventSource": "aws:sqs"}]}))
        .expect("event");
        let response = files::handle_sqs(ctx, event, files::Deadline::none()).await;
        bodies.push(m.body().unwrap_or("").to_owned());
        assert!(response.batch_item_failures.is_empty(), "the files handler failed a message");
        s.sqs
            .delete_message()
            .queue_url(&url)
            .receipt_handle(m.receipt_handle().unwrap_or(""))
            .send()
            .await
            .expect("delete");
    }
    bodies
}

/// The notifications waiting on the files queue (left there).
async fn peek_files(s: &TestStack) -> Vec<String> {
    let out = s
        .sqs
        .receive_message()
        .queue_url(s.queue("FilesQueue"))
        .max_number_of_messages(10)
        .visibility_timeout(0)
        .send()
        .await
        .expect("receive");
    out.messages().iter().filter_map(|m| m.body().map(str::to_owned)).collect()
}

async fn report(s: &TestStack, key: &str) -> Value {
    let text = s.object_text(key).await.unwrap_or_else(|| panic!("no report {key}"));
    serde_json::from_str(&text).expect("the report is JSON")
}

fn person(i: usize) -> String {
    format!("W-{i:05},Given{i},Family{},given{i}.family{i}@example.com,1980-01-{:02}", i % 97, i % 28 + 1)
}

#[tokio::test]
async fn a_ten_thousand_row_file_with_twenty_broken_rows_stores_the_rest_and_names_the_broken_lines() {
    let Some(s) = files_stack("files-big").await else { return };
    // Invalid values are kept (and flagged) as through the API; rows whose structure is wrong
    // are refused: 20 of four kinds.
    let mut bytes = b"customer_no,given_name,surname,mail,date_of_birth\n".to_vec();
    let mut broken = Vec::new();
    let long = "x".repeat(1100);
    for i in 1..=10_000 {
        let line = i + 1;
        let row: Vec<u8> = match i % 2000 {
            0 => {
                broken.push((line, Some("surname"), "value_too_long"));
                format!("W-{i:05},Given{i},{long},g{i}@example.com,1980-01-01").into_bytes()
            }
            500 => {
                broken.push((line, Some("customer_no"), "missing_field"));
                format!(",Given{i},Family,g{i}@example.com,1980-01-01").into_bytes()
            }
            1000 => {
                broken.push((line, None, "malformed_row"));
                format!("W-{i:05},Given{i}").into_bytes()
            }
            1500 => {
                broken.push((line, Some("given_name"), "invalid_utf8"));
                let mut r = format!("W-{i:05},Giv").into_bytes();
                r.extend_from_slice(b"\xff\xfe");
                r.extend_from_slice(format!("en,Family,g{i}@example.com,1980-01-01").as_bytes());
                r
            }
            _ => person(i).into_bytes(),
        };
        bytes.extend_from_slice(&row);
        bytes.push(b'\n');
    }
    assert_eq!(broken.len(), 20);
    let key = "incoming/customer/webshop/customers-2026-12-07.csv";
    s.put_file(key, bytes).await;
    let notification = peek_files(&s).await;
    assert_eq!(notification.len(), 1, "S3 notified the files queue once");
    let ctx = files_ctx(&s, None).await;
    assert_eq!(run_files(&s, &ctx).await, 1);

    let r = report(&s, "reports/customer/webshop/customers-2026-12-07.csv.json").await;
    assert_eq!(r["status"], "ingested", "{r}");
    assert_eq!(
        r["rows"],
        json!({"read": 10000, "stored": 9980, "duplicates": 0, "stale": 0, "held": 0, "suppressed": 0, "rejected": 20})
    );
    let named: Vec<(u64, Option<&str>, &str)> = r["rejected"]
        .as_array()
        .expect("rejected rows")
        .iter()
        .map(|x| (x["line"].as_u64().unwrap_or(0), x["column"].as_str(), x["code"].as_str().unwrap_or("")))
        .collect();
    let want: Vec<(u64, Option<&str>, &str)> = broken.iter().map(|(l, c, code)| (*l as u64, *c, *code)).collect();
    assert_eq!(named, want, "the report names each broken line, its column and code");
    assert!(!r.to_string().contains(&long) && !r.to_string().contains("Given500"), "never the values");
    assert_eq!(s.queue_depth("MatchQueue").await, 9980, "one match message per stored row");
    assert!(s.object_text(key).await.is_none(), "the file is deleted once its report is written");
    let stored =
        s.store.get_source(&SourceKey::new("customer", "webshop", "W-00042")).await.expect("read").expect("stored");
    assert_eq!(stored.principal.as_deref(), Some(format!("file:{key}").as_str()), "the file is the record's sender");
    // Published, and valid against its schema.
    let events = s.subscriber_events().await;
    let ingested: Vec<&Value> = events.iter().filter(|e| e["detail-type"] == "FileIngested").collect();
    assert_eq!(ingested.len(), 1, "{events:?}");
    assert_valid_event(ingested[0]);
    assert_eq!(ingested[0]["detail"]["rows"]["stored"], 9980);

    // The same notification again: nothing changes, no new versions.
    s.send("FilesQueue", &notification[0]).await;
    assert_eq!(run_files(&s, &ctx).await, 1);
    assert_eq!(s.queue_depth("MatchQueue").await, 9980, "nothing queued again");
    let again =
        s.store.get_source(&SourceKey::new("customer", "webshop", "W-00042")).await.expect("read").expect("stored");
    assert_eq!(again.seq, stored.seq);
    assert!(s.subscriber_events().await.iter().all(|e| e["detail-type"] != "FileIngested"), "no second event");
}

#[tokio::test]
async fn a_file_that_needs_three_invocations_ingests_every_row_exactly_once_in_file_order() {
    let Some(s) = files_stack("files-resume").await else { return };
    let mut text = String::from("customer_no,given_name,surname,mail,date_of_birth\n");
    for i in 1..=1_200 {
        if i == 1_100 {
            // The same customer as row 5, changed later in the file: the later row wins.
            text.push_str("W-00005,Given5,Family5,changed@example.com,1980-01-06\n");
        } else {
            text.push_str(&person(i));
            text.push('\n');
        }
    }
    let key = "incoming/customer/webshop/large.csv";
    s.put_file(key, text.into_bytes()).await;
    let ctx = files_ctx(&s, Some(500)).await;
    // One invocation, then its hand-over delivered twice (a duplicate delivery): the second copy
    // finds the file further on or done and reads no row again.
    let first = invoke_files(&s, &ctx, 1).await;
    assert_eq!(peek_files(&s).await.len(), 1, "the first invocation handed the file on");
    s.send("FilesQueue", &first[0]).await;
    let more = run_files(&s, &ctx).await;
    assert_eq!(more, 3, "two more invocations read the rest; the duplicate finds it done");
    let r = report(&s, "reports/customer/webshop/large.csv.json").await;
    assert_eq!(r["invocations"], 3, "{r}");
    assert_eq!(r["rows"]["read"], 1200);
    assert_eq!(r["rows"]["stored"], 1200, "every row stored once: {r}");
    assert_eq!(r["rows"]["duplicates"], 0, "no row read twice");
    assert_eq!(s.queue_depth("MatchQueue").await, 1200);
    let five =
        s.store.get_source(&SourceKey::new("customer", "webshop", "W-00005")).await.expect("read").expect("row 5");
    assert_eq!(
        five.attributes.get("email").map(|v| v.to_string()).as_deref(),
        Some("changed@example.com"),
        "the later row won"
    );
    let last =
        s.store.get_source(&SourceKey::new("customer", "webshop", "W-01200")).await.expect("read").expect("row 1200");
    assert_eq!(
        last.seq - five.seq,
        100,
        "a row's sequence is the object's time and its row number (rows 1100 and 1200)"
    );
}

#[tokio::test]
async fn a_gzip_json_lines_file_is_read_and_resumed_by_row_number() {
    let Some(s) = files_stack("files-gzip").await else { return };
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    for i in 1..=300 {
        let row = json!({"id": format!("P-{i}"), "given_name": format!("Given{i}"), "family_name": format!("Family{i}"),
                         "mail": format!("p{i}@example.net")});
        writeln!(enc, "{row}").expect("write");
    }
    writeln!(enc, "{{\"id\": \"P-bad\", \"mail\": {{\"nested\": 1}}}}").expect("write");
    let key = "incoming/customer/partner/feed.jsonl.gz";
    s.put_file(key, enc.finish().expect("gzip")).await;
    let ctx = files_ctx(&s, Some(100)).await;
    assert_eq!(run_files(&s, &ctx).await, 4, "301 rows at 100 an invocation");
    let r = report(&s, "reports/customer/partner/feed.jsonl.gz.json").await;
    assert_eq!((r["format"].as_str(), r["gzip"].as_bool()), (Some("jsonl"), Some(true)));
    assert_eq!(r["rows"]["stored"], 300, "{r}");
    assert_eq!(r["rows"]["duplicates"], 0, "rows skipped on resume are not sent again");
    let rejected = &r["rejected"][0];
    assert_eq!((rejected["line"].as_u64(), rejected["column"].as_str()), (Some(301), Some("mail")), "{r}");
    assert_eq!(r["rows"]["rejected"], 1);
    assert_eq!(s.queue_depth("MatchQueue").await, 300);
}

#[tokio::test]
async fn a_file_for_an_unknown_entity_type_or_system_gets_one_clear_error_and_nothing_is_stored() {
    let Some(s) = files_stack("files-unknown").await else { return };
    let csv = b"customer_no,given_name\nX-1,Ann\n".to_vec();
    s.put_file("incoming/planet/webshop/a.csv", csv.clone()).await;
    s.put_file("incoming/customer/nosuch/a.csv", csv.clone()).await;
    s.put_file("incoming/customer/webshop/no-id-column.csv", b"id,given_name\nX-1,Ann\n".to_vec()).await;
    let ctx = files_ctx(&s, None).await;
    assert_eq!(run_files(&s, &ctx).await, 3);
    for (report_key, code) in [
        ("reports/planet/webshop/a.csv.json", "unknown_entity_type"),
        ("reports/customer/nosuch/a.csv.json", "unknown_source_system"),
        ("reports/customer/webshop/no-id-column.csv.json", "missing_id_column"),
    ] {
        let r = report(&s, report_key).await;
        assert_eq!((r["status"].as_str(), r["error"]["code"].as_str()), (Some("failed"), Some(code)), "{r}");
        assert_eq!(r["rows"]["stored"], 0);
    }
    assert_eq!(s.queue_depth("MatchQueue").await, 0, "nothing queued");
    assert!(s.items_with_prefix("SRC#").await.is_empty(), "nothing stored");
    let events = s.subscriber_events().await;
    let failed =
        events.iter().filter(|e| e["detail-type"] == "FileIngested" && e["detail"]["status"] == "failed").count();
    assert_eq!(failed, 3, "each failure is published");
}
