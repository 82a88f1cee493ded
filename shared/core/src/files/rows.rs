//! The rows of a bulk file, one at a time, from any reader: each row becomes a record in the shape
//! of `POST /v1/records` (or the reason it cannot), with the line it starts on and, after it, the
//! position to go on from. Nothing is held but the row at hand, so a file of any size streams.

use super::feed::Feed;
use super::object::Format;
use super::report::RowRejection;
use super::FileError;
use crate::schema::EntitySchema;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read};

/// Longest JSON line read (bytes); a longer one is rejected without being held.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// Where a reading starts: the reader begins at `offset` of the (decompressed) file, on `line`,
/// after `rows` data rows; `header` is the CSV header when the reader does not begin at 0.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Start {
    pub offset: u64,
    pub line: u64,
    pub rows: u64,
    pub header: Option<Vec<String>>,
}

/// Where reading stands after the rows read so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Position {
    pub offset: u64,
    pub line: u64,
    pub rows: u64,
}

/// What every record of the file shares.
#[derive(Debug, Clone)]
pub struct Shape {
    pub entity: String,
    pub system: String,
    /// The `sourceSeq` of row 0 of a row without its own: the object's time in seconds × 10⁹;
    /// row n takes this plus n, so later rows of a file win and a later file wins over an earlier.
    pub seq_base: u64,
}

impl Shape {
    pub fn seq_base_of(object_time_s: i64) -> u64 {
        u64::try_from(object_time_s.max(0)).unwrap_or(0).saturating_mul(1_000_000_000)
    }
}

/// A data row: its number (1 is the first data row), its line, and its record or why not.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub number: u64,
    pub line: u64,
    pub record: Result<Value, RowRejection>,
}

/// How a feed's columns map onto a record.
#[derive(Debug, Clone)]
struct Mapping {
    id: String,
    seq: Option<String>,
    updated: Option<String>,
    explicit: BTreeMap<String, String>,
    attributes: BTreeSet<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Role {
    Id,
    Seq,
    Updated,
    Attribute(String),
    Ignored,
}

impl Mapping {
    fn new(feed: &Feed, schema: &EntitySchema) -> Result<Self, FileError> {
        Ok(Self {
            id: feed.id_column.clone(),
            seq: feed.sequence_column.clone(),
            updated: feed.updated_at_column.clone(),
            explicit: feed.column_map()?,
            attributes: schema.attributes.iter().map(|a| a.name.clone()).collect(),
        })
    }

    fn role(&self, column: &str) -> Role {
        if column == self.id {
            Role::Id
        } else if self.seq.as_deref() == Some(column) {
            Role::Seq
        } else if self.updated.as_deref() == Some(column) {
            Role::Updated
        } else if let Some(a) = self.explicit.get(column) {
            Role::Attribute(a.clone())
        } else if self.attributes.contains(column) {
            Role::Attribute(column.to_owned())
        } else {
            Role::Ignored
        }
    }

    /// The column a validation error's field came from.
    fn column_of(&self, field: &str, columns: &[String]) -> Option<String> {
        match field {
            "sourceId" => Some(self.id.clone()),
            "sourceSeq" => self.seq.clone(),
            "sourceUpdatedAt" => self.updated.clone(),
            f => {
                let attr = f.strip_prefix("attributes.")?;
                columns.iter().find(|c| self.role(c) == Role::Attribute(attr.to_owned())).cloned()
            }
        }
    }

    /// The record of a row's (column, value) pairs; empty values are left out.
    fn record<'v>(&self, shape: &Shape, number: u64, fields: impl Iterator<Item = (Role, &'v Value)>) -> Value {
        let mut attributes = Map::new();
        let mut id = Value::String(String::new());
        let mut seq = None;
        let mut updated = None;
        for (role, value) in fields {
            let value = match value {
                Value::Null => continue,
                Value::String(s) if s.trim().is_empty() => continue,
                Value::String(s) => Value::String(s.trim().to_owned()),
                other => other.clone(),
            };
            match role {
                Role::Id => id = scalar_text(value),
                Role::Seq => seq = Some(value),
                Role::Updated => updated = Some(value),
                Role::Attribute(a) => {
                    attributes.entry(a).or_insert(value);
                }
                Role::Ignored => {}
            }
        }
        let seq = match seq {
            Some(Value::String(s)) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
                s.parse::<u64>().map(Value::from).unwrap_or(Value::String(s))
            }
            Some(v) => v,
            None => Value::from(shape.seq_base.saturating_add(number)),
        };
        let mut record = json!({
            "entityType": shape.entity, "sourceSystem": shape.system, "sourceId": id,
            "sourceSeq": seq, "attributes": attributes,
        });
        if let Some(u) = updated {
            record["sourceUpdatedAt"] = u;
        }
        record
    }
}

