//! The Lambda handlers' logic. `functions/*/src/main.rs` only builds a [`Ctx`] and hands events
//! here; tests and the local runner call the same functions.

pub mod api;
pub mod auth;
pub mod erasure;
pub mod files;
pub mod http;
pub mod ingest;
pub mod matcher;
pub mod merger;
pub mod publisher;
pub mod steward;

use crate::bus::EventPublisher;
use crate::config::{ConfigError, Settings};
use crate::dynamo::DynamoStore;
use crate::metrics::Metrics;
use crate::sqs::{DeadLetterReason, Queues};
use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsMessage};
use mdm_core::Hub;
use std::sync::Arc;
use tracing::{info, warn};

/// Everything a handler needs, built once per Lambda instance.
pub struct Ctx {
    pub hub: Hub<DynamoStore>,
    pub queues: Queues,
    pub bus: EventPublisher,
    pub settings: Settings,
    pub metrics: Metrics,
    /// Bulk files' objects and reports (the files function's).
    pub s3: aws_sdk_s3::Client,
}

impl Ctx {
    pub fn new(sdk: &aws_config::SdkConfig, settings: Settings, function: &'static str) -> Result<Self, ConfigError> {
        let registry = Arc::new(settings.registry()?);
        settings.files.feeds.check(&registry).map_err(ConfigError::Feeds)?;
        let block_cap = registry
            .entities()
            .filter_map(|e| registry.get(e))
            .map(|s| s.matching.max_block_size)
            .max()
            .unwrap_or(crate::dynamo::DEFAULT_BLOCK_CAP);
        let store =
            DynamoStore::new(aws_sdk_dynamodb::Client::new(sdk), settings.table.clone()).with_block_cap(block_cap);
        // The match handler's reads are advisory (half the read units): the merge handler
        // rechecks a NEW or REVIEW decision against the index and writes conditionally. It reads
        // the index and the claims eventually consistently too, with this instance's own recent
        // writes laid over (`mdm_aws::recent`); golden and source records stay strong.
        let store = match function {
            "match" => store.eventual_reads(),
            "merge" => store.merge_reads(),
            _ => store,
        };
        let config = mdm_core::HubConfig {
            suppression_secrets: settings.suppression_secrets.clone(),
            suppression_mode: settings.suppression_mode,
            ..mdm_core::HubConfig::default()
        };
        Ok(Self {
            hub: Hub::new(registry, store).with_config(config),
            queues: Queues::new(aws_sdk_sqs::Client::new(sdk)),
            bus: EventPublisher::new(aws_sdk_eventbridge::Client::new(sdk), settings.event_bus.clone()),
            metrics: Metrics::new(settings.metrics_namespace.clone(), function),
            s3: s3_client(sdk),
            settings,
        })
    }

    /// From the Lambda environment (the SAM template sets the variables).
    pub async fn from_env(function: &'static str) -> Result<Self, ConfigError> {
        let settings = Settings::from_env()?;
        let sdk = crate::config::sdk_config().await;
        Self::new(&sdk, settings, function)
    }
}

/// The S3 client. On an emulator (an `AWS_ENDPOINT_URL` on this machine) buckets are addressed
/// by path, as emulators serve them; on AWS by virtual host.
fn s3_client(sdk: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    let local = sdk.endpoint_url().is_some_and(crate::config::is_loopback);
    aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(sdk).force_path_style(local).build())
}

/// What became of one SQS message.
#[derive(Debug)]
pub enum Settle {
    /// Processed (or deliberately dropped, e.g. stale): delete it.
    Done,
    /// Could succeed later: leave it for redelivery (SQS moves it to the DLQ after max receives).
    Retry(String),
    /// Can never succeed: write it to the DLQ with its reason, then delete it.
    DeadLetter(DeadLetterReason),
}

/// Receives after which the ingest, match and merge queues' redrive moves a message to its DLQ
/// (the template's `maxReceiveCount`; `tests/template_check.py` checks that they agree). On that
/// receive a handler dead-letters a message it would retry, with the reason, itself.
pub const INGEST_MAX_RECEIVES: u32 = 5;
pub const MATCH_MAX_RECEIVES: u32 = 5;
pub const MERGE_MAX_RECEIVES: u32 = 8;
pub const FILES_MAX_RECEIVES: u32 = 5;

/// How often SQS has delivered this message (1 on the first delivery).
pub fn receives(msg: &SqsMessage) -> u32 {
    msg.attributes.get("ApproximateReceiveCount").and_then(|v| v.parse().ok()).unwrap_or(1)
}

/// A retry on the queue's last receive becomes a dead letter with its reason
/// (`retries_exhausted`): the queue's own redrive would move the message without one.
pub fn on_last_receive(outcome: Settle, receives: u32, max_receives: u32, handler: &'static str) -> Settle {
    match outcome {
        Settle::Retry(why) if receives >= max_receives => Settle::DeadLetter(reason(
            handler,
            "retries_exhausted",
            format!("still failing after {receives} receives: {why}"),
        )),
        other => other,
    }
}

