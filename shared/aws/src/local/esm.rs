//! Event-source mappings, played locally: poll each function's SQS queues and the table's stream
//! (as the template declares them), call the real handler with the event Lambda would send, and
//! act on its partial-batch response the way Lambda does — delete what succeeded, leave failures
//! to reappear after the visibility timeout (SQS moves them to the DLQ after max receives), and for
//! the stream retry from the failed record, then send it to the on-failure queue.

use super::{EventSource, LocalError, Resources};
use crate::handlers::{erasure, files, ingest, matcher, merger, publisher, Ctx};
use aws_lambda_events::sqs::SqsEvent;
use aws_sdk_dynamodbstreams::types::ShardIteratorType;
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName, QueueAttributeName};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

/// The handlers by binary name, each with its own context (and metrics).
pub struct Handlers {
    pub ingest: Arc<Ctx>,
    pub matcher: Arc<Ctx>,
    pub merger: Arc<Ctx>,
    pub publisher: Arc<Ctx>,
    pub erasure: Arc<Ctx>,
    pub files: Arc<Ctx>,
}

impl Handlers {
    pub fn new(sdk: &aws_config::SdkConfig, res: &Resources) -> Result<Self, LocalError> {
        // Each handler gets its own function's environment, as on Lambda.
        let make = |f: &'static str| -> Result<Arc<Ctx>, LocalError> {
            let settings = res.settings_for(&format!("mdm-{f}"))?;
            Ok(Arc::new(Ctx::new(sdk, settings, f)?))
        };
        Ok(Self {
            ingest: make("ingest")?,
            matcher: make("match")?,
            merger: make("merge")?,
            publisher: make("publish")?,
            erasure: make("erasure")?,
            files: make("files")?,
        })
    }

    /// Counters of every handler since start (`function.metric` → value).
    pub fn totals(&self) -> BTreeMap<String, f64> {
        let mut out = BTreeMap::new();
        for (name, ctx) in [
            ("ingest", &self.ingest),
            ("match", &self.matcher),
            ("merge", &self.merger),
            ("publish", &self.publisher),
            ("erasure", &self.erasure),
            ("files", &self.files),
        ] {
            for (k, v) in ctx.metrics.totals() {
                out.insert(format!("{name}.{k}"), v);
            }
        }
        out
    }
}

#[derive(Debug, Default, Clone)]
pub struct RunStats {
    pub invocations: usize,
    pub messages: usize,
    pub stream_records: usize,
    pub failures_reported: usize,
    pub rounds: usize,
}

struct StreamState {
    /// shard id → (iterator type, sequence number) to resume from. A fresh iterator is taken on
    /// every poll: moto replaces a table's stream shard when it rolls back a transaction, which
    /// strands iterators taken before.
    positions: HashMap<String, (ShardIteratorType, String)>,
    /// sequence number → failed attempts
    attempts: HashMap<String, i64>,
}

pub struct LocalRunner {
    res: Resources,
    handlers: Handlers,
    sqs: aws_sdk_sqs::Client,
    streams: aws_sdk_dynamodbstreams::Client,
    /// Visibility timeout used when polling (short locally, so retries come quickly).
    pub visibility_timeout: i32,
    stream: Mutex<StreamState>,
}

fn sqs_err(e: impl std::fmt::Debug) -> LocalError {
    LocalError::Bootstrap(format!("SQS: {}", format!("{e:?}").chars().take(300).collect::<String>()))
}

fn stream_err(e: impl std::fmt::Debug) -> LocalError {
    LocalError::Bootstrap(format!("DynamoDB Streams: {}", format!("{e:?}").chars().take(300).collect::<String>()))
}

/// EventBridge-style filter patterns as Lambda's `FilterCriteria` uses them: every key of the
/// pattern must match; a leaf is a list of allowed literals or `{"prefix": …}`.
pub fn filter_matches(pattern: &Value, value: &Value) -> bool {
    match pattern {
        Value::Object(map) => map.iter().all(|(k, p)| value.get(k).is_some_and(|v| filter_matches(p, v))),
        Value::Array(options) => options.iter().any(|o| match o {
            Value::Object(m) if m.contains_key("prefix") => {
                value.as_str().zip(m["prefix"].as_str()).is_some_and(|(v, p)| v.starts_with(p))
            }
            literal => literal == value,
        }),
        literal => literal == value,
    }
}

