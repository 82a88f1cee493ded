//! SQS: sending hub-internal messages in batches, and dead-lettering a message with its reason.
//! SQS's own redrive carries no reason, so a handler that knows a message can never succeed
//! writes it to the DLQ itself, with the reason as message attributes, and deletes the original.

use aws_sdk_sqs::types::{
    MessageAttributeValue, MessageSystemAttributeNameForSends, MessageSystemAttributeValue,
    SendMessageBatchRequestEntry,
};
use aws_sdk_sqs::Client;
use std::collections::HashMap;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("SQS {op} failed: {detail}")]
    Sqs { op: &'static str, detail: String },
    #[error("SQS rejected {0} messages of a batch after retries")]
    Rejected(usize),
}

/// Why a message was dead-lettered: a machine-readable code and a message without data values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetterReason {
    pub code: String,
    pub message: String,
    pub handler: &'static str,
}

#[derive(Clone)]
pub struct Queues {
    client: Client,
}

fn sqs_err(op: &'static str) -> impl Fn(String) -> QueueError {
    move |detail| QueueError::Sqs { op, detail: detail.chars().take(300).collect() }
}

fn attr(v: impl Into<String>) -> Result<MessageAttributeValue, QueueError> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(v)
        .build()
        .map_err(|e| sqs_err("build")(e.to_string()))
}

/// The message attribute that carries a record's correlation id from handler to handler (the body
/// carries it too; the attribute lets queue tooling and log queries follow it without parsing).
pub const CORRELATION_ATTRIBUTE: &str = "mdm-correlation-id";

/// A message to send: its body, and the correlation id it travels with.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub body: String,
    pub correlation_id: Option<String>,
}

impl Outgoing {
    pub fn new(body: String, correlation_id: impl Into<String>) -> Self {
        Self { body, correlation_id: Some(correlation_id.into()) }
    }

    /// A message without a correlation id.
    pub fn plain(body: String) -> Self {
        Self { body, correlation_id: None }
    }

    fn attributes(&self) -> Result<Option<HashMap<String, MessageAttributeValue>>, QueueError> {
        match &self.correlation_id {
            Some(id) => Ok(Some(HashMap::from([(CORRELATION_ATTRIBUTE.to_owned(), attr(id)?)]))),
            None => Ok(None),
        }
    }
}

/// The X-Ray trace header of the running invocation (`_X_AMZN_TRACE_ID`, set by the Lambda
/// runtime), as the `AWSTraceHeader` system attribute, so the next function's trace continues it.
fn trace_header() -> Result<Option<HashMap<MessageSystemAttributeNameForSends, MessageSystemAttributeValue>>, QueueError>
{
    let Some(header) = std::env::var("_X_AMZN_TRACE_ID").ok().filter(|h| !h.trim().is_empty()) else {
        return Ok(None);
    };
    let value = MessageSystemAttributeValue::builder()
        .data_type("String")
        .string_value(header)
        .build()
        .map_err(|e| sqs_err("build")(e.to_string()))?;
    Ok(Some(HashMap::from([(MessageSystemAttributeNameForSends::AwsTraceHeader, value)])))
}

impl Queues {
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Sends messages in batches of 10, retrying the entries SQS failed (3 rounds).
    pub async fn send_all(&self, queue_url: &str, messages: Vec<Outgoing>) -> Result<(), QueueError> {
        for chunk in messages.chunks(10) {
            let mut pending: Vec<(String, &Outgoing)> =
                chunk.iter().enumerate().map(|(i, m)| (i.to_string(), m)).collect();
            for round in 0..4 {
                if pending.is_empty() {
                    break;
                }
                if round > 0 {
                    tokio::time::sleep(Duration::from_millis(50 << round)).await;
                }
                let entries = pending
                    .iter()
                    .map(|(id, m)| {
                        SendMessageBatchRequestEntry::builder()
                            .id(id)
                            .message_body(&m.body)
                            .set_message_attributes(m.attributes()?)
                            .set_message_system_attributes(trace_header()?)
                            .build()
                            .map_err(|e| sqs_err("build")(e.to_string()))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                crate::capacity::meter().sqs(
                    "SendMessageBatch",
                    pending.len() as u64,
                    pending.iter().map(|(_, m)| m.body.len()).sum(),
                );
                let out = self
                    .client
                    .send_message_batch()
                    .queue_url(queue_url)
                    .set_entries(Some(entries))
                    .send()
                    .await
                    .map_err(|e| sqs_err("SendMessageBatch")(crate::errors::describe("SendMessageBatch", &e)))?;
                let failed: Vec<&str> = out.failed().iter().map(|f| f.id()).collect();
                pending.retain(|(id, _)| failed.contains(&id.as_str()));
            }
            if !pending.is_empty() {
                return Err(QueueError::Rejected(pending.len()));
            }
        }
        Ok(())
    }

    pub async fn send(&self, queue_url: &str, message: Outgoing) -> Result<(), QueueError> {
        crate::capacity::meter().sqs("SendMessage", 1, message.body.len());
        self.client
            .send_message()
            .queue_url(queue_url)
            .set_message_attributes(message.attributes()?)
            .set_message_system_attributes(trace_header()?)
            .message_body(message.body)
            .send()
            .await
            .map_err(|e| sqs_err("SendMessage")(crate::errors::describe("SendMessage", &e)))?;
        Ok(())
    }

    /// Writes a message to a dead-letter queue with its reason as message attributes
    /// (`mdm-error-code`, `mdm-error-message`, `mdm-handler`).
    pub async fn dead_letter(&self, dlq_url: &str, body: &str, reason: &DeadLetterReason) -> Result<(), QueueError> {
        crate::capacity::meter().sqs("SendMessage", 1, body.len() + reason.message.len());
        self.client
            .send_message()
            .queue_url(dlq_url)
            .message_body(body)
            .message_attributes("mdm-error-code", attr(&reason.code)?)
            .message_attributes("mdm-error-message", attr(&reason.message)?)
            .message_attributes("mdm-handler", attr(reason.handler)?)
            .send()
            .await
            .map_err(|e| sqs_err("SendMessage")(crate::errors::describe("SendMessage", &e)))?;
        Ok(())
    }
}
