//! A stack on the emulator for one test: resources bootstrapped from the SAM template under a
//! unique prefix, the real handlers, and the local event-source-mapping runner.
#![allow(dead_code)]

use aws_lambda_events::sqs::SqsEvent;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use mdm_aws::handlers::Ctx;
use mdm_aws::local::esm::{LocalRunner, RunStats};
use mdm_aws::local::{emulator_for_tests, unique_prefix, Resources};
use mdm_aws::DynamoStore;
use mdm_core::store::{GoldenStore, SourceStore};
use mdm_core::{GoldenRecord, SourceKey};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

pub type Item = HashMap<String, AttributeValue>;

pub struct TestStack {
    pub res: Resources,
    pub runner: LocalRunner,
    pub ddb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub store: DynamoStore,
}

/// A stack, or `None` when no emulator is configured (the test then returns early, loudly).
pub async fn stack(name: &str) -> Option<TestStack> {
    stack_with(name, &[]).await
}

/// [`stack`] with template parameters other than their defaults.
pub async fn stack_with(name: &str, parameters: &[(&str, &str)]) -> Option<TestStack> {
    emulator_for_tests()?;
    std::env::set_var("MDM_EMF", "off");
    let res = Resources::bootstrap_with(&unique_prefix(name), parameters).expect("bootstrap from the template");
    let sdk = mdm_aws::config::sdk_config().await;
    let runner = LocalRunner::new(&sdk, res.clone()).expect("runner");
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let store = DynamoStore::new(ddb.clone(), res.attr("HubTable", "ref").expect("table"));
    Some(TestStack { res, runner, ddb, sqs: aws_sdk_sqs::Client::new(&sdk), store })
}

pub fn customer(system: &str, id: &str, seq: u64, attributes: Value) -> Value {
    json!({"entityType": "customer", "sourceSystem": system, "sourceId": id, "sourceSeq": seq,
           "sourceUpdatedAt": format!("2026-01-01T00:00:{:02}Z", seq % 60), "attributes": attributes})
}

impl TestStack {
    pub fn queue(&self, logical: &str) -> String {
        self.res.attr(logical, "QueueUrl").unwrap_or_else(|| panic!("no queue {logical}")).to_owned()
    }

    pub fn table(&self) -> String {
        self.res.attr("HubTable", "ref").expect("table").to_owned()
    }

    pub async fn post(&self, records: Vec<Value>) -> (u16, Value) {
        self.runner.post_records(&json!({ "records": records }).to_string()).await
    }

    pub async fn post_raw(&self, body: &str) -> (u16, Value) {
        self.runner.post_records(body).await
    }

    /// Runs the handlers until every queue and stream is idle; a test fails if that takes over two minutes.
    pub async fn drain(&self) -> RunStats {
        self.drain_within(Duration::from_secs(120)).await
    }

    pub async fn drain_within(&self, limit: Duration) -> RunStats {
        self.runner.run_until_idle(limit).await.expect("runner")
    }

    pub async fn send(&self, logical: &str, body: &str) {
        self.sqs.send_message().queue_url(self.queue(logical)).message_body(body).send().await.expect("send");
    }

    /// Up to 10 messages from a queue, with their attributes; `hold` keeps them invisible that long.
    async fn receive(&self, url: &str, hold: Option<i32>) -> Vec<aws_sdk_sqs::types::Message> {
        self.sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .message_attribute_names("All")
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .set_visibility_timeout(hold)
            .wait_time_seconds(0)
            .send()
            .await
            .expect("receive")
            .messages
            .unwrap_or_default()
    }

    /// Every message on a queue (received and deleted), with its message attributes.
    pub async fn take_all(&self, logical: &str) -> Vec<(String, HashMap<String, String>)> {
        let url = self.queue(logical);
        let mut out = Vec::new();
        for _ in 0..50 {
            let msgs = self.receive(&url, None).await;
            if msgs.is_empty() {
                break;
            }
            for m in msgs {
                let attrs = m
                    .message_attributes()
                    .map(|a| a.iter().map(|(k, v)| (k.clone(), v.string_value().unwrap_or("").to_owned())).collect())
                    .unwrap_or_default();
                out.push((m.body().unwrap_or("").to_owned(), attrs));
                self.sqs
                    .delete_message()
                    .queue_url(&url)
                    .receipt_handle(m.receipt_handle().unwrap_or(""))
                    .send()
                    .await
                    .expect("delete");
            }
        }
        out
    }