/// A number or boolean as text (an id column of numbers is still an id).
fn scalar_text(v: Value) -> Value {
    match v {
        Value::Number(n) => Value::String(n.to_string()),
        Value::Bool(b) => Value::String(b.to_string()),
        other => other,
    }
}

fn rejection(line: u64, column: Option<String>, code: &str, message: impl Into<String>) -> RowRejection {
    RowRejection { line, column, code: code.to_owned(), message: message.into() }
}

/// The rows of one file.
pub struct Rows<R: Read> {
    mapping: Mapping,
    shape: Shape,
    position: Position,
    inner: Inner<R>,
    ignored: BTreeSet<String>,
}

enum Inner<R: Read> {
    Csv { reader: csv::Reader<R>, header: Vec<String>, roles: Vec<Role>, base: Position },
    Jsonl { reader: BufReader<R>, buf: Vec<u8> },
}

fn io_of(e: csv::Error) -> std::io::Error {
    match e.into_kind() {
        csv::ErrorKind::Io(io) => io,
        other => std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{other:?}")),
    }
}

impl<R: Read> Rows<R> {
    /// Opens a file's rows. `reader` begins at `start.offset` of the file. A CSV file read from its
    /// start takes its header from its first line; one read from further on, from `start.header`.
    pub fn open(
        format: Format,
        reader: R,
        feed: &Feed,
        schema: &EntitySchema,
        shape: Shape,
        start: &Start,
    ) -> Result<Self, FileError> {
        let mapping = Mapping::new(feed, schema)?;
        let position = Position { offset: start.offset, line: start.line.max(1), rows: start.rows };
        let inner = match format {
            Format::Jsonl => Inner::Jsonl { reader: BufReader::with_capacity(1 << 16, reader), buf: Vec::new() },
            Format::Csv => {
                let fresh = start.header.is_none();
                let mut reader = csv::ReaderBuilder::new()
                    .delimiter(feed.delimiter_byte()?)
                    .flexible(true)
                    .has_headers(fresh)
                    .from_reader(reader);
                let header: Vec<String> = match &start.header {
                    Some(h) => h.clone(),
                    None => reader
                        .byte_headers()
                        .map_err(|e| {
                            FileError::new("unreadable_header", format!("the header row cannot be read: {}", io_of(e)))
                        })?
                        .iter()
                        .map(|h| String::from_utf8_lossy(h).trim().trim_start_matches('\u{feff}').to_owned())
                        .collect(),
                };
                if header.iter().all(String::is_empty) {
                    return Err(FileError::new("missing_header", "the file has no header row"));
                }
                if !header.contains(&mapping.id) {
                    return Err(FileError::new(
                        "missing_id_column",
                        format!("the header has no id column '{}'", mapping.id),
                    ));
                }
                let roles: Vec<Role> = header.iter().map(|h| mapping.role(h)).collect();
                // The reader counts bytes and lines from where it begins.
                let base = position;
                Inner::Csv { reader, header, roles, base }
            }
        };
        let mut rows = Self { mapping, shape, position, inner, ignored: BTreeSet::new() };
        if let Inner::Csv { header, roles, reader, base } = &rows.inner {
            rows.ignored =
                header.iter().zip(roles).filter(|(_, r)| **r == Role::Ignored).map(|(h, _)| h.clone()).collect();
            let p = reader.position();
            rows.position =
                Position { offset: base.offset + p.byte(), line: base.line + p.line() - 1, rows: base.rows };
        }
        Ok(rows)
    }

