//! Reading the batch engine's input: CSV files, a batch of rows at a time, in file order, each
//! row checked for its id; and preparing a row (validating, normalising, keying it), which any
//! thread can do once the row is read.

use foldhash::HashMap;
use mdm_core::record::{validate_flat, FlatRecord};
use mdm_core::SchemaRegistry;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Records per batch. Small batches keep the merges close behind the matches: the further ahead
/// a match runs, the likelier a merge since touched what it read (docs/benchmarks.md).
pub const BATCH: usize = 16;

/// Most rows a file's estimate sizes tables for ahead (about 50 MiB of table room for source
/// records): an estimate read from a file's first lines can be far too high, and past this the
/// tables grow as they go.
pub const MAX_EXPECTED_ROWS: usize = 1 << 21;

/// What preparing a file's rows needs to know about the file.
pub struct FileShape {
    /// The file as given on the command line (for messages).
    pub shown: String,
    /// Its source system: the file's stem.
    pub system: String,
    entity: String,
    /// Column index → attribute.
    columns: Vec<(usize, String)>,
}

/// A row read from a file and not yet prepared.
pub struct Row {
    pub file_index: usize,
    pub line: u64,
    pub record_id: String,
    fields: csv::StringRecord,
    file: Arc<FileShape>,
}

/// A record read, validated and keyed, with where it came from.
pub struct Prepared {
    pub file_index: usize,
    pub line: u64,
    pub record_id: String,
    /// Boxed: a record is a few hundred bytes, and it moves through the batches, the matching
    /// futures and into the store (each move of it inline was a copy).
    pub record: Box<mdm_core::SourceRecord>,
    /// The term counts its match weighs values by, as the records before it leave them (set in
    /// input order, when the batch is taken to be matched).
    pub terms: mdm_core::terms::TermCounts,
}

/// What reading needs from the command line.
#[derive(Debug, Clone)]
pub struct Layout {
    pub entity: String,
    pub id_column: String,
    /// Column → attribute, as `--map` gives them.
    pub maps: std::collections::BTreeMap<String, String>,
    /// The entity type's attributes (a column of the same name maps to one).
    pub attributes: BTreeSet<String>,
}

/// One input file, read a row at a time (records are processed as they are read, so the input
/// is never held in memory whole).
struct FileRows {
    shape: Arc<FileShape>,
    file_index: usize,
    id_column: String,
    reader: csv::Reader<std::fs::File>,
    id_index: usize,
    /// Record ids seen so far, with their line.
    seen: HashMap<String, u64>,
    /// Bytes and fields of the last row: the next one is sized like it.
    last: (usize, usize),
}

/// About how many rows a file holds, from its size and the lines of its first 64 KiB (exact for a
/// smaller file); 0 if it cannot be read (opening it reports why). Sizes the batch run's tables.
pub fn estimate_rows(path: &Path) -> usize {
    use std::io::Read;
    let Ok(mut file) = std::fs::File::open(path) else { return 0 };
    let size = file.metadata().map_or(0, |m| m.len());
    let mut sample = Vec::with_capacity(1 << 16);
    if file.by_ref().take(1 << 16).read_to_end(&mut sample).is_err() || sample.is_empty() {
        return 0;
    }
    let lines = sample.iter().filter(|b| **b == b'\n').count() as u64;
    let rows = if sample.len() as u64 >= size { lines } else { size * lines / sample.len() as u64 };
    usize::try_from(rows).unwrap_or(usize::MAX)
}

/// The source system of a file: its stem, reduced to the characters a system name may hold.
pub fn system_of(path: &Path) -> String {
    let stem = path.file_stem().map(|s| s.to_string_lossy().to_lowercase()).unwrap_or_default();
    let clean: String =
        stem.chars().map(|c| if c.is_ascii_alphanumeric() || "_-.".contains(c) { c } else { '_' }).take(64).collect();
    if clean.is_empty() {
        "file".into()
    } else {
        clean
    }
}

fn io_reason(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::Io(io) => io.to_string(),
        other => format!("{other:?}"),
    }
}