    /// Hub events the example subscriber queue received (EventBridge envelopes).
    pub async fn subscriber_events(&self) -> Vec<Value> {
        self.take_all("ExampleSubscriberQueue")
            .await
            .into_iter()
            .map(|(b, _)| serde_json::from_str(&b).expect("EventBridge delivers JSON"))
            .collect()
    }

    pub async fn queue_depth(&self, logical: &str) -> usize {
        let out = self
            .sqs
            .get_queue_attributes()
            .queue_url(self.queue(logical))
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .expect("attributes");
        out.attributes().map(|a| a.values().map(|v| v.parse::<usize>().unwrap_or(0)).sum()).unwrap_or(0)
    }

    /// Every item of the table, deflated `data` inflated to its JSON text, so that checks for
    /// leaked values see what is stored.
    pub async fn scan(&self) -> Vec<Item> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let resp =
                self.ddb.scan().table_name(self.table()).set_exclusive_start_key(start).send().await.expect("scan");
            for item in resp.items() {
                let mut item = item.clone();
                if let Some(text) = mdm_aws::dynamo::data_text(&item).expect("readable data") {
                    item.insert("data".into(), AttributeValue::S(text));
                }
                out.push(item);
            }
            match resp.last_evaluated_key {
                Some(k) => start = Some(k),
                None => return out,
            }
        }
    }

    pub async fn items_with_prefix(&self, prefix: &str) -> Vec<Item> {
        self.scan()
            .await
            .into_iter()
            .filter(|i| i.get("pk").and_then(|v| v.as_s().ok()).is_some_and(|p| p.starts_with(prefix)))
            .collect()
    }

    /// The full-table invariant check run after every steward test: every active golden
    /// record passes [`mdm_core::store::conformance::audit`] (no source record in two of them,
    /// cross-references, claims and index entries agree), and no block item or claim anywhere in
    /// the table names a golden record that does not exist.
    pub async fn audit(&self) {
        let items = self.scan().await;
        let text = |i: &Item, k: &str| i.get(k).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
        let mut ids: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        for i in &items {
            let (pk, sk) = (text(i, "pk"), text(i, "sk"));
            if let (Some(rest), "META") = (pk.strip_prefix("GOLD#"), sk.as_str()) {
                if let Some((entity, id)) = rest.split_once('#') {
                    let (entity, id) = (mdm_core::keys::decode_part(entity), mdm_core::keys::decode_part(id));
                    ids.entry(entity).or_default().push(id);
                }
            }
        }
        let mut problems = Vec::new();
        for (entity, list) in &ids {
            let goldens = self.store.get_goldens(entity, list).await.expect("goldens");
            problems.extend(mdm_core::store::conformance::audit(&self.store, &goldens).await);
        }
        for i in &items {
            let pk = text(i, "pk");
            let Some(rest) = pk.strip_prefix("BLK#") else { continue };
            let entity = mdm_core::keys::decode_part(rest.split('#').next().unwrap_or(""));
            let known = ids.get(&entity).cloned().unwrap_or_default();
            let mut named: Vec<String> = i.get("g").and_then(|v| v.as_ss().ok()).cloned().unwrap_or_default();
            named.extend(i.get("golden_id").and_then(|v| v.as_s().ok()).cloned());
            for id in named.iter().filter(|id| !known.contains(id)) {
                problems.push(format!("block {pk} names {id}, which does not exist"));
            }
        }
        assert!(problems.is_empty(), "{problems:#?}");
    }

    /// The golden record a source record belongs to (following merged-into pointers).
    pub async fn golden_of(&self, key: &SourceKey) -> GoldenRecord {
        let src = self.store.get_source(key).await.expect("get").unwrap_or_else(|| panic!("{key} stored"));
        let mut id = src.golden_id.clone().unwrap_or_else(|| panic!("{key} has a golden record"));
        for _ in 0..8 {
            let g = self.store.get_golden(&key.entity, &id).await.expect("get").expect("golden exists");
            match &g.status {
                mdm_core::GoldenStatus::MergedInto { survivor } => id = survivor.clone(),
                _ => return g,
            }
        }
        panic!("pointer chain too long")
    }

    /// Receives every message on a function's queue and delivers each, in its own invocation, to
    /// the handler — all at the same time — then deletes those that succeeded.
    pub async fn deliver_concurrently(&self, logical: &str, handler: &'static str) -> usize {
        self.deliver_in_parallel(logical, handler, false).await
    }

    /// Delivers every message on a queue at once, each to its own new instance of the function
    /// (its own clients and its own overlay of recent writes), as separate Lambda instances
    /// would get them.
    pub async fn deliver_as_instances(&self, logical: &str, handler: &'static str) -> usize {
        self.deliver_in_parallel(logical, handler, true).await
    }

    async fn deliver_in_parallel(&self, logical: &str, handler: &'static str, instances: bool) -> usize {
        let url = self.queue(logical);
        let mut msgs = Vec::new();
        for _ in 0..20 {
            let batch = self.receive(&url, Some(60)).await;
            if batch.is_empty() {
                break;
            }
            msgs.extend(batch);
        }
        let handlers = self.runner.handlers();
        let ctx: Arc<Ctx> = match handler {
            "match" => Arc::clone(&handlers.matcher),
            "merge" => Arc::clone(&handlers.merger),
            other => panic!("no handler {other}"),
        };
        let mut tasks = Vec::new();
        let sdk = mdm_aws::config::sdk_config().await;
        for m in &msgs {
            let ctx = if instances {
                let function = if handler == "match" { "mdm-match" } else { "mdm-merge" };
                let settings = self.res.settings_for(function).expect("settings");
                Arc::new(Ctx::new(&sdk, settings, handler).expect("a new instance"))
            } else {
                Arc::clone(&ctx)
            };
            let event: SqsEvent = serde_json::from_value(json!({"Records": [{
                "messageId": m.message_id(), "receiptHandle": m.receipt_handle(), "body": m.body(),
                "attributes": {}, "messageAttributes": {}, "eventSource": "aws:sqs"}]}))
            .expect("event");
            tasks.push(tokio::spawn(async move {
                match handler {
                    "match" => mdm_aws::handlers::matcher::handle_sqs(&ctx, event).await,
                    _ => mdm_aws::handlers::merger::handle_sqs(&ctx, event).await,
                }
            }));
        }
        for (t, m) in tasks.into_iter().zip(&msgs) {
            let resp = t.await.expect("task");
            assert!(resp.batch_item_failures.is_empty(), "a concurrent delivery failed for good");
            self.sqs
                .delete_message()
                .queue_url(&url)
                .receipt_handle(m.receipt_handle().unwrap_or(""))
                .send()
                .await
                .expect("delete");
        }
        msgs.len()
    }
}