    /// The CSV header (to keep with the checkpoint), if the file has one.
    pub fn header(&self) -> Option<&[String]> {
        match &self.inner {
            Inner::Csv { header, .. } => Some(header),
            Inner::Jsonl { .. } => None,
        }
    }

    /// Columns seen that feed no attribute.
    pub fn ignored_columns(&self) -> &BTreeSet<String> {
        &self.ignored
    }

    /// Where reading stands: the position after the last row returned.
    pub fn position(&self) -> Position {
        self.position
    }

    /// The next row, `None` at the end. An `Err` is the reader's own failure (the caller decides
    /// whether reading again can help); a row that cannot become a record is a row with a rejection.
    pub fn next_row(&mut self) -> Result<Option<Row>, std::io::Error> {
        match &mut self.inner {
            Inner::Csv { reader, header, roles, base } => {
                let mut record = csv::ByteRecord::new();
                let more = reader.read_byte_record(&mut record).map_err(io_of)?;
                if !more {
                    return Ok(None);
                }
                let line = base.line + record.position().map_or(1, |p| p.line()) - 1;
                let p = reader.position();
                self.position = Position {
                    offset: base.offset + p.byte(),
                    line: base.line + p.line() - 1,
                    rows: self.position.rows + 1,
                };
                let number = self.position.rows;
                if record.len() != header.len() {
                    let why = format!("expected {} fields, found {}", header.len(), record.len());
                    return Ok(Some(Row { number, line, record: Err(rejection(line, None, "malformed_row", why)) }));
                }
                let mut values = Vec::with_capacity(record.len());
                for (i, field) in record.iter().enumerate() {
                    match std::str::from_utf8(field) {
                        Ok(s) => values.push(Value::String(s.to_owned())),
                        Err(_) => {
                            let col = Some(header[i].clone());
                            let r = rejection(line, col, "invalid_utf8", "the field is not valid UTF-8");
                            return Ok(Some(Row { number, line, record: Err(r) }));
                        }
                    }
                }
                let record = self.mapping.record(&self.shape, number, roles.iter().cloned().zip(values.iter()));
                Ok(Some(Row { number, line, record: Ok(record) }))
            }
            Inner::Jsonl { reader, buf } => loop {
                buf.clear();
                let line = self.position.line;
                let read = reader.by_ref().take(MAX_LINE_BYTES as u64 + 1).read_until(b'\n', buf)?;
                if read == 0 {
                    return Ok(None);
                }
                let mut consumed = read as u64;
                let too_long = buf.len() > MAX_LINE_BYTES && buf.last() != Some(&b'\n');
                if too_long {
                    // Skip the rest of the line without holding it.
                    loop {
                        let (done, used) = {
                            let available = reader.fill_buf()?;
                            match available.iter().position(|b| *b == b'\n') {
                                Some(i) => (true, i + 1),
                                None => (available.is_empty(), available.len()),
                            }
                        };
                        reader.consume(used);
                        consumed += used as u64;
                        if done {
                            break;
                        }
                    }
                }
                self.position.offset += consumed;
                self.position.line += 1;
                let text = buf.trim_ascii();
                if text.is_empty() && !too_long {
                    continue;
                }
                self.position.rows += 1;
                let number = self.position.rows;
                if too_long {
                    let why = format!("the line is longer than {MAX_LINE_BYTES} bytes");
                    return Ok(Some(Row { number, line, record: Err(rejection(line, None, "line_too_long", why)) }));
                }
                let record = match serde_json::from_slice::<Value>(text) {
                    Ok(Value::Object(obj)) => self.json_record(number, line, obj),
                    Ok(_) => Err(rejection(line, None, "invalid_type", "a line must hold one JSON object")),
                    Err(e) => {
                        Err(rejection(line, None, "invalid_json", format!("not valid JSON (column {})", e.column())))
                    }
                };
                return Ok(Some(Row { number, line, record }));
            },
        }
    }

