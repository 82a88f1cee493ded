//! Files: S3 `ObjectCreated` notifications (through the files queue) of CSV or JSON Lines files
//! under `incoming/<entityType>/<system>/`. Each file is read as a stream, in chunks of rows that
//! go through the ingest path ([`super::ingest::ingest_records`]: validation, suppression,
//! ordering by `sourceSeq`, match messages). After each chunk the file's checkpoint is saved in
//! the table; an invocation running out of rows or time sends the notification to its queue again
//! and the next one goes on from the checkpoint (by byte offset; a gzip file by row number). At
//! the end a report (`reports/…json`) is written, a `FileIngested` event published, and the file
//! deleted (retention 0). The same object version notified again changes nothing.

use super::ingest::{ingest_records, IngestSummary, SUPPRESSED};
use super::{reason, Ctx, Settle};
use crate::sqs::Outgoing;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::ByteStream;
use mdm_core::files::object::{self, FileRef};
use mdm_core::files::report::{FileProgress, FileReport, ObjectId, RowRejection, FILE_INGESTED};
use mdm_core::files::rows::{Columns, Position, Row, Rows, Shape, Start};
use mdm_core::files::FileError;
use serde_json::Value;
use std::collections::BTreeSet;
use std::io::Read;
use std::time::{Duration, Instant};
use tracing::{info, info_span, warn, Instrument};

const HANDLER: &str = "files";
/// Rows a chunk: ingested together, then the checkpoint saved.
pub const CHUNK_ROWS: usize = super::ingest::MAX_RECORDS;
/// Parts of a chunk ingested at once (a row's `sourceSeq`, not its arrival, decides which
/// version of a record wins, so they may overlap).
const PARALLEL_PARTS: usize = 4;
/// An invocation with less time left than this hands the file on after its current chunk.
const TIME_MARGIN: Duration = Duration::from_secs(90);

/// When the invocation must be done by (Lambda's deadline); `none` for no limit.
#[derive(Debug, Clone, Copy)]
pub struct Deadline(Option<Instant>);

impl Deadline {
    pub fn none() -> Self {
        Self(None)
    }

    /// From Lambda's deadline (milliseconds since the epoch).
    pub fn at_epoch_ms(deadline_ms: u64) -> Self {
        let now = mdm_core::time::now_ms();
        let left = i64::try_from(deadline_ms).unwrap_or(i64::MAX).saturating_sub(now).max(0);
        Self(Some(Instant::now() + Duration::from_millis(left as u64)))
    }