/// Validates an event's detail against the JSON Schema of its detail-type.
pub fn assert_valid_event(envelope: &Value) {
    let detail_type = envelope["detail-type"].as_str().expect("detail-type");
    assert_eq!(envelope["source"], "mdm.hub");
    let schema: Value =
        serde_json::from_str(mdm_core::events::detail_schema(detail_type).expect("known detail-type")).expect("schema");
    let v = jsonschema::options().should_validate_formats(true).build(&schema).expect("schema compiles");
    let errors: Vec<String> =
        v.iter_errors(&envelope["detail"]).map(|e| format!("{e} at {}", e.instance_path())).collect();
    assert!(errors.is_empty(), "{detail_type}: {errors:?}");
}

pub struct Answer {
    pub status: u16,
    pub headers: std::collections::BTreeMap<String, String>,
    pub body: Value,
}

/// A payload-v2 answer as status, lower-case headers and JSON body.
pub fn answer(resp: &Value) -> Answer {
    let status = resp["statusCode"].as_u64().unwrap_or(0) as u16;
    let headers = resp["headers"]
        .as_object()
        .map(|h| h.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.as_str().unwrap_or("").to_owned())).collect())
        .unwrap_or_default();
    let body = resp["body"].as_str().map(|b| serde_json::from_str(b).expect("JSON body")).unwrap_or(Value::Null);
    Answer { status, headers, body }
}

