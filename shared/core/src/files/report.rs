//! A file's progress, kept in the table between invocations (the checkpoint), and its report,
//! written next to the files when the last row is in. Neither ever holds a row's values: rows are
//! named by line and column, problems by code.

use super::object::{FileRef, Format};
use super::FileError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Rejected rows listed one by one in the checkpoint and the report; beyond these, counted.
pub const MAX_LISTED_REJECTIONS: usize = 200;

/// What became of a file's rows so far.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileCounts {
    /// Data rows read (the header row not counted).
    pub read: u64,
    /// Written (new, or newer than the stored version) and queued for matching.
    pub stored: u64,
    /// The same `sourceSeq` as stored: nothing written (a row sent again, or a chunk retried).
    pub duplicates: u64,
    /// Older than the stored version: dropped.
    pub stale: u64,
    /// Of an erased data subject, kept for a steward's review (suppression mode `hold`).
    pub held: u64,
    /// Of an erased data subject, not stored (suppression mode `reject`).
    pub suppressed: u64,
    /// Refused: malformed, or failing validation.
    pub rejected: u64,
}

/// A row that was not stored: where it is and why, never its values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RowRejection {
    /// The line of the file the row starts on (1 is the first line; a CSV header is line 1).
    pub line: u64,
    /// The column (or JSON key) at fault, where one is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    pub code: String,
    pub message: String,
}

/// The checkpoint of a file: where reading goes on, and what the rows read so far became.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileProgress {
    /// Bytes of the (decompressed) file consumed: a plain file is read again from here.
    pub offset: u64,
    /// The line the next row starts on.
    pub line: u64,
    /// Data rows consumed: a gzip file is read from its start and skips these.
    pub rows: u64,
    /// The CSV header (a file read from an offset has none of its own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<Vec<String>>,
    pub counts: FileCounts,
    /// The first [`MAX_LISTED_REJECTIONS`] rejected rows.
    #[serde(default)]
    pub rejected: Vec<RowRejection>,
    /// Columns that feed no attribute.
    #[serde(default)]
    pub ignored_columns: BTreeSet<String>,
    /// Invocations that worked on the file.
    pub invocations: u32,
    /// When the first invocation started (ms since the epoch).
    pub started_at_ms: i64,
    /// The last row is in and the report is written.
    pub done: bool,
}

impl FileProgress {
    /// Counts a rejected row and lists it while the list has room.
    pub fn reject(&mut self, rejection: RowRejection) {
        self.counts.rejected += 1;
        if self.rejected.len() < MAX_LISTED_REJECTIONS {
            self.rejected.push(rejection);
        }
    }
}

/// `ingested` (every row read; some may be rejected) or `failed` (nothing read: the file's key,
/// configuration or header is wrong).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileStatus {
    Ingested,
    Failed,
}

/// The report object (`reports/<entityType>/<system>/<name>.json`) and the `FileIngested` event's detail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FileReport {
    /// `1`; changes only when a field changes meaning or goes.
    pub schema_version: &'static str,
    pub status: FileStatus,
    pub bucket: String,
    pub key: String,
    pub etag: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entity_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_system: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<Format>,
    pub gzip: bool,
    pub report_key: String,
    pub rows: FileCounts,
    /// Rejected rows, at most [`MAX_LISTED_REJECTIONS`] (`rows.rejected` counts them all).
    pub rejected: Vec<RowRejection>,
    pub ignored_columns: Vec<String>,
    /// Why nothing was read (status `failed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<FileError>,
    pub invocations: u32,
    pub started_at: String,
    /// When the file was done with (its last row in, or its failure found).
    pub occurred_at: String,
}

/// Identifies one object version: its bucket, key, ETag and version id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectId {
    pub bucket: String,
    pub key: String,
    pub etag: String,
    pub version_id: Option<String>,
}

impl ObjectId {
    /// The checkpoint's name: the same object version always has the same one.
    pub fn checkpoint_name(&self) -> String {
        format!(
            "{}/{}#{}#{}",
            self.bucket,
            self.key,
            self.etag.trim_matches('"'),
            self.version_id.as_deref().unwrap_or("-")
        )
    }
}

fn rfc3339(ms: i64) -> String {
    crate::time::format_rfc3339(ms)
}

impl FileReport {
    /// The report of a file read to its end.
    pub fn ingested(object: &ObjectId, file: &FileRef, progress: &FileProgress, now_ms: i64) -> Self {
        Self {
            status: FileStatus::Ingested,
            entity_type: Some(file.entity.clone()),
            source_system: Some(file.system.clone()),
            format: Some(file.format),
            gzip: file.gzip,
            report_key: file.report_key(),
            rows: progress.counts.clone(),
            rejected: progress.rejected.clone(),
            ignored_columns: progress.ignored_columns.iter().cloned().collect(),
            error: None,
            ..Self::base(object, progress, now_ms)
        }
    }