    fn near(&self) -> bool {
        self.0.is_some_and(|d| d.saturating_duration_since(Instant::now()) < TIME_MARGIN)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    #[error(transparent)]
    Store(#[from] mdm_core::store::StoreError),
    #[error(transparent)]
    Ingest(#[from] super::ingest::IngestError),
    #[error(transparent)]
    Queue(#[from] crate::sqs::QueueError),
    #[error("S3 {0} failed: {1}")]
    S3(&'static str, String),
    #[error("reading the file failed: {0}")]
    Read(String),
    #[error("publishing FileIngested failed: {0}")]
    Publish(String),
    #[error("the files function has no {0} (MDM_FILES_BUCKET and MDM_FILES_QUEUE_URL)")]
    NotConfigured(&'static str),
}

/// What an object's turn came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Turn {
    /// Read to its end (or failed for good), its report written; or nothing to do.
    Finished,
    /// More rows to read: the notification goes to the queue again.
    Continue,
    /// Another invocation is further on with it: this one stops.
    Yielded,
}

fn s3_err<E: ProvideErrorMetadata>(op: &'static str) -> impl Fn(E) -> FilesError {
    move |e| FilesError::S3(op, e.code().or(e.message()).unwrap_or("unknown error").to_owned())
}

/// The objects an SQS message names: an S3 event notification (`Records[].s3`) of created
/// objects; S3's `s3:TestEvent` names none.
pub fn notified_objects(body: &str) -> Result<Vec<ObjectId>, String> {
    let v: Value =
        serde_json::from_str(body).map_err(|e| format!("not JSON (line {}, column {})", e.line(), e.column()))?;
    if v.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        return Ok(Vec::new());
    }
    let records = v.get("Records").and_then(Value::as_array).ok_or("not an S3 event notification (no Records)")?;
    let mut out = Vec::new();
    for r in records {
        if !r.get("eventName").and_then(Value::as_str).is_some_and(|n| n.starts_with("ObjectCreated")) {
            continue;
        }
        let s3 = r.get("s3").ok_or("a record without s3")?;
        let bucket = s3.pointer("/bucket/name").and_then(Value::as_str).ok_or("a record without s3.bucket.name")?;
        let key = s3.pointer("/object/key").and_then(Value::as_str).ok_or("a record without s3.object.key")?;
        let etag = s3.pointer("/object/eTag").and_then(Value::as_str).unwrap_or_default();
        let version_id =
            s3.pointer("/object/versionId").and_then(Value::as_str).filter(|v| !v.is_empty() && *v != "null");
        out.push(ObjectId {
            bucket: bucket.to_owned(),
            key: decode_key(key),
            etag: etag.trim_matches('"').to_owned(),
            version_id: version_id.map(str::to_owned),
        });
    }
    Ok(out)
}

/// An S3 notification's key is URL-encoded, spaces as `+`.
fn decode_key(key: &str) -> String {
    url::form_urlencoded::parse(key.as_bytes())
        .map(|(k, v)| if v.is_empty() { k.into_owned() } else { format!("{k}={v}") })
        .collect::<Vec<_>>()
        .join("&")
}

/// The files queue's SQS event (batch size 1: one notification an invocation).
pub async fn handle(ctx: &Ctx, payload: Value, deadline: Deadline) -> Result<Value, serde_json::Error> {
    let event: aws_lambda_events::sqs::SqsEvent = serde_json::from_value(payload)?;
    serde_json::to_value(handle_sqs(ctx, event, deadline).await)
}

/// [`handle`] for a parsed event (the local runner's entry).
pub async fn handle_sqs(
    ctx: &Ctx,
    event: aws_lambda_events::sqs::SqsEvent,
    deadline: Deadline,
) -> aws_lambda_events::sqs::SqsBatchResponse {
    let dlq = ctx.settings.files.dlq_url.clone().unwrap_or_else(|| ctx.settings.ingest_dlq_url.clone());
    super::each_message(ctx, event, (&dlq, super::FILES_MAX_RECEIVES), HANDLER, move |ctx, body| {
        Box::pin(async move { one_message(ctx, &body, deadline).await })
    })
    .await
}

async fn one_message(ctx: &Ctx, body: &str, deadline: Deadline) -> Settle {
    let objects = match notified_objects(body) {
        Ok(o) => o,
        Err(why) => return Settle::DeadLetter(reason(HANDLER, "invalid_message", why)),
    };
    let mut again = false;
    for object in &objects {
        let span = info_span!("file", key = %object.key);
        match process_object(ctx, object, deadline).instrument(span).await {
            Ok(Turn::Continue) => again = true,
            Ok(Turn::Finished | Turn::Yielded) => {}
            Err(e) => return Settle::Retry(e.to_string()),
        }
    }
    if again {
        let Some(queue) = ctx.settings.files.queue_url.as_deref() else {
            return Settle::Retry(FilesError::NotConfigured("queue").to_string());
        };
        if let Err(e) = ctx.queues.send_all(queue, vec![Outgoing { body: body.to_owned(), correlation_id: None }]).await
        {
            return Settle::Retry(e.to_string());
        }
    }
    Settle::Done
}

/// One object's turn: reads on from its checkpoint for as long as the invocation may.
pub async fn process_object(ctx: &Ctx, object: &ObjectId, deadline: Deadline) -> Result<Turn, FilesError> {
    if !object::is_incoming(&object.key) {
        return Ok(Turn::Finished);
    }
    let store = ctx.hub.store();
    let name = object.checkpoint_name();
    let saved = store.file_progress(&name).await?;
    if saved.done {
        info!("file already ingested");
        return Ok(Turn::Finished);
    }
    let mut progress = saved.clone();
    progress.invocations += 1;
    if progress.started_at_ms == 0 {
        progress.started_at_ms = ctx.hub.now_ms();
    }
    let file = match object::parse(&object.key) {
        Ok(f) => f,
        Err(e) => return finish(ctx, object, None, Err(e), &saved, progress).await,
    };
    let Some(schema) = ctx.hub.registry().get(&file.entity) else {
        let e = FileError::new("unknown_entity_type", format!("the hub has no entity type '{}'", file.entity));
        return finish(ctx, object, Some(&file), Err(e), &saved, progress).await;
    };
    let Some(feed) = ctx.settings.files.feeds.get(&file.entity, &file.system) else {
        let e = FileError::new(
            "unknown_source_system",
            format!(
                "no file feed is configured for source system '{}' of entity type '{}' (FileFeeds)",
                file.system, file.entity
            ),
        );
        return finish(ctx, object, Some(&file), Err(e), &saved, progress).await;
    };
    let Some(body) = open_object(ctx, object, &file, &progress).await? else {
        // Replaced by a newer object under the same key (whose own notification reads it) or
        // gone: nothing of this version to read.
        warn!("the notified version of the file is no longer there");
        return Ok(Turn::Finished);
    };
    let shape =
        Shape { entity: file.entity.clone(), system: file.system.clone(), seq_base: Shape::seq_base_of(body.time_s) };
    let start = if file.gzip {
        Start::default()
    } else {
        Start { offset: progress.offset, line: progress.line, rows: progress.rows, header: progress.header.clone() }
    };
    let skip = if file.gzip { progress.rows } else { 0 };
    let limit = ctx.settings.files.rows_per_invocation.unwrap_or(u64::MAX);
    let chunk_rows = usize::try_from(limit).unwrap_or(usize::MAX).min(CHUNK_ROWS);
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Chunk, ReadFailure>>(2);
    let reader = tokio_util::io::SyncIoBridge::new(body.stream.into_async_read());
    let (format, gzip, feed_owned, schema_owned) = (file.format, file.gzip, feed.clone(), schema.clone());
    tokio::task::spawn_blocking(move || {
        let reader: Box<dyn Read + Send> =
            if gzip { Box::new(flate2::read::MultiGzDecoder::new(reader)) } else { Box::new(reader) };
        read_chunks(Rows::open(format, reader, &feed_owned, &schema_owned, shape, &start), skip, chunk_rows, &tx);
    });
    let principal = format!("file:{}", object.key);
    let mut saved = saved;
    let mut rows_now = 0u64;
    loop {
        let chunk = match rx.recv().await {
            Some(Ok(chunk)) => chunk,
            Some(Err(ReadFailure::File(e))) => return finish(ctx, object, Some(&file), Err(e), &saved, progress).await,
            Some(Err(ReadFailure::Broken(line, why))) => {
                let e =
                    FileError::new("unreadable_file", format!("the file cannot be read from line {line} on: {why}"));
                return finish(ctx, object, Some(&file), Err(e), &saved, progress).await;
            }
            Some(Err(ReadFailure::Io(why))) => return Err(FilesError::Read(why)),
            None => return Err(FilesError::Read("the reader stopped".into())),
        };
        let columns = Columns::new(feed, schema, chunk.header.clone()).map_err(|e| FilesError::Read(e.to_string()))?;
        ingest_chunk(ctx, &principal, &columns, &chunk.rows, &mut progress).await?;
        rows_now += chunk.rows.len() as u64;
        progress.offset = chunk.position.offset;
        progress.line = chunk.position.line;
        progress.rows = chunk.position.rows;
        progress.header = chunk.header;
        progress.ignored_columns.extend(chunk.ignored);
        if chunk.end {
            return finish(ctx, object, Some(&file), Ok(()), &saved, progress).await;
        }
        if !store.save_file_progress(&name, &saved, &progress).await? {
            info!("another invocation is further on with the file");
            return Ok(Turn::Yielded);
        }
        saved = progress.clone();
        saved_metrics(ctx, &chunk.rows);
        if rows_now >= limit || deadline.near() {
            info!(rows = progress.rows, line = progress.line, "handing the file on to the next invocation");
            return Ok(Turn::Continue);
        }
    }
}

fn saved_metrics(ctx: &Ctx, rows: &[Row]) {
    ctx.metrics.add("FileRowsRead", rows.len() as f64);
}

/// A notified object's body from where its checkpoint stands, with the object's time (seconds).
struct Body {
    stream: ByteStream,
    time_s: i64,
}

async fn open_object(
    ctx: &Ctx,
    object: &ObjectId,
    file: &FileRef,
    progress: &FileProgress,
) -> Result<Option<Body>, FilesError> {
    let mut get = ctx.s3.get_object().bucket(&object.bucket).key(&object.key);
    if !object.etag.is_empty() {
        get = get.if_match(format!("\"{}\"", object.etag));
    }
    if let Some(v) = &object.version_id {
        get = get.version_id(v);
    }
    if !file.gzip && progress.offset > 0 {
        get = get.range(format!("bytes={}-", progress.offset));
    }
    match get.send().await {
        Ok(out) => {
            let time_s = out.last_modified().map_or(0, |t| t.secs());
            Ok(Some(Body { stream: out.body, time_s }))
        }
        Err(e) => {
            let code = e.code().unwrap_or_default().to_owned();
            let status = e.raw_response().map(|r| r.status().as_u16());
            match (code.as_str(), status) {
                ("NoSuchKey" | "PreconditionFailed" | "NoSuchVersion", _) | (_, Some(404 | 412)) => Ok(None),
                // Read to its very end before: nothing left after the offset.
                ("InvalidRange", _) | (_, Some(416)) => {
                    Ok(Some(Body { stream: ByteStream::from_static(b""), time_s: 0 }))
                }
                _ => Err(s3_err("GetObject")(e)),
            }
        }
    }
}

struct Chunk {
    rows: Vec<Row>,
    position: Position,
    header: Option<Vec<String>>,
    ignored: BTreeSet<String>,
    end: bool,
}

enum ReadFailure {
    /// The file as a whole is wrong (its header): nothing read.
    File(FileError),
    /// The bytes stop making sense (a corrupt gzip stream), at this line.
    Broken(u64, String),
    /// Reading failed (the network): reading again may work.
    Io(String),
}

/// The reader's side (a blocking thread): chunks of rows into `tx` until the end, a failure, or
/// the receiver stops listening.
fn read_chunks<R: Read>(
    rows: Result<Rows<R>, FileError>,
    skip: u64,
    chunk_rows: usize,
    tx: &tokio::sync::mpsc::Sender<Result<Chunk, ReadFailure>>,
) {
    let mut rows = match rows {
        Ok(r) => r,
        Err(e) => {
            let _ = tx.blocking_send(Err(ReadFailure::File(e)));
            return;
        }
    };
    loop {
        let mut batch = Vec::with_capacity(chunk_rows);
        let mut end = false;
        while batch.len() < chunk_rows {
            match rows.next_row() {
                Ok(Some(row)) if row.number <= skip => {}
                Ok(Some(row)) => batch.push(row),
                Ok(None) => {
                    end = true;
                    break;
                }
                Err(e) => {
                    use std::io::ErrorKind::{InvalidData, InvalidInput, UnexpectedEof};
                    let failure = if matches!(e.kind(), InvalidData | InvalidInput | UnexpectedEof) {
                        ReadFailure::Broken(rows.position().line, e.to_string())
                    } else {
                        ReadFailure::Io(e.to_string())
                    };
                    let _ = tx.blocking_send(Err(failure));
                    return;
                }
            }
        }
        if batch.is_empty() && !end {
            continue;
        }
        let chunk = Chunk {
            rows: batch,
            position: rows.position(),
            header: rows.header().map(<[String]>::to_vec),
            ignored: rows.ignored_columns().clone(),
            end,
        };
        if tx.blocking_send(Ok(chunk)).is_err() || end {
            return;
        }
    }
}

/// A chunk's rows through the ingest path; their fate counted into `progress`.
async fn ingest_chunk(
    ctx: &Ctx,
    principal: &str,
    columns: &Columns,
    rows: &[Row],
    progress: &mut FileProgress,
) -> Result<(), FilesError> {
    progress.counts.read += rows.len() as u64;
    let mut records = Vec::with_capacity(rows.len());
    let mut lines = Vec::with_capacity(rows.len());
    for row in rows {
        match &row.record {
            Ok(r) => {
                records.push(r.clone());
                lines.push(row.line);
            }
            Err(rejection) => progress.reject(rejection.clone()),
        }
    }
    if records.is_empty() {
        return Ok(());
    }
    let part = records.len().div_ceil(PARALLEL_PARTS);
    let parts: Vec<(usize, &[Value])> = records.chunks(part).enumerate().map(|(i, p)| (i * part, p)).collect();
    let results = futures_util::future::join_all(parts.iter().map(|(_, p)| ingest_records(ctx, p, principal))).await;
    for ((first, _), result) in parts.iter().zip(results) {
        let summary: IngestSummary = result?;
        let c = &mut progress.counts;
        c.stored += summary.stored as u64;
        c.duplicates += summary.duplicates as u64;
        c.stale += summary.stale as u64;
        c.held += summary.held as u64;
        for r in summary.rejected {
            if r.code == SUPPRESSED {
                progress.counts.suppressed += 1;
                continue;
            }
            let line = lines[first + r.index];
            let column = r.field.as_deref().and_then(|f| columns.column_of(f));
            progress.reject(RowRejection { line, column, code: r.code.to_owned(), message: r.message });
        }
    }
    Ok(())
}

/// The end of a file's turn for good: its report written, `FileIngested` published, the
/// checkpoint marked done, the file deleted (retention 0). `outcome` is why it failed, if it did.
async fn finish(
    ctx: &Ctx,
    object: &ObjectId,
    file: Option<&FileRef>,
    outcome: Result<(), FileError>,
    saved: &FileProgress,
    mut progress: FileProgress,
) -> Result<Turn, FilesError> {
    let now = ctx.hub.now_ms();
    let report = match (outcome, file) {
        (Ok(()), Some(f)) => FileReport::ingested(object, f, &progress, now),
        (Ok(()), None) => return Ok(Turn::Finished),
        (Err(e), f) => {
            warn!(code = %e.code, "file not ingested");
            FileReport::failed(object, f, e, &progress, now)
        }
    };
    let text = serde_json::to_string_pretty(&report).map_err(|e| FilesError::Read(e.to_string()))?;
    ctx.s3
        .put_object()
        .bucket(&object.bucket)
        .key(&report.report_key)
        .content_type("application/json")
        .body(ByteStream::from(text.clone().into_bytes()))
        .send()
        .await
        .map_err(s3_err("PutObject"))?;
    let entry = crate::bus::RawEntry {
        id: object.checkpoint_name(),
        detail_type: FILE_INGESTED.to_owned(),
        detail: serde_json::to_string(&report).map_err(|e| FilesError::Read(e.to_string()))?,
    };
    let delivery = ctx.bus.publish_raw(&[entry]).await;
    if !delivery.failed.is_empty() {
        return Err(FilesError::Publish(format!("{} entries failed", delivery.failed.len())));
    }
    progress.done = true;
    if !ctx.hub.store().save_file_progress(&object.checkpoint_name(), saved, &progress).await? {
        return Ok(Turn::Yielded);
    }
    if ctx.settings.files.retention_days == 0 {
        let mut delete = ctx.s3.delete_object().bucket(&object.bucket).key(&object.key);
        if let Some(v) = &object.version_id {
            delete = delete.version_id(v);
        }
        delete.send().await.map_err(s3_err("DeleteObject"))?;
    }
    let c = &report.rows;
    info!(
        status = ?report.status,
        read = c.read, stored = c.stored, duplicates = c.duplicates, stale = c.stale,
        suppressed = c.suppressed, rejected = c.rejected, invocations = report.invocations,
        "file done"
    );
    ctx.metrics.incr(if report.error.is_some() { "FilesFailed" } else { "FilesIngested" });
    ctx.metrics.add("FileRowsStored", c.stored as f64);
    ctx.metrics.add("FileRowsRejected", c.rejected as f64);
    Ok(Turn::Finished)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notification_names_its_created_objects_with_decoded_keys() {
        let body = r#"{"Records": [
            {"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "b"},
             "object": {"key": "incoming/customer/web+shop/a%C3%A9+b.csv", "eTag": "\"e1\"", "size": 3}}},
            {"eventName": "ObjectRemoved:Delete", "s3": {"bucket": {"name": "b"}, "object": {"key": "x"}}}]}"#;
        let objects = notified_objects(body).expect("valid");
        assert_eq!(objects.len(), 1);
        assert_eq!(objects[0].key, "incoming/customer/web shop/aé b.csv");
        assert_eq!(objects[0].etag, "e1");
        assert!(notified_objects(r#"{"Event": "s3:TestEvent"}"#).expect("test event").is_empty());
        assert!(notified_objects("{}").is_err());
        assert!(notified_objects("nope").is_err());
    }
}
