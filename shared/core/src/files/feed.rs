//! Per-source-system configuration of bulk files (a deployment's `FileFeeds`): which column holds
//! the record id, the delimiter, where a row's sequence and update time come from, and which
//! column feeds which attribute — the same `COLUMN=ATTRIBUTE` mapping as `mdm dedupe --map`. A
//! column named like an attribute feeds it without a mapping; other columns are ignored (and
//! named in the report).
//!
//! ```json
//! {"customer/webshop": {"idColumn": "customer_no", "delimiter": ";", "sequenceColumn": "version",
//!                       "updatedAtColumn": "changed_at", "map": ["surname=family_name"]}}
//! ```

use super::FileError;
use crate::schema::SchemaRegistry;
use serde::Deserialize;
use std::collections::BTreeMap;

/// One source system's files of one entity type.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Feed {
    /// The column (or JSON key) holding the record's id in the source system.
    pub id_column: String,
    /// CSV delimiter, one ASCII character (default `,`).
    #[serde(default = "comma")]
    pub delimiter: String,
    /// A column holding the row's `sourceSeq`. Rows without one (or feeds without the column)
    /// take the object's time and their row number: later rows of a file win.
    #[serde(default)]
    pub sequence_column: Option<String>,
    /// A column holding the row's `sourceUpdatedAt` (RFC 3339).
    #[serde(default)]
    pub updated_at_column: Option<String>,
    /// `COLUMN=ATTRIBUTE` pairs.
    #[serde(default)]
    pub map: Vec<String>,
}

fn comma() -> String {
    ",".into()
}

impl Feed {
    /// The delimiter as a byte.
    pub fn delimiter_byte(&self) -> Result<u8, FileError> {
        match self.delimiter.as_bytes() {
            [b] if b.is_ascii() && *b != b'"' && *b != b'\n' && *b != b'\r' => Ok(*b),
            _ => Err(FileError::new(
                "invalid_feed",
                "'delimiter' must be one ASCII character other than a quote or a line break",
            )),
        }
    }

    /// The explicit mapping, column → attribute.
    pub fn column_map(&self) -> Result<BTreeMap<String, String>, FileError> {
        self.map
            .iter()
            .map(|m| {
                let (col, attr) = m.split_once('=').ok_or_else(|| {
                    FileError::new("invalid_feed", format!("map entry '{m}': expected COLUMN=ATTRIBUTE"))
                })?;
                Ok((col.trim().to_owned(), attr.trim().to_owned()))
            })
            .collect()
    }
}

/// Every feed of a deployment, by `entityType/system`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Feeds(BTreeMap<String, Feed>);

impl Feeds {
    /// From the JSON object of the deployment's configuration (empty text: no feeds).
    pub fn parse(json: &str) -> Result<Self, FileError> {
        if json.trim().is_empty() {
            return Ok(Self::default());
        }
        let raw: BTreeMap<String, Feed> = serde_json::from_str(json)
            .map_err(|e| FileError::new("invalid_feed", format!("the feeds are not valid: {e}")))?;
        let mut out = BTreeMap::new();
        for (k, feed) in raw {
            let Some((entity, system)) = k.split_once('/') else {
                return Err(FileError::new("invalid_feed", format!("feed '{k}': expected entityType/system")));
            };
            feed.delimiter_byte()?;
            feed.column_map()?;
            out.insert(format!("{}/{}", entity.trim(), system.trim().to_lowercase()), feed);
        }
        Ok(Self(out))
    }

    /// Checks every mapped attribute exists in its entity type's schema.
    pub fn check(&self, registry: &SchemaRegistry) -> Result<(), FileError> {
        for (k, feed) in &self.0 {
            let entity = k.split_once('/').map_or(k.as_str(), |(e, _)| e);
            let schema = registry
                .get(entity)
                .ok_or_else(|| FileError::new("invalid_feed", format!("feed '{k}': unknown entity type '{entity}'")))?;
            for (col, attr) in feed.column_map()? {
                if schema.attribute(&attr).is_none() {
                    return Err(FileError::new(
                        "invalid_feed",
                        format!("feed '{k}': map {col}={attr}: entity type '{entity}' has no attribute '{attr}'"),
                    ));
                }
            }
        }
        Ok(())
    }

    pub fn get(&self, entity: &str, system: &str) -> Option<&Feed> {
        self.0.get(&format!("{entity}/{system}"))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feeds_parse_and_are_checked_against_the_schemas() {
        let feeds = Feeds::parse(
            r#"{"customer/WebShop": {"idColumn": "no", "delimiter": ";", "map": ["surname = family_name"]}}"#,
        )
        .expect("valid");
        let feed = feeds.get("customer", "webshop").expect("lower-cased system");
        assert_eq!(feed.delimiter_byte(), Ok(b';'));
        assert_eq!(feed.column_map().expect("map")["surname"], "family_name");
        let registry = SchemaRegistry::built_in().expect("schemas");
        feeds.check(&registry).expect("known attributes");
        let bad = Feeds::parse(r#"{"customer/crm": {"idColumn": "no", "map": ["x=shoe_size"]}}"#).expect("parses");
        assert!(bad.check(&registry).expect_err("unknown attribute").message.contains("shoe_size"));
        assert_eq!(
            Feeds::parse(r#"{"customer/crm": {"idColumn": "no", "delimiter": ";;"}}"#).expect_err("delim").code,
            "invalid_feed"
        );
        assert_eq!(Feeds::parse(r#"{"customer/crm": {"id": "no"}}"#).expect_err("unknown key").code, "invalid_feed");
        assert_eq!(Feeds::parse(r#"{"crm": {"idColumn": "no"}}"#).expect_err("no slash").code, "invalid_feed");
        assert!(Feeds::parse("").expect("empty").is_empty());
    }
}