    /// A JSON line: flat (keys are columns, mapped as a CSV header is) or a record in the shape
    /// of `POST /v1/records` (it has `attributes`), whose entity type and system are the file's.
    fn json_record(&mut self, number: u64, line: u64, obj: Map<String, Value>) -> Result<Value, RowRejection> {
        if obj.contains_key("attributes") {
            let mut record = Value::Object(obj);
            for (field, want) in [("entityType", &self.shape.entity), ("sourceSystem", &self.shape.system)] {
                match record.get(field).and_then(Value::as_str) {
                    None => record[field] = Value::String(want.clone()),
                    Some(got) if got.trim().eq_ignore_ascii_case(want) => {}
                    Some(_) => {
                        let why = format!("'{field}' differs from the file's (its key names {want})");
                        return Err(rejection(line, Some(field.to_owned()), "wrong_file", why));
                    }
                }
            }
            if record.get("sourceSeq").is_none() {
                record["sourceSeq"] = Value::from(self.shape.seq_base.saturating_add(number));
            }
            return Ok(record);
        }
        let mapping = &self.mapping;
        let mut fields = Vec::with_capacity(obj.len());
        for (k, v) in &obj {
            let role = mapping.role(k);
            if role == Role::Ignored && !self.ignored.contains(k) {
                self.ignored.insert(k.clone());
            }
            fields.push((role, v));
        }
        Ok(mapping.record(&self.shape, number, fields.into_iter()))
    }

    /// What names the columns of this file's validation errors (kept apart from the reader, which
    /// may live on another thread).
    pub fn columns(&self) -> Columns {
        Columns { mapping: self.mapping.clone(), header: self.header().map(<[String]>::to_vec) }
    }
}

/// The column a validation error of a record of a file names.
#[derive(Debug, Clone)]
pub struct Columns {
    mapping: Mapping,
    header: Option<Vec<String>>,
}

impl Columns {
    /// For a file of `feed` (its CSV header, if it has one).
    pub fn new(feed: &Feed, schema: &EntitySchema, header: Option<Vec<String>>) -> Result<Self, FileError> {
        Ok(Self { mapping: Mapping::new(feed, schema)?, header })
    }