    /// The report of a file that could not be read (to its end), and why: its key, configuration
    /// or header is wrong (nothing stored), or it breaks off (the rows before are counted).
    /// `file` is `None` when the key names no file; the report then goes under `reports/` with
    /// the key's own path.
    pub fn failed(
        object: &ObjectId,
        file: Option<&FileRef>,
        error: FileError,
        progress: &FileProgress,
        now_ms: i64,
    ) -> Self {
        let report_key = match file {
            Some(f) => f.report_key(),
            None => format!(
                "{}{}.json",
                super::object::REPORTS,
                object.key.strip_prefix(super::object::INCOMING).unwrap_or(&object.key)
            ),
        };
        Self {
            status: FileStatus::Failed,
            entity_type: file.map(|f| f.entity.clone()),
            source_system: file.map(|f| f.system.clone()),
            format: file.map(|f| f.format),
            gzip: file.is_some_and(|f| f.gzip),
            report_key,
            rows: progress.counts.clone(),
            rejected: progress.rejected.clone(),
            ignored_columns: progress.ignored_columns.iter().cloned().collect(),
            error: Some(error),
            ..Self::base(object, progress, now_ms)
        }
    }

    fn base(object: &ObjectId, progress: &FileProgress, now_ms: i64) -> Self {
        let started = if progress.started_at_ms > 0 { progress.started_at_ms } else { now_ms };
        Self {
            schema_version: "1",
            status: FileStatus::Failed,
            bucket: object.bucket.clone(),
            key: object.key.clone(),
            etag: object.etag.trim_matches('"').to_owned(),
            version_id: object.version_id.clone(),
            entity_type: None,
            source_system: None,
            format: None,
            gzip: false,
            report_key: String::new(),
            rows: FileCounts::default(),
            rejected: Vec::new(),
            ignored_columns: Vec::new(),
            error: None,
            invocations: progress.invocations,
            started_at: rfc3339(started),
            occurred_at: rfc3339(now_ms),
        }
    }
}

/// The detail-type of the event published when a file's report is written.
pub const FILE_INGESTED: &str = "FileIngested";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejections_are_counted_all_and_listed_up_to_the_cap() {
        let mut p = FileProgress::default();
        for line in 0..(MAX_LISTED_REJECTIONS as u64 + 5) {
            p.reject(RowRejection { line, column: None, code: "malformed_row".into(), message: String::new() });
        }
        assert_eq!(p.counts.rejected, MAX_LISTED_REJECTIONS as u64 + 5);
        assert_eq!(p.rejected.len(), MAX_LISTED_REJECTIONS);
        let json = serde_json::to_string(&p).expect("json");
        assert_eq!(serde_json::from_str::<FileProgress>(&json).expect("back"), p);
    }

    /// Both kinds of report validate against the `FileIngested` schema; one with a row value
    /// slipped in does not (the schema admits no other fields).
    #[test]
    fn reports_validate_against_the_file_ingested_schema() {
        let schema: serde_json::Value =
            serde_json::from_str(crate::events::detail_schema(FILE_INGESTED).expect("schema")).expect("json");
        let v = jsonschema::options().should_validate_formats(true).build(&schema).expect("compiles");
        let object = ObjectId {
            bucket: "b".into(),
            key: "incoming/customer/crm/a.csv".into(),
            etag: "\"e\"".into(),
            version_id: None,
        };
        let file = super::super::object::parse(&object.key).expect("file");
        let mut p = FileProgress { started_at_ms: 1_800_000_000_000, invocations: 2, ..Default::default() };
        p.counts.read = 3;
        p.counts.stored = 2;
        p.reject(RowRejection {
            line: 3,
            column: Some("email".into()),
            code: "invalid_value".into(),
            message: "not a valid e-mail address".into(),
        });
        p.ignored_columns.insert("note".into());
        let ingested = serde_json::to_value(FileReport::ingested(&object, &file, &p, 1_800_000_100_000)).expect("json");
        assert!(v.is_valid(&ingested), "{:?}", v.iter_errors(&ingested).map(|e| e.to_string()).collect::<Vec<_>>());
        assert_eq!(ingested["etag"], "e");
        let failed =
            FileReport::failed(&object, None, FileError::new("invalid_path", "x"), &FileProgress::default(), 1);
        let failed = serde_json::to_value(failed).expect("json");
        assert!(v.is_valid(&failed));
        assert_eq!(failed["reportKey"], "reports/customer/crm/a.csv.json");
        let mut leaked = ingested.clone();
        leaked["rejected"][0]["value"] = serde_json::json!("anna@example.com");
        assert!(!v.is_valid(&leaked), "a rejection carries no value");
    }
}