pub fn openapi() -> Value {
    serde_json::from_str(include_str!("../../../../docs/openapi.json")).expect("docs/openapi.json is JSON")
}

/// Checks an answer against the OpenAPI document: the status is documented for the operation,
/// required headers are present, and the body validates against the documented schema.
pub fn conform(doc: &Value, path: &str, method: &str, a: &Answer) {
    let op = &doc["paths"][path][method];
    assert!(op.is_object(), "{method} {path} is not in the OpenAPI document");
    let resp = &op["responses"][a.status.to_string()];
    assert!(resp.is_object(), "status {} of {method} {path} is not documented: {}", a.status, a.body);
    if let Some(headers) = resp["headers"].as_object() {
        for (name, h) in headers {
            if h["required"] == json!(true) {
                assert!(
                    a.headers.contains_key(&name.to_ascii_lowercase()),
                    "{method} {path} {}: header {name}",
                    a.status
                );
            }
        }
    }
    let schema = &resp["content"]["application/json"]["schema"];
    if schema.is_null() {
        assert!(a.body.is_null(), "{method} {path} {}: no body documented, got {}", a.status, a.body);
        return;
    }
    let root = json!({"$schema": "https://json-schema.org/draft/2020-12/schema",
                      "components": doc["components"], "allOf": [schema]});
    let v = jsonschema::options().should_validate_formats(true).build(&root).expect("schema compiles");
    let errors: Vec<String> = v.iter_errors(&a.body).map(|e| format!("{e} at {}", e.instance_path())).collect();
    assert!(errors.is_empty(), "{method} {path} {} does not match the document: {errors:?}\n{:#}", a.status, a.body);
}

/// Bulk files on the stack's bucket.
impl TestStack {
    pub fn bucket(&self) -> String {
        self.res.attr("FilesBucket", "ref").expect("files bucket").to_owned()
    }

    pub async fn s3(&self) -> aws_sdk_s3::Client {
        let sdk = mdm_aws::config::sdk_config().await;
        aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&sdk).force_path_style(true).build())
    }

    /// Drops a file into the bucket. S3 notifies the files queue; when SQS is another emulator's
    /// (the LocalStack pair: moto's S3 cannot reach it), the test sends S3's event itself.
    pub async fn put_file(&self, key: &str, bytes: Vec<u8>) {
        let size = bytes.len();
        let out = self
            .s3()
            .await
            .put_object()
            .bucket(self.bucket())
            .key(key)
            .body(bytes.into())
            .send()
            .await
            .expect("put object");
        if std::env::var("AWS_ENDPOINT_URL_SQS").is_ok_and(|v| !v.trim().is_empty()) {
            let bucket = self.bucket();
            let event = json!({"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
                "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": bucket, "arn": format!("arn:aws:s3:::{bucket}")},
                       "object": {"key": key, "size": size, "eTag": out.e_tag().unwrap_or("").trim_matches('"')}}}]});
            self.send("FilesQueue", &event.to_string()).await;
        }
    }

    /// An object's text, if it is there.
    pub async fn object_text(&self, key: &str) -> Option<String> {
        let out = self.s3().await.get_object().bucket(self.bucket()).key(key).send().await.ok()?;
        let bytes = out.body.collect().await.expect("object body").into_bytes();
        Some(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Keys of every object in the bucket.
    pub async fn object_keys(&self) -> Vec<String> {
        let out = self.s3().await.list_objects_v2().bucket(self.bucket()).send().await.expect("list");
        out.contents().iter().filter_map(|o| o.key().map(str::to_owned)).collect()
    }

    /// Every object of the bucket, key and text, for byte searches.
    pub async fn bucket_text(&self) -> String {
        let mut out = String::new();
        for key in self.object_keys().await {
            out.push_str(&format!("{key}: {}\n", self.object_text(&key).await.unwrap_or_default()));
        }
        out
    }
}