    /// The column of `field` as the validator names it (`sourceId`, `attributes.email`, …).
    pub fn column_of(&self, field: &str) -> Option<String> {
        match &self.header {
            Some(header) => self.mapping.column_of(field, header),
            None => {
                let cols: Vec<String> = self.mapping.explicit.keys().cloned().collect();
                self.mapping
                    .column_of(field, &cols)
                    .or_else(|| Some(field.strip_prefix("attributes.").unwrap_or(field).to_owned()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::SchemaRegistry;

    fn feed(json: &str) -> Feed {
        serde_json::from_str(json).expect("feed")
    }

    fn all<R: Read>(rows: &mut Rows<R>) -> Vec<Row> {
        let mut out = Vec::new();
        while let Some(r) = rows.next_row().expect("read") {
            out.push(r);
        }
        out
    }

    fn shape() -> Shape {
        Shape { entity: "customer".into(), system: "webshop".into(), seq_base: Shape::seq_base_of(1_800_000_000) }
    }

    #[test]
    fn csv_rows_become_records_with_lines_and_a_resumable_position() {
        let registry = SchemaRegistry::built_in().expect("schemas");
        let schema = registry.get("customer").expect("customer");
        let f = feed(r#"{"idColumn": "no", "delimiter": ";", "map": ["surname=family_name"], "sequenceColumn": "v"}"#);
        let text =
            "\u{feff}no;surname;email;note;v\nC1;Smith;a@x.com;hi;\n\"C2\";\"Jones\nJr\";;;7\nC3;bad\nC4;Ng;;;\n";
        let mut rows = Rows::open(Format::Csv, text.as_bytes(), &f, schema, shape(), &Start::default()).expect("open");
        assert_eq!(rows.position().line, 2, "after the header");
        let got = all(&mut rows);
        assert_eq!(got.len(), 4);
        let r1 = got[0].record.as_ref().expect("record");
        assert_eq!(r1["sourceId"], "C1");
        assert_eq!(r1["attributes"], json!({"family_name": "Smith", "email": "a@x.com"}));
        assert_eq!(r1["sourceSeq"], 1_800_000_000_000_000_001u64, "object time and row number");
        assert_eq!(got[1].record.as_ref().expect("r2")["sourceSeq"], 7, "the row's own sequence");
        assert_eq!((got[1].line, got[2].line, got[3].line), (3, 5, 6), "a quoted line break spans two lines");
        assert_eq!(got[2].record.as_ref().expect_err("short row").code, "malformed_row");
        assert_eq!(rows.ignored_columns().iter().collect::<Vec<_>>(), ["note"]);
        let columns = rows.columns();
        assert_eq!(columns.column_of("attributes.family_name").as_deref(), Some("surname"));
        assert_eq!(columns.column_of("sourceId").as_deref(), Some("no"));
        assert_eq!(columns.column_of("attributes.email").as_deref(), Some("email"));
        // Reading again from the position after row 2 gives rows 3 and 4, with their lines.
        let mut again = Rows::open(Format::Csv, text.as_bytes(), &f, schema, shape(), &Start::default()).expect("open");
        again.next_row().expect("r1");
        again.next_row().expect("r2");
        let p = again.position();
        let header = again.header().map(<[String]>::to_vec);
        let start = Start { offset: p.offset, line: p.line, rows: p.rows, header };
        let rest = &text.as_bytes()[p.offset as usize..];
        let mut resumed = Rows::open(Format::Csv, rest, &f, schema, shape(), &start).expect("resume");
        let tail = all(&mut resumed);
        assert_eq!(tail, got[2..].to_vec());
        assert_eq!(resumed.position().offset, text.len() as u64);
    }

    #[test]
    fn a_csv_without_its_id_column_or_header_is_a_file_error() {
        let registry = SchemaRegistry::built_in().expect("schemas");
        let schema = registry.get("customer").expect("customer");
        let f = feed(r#"{"idColumn": "no"}"#);
        let open = |t: &'static str| Rows::open(Format::Csv, t.as_bytes(), &f, schema, shape(), &Start::default());
        assert_eq!(open("id,email\n1,a@x.com\n").err().expect("no id").code, "missing_id_column");
        assert_eq!(open("").err().expect("empty").code, "missing_header");
    }

    #[test]
    fn json_lines_are_flat_or_records_and_bad_lines_are_rejected() {
        let registry = SchemaRegistry::built_in().expect("schemas");
        let schema = registry.get("customer").expect("customer");
        let f = feed(r#"{"idColumn": "id", "map": ["mail=email"]}"#);
        let text = concat!(
            "{\"id\": 17, \"mail\": \"a@x.com\", \"given_name\": \"Ann\", \"x\": 1}\n",
            "\n",
            "not json\n",
            "{\"sourceId\": \"R\", \"attributes\": {\"email\": \"b@x.com\"}}\n",
            "{\"sourceId\": \"S\", \"sourceSystem\": \"crm\", \"attributes\": {}}\n",
            "[1]\n"
        );
        let mut rows =
            Rows::open(Format::Jsonl, text.as_bytes(), &f, schema, shape(), &Start::default()).expect("open");
        let got = all(&mut rows);
        assert_eq!(
            got.iter().map(|r| r.line).collect::<Vec<_>>(),
            [1, 3, 4, 5, 6],
            "blank lines are skipped, not rows"
        );
        let r = got[0].record.as_ref().expect("flat");
        assert_eq!(
            (r["sourceId"].clone(), r["attributes"].clone()),
            (json!("17"), json!({"email": "a@x.com", "given_name": "Ann"}))
        );
        assert_eq!(got[1].record.as_ref().expect_err("json").code, "invalid_json");
        let api = got[2].record.as_ref().expect("record shape");
        assert_eq!((api["entityType"].as_str(), api["sourceSystem"].as_str()), (Some("customer"), Some("webshop")));
        assert_eq!(got[3].record.as_ref().expect_err("other system").code, "wrong_file");
        assert_eq!(got[4].record.as_ref().expect_err("array").code, "invalid_type");
        assert_eq!(rows.ignored_columns().iter().collect::<Vec<_>>(), ["x"]);
        assert_eq!(rows.position().offset, text.len() as u64);
    }
}