impl LocalRunner {
    pub fn new(sdk: &aws_config::SdkConfig, res: Resources) -> Result<Self, LocalError> {
        let handlers = Handlers::new(sdk, &res)?;
        Ok(Self {
            res,
            handlers,
            sqs: aws_sdk_sqs::Client::new(sdk),
            streams: aws_sdk_dynamodbstreams::Client::new(sdk),
            visibility_timeout: 2,
            stream: Mutex::new(StreamState { positions: HashMap::new(), attempts: HashMap::new() }),
        })
    }

    pub fn resources(&self) -> &Resources {
        &self.res
    }

    pub fn handlers(&self) -> &Handlers {
        &self.handlers
    }

    /// Calls the ingest function as API Gateway would for `POST /v1/records`; returns status and body.
    pub async fn post_records(&self, body: &str) -> (u16, Value) {
        let event = super::http_event("POST", "/v1/records", "", Some(body), None);
        match ingest::handle(&self.handlers.ingest, event).await {
            Ok(resp) => {
                let status = resp.get("statusCode").and_then(Value::as_u64).unwrap_or(0) as u16;
                let body = resp.get("body").and_then(Value::as_str).and_then(|b| serde_json::from_str(b).ok());
                (status, body.unwrap_or(Value::Null))
            }
            Err(e) => (0, json!({"error": e.to_string()})),
        }
    }