impl FileRows {
    /// `expected_rows` sizes the set of record ids seen (a guess; see [`estimate_rows`]).
    fn open(path: &Path, file_index: usize, layout: &Layout, expected_rows: usize) -> Result<Self, String> {
        let shown = path.display().to_string();
        // White space around header names and fields is trimmed here, as the fields are used:
        // the reader's own trimming copies every row, twice.
        let mut reader = csv::ReaderBuilder::new()
            .flexible(false)
            .from_path(path)
            .map_err(|e| format!("{shown}: cannot read: {}", io_reason(&e)))?;
        let headers: Vec<String> = reader
            .headers()
            .map_err(|e| format!("{shown}: cannot read the header: {}", io_reason(&e)))?
            .iter()
            .map(|h| h.trim().to_owned())
            .collect();
        let id_index = headers
            .iter()
            .position(|h| *h == layout.id_column)
            .ok_or_else(|| format!("{shown}: no id column '{}' in the header", layout.id_column))?;
        // Column → attribute: --map first, then a column named like an attribute.
        let mut columns: Vec<(usize, String)> = Vec::new();
        let mut ignored = Vec::new();
        for (i, h) in headers.iter().enumerate() {
            if i == id_index {
                continue;
            }
            match layout.maps.get(h).cloned().or_else(|| layout.attributes.contains(h).then(|| h.clone())) {
                Some(attr) => columns.push((i, attr)),
                None => ignored.push(h.as_str()),
            }
        }
        if !ignored.is_empty() {
            eprintln!("{shown}: ignoring columns {}", ignored.join(", "));
        }
        // In attribute order (columns mapped to one attribute stay in file order): validation
        // then takes the fields as they come, without sorting them per row.
        columns.sort_by(|a, b| a.1.cmp(&b.1));
        let shape = FileShape { shown, system: system_of(path), entity: layout.entity.clone(), columns };
        Ok(Self {
            shape: Arc::new(shape),
            file_index,
            id_column: layout.id_column.clone(),
            reader,
            id_index,
            seen: HashMap::with_capacity_and_hasher(expected_rows, Default::default()),
            last: (0, headers.len()),
        })
    }

    /// The next row, or `None` at the end of the file.
    fn next_row(&mut self) -> Result<Option<Row>, String> {
        let shown = &self.shape.shown;
        let mut fields = csv::StringRecord::with_capacity(self.last.0, self.last.1);
        let more = self.reader.read_record(&mut fields).map_err(|e| match e.kind() {
            csv::ErrorKind::UnequalLengths { pos, expected_len, len } => format!(
                "{shown}: line {}: expected {expected_len} fields, found {len}",
                pos.as_ref().map_or(0, |p| p.line())
            ),
            csv::ErrorKind::Utf8 { pos, err } => format!(
                "{shown}: line {}: field {} is not valid UTF-8",
                pos.as_ref().map_or(0, |p| p.line()),
                err.field() + 1
            ),
            _ => format!("{shown}: {}", io_reason(&e)),
        })?;
        if !more {
            return Ok(None);
        }
        self.last = (fields.as_slice().len(), fields.len());
        let line = fields.position().map_or(0, |p| p.line());
        let id = fields.get(self.id_index).unwrap_or("").trim().to_owned();
        if id.is_empty() {
            return Err(format!("{shown}: line {line}, column '{}': empty record id", self.id_column));
        }
        if let Some(first) = self.seen.insert(id.clone(), line) {
            return Err(format!("{shown}: line {line}, column '{}': record id repeats line {first}", self.id_column));
        }
        Ok(Some(Row { file_index: self.file_index, line, record_id: id, fields, file: self.shape.clone() }))
    }
}

/// The input files, read in turn, a batch of rows at a time. Batches are numbered from 0 in input
/// order. A bad input (a file that cannot be read, a bad row) ends the last batch, after every
/// row before it, and the reading.
pub struct Reading {
    layout: Layout,
    inputs: Vec<PathBuf>,
    expected_rows: Vec<usize>,
    /// The next file to open.
    next_input: usize,
    file: Option<FileRows>,
    /// Batches handed out.
    batches: u64,
    done: bool,
    /// Rows handed out, for the progress display.
    progress: Option<std::sync::Arc<std::sync::atomic::AtomicU64>>,
}

impl Reading {
    pub fn new(layout: Layout, inputs: Vec<PathBuf>, expected_rows: Vec<usize>) -> Self {
        Self { layout, inputs, expected_rows, next_input: 0, file: None, batches: 0, done: false, progress: None }
    }

    /// Counts the rows handed out into `counter` (a [`crate::progress::Progress`]).
    pub fn with_progress(mut self, counter: std::sync::Arc<std::sync::atomic::AtomicU64>) -> Self {
        self.progress = Some(counter);
        self
    }

    /// Batches handed out so far.
    pub fn batches(&self) -> u64 {
        self.batches
    }

    /// The next batch and its number, or `None` when the input is read (or a bad input ended it).
    pub fn next_batch(&mut self) -> Option<(u64, Vec<Result<Row, String>>)> {
        let mut rows = Vec::with_capacity(BATCH);
        while !self.done && rows.len() < BATCH {
            let file = match &mut self.file {
                Some(file) => file,
                None => {
                    let Some(path) = self.inputs.get(self.next_input) else {
                        self.done = true;
                        break;
                    };
                    let expected = self.expected_rows.get(self.next_input).copied().unwrap_or(0);
                    match FileRows::open(path, self.next_input, &self.layout, expected) {
                        Ok(file) => {
                            self.next_input += 1;
                            self.file.insert(file)
                        }
                        Err(e) => {
                            rows.push(Err(e));
                            self.done = true;
                            break;
                        }
                    }
                }
            };
            match file.next_row() {
                Ok(Some(row)) => rows.push(Ok(row)),
                Ok(None) => self.file = None,
                Err(e) => {
                    rows.push(Err(e));
                    self.done = true;
                }
            }
        }
        if rows.is_empty() {
            return None;
        }
        self.batches += 1;
        if let Some(counter) = &self.progress {
            counter.fetch_add(rows.len() as u64, std::sync::atomic::Ordering::Relaxed);
        }
        Some((self.batches - 1, rows))
    }
}