/// Applies a message's outcome; returns the batch item failure to report, if any.
pub async fn settle(ctx: &Ctx, msg: &SqsMessage, outcome: Settle, dlq_url: &str) -> Option<BatchItemFailure> {
    let id = msg.message_id.clone().unwrap_or_default();
    let fail = |id: String| {
        let mut f = BatchItemFailure::default();
        f.item_identifier = id;
        Some(f)
    };
    match outcome {
        Settle::Done => None,
        Settle::Retry(why) => {
            warn!(message_id = %id, reason = %why, "message will be retried");
            ctx.metrics.incr("MessagesRetried");
            fail(id)
        }
        Settle::DeadLetter(reason) => {
            let body = msg.body.as_deref().unwrap_or("");
            match ctx.queues.dead_letter(dlq_url, body, &reason).await {
                Ok(()) => {
                    info!(message_id = %id, code = %reason.code, "message dead-lettered");
                    ctx.metrics.incr("MessagesDeadLettered");
                    None
                }
                Err(e) => {
                    warn!(message_id = %id, error = %e, "dead-lettering failed; will retry");
                    fail(id)
                }
            }
        }
    }
}

/// Runs `one` on every message of an SQS event, each in its own tracing span, settles each
/// outcome (delete, retry, or dead-letter with its reason) and answers with the partial batch
/// failures, so one bad message never fails the others.
pub async fn each_message<'c, F>(
    ctx: &'c Ctx,
    event: aws_lambda_events::sqs::SqsEvent,
    (dlq_url, max_receives): (&str, u32),
    handler: &'static str,
    one: F,
) -> SqsBatchResponse
where
    F: Fn(&'c Ctx, String) -> std::pin::Pin<Box<dyn std::future::Future<Output = Settle> + Send + 'c>>,
{
    use tracing::Instrument;
    let mut failures = Vec::new();
    for msg in &event.records {
        let id = msg.message_id.clone().unwrap_or_default();
        let body = msg.body.clone().unwrap_or_default();
        // The correlation id the sender attached (`mdm-correlation-id`): every line this message
        // logs carries it, so one record can be followed from handler to handler.
        let correlation_id = msg
            .message_attributes
            .get(crate::sqs::CORRELATION_ATTRIBUTE)
            .and_then(|a| a.string_value.clone())
            .unwrap_or_default();
        let span = tracing::info_span!("message", handler, message_id = %id, correlation_id = %correlation_id);
        let outcome = one(ctx, body).instrument(span).await;
        let outcome = on_last_receive(outcome, receives(msg), max_receives, handler);
        if let Some(f) = settle(ctx, msg, outcome, dlq_url).await {
            failures.push(f);
        }
    }
    ctx.metrics.flush();
    batch_response(failures)
}

pub fn batch_response(failures: Vec<BatchItemFailure>) -> SqsBatchResponse {
    let mut r = SqsBatchResponse::default();
    r.batch_item_failures = failures;
    r
}

pub(crate) fn reason(handler: &'static str, code: &str, message: impl Into<String>) -> DeadLetterReason {
    DeadLetterReason { code: code.to_owned(), message: message.into(), handler }
}

/// What invoked a function that has both an SQS and an HTTP trigger.
pub enum Trigger {
    Sqs(aws_lambda_events::sqs::SqsEvent),
    Http(Box<aws_lambda_events::apigw::ApiGatewayV2httpRequest>),
}

/// An SQS event has `Records`; anything else is an HTTP API (payload v2) request.
pub fn trigger(payload: serde_json::Value) -> Result<Trigger, serde_json::Error> {
    if payload.get("Records").is_some() {
        Ok(Trigger::Sqs(serde_json::from_value(payload)?))
    } else {
        Ok(Trigger::Http(Box::new(serde_json::from_value(payload)?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A retry on the last receive is dead-lettered with its reason; earlier receives, and other
    /// outcomes, are left as they are.
    #[test]
    fn the_last_receive_dead_letters_a_retry_with_its_reason() {
        let retry = || Settle::Retry("gave up after 32 conflicting attempts".into());
        assert!(matches!(on_last_receive(retry(), 7, MERGE_MAX_RECEIVES, "merge"), Settle::Retry(_)));
        match on_last_receive(retry(), MERGE_MAX_RECEIVES, MERGE_MAX_RECEIVES, "merge") {
            Settle::DeadLetter(r) => {
                assert_eq!((r.code.as_str(), r.handler), ("retries_exhausted", "merge"));
                assert!(r.message.contains("32 conflicting attempts"), "{}", r.message);
            }
            other => panic!("expected a dead letter, got {other:?}"),
        }
        assert!(matches!(on_last_receive(Settle::Done, 99, 5, "match"), Settle::Done));
        let mut m = SqsMessage::default();
        assert_eq!(receives(&m), 1, "no count: the first delivery");
        m.attributes.insert("ApproximateReceiveCount".into(), "5".into());
        assert_eq!(receives(&m), 5);
    }
}