    /// One poll of one SQS event source; returns how many messages were handled.
    async fn poll_queue(
        &self,
        binary: &str,
        queue_url: &str,
        batch: usize,
        partial: bool,
        stats: &mut RunStats,
    ) -> Result<usize, LocalError> {
        let out = self
            .sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(batch.clamp(1, 10) as i32)
            .visibility_timeout(self.visibility_timeout)
            .wait_time_seconds(0)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(sqs_err)?;
        let messages = out.messages();
        if messages.is_empty() {
            return Ok(0);
        }
        // Lambda's pollers are billed for the receives that return messages and the deletes (an
        // idle queue's empty long polls cost the same whatever the volume, so they are not counted).
        let bytes = messages.iter().map(|m| m.body().map_or(0, str::len)).sum();
        crate::capacity::meter().sqs("ReceiveMessage", messages.len() as u64, bytes);
        // Queue URLs end in `{account}/{name}` on AWS, moto and LocalStack alike.
        let mut path = queue_url.trim_end_matches('/').rsplit('/');
        let (name, account) = (path.next().unwrap_or(""), path.next().unwrap_or(""));
        let arn = format!("arn:aws:sqs:{}:{account}:{name}", self.res.region);
        let records: Vec<Value> = messages
            .iter()
            .map(|m| {
                let attrs: BTreeMap<String, String> = m
                    .attributes()
                    .map(|a| a.iter().map(|(k, v)| (k.as_str().to_owned(), v.clone())).collect())
                    .unwrap_or_default();
                // Message attributes as Lambda's SQS event carries them (string values only: the
                // hub sends no binary attributes).
                let message_attrs: serde_json::Map<String, Value> = m
                    .message_attributes()
                    .map(|a| {
                        a.iter()
                            .map(|(k, v)| {
                                let value = json!({"stringValue": v.string_value(), "dataType": v.data_type(),
                                                   "stringListValues": [], "binaryListValues": []});
                                (k.clone(), value)
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                json!({
                    "messageId": m.message_id(), "receiptHandle": m.receipt_handle(), "body": m.body(),
                    "attributes": attrs, "messageAttributes": message_attrs, "md5OfBody": m.md5_of_body(),
                    "eventSource": "aws:sqs", "eventSourceARN": arn, "awsRegion": self.res.region,
                })
            })
            .collect();
        let event: SqsEvent = serde_json::from_value(json!({"Records": records})).map_err(LocalError::Resources)?;
        stats.invocations += 1;
        stats.messages += messages.len();
        let response = match binary {
            "mdm-ingest" => ingest::handle_sqs(&self.handlers.ingest, event).await,
            "mdm-match" => matcher::handle_sqs(&self.handlers.matcher, event).await,
            "mdm-merge" => merger::handle_sqs(&self.handlers.merger, event).await,
            "mdm-erasure" => erasure::handle_sqs(&self.handlers.erasure, event).await,
            "mdm-files" => files::handle_sqs(&self.handlers.files, event, files::Deadline::none()).await,
            other => return Err(LocalError::Bootstrap(format!("no local handler for {other}"))),
        };
        // Without ReportBatchItemFailures, Lambda ignores the response of a successful invocation
        // and deletes the whole batch.
        let failed: Vec<&str> = if partial {
            response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect()
        } else {
            Vec::new()
        };
        stats.failures_reported += failed.len();
        let entries: Vec<DeleteMessageBatchRequestEntry> = messages
            .iter()
            .filter(|m| !failed.contains(&m.message_id().unwrap_or("")))
            .enumerate()
            .filter_map(|(i, m)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(m.receipt_handle().unwrap_or(""))
                    .build()
                    .ok()
            })
            .collect();
        if !entries.is_empty() {
            crate::capacity::meter().sqs("DeleteMessageBatch", entries.len() as u64, 0);
            self.sqs
                .delete_message_batch()
                .queue_url(queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(sqs_err)?;
        }
        Ok(messages.len())
    }

    /// One poll of the stream; returns how many records were handed to the publisher.
    async fn poll_stream(
        &self,
        stream_arn: &str,
        batch: usize,
        max_retries: i64,
        on_failure: Option<&str>,
        filters: &[Value],
        stats: &mut RunStats,
    ) -> Result<usize, LocalError> {
        let mut state = self.stream.lock().await;
        let desc = self.streams.describe_stream().stream_arn(stream_arn).send().await.map_err(stream_err)?;
        let shards: Vec<String> = desc
            .stream_description()
            .map(|d| d.shards().iter().filter_map(|s| s.shard_id().map(str::to_owned)).collect())
            .unwrap_or_default();
        let mut handled = 0;
        // A page whose records the filters all drop is passed over at once, as Lambda's
        // event-source mapping does: the same shard is read again, up to this many pages.
        let mut pages = shards.len() * 1_000;
        let mut queue = std::collections::VecDeque::from(shards);
        while let Some(shard) = queue.pop_front() {
            let mut req = self.streams.get_shard_iterator().stream_arn(stream_arn).shard_id(&shard);
            req = match state.positions.get(&shard) {
                Some((kind, seq)) => req.shard_iterator_type(kind.clone()).sequence_number(seq),
                None => req.shard_iterator_type(ShardIteratorType::TrimHorizon),
            };
            let iterator = req.send().await.map_err(stream_err)?.shard_iterator.unwrap_or_default();
            let out = self
                .streams
                .get_records()
                .shard_iterator(&iterator)
                .limit(batch.clamp(1, 1000) as i32)
                .send()
                .await
                .map_err(stream_err)?;
            let records = out.records();
            if records.is_empty() {
                continue;
            }
            let lambda_records: Vec<Value> = records
                .iter()
                .map(|r| {
                    let d = r.dynamodb();
                    let keys: serde_json::Map<String, Value> = d
                        .and_then(|d| d.keys())
                        .map(|k| {
                            k.iter()
                                .filter_map(|(name, v)| v.as_s().ok().map(|s| (name.clone(), json!({"S": s}))))
                                .collect()
                        })
                        .unwrap_or_default();
                    json!({
                        "eventID": r.event_id(), "eventName": r.event_name().map(|e| e.as_str()),
                        "eventVersion": "1.1", "eventSource": "aws:dynamodb", "awsRegion": self.res.region,
                        "eventSourceARN": stream_arn,
                        "dynamodb": {"Keys": keys, "SequenceNumber": d.and_then(|d| d.sequence_number()),
                                     "SizeBytes": d.and_then(|d| d.size_bytes()).unwrap_or(0),
                                     "StreamViewType": "KEYS_ONLY", "ApproximateCreationDateTime": 0.0},
                    })
                })
                .collect();
            let last_seq =
                records.last().and_then(|r| r.dynamodb()).and_then(|d| d.sequence_number()).map(str::to_owned);
            let selected: Vec<Value> = lambda_records
                .into_iter()
                .filter(|r| filters.is_empty() || filters.iter().any(|f| filter_matches(f, r)))
                .collect();
            let after_last = last_seq.map(|q| (ShardIteratorType::AfterSequenceNumber, q));
            if selected.is_empty() {
                if let Some(p) = after_last {
                    state.positions.insert(shard.clone(), p);
                }
                if pages > 0 {
                    pages -= 1;
                    queue.push_front(shard);
                } else {
                    // Read, not idle: the next round goes on.
                    handled += records.len();
                }
                continue;
            }
            let event = serde_json::from_value(json!({"Records": selected})).map_err(LocalError::Resources)?;
            stats.invocations += 1;
            stats.stream_records += selected.len();
            handled += selected.len();
            let response = publisher::handle_stream(&self.handlers.publisher, event).await;
            match response.batch_item_failures.first().and_then(|f| f.item_identifier.clone()) {
                None => {
                    if let Some(p) = after_last {
                        state.positions.insert(shard.clone(), p);
                    }
                }
                Some(failed_seq) => {
                    stats.failures_reported += 1;
                    let n = state.attempts.entry(failed_seq.clone()).or_default();
                    *n += 1;
                    if max_retries >= 0 && *n > max_retries {
                        // Give up on this record: to the on-failure destination, then go past it.
                        if let Some(q) = on_failure {
                            let body = json!({"streamArn": stream_arn, "shardId": shard, "sequenceNumber": failed_seq,
                                              "reason": "retries exhausted"});
                            self.sqs
                                .send_message()
                                .queue_url(q)
                                .message_body(body.to_string())
                                .send()
                                .await
                                .map_err(sqs_err)?;
                        }
                        state.positions.insert(shard.clone(), (ShardIteratorType::AfterSequenceNumber, failed_seq));
                    } else {
                        state.positions.insert(shard.clone(), (ShardIteratorType::AtSequenceNumber, failed_seq));
                    }
                }
            }
        }
        Ok(handled)
    }

    /// One round over every event source of every function.
    pub async fn round(&self, stats: &mut RunStats) -> Result<usize, LocalError> {
        let mut handled = 0;
        stats.rounds += 1;
        for f in self.res.functions.values() {
            for src in &f.event_sources {
                handled += match src {
                    EventSource::Sqs { queue_url, batch_size, report_batch_item_failures, .. } => {
                        self.poll_queue(&f.binary, queue_url, *batch_size, *report_batch_item_failures, stats).await?
                    }
                    EventSource::DynamoDb {
                        stream_arn,
                        batch_size,
                        maximum_retry_attempts,
                        on_failure_queue_url,
                        filters,
                        ..
                    } => {
                        self.poll_stream(
                            stream_arn,
                            *batch_size,
                            *maximum_retry_attempts,
                            on_failure_queue_url.as_deref(),
                            filters,
                            stats,
                        )
                        .await?
                    }
                    EventSource::Http { .. } => 0,
                };
            }
        }
        Ok(handled)
    }

    /// Polls one function's queues until they are empty (its messages handled; what it sends on
    /// to other functions' queues waits there).
    pub async fn run_function_until_idle(&self, binary: &str) -> Result<RunStats, LocalError> {
        let mut stats = RunStats::default();
        let f = self
            .res
            .function_by_binary(binary)
            .ok_or_else(|| LocalError::Bootstrap(format!("no function {binary}")))?;
        loop {
            stats.rounds += 1;
            let mut handled = 0;
            for src in &f.event_sources {
                if let EventSource::Sqs { queue_url, batch_size, report_batch_item_failures, .. } = src {
                    handled += self
                        .poll_queue(&f.binary, queue_url, *batch_size, *report_batch_item_failures, &mut stats)
                        .await?;
                }
            }
            if handled == 0 {
                return Ok(stats);
            }
        }
    }

    /// Messages waiting or in flight on the functions' queues.
    pub async fn in_flight(&self) -> Result<usize, LocalError> {
        let mut n = 0;
        for f in self.res.functions.values() {
            for src in &f.event_sources {
                if let EventSource::Sqs { queue_url, .. } = src {
                    let out = self
                        .sqs
                        .get_queue_attributes()
                        .queue_url(queue_url)
                        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
                        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
                        .send()
                        .await
                        .map_err(sqs_err)?;
                    for v in out.attributes().map(|a| a.values().cloned().collect::<Vec<_>>()).unwrap_or_default() {
                        n += v.parse::<usize>().unwrap_or(0);
                    }
                }
            }
        }
        Ok(n)
    }

    /// Polls until every queue is empty and the stream has nothing new; `LocalError::Busy` if `timeout` passes first.
    pub async fn run_until_idle(&self, timeout: Duration) -> Result<RunStats, LocalError> {
        let mut stats = RunStats::default();
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let handled = self.round(&mut stats).await?;
            if handled == 0 {
                if self.in_flight().await? == 0 {
                    // One more round: the stream may have records written by the last handlers.
                    if self.round(&mut stats).await? == 0 {
                        return Ok(stats);
                    }
                } else {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            }
            if std::time::Instant::now() > deadline {
                return Err(LocalError::Busy { limit: timeout, invocations: stats.invocations });
            }
        }
    }
}