/// A row as a validated record with its blocking keys: the checks and normalisation of the API's
/// `validate`, straight from the CSV fields.
pub fn prepare(registry: &SchemaRegistry, row: Row) -> Result<Prepared, String> {
    let Row { file_index, line, record_id, fields, file } = row;
    let mut attributes: Vec<(&str, &str)> = Vec::with_capacity(file.columns.len());
    attributes.extend(file.columns.iter().filter_map(|(i, attr)| Some((attr.as_str(), fields.get(*i)?.trim()))));
    let flat = FlatRecord {
        entity: &file.entity,
        system: &file.system,
        source_id: &record_id,
        seq: 1,
        attributes: &attributes,
    };
    let record = validate_flat(registry, &flat, 0).map_err(|e| {
        let column = e.field.as_deref().map(|f| format!(", column for {f}")).unwrap_or_default();
        format!("{}: line {line}{column}: {}", file.shown, e.message)
    })?;
    if let Some(schema) = registry.get(&record.key.entity) {
        mdm_core::blocking::keys_of(schema, &record);
    }
    Ok(Prepared { file_index, line, record_id, record: Box::new(record), terms: Default::default() })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Exact for a small file; near the truth for one larger than the sample; 0 when unreadable.
    #[test]
    fn rows_are_estimated_from_the_first_lines() {
        let dir = std::env::temp_dir().join(format!("mdm-estimate-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let small = dir.join("small.csv");
        std::fs::write(&small, "id,name\n1,a\n2,b\n").expect("write");
        assert_eq!(estimate_rows(&small), 3);
        let large = dir.join("large.csv");
        let body: String = (0..20_000).map(|i| format!("{i},name number {}\n", i % 97)).collect();
        std::fs::write(&large, format!("id,name\n{body}")).expect("write");
        let estimate = estimate_rows(&large);
        assert!((19_000..=21_500).contains(&estimate), "{estimate}");
        assert_eq!(estimate_rows(&dir.join("missing.csv")), 0);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Batches run across files, in file order, and number from 0; a bad row ends the reading
    /// after every row before it.
    #[test]
    fn batches_follow_the_files_in_order_and_stop_at_a_bad_row() {
        let dir = std::env::temp_dir().join(format!("mdm-reading-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let a = dir.join("a.csv");
        // White space around header names and fields does not count.
        let body: String = (0..20).map(|i| format!(" a{i} ,\tAnna{i} \n")).collect();
        std::fs::write(&a, format!(" id , given_name\n{body}")).expect("write");
        let b = dir.join("b.csv");
        std::fs::write(&b, "id,given_name,shoe\nb0,Bob,42\nb1,Bo\nb2,Bert,40\n").expect("write");
        let layout = Layout {
            entity: "customer".into(),
            id_column: "id".into(),
            maps: Default::default(),
            attributes: ["given_name".to_owned()].into_iter().collect(),
        };
        let mut reading = Reading::new(layout, vec![a, b], vec![0, 0]);
        let mut seen = Vec::new();
        let mut numbers = Vec::new();
        let registry = SchemaRegistry::built_in().expect("schemas");
        while let Some((n, rows)) = reading.next_batch() {
            numbers.push(n);
            for row in rows {
                if let Ok(r) = &row {
                    if r.record_id == "a0" {
                        let (a0, fields) = (r.record_id.clone(), r.fields.clone());
                        let shape = r.file.clone();
                        let record =
                            prepare(&registry, Row { file_index: 0, line: 2, record_id: a0, fields, file: shape })
                                .expect("valid");
                        assert_eq!(record.record.attributes.get("given_name").map(|v| v.as_str()), Some("anna0"));
                    }
                }
                seen.push(row.map(|r| format!("{}:{}:{}", r.file.system, r.line, r.record_id)));
            }
        }
        assert_eq!(numbers, [0, 1], "20 rows, then one more and the error");
        assert_eq!(reading.batches(), 2);
        assert_eq!(seen.len(), 22);
        assert_eq!(seen[0], Ok("a:2:a0".to_owned()));
        assert_eq!(seen[19], Ok("a:21:a19".to_owned()));
        assert_eq!(seen[20], Ok("b:2:b0".to_owned()), "the next file continues the batch");
        let error = seen[21].as_ref().expect_err("the short row");
        assert!(error.contains("b.csv: line 3: expected 3 fields, found 2"), "{error}");
        assert!(reading.next_batch().is_none(), "nothing after the error");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
