//! Bulk files: partners drop CSV or JSON Lines files under `incoming/<entityType>/<system>/`
//! and every row becomes a record of the ingest path. This module holds what needs no AWS: where
//! a file's key says it belongs ([`object`]), how a source system's columns map to attributes
//! ([`feed`]), reading rows one at a time with their byte offsets and lines ([`rows`]), and the
//! progress kept between invocations and the report written at the end ([`report`]).

pub mod feed;
pub mod object;
pub mod report;
pub mod rows;

/// A problem with a whole file (its key, its configuration or its header): the report names it
/// and nothing of the file is stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[error("{code}: {message}")]
pub struct FileError {
    pub code: String,
    pub message: String,
}

impl FileError {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self { code: code.to_owned(), message: message.into() }
    }
}
