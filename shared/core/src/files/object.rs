//! Where a bulk file belongs, from its object key:
//! `incoming/<entityType>/<system>/<name>.csv|.jsonl`, optionally `.gz`. Its report goes to
//! `reports/<entityType>/<system>/<name>.json`.

use super::FileError;

/// The prefix files are dropped under.
pub const INCOMING: &str = "incoming/";
/// The prefix reports are written under.
pub const REPORTS: &str = "reports/";

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Comma-separated values with a header row (the delimiter is the feed's).
    Csv,
    /// One JSON object per line.
    Jsonl,
}

/// A file's place: entity type, source system, name and format, as its key gives them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRef {
    pub key: String,
    pub entity: String,
    pub system: String,
    /// The key after `incoming/<entityType>/<system>/` (no sub-folders: the bucket policy lets a
    /// writer put only directly under its system's folder).
    pub name: String,
    pub format: Format,
    pub gzip: bool,
}

impl FileRef {
    /// Where the file's report is written.
    pub fn report_key(&self) -> String {
        format!("{REPORTS}{}/{}/{}.json", self.entity, self.system, self.name)
    }
}

/// Whether a key is under the prefix files are dropped in (others are not the hub's to read).
pub fn is_incoming(key: &str) -> bool {
    key.starts_with(INCOMING)
}

/// The place of the file at `key`, or why the key names none.
pub fn parse(key: &str) -> Result<FileRef, FileError> {
    let layout = "expected incoming/<entityType>/<system>/<name>.csv or .jsonl (optionally .gz)";
    let rest = key.strip_prefix(INCOMING).ok_or_else(|| FileError::new("invalid_path", layout))?;
    let mut parts = rest.splitn(3, '/');
    let (Some(entity), Some(system), Some(name)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(FileError::new("invalid_path", layout));
    };
    if entity.is_empty() || system.is_empty() || name.is_empty() || name.contains('/') {
        return Err(FileError::new("invalid_path", layout));
    }
    let system = system.to_lowercase();
    if system.len() > 64 || !system.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')) {
        return Err(FileError::new("invalid_path", "the source system must be 1-64 letters, digits, '_', '-' or '.'"));
    }
    let lower = name.to_lowercase();
    let (plain, gzip) = match lower.strip_suffix(".gz") {
        Some(p) => (p, true),
        None => (lower.as_str(), false),
    };
    let format = if plain.ends_with(".csv") {
        Format::Csv
    } else if plain.ends_with(".jsonl") || plain.ends_with(".ndjson") {
        Format::Jsonl
    } else {
        return Err(FileError::new("unsupported_format", "a file must end in .csv or .jsonl (optionally .gz)"));
    };
    Ok(FileRef { key: key.to_owned(), entity: entity.to_owned(), system, name: name.to_owned(), format, gzip })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_names_entity_system_format_and_report() {
        let f = parse("incoming/customer/WebShop/2026-12-orders.csv.gz").expect("valid");
        assert_eq!(
            (f.entity.as_str(), f.system.as_str(), f.name.as_str()),
            ("customer", "webshop", "2026-12-orders.csv.gz")
        );
        assert_eq!((f.format, f.gzip), (Format::Csv, true));
        assert_eq!(f.report_key(), "reports/customer/webshop/2026-12-orders.csv.gz.json");
        assert_eq!(parse("incoming/product/erp/a.jsonl").expect("valid").format, Format::Jsonl);
        for bad in [
            "incoming/customer/x.csv",
            "incoming/customer/crm/webshop/x.csv",
            "incoming//crm/a.csv",
            "other/customer/crm/a.csv",
            "incoming/customer/crm/",
        ] {
            assert_eq!(parse(bad).expect_err(bad).code, "invalid_path", "{bad}");
        }
        assert_eq!(parse("incoming/customer/crm/a.xlsx").expect_err("xlsx").code, "unsupported_format");
        assert_eq!(parse("incoming/customer/cr m/a.csv").expect_err("space").code, "invalid_path");
    }
}
