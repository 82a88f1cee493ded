//! `mdm dedupe`: the batch engine. Reads CSV files, feeds their records one at a time, in file
//! order, through the same validation, match and merge code the Lambda path uses, on the
//! in-process store, and writes each record's golden record id after the whole input.
//!
//! ```text
//! mdm dedupe --entity customer --id-column rec_id [--map COLUMN=ATTRIBUTE]... [--schemas DIR]
//!            --out clusters.csv FILE.csv [FILE.csv ...]
//! ```

use foldhash::HashMap;
use mdm_core::hub::{Hub, HubConfig, MergeReport, Touched};
use mdm_core::matching::MatchResult;
use mdm_core::plan::MergeOutcome;
use mdm_core::record::{validate_flat, FlatRecord};
use mdm_core::store::memory::{Expected, MemoryStore};
use mdm_core::store::{IndexKey, SourceWrite};
use mdm_core::SchemaRegistry;
use mdm_core::SourceKey;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

pub const USAGE: &str = "mdm dedupe --entity ENTITY --id-column COLUMN [--map COLUMN=ATTRIBUTE]... [--schemas DIR] [--matchers N] --out FILE.csv INPUT.csv [INPUT.csv ...]";

#[derive(Debug, Clone)]
struct Options {
    entity: String,
    id_column: String,
    maps: BTreeMap<String, String>,
    /// Threads that match ahead of the merges.
    matchers: usize,
    schemas: Option<PathBuf>,
    out: PathBuf,
    inputs: Vec<PathBuf>,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let (mut entity, mut id_column, mut out, mut schemas) = (None, None, None, None);
    // One matching thread per core (at most four): with two cores, three busy threads keep
    // both cores busier than two do.
    let mut matchers = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    let mut maps = BTreeMap::new();
    let mut inputs = Vec::new();
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().cloned().ok_or_else(|| format!("{name} needs a value\nusage: {USAGE}"));
        match a.as_str() {
            "--entity" => entity = Some(value("--entity")?),
            "--id-column" => id_column = Some(value("--id-column")?),
            "--out" => out = Some(PathBuf::from(value("--out")?)),
            "--schemas" => schemas = Some(PathBuf::from(value("--schemas")?)),
            "--matchers" => {
                let n = value("--matchers")?;
                matchers = n
                    .parse()
                    .ok()
                    .filter(|n| (1..=64).contains(n))
                    .ok_or_else(|| format!("--matchers {n}: expected a number of threads from 1 to 64"))?;
            }
            "--map" => {
                let m = value("--map")?;
                let (col, attr) = m.split_once('=').ok_or_else(|| format!("--map {m}: expected COLUMN=ATTRIBUTE"))?;
                maps.insert(col.trim().to_owned(), attr.trim().to_owned());
            }
            flag if flag.starts_with("--") => return Err(format!("unknown option {flag}\nusage: {USAGE}")),
            file => inputs.push(PathBuf::from(file)),
        }
    }
    fn need<T>(v: Option<T>, name: &str) -> Result<T, String> {
        v.ok_or_else(|| format!("{name} is required\nusage: {USAGE}"))
    }
    let opts = Options {
        entity: need(entity, "--entity")?,
        id_column: need(id_column, "--id-column")?,
        out: need(out, "--out")?,
        schemas,
        maps,
        matchers,
        inputs,
    };
    if opts.inputs.is_empty() {
        return Err(format!("no input files\nusage: {USAGE}"));
    }
    Ok(opts)
}

/// A record read from a file: its id, line and wire form.
struct Row {
    record_id: String,
    line: u64,
}

/// One input file, read a record at a time (records are processed as they are read, so the
/// input is never held in memory whole).
struct FileRows<'a> {
    shown: String,
    system: String,
    opts: &'a Options,
    reader: csv::Reader<std::fs::File>,
    id_index: usize,
    columns: Vec<(usize, String)>,
    seen: HashMap<String, u64>,
    record: csv::StringRecord,
}

/// Most rows a file's estimate sizes tables for ahead (about 50 MiB of table room for source
/// records): an estimate read from a file's first lines can be far too high, and past this the
/// tables grow as they go.
const MAX_EXPECTED_ROWS: usize = 1 << 21;

/// About how many rows a file holds, from its size and the lines of its first 64 KiB (exact for a
/// smaller file); 0 if it cannot be read (opening it reports why). Sizes the batch run's tables.
fn estimate_rows(path: &Path) -> usize {
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
fn system_of(path: &Path) -> String {
    let stem = path.file_stem().map(|s| s.to_string_lossy().to_lowercase()).unwrap_or_default();
    let clean: String =
        stem.chars().map(|c| if c.is_ascii_alphanumeric() || "_-.".contains(c) { c } else { '_' }).take(64).collect();
    if clean.is_empty() {
        "file".into()
    } else {
        clean
    }
}

impl<'a> FileRows<'a> {
    /// `expected_rows` sizes the set of record ids seen (a guess; see [`estimate_rows`]).
    fn open(
        path: &Path,
        opts: &'a Options,
        attributes: &BTreeSet<String>,
        expected_rows: usize,
    ) -> Result<Self, String> {
        let shown = path.display().to_string();
        let mut reader = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .flexible(false)
            .from_path(path)
            .map_err(|e| format!("{shown}: cannot read: {}", io_reason(&e)))?;
        let headers: Vec<String> = reader
            .headers()
            .map_err(|e| format!("{shown}: cannot read the header: {}", io_reason(&e)))?
            .iter()
            .map(str::to_owned)
            .collect();
        let id_index = headers
            .iter()
            .position(|h| *h == opts.id_column)
            .ok_or_else(|| format!("{shown}: no id column '{}' in the header", opts.id_column))?;
        // Column → attribute: --map first, then a column named like an attribute.
        let mut columns: Vec<(usize, String)> = Vec::new();
        let mut ignored = Vec::new();
        for (i, h) in headers.iter().enumerate() {
            if i == id_index {
                continue;
            }
            match opts.maps.get(h).cloned().or_else(|| attributes.contains(h).then(|| h.clone())) {
                Some(attr) => columns.push((i, attr)),
                None => ignored.push(h.as_str()),
            }
        }
        if !ignored.is_empty() {
            eprintln!("{shown}: ignoring columns {}", ignored.join(", "));
        }
        let system = system_of(path);
        Ok(Self {
            shown,
            system,
            opts,
            reader,
            id_index,
            columns,
            seen: HashMap::with_capacity_and_hasher(expected_rows, Default::default()),
            record: csv::StringRecord::new(),
        })
    }

    /// The next record, or `None` at the end of the file.
    fn next_row(&mut self) -> Result<Option<Row>, String> {
        let (shown, opts) = (&self.shown, self.opts);
        let more = self.reader.read_record(&mut self.record).map_err(|e| match e.kind() {
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
        let rec = &self.record;
        let line = rec.position().map_or(0, |p| p.line());
        let id = rec.get(self.id_index).unwrap_or("").to_owned();
        if id.is_empty() {
            return Err(format!("{shown}: line {line}, column '{}': empty record id", opts.id_column));
        }
        if let Some(first) = self.seen.insert(id.clone(), line) {
            return Err(format!("{shown}: line {line}, column '{}': record id repeats line {first}", opts.id_column));
        }
        Ok(Some(Row { record_id: id, line }))
    }
}

/// One lane of a stage's output: batches in input order (a bad input ends the stream with its
/// error, after every record before it).
type Batches<T> = std::sync::mpsc::Receiver<Vec<Result<T, String>>>;

/// A stage of the batch engine: its output lanes and its threads.
type Stage<T> = (Vec<Batches<T>>, Vec<std::thread::JoinHandle<()>>);

/// Records per batch between the stages. Small batches keep the merges close behind the
/// matches: the further ahead a match runs, the likelier a merge since touched what it read.
/// With hand-offs that rarely sleep ([`crate::handoff`]) 16 left less of a core idle than 32 or
/// 64 and made half as many decisions again (docs/benchmarks.md).
const BATCH: usize = 16;

/// A record read, validated and keyed, with where it came from.
struct Prepared {
    file_index: usize,
    line: u64,
    record_id: String,
    /// Boxed: a record is a few hundred bytes, and it moves through the batches, the matching
    /// thread's futures and into the store (each move of it inline was a copy).
    record: Box<mdm_core::SourceRecord>,
}

/// Records in input order, a batch at a time, from a reader thread that reads, validates and
/// computes blocking keys ahead of the matchers. Batches are dealt to `lanes` channels in turn
/// (batch `k` to lane `k % lanes`). A bad input ends the stream with its error, after every
/// record before it.
fn read_ahead(
    opts: Options,
    registry: Arc<SchemaRegistry>,
    attributes: BTreeSet<String>,
    lanes: usize,
    expected_rows: Vec<usize>,
) -> Result<(Vec<Batches<Prepared>>, std::thread::JoinHandle<()>), String> {
    let (txs, rxs): (Vec<_>, Vec<_>) =
        (0..lanes.max(1)).map(|_| std::sync::mpsc::sync_channel::<Vec<Result<Prepared, String>>>(4)).unzip();
    let reader = std::thread::Builder::new()
        .name("read".into())
        .spawn(move || {
            let mut batch = Vec::with_capacity(BATCH);
            let mut dealt = 0usize;
            let mut send = |batch: &mut Vec<Result<Prepared, String>>| {
                let lane = &txs[dealt % txs.len()];
                dealt += 1;
                crate::handoff::send(lane, std::mem::replace(batch, Vec::with_capacity(BATCH)))
            };
            'files: for (file_index, path) in opts.inputs.iter().enumerate() {
                let expected = expected_rows.get(file_index).copied().unwrap_or(0);
                let mut rows = match FileRows::open(path, &opts, &attributes, expected) {
                    Ok(rows) => rows,
                    Err(e) => {
                        batch.push(Err(e));
                        break;
                    }
                };
                loop {
                    let prepared = match rows.next_row() {
                        Ok(None) => break,
                        Ok(Some(row)) => rows.prepare(&registry, file_index, row),
                        Err(e) => Err(e),
                    };
                    let failed = prepared.is_err();
                    batch.push(prepared);
                    if failed {
                        break 'files;
                    }
                    if batch.len() == BATCH && !send(&mut batch) {
                        return;
                    }
                }
            }
            if !batch.is_empty() {
                send(&mut batch);
            }
        })
        .map_err(|e| format!("cannot start a thread: {e}"))?;
    Ok((rxs, reader))
}

impl FileRows<'_> {
    /// The row just read ([`FileRows::next_row`]) as a validated record with its blocking keys:
    /// the checks and normalisation of the API's `validate`, straight from the CSV fields.
    fn prepare(&self, registry: &SchemaRegistry, file_index: usize, row: Row) -> Result<Prepared, String> {
        let attributes: Vec<(&str, &str)> =
            self.columns.iter().filter_map(|(i, attr)| Some((attr.as_str(), self.record.get(*i)?))).collect();
        let flat = FlatRecord {
            entity: &self.opts.entity,
            system: &self.system,
            source_id: &row.record_id,
            seq: 1,
            attributes: &attributes,
        };
        let record = validate_flat(registry, &flat, 0).map_err(|e| {
            let column = e.field.as_deref().map(|f| format!(", column for {f}")).unwrap_or_default();
            format!("{}: line {}{column}: {}", self.shown, row.line, e.message)
        })?;
        if let Some(schema) = registry.get(&record.key.entity) {
            mdm_core::blocking::keys_of(schema, &record);
        }
        Ok(Prepared { file_index, line: row.line, record_id: row.record_id, record: Box::new(record) })
    }
}

fn io_reason(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::Io(io) => io.to_string(),
        other => format!("{other:?}"),
    }
}

/// The batch engine's clock: the time the run started, plus one millisecond per reading. Where
/// two golden records merge, the older one survives (after the one with more members); with
/// wall-clock time, two created in the same millisecond fall back to the smaller id, so the
/// survivor depended on how fast the machine ran. Read on the merging thread only, in input
/// order, so every run gives the same ids.
fn batch_clock() -> i64 {
    static START: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    static TICKS: AtomicI64 = AtomicI64::new(0);
    START.get_or_init(mdm_core::time::now_ms) + TICKS.fetch_add(1, Ordering::Relaxed)
}

/// A record matched ahead of its merge, with what the match read.
struct Matched {
    file_index: usize,
    record_id: String,
    key: SourceKey,
    result: MatchResult,
    /// [`Touched`] hashes of the blocks and golden records the match read.
    reads: Vec<u64>,
    /// Merges complete when the match began: it saw every write of those, and perhaps part of
    /// the ones after.
    merged_before: u64,
}

/// Matches records ahead of their merges, on `lanes.len()` threads: each stores the records of
/// its lane (ingest) and decides what they belong to against the store as it is, noting what
/// each decision read. A batch of decisions goes out for every batch in, so the merging thread
/// takes them in input order by taking the lanes in turn; it makes a decision again when a
/// merge since wrote what it read (see [`Touched`]).
fn match_ahead(
    hub: Arc<Hub<MemoryStore>>,
    lanes: Vec<Batches<Prepared>>,
    merged: Arc<AtomicU64>,
    shown: Vec<String>,
) -> Result<Stage<Matched>, String> {
    let runtime = tokio::runtime::Handle::current();
    let shown = Arc::new(shown);
    let mut outs = Vec::with_capacity(lanes.len());
    let mut threads = Vec::with_capacity(lanes.len());
    for (i, batches) in lanes.into_iter().enumerate() {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Result<Matched, String>>>(2);
        let (hub, merged, shown, runtime) = (hub.clone(), merged.clone(), shown.clone(), runtime.clone());
        let matcher = std::thread::Builder::new()
            .name(format!("match-{i}"))
            .spawn(move || {
                while let Ok(batch) = crate::handoff::recv(&batches) {
                    let mut out = Vec::with_capacity(batch.len());
                    let mut failed = false;
                    for prepared in batch {
                        let matched = prepared.and_then(|p| runtime.block_on(match_one(&hub, &merged, &shown, p)));
                        failed = matched.is_err();
                        out.push(matched);
                        if failed {
                            break;
                        }
                    }
                    if !crate::handoff::send(&tx, out) || failed {
                        return;
                    }
                }
            })
            .map_err(|e| format!("cannot start a thread: {e}"))?;
        outs.push(rx);
        threads.push(matcher);
    }
    Ok((outs, threads))
}

async fn match_one(
    hub: &Hub<MemoryStore>,
    merged: &AtomicU64,
    shown: &[String],
    prepared: Prepared,
) -> Result<Matched, String> {
    let Prepared { file_index, line, record_id, record } = prepared;
    // Matching reads golden records only, so the record is matched first and then handed to the
    // store, which keeps it without a copy; its merge comes after both.
    let merged_before = merged.load(Ordering::Acquire);
    let result = hub.match_record(&record).await.map_err(|e| e.to_string())?;
    let entity = record.key.entity.as_str();
    // A block the match skipped as too full stays so while merges only add to it.
    let too_full = |name: &str| result.blocking.too_common.iter().any(|n| n == name);
    let mut reads: Vec<u64> = match hub.registry().get(entity) {
        Some(schema) => mdm_core::blocking::keys_of(schema, &record)
            .iter()
            .map(|k| {
                let key = IndexKey::from(k);
                if too_full(k.name()) {
                    Touched::full_block(entity, &key)
                } else {
                    Touched::block(entity, &key)
                }
            })
            .collect(),
        None => Vec::new(),
    };
    reads.extend(result.candidates.iter().map(|c| Touched::golden(entity, &c.golden_id)));
    let key = record.key.clone();
    if hub.ingest_owned(*record).await.map_err(|e| e.to_string())? != SourceWrite::Written {
        return Err(format!("{}: line {line}: record id repeats an earlier record", shown[file_index]));
    }
    Ok(Matched { file_index, record_id, key, result, reads, merged_before })
}

/// Merges decisions made ahead, in input order. A decision is made again when a merge after the
/// ones its match saw wrote a block or golden record it read ([`Touched`]); the result is then the
/// one a single thread, matching and merging each record in turn, gives.
struct Merger {
    hub: Arc<Hub<MemoryStore>>,
    /// Merges complete, for the matching thread.
    merged: Arc<AtomicU64>,
    /// Per slot of a table of [`Touched`] hashes (folded): the last merge that wrote one. Two
    /// hashes may share a slot; that only remakes a decision that was sound.
    last_touch: Vec<u32>,
    /// Decisions made again.
    remade: usize,
}

impl Merger {
    const SLOT_BITS: u32 = 20;

    fn new(hub: Arc<Hub<MemoryStore>>) -> Self {
        Self { hub, merged: Arc::new(AtomicU64::new(0)), last_touch: vec![0; 1 << Self::SLOT_BITS], remade: 0 }
    }

    fn slot(hash: u64) -> usize {
        (hash >> (64 - Self::SLOT_BITS)) as usize
    }

    /// Whether a merge after the first `merged_before` wrote something `reads` names.
    fn stale(&self, reads: &[u64], merged_before: u64) -> bool {
        reads.iter().any(|h| u64::from(self.last_touch[Self::slot(*h)]) > merged_before)
    }

    /// Merges the next record in input order.
    async fn merge(
        &mut self,
        key: &SourceKey,
        result: MatchResult,
        reads: &[u64],
        merged_before: u64,
    ) -> Result<MergeReport, String> {
        let report = if self.stale(reads, merged_before) {
            self.remade += 1;
            self.hub.process(key).await
        } else {
            self.hub.merge_decision(key, result, None, true).await
        }
        .map_err(|e| e.to_string())?;
        let merge = self.merged.load(Ordering::Relaxed) + 1;
        let at = u32::try_from(merge).unwrap_or(u32::MAX);
        for h in &report.touched {
            self.last_touch[Self::slot(*h)] = at;
        }
        self.merged.store(merge, Ordering::Release);
        Ok(report)
    }
}

/// The golden record each merged-away one ended in, as the merges reported them: a record's
/// golden record after the whole input is the one it was merged into, or the survivor that
/// record was merged into later (in the batch engine nothing else moves a record). A union-find
/// over interned ids, so the output needs no store reads.
#[derive(Default)]
struct Survivors {
    /// Golden id → number (each id held once: at 500k records there are 300k of them).
    numbers: HashMap<Box<str>, u32>,
    /// Per golden record: the one it was merged into (itself while it is active).
    into: Vec<u32>,
}

impl Survivors {
    fn number(&mut self, golden_id: &str) -> u32 {
        if let Some(n) = self.numbers.get(golden_id) {
            return *n;
        }
        let n = u32::try_from(self.into.len()).unwrap_or(u32::MAX);
        self.numbers.insert(golden_id.into(), n);
        self.into.push(n);
        n
    }

    fn merged(&mut self, survivor: &str, merged: &[String]) {
        let s = self.number(survivor);
        for m in merged {
            let m = self.number(m);
            self.into[m as usize] = s;
        }
    }

    /// The number of the active golden record `golden` ended in.
    fn survivor(&mut self, golden: u32) -> u32 {
        let mut root = golden;
        while self.into[root as usize] != root {
            root = self.into[root as usize];
        }
        // Shorten the path for the next records of this golden record.
        let mut at = golden;
        while self.into[at as usize] != root {
            let next = self.into[at as usize];
            self.into[at as usize] = root;
            at = next;
        }
        root
    }

    /// Golden ids by number.
    fn names(&self) -> Vec<&str> {
        let mut names = vec![""; self.into.len()];
        for (id, n) in &self.numbers {
            names[*n as usize] = id;
        }
        names
    }
}

/// Peak resident memory of this process, in MiB (Linux).
fn peak_memory_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

pub async fn run(args: &[String]) -> Result<(), String> {
    let opts = parse(args)?;
    let registry = match &opts.schemas {
        Some(dir) => SchemaRegistry::from_dir(dir),
        None => SchemaRegistry::built_in(),
    }
    .map_err(|e| e.to_string())?;
    let schema = registry.get(&opts.entity).ok_or_else(|| {
        format!("unknown entity type '{}' (known: {})", opts.entity, registry.entities().collect::<Vec<_>>().join(", "))
    })?;
    let attributes: BTreeSet<String> = schema.attributes.iter().map(|a| a.name.clone()).collect();
    for (col, attr) in &opts.maps {
        if !attributes.contains(attr) {
            return Err(format!("--map {col}={attr}: entity type '{}' has no attribute '{attr}'", opts.entity));
        }
    }
    let mut systems = BTreeMap::new();
    for path in &opts.inputs {
        let system = system_of(path);
        if let Some(other) = systems.insert(system.clone(), path.display().to_string()) {
            return Err(format!(
                "{}: same source system '{system}' as {other} (file stems must differ)",
                path.display()
            ));
        }
    }

    let started = Instant::now();
    let registry = Arc::new(registry);
    let config = HubConfig { keep_history: false, emit_events: false, trace_writes: true, ..HubConfig::default() };
    // Tables sized for the input where the input says how large they get: one source record
    // per row. The others are left to grow: a table holds a power of two of entries, so a guess
    // twice too high doubles it (golden records number anything from a few to one per row;
    // blocks and claims per record vary with the data).
    let per_file: Vec<usize> = opts.inputs.iter().map(|p| estimate_rows(p).min(MAX_EXPECTED_ROWS)).collect();
    let rows: usize = per_file.iter().sum::<usize>().min(MAX_EXPECTED_ROWS);
    let expected = Expected { sources: rows, ..Expected::default() };
    let store = MemoryStore::with_expected(expected);
    let hub = Arc::new(Hub::new(registry.clone(), store).with_config(config).with_clock(batch_clock));
    let (mut links, mut reviews, mut merges) = (0usize, 0usize, 0usize);
    let (mut candidates, mut too_common) = (0usize, 0usize);
    let shown: Vec<String> = opts.inputs.iter().map(|p| p.display().to_string()).collect();
    // Per record, in input order: its file (index into the inputs), its id and the golden record
    // it was merged into; merges later on name the survivor.
    let mut survivors = Survivors::default();
    let mut processed: Vec<(u32, mdm_core::Text, u32)> = Vec::with_capacity(rows);
    // Three stages: reading, validating and keying, on one thread; storing and matching (a few
    // records ahead of the merges), on `--matchers` threads that take batches in turn; merging,
    // on this one, one record at a time in input order. A decision whose reads a merge since
    // has touched is made again here, so the result is the one a single thread gives.
    let (batches, reader) = read_ahead(opts.clone(), registry, attributes, opts.matchers, per_file)?;
    let mut merger = Merger::new(hub.clone());
    let (decisions, matchers) = match_ahead(hub.clone(), batches, merger.merged.clone(), shown)?;
    // Batch `k` comes from lane `k % lanes`; a lane that has closed has no more batches, and
    // neither has any lane after it.
    let mut taken = 0usize;
    while let Ok(batch) = crate::handoff::recv(&decisions[taken % decisions.len()]) {
        taken += 1;
        for matched in batch {
            let Matched { file_index, record_id, key, result, reads, merged_before } = matched?;
            let report = merger.merge(&key, result, &reads, merged_before).await?;
            match &report.outcome {
                MergeOutcome::Linked { .. } => links += 1,
                MergeOutcome::Merged { golden_id, merged } => {
                    merges += 1;
                    survivors.merged(golden_id, merged);
                }
                _ => {}
            }
            let golden = survivors.number(report.outcome.golden_id());
            if report.review_task.is_some() {
                reviews += 1;
            }
            candidates += report.blocking.candidates;
            too_common += report.blocking.too_common.len();
            processed.push((u32::try_from(file_index).unwrap_or(u32::MAX), record_id.as_str().into(), golden));
        }
    }
    // The earlier stages have stopped: a channel closes only when its sender returns.
    for matcher in matchers {
        let _ = matcher.join();
    }
    let _ = reader.join();
    let system_names: Vec<String> = opts.inputs.iter().map(|p| system_of(p)).collect();
    let mut out = csv::Writer::from_path(&opts.out)
        .map_err(|e| format!("{}: cannot write: {}", opts.out.display(), io_reason(&e)))?;
    out.write_record(["source", "record_id", "golden_id"]).map_err(|e| e.to_string())?;
    let finals: Vec<u32> = processed.iter().map(|(_, _, golden)| survivors.survivor(*golden)).collect();
    let names = survivors.names();
    for ((file, record_id, _), golden) in processed.iter().zip(finals) {
        out.write_record([system_names[*file as usize].as_str(), record_id.as_str(), names[golden as usize]])
            .map_err(|e| e.to_string())?;
    }
    out.flush().map_err(|e| format!("{}: {e}", opts.out.display()))?;
    let elapsed = started.elapsed().as_secs_f64();
    let goldens = hub.store().counts().goldens_active;
    // The store is dropped by the operating system at exit: freeing it item by item takes longer
    // than the whole run on large inputs.
    std::mem::forget(hub);
    eprintln!(
        "records {}  golden records {goldens}  links {links}  merges {merges}  reviews {reviews}  elapsed {elapsed:.2} s  \
         records/s {:.0}  peak memory {} MiB  candidates/record {:.2}  too-common keys/record {:.3}  \
         decisions remade {}",
        processed.len(),
        processed.len() as f64 / elapsed.max(1e-9),
        peak_memory_mib().map_or("?".into(), |m| format!("{m:.0}")),
        candidates as f64 / processed.len().max(1) as f64,
        too_common as f64 / processed.len().max(1) as f64,
        merger.remade,
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mdm_core::record::validate;
    use mdm_core::store::SourceStore;
    use serde_json::{json, Map, Value};

    fn people() -> Vec<Value> {
        let rows = [
            ("crm", "c1", "Anna", "Kowalski", "anna.k@example.com", "1984-07-21", "SW1A 1AA"),
            ("crm", "c2", "Bob", "Okafor", "bob@example.org", "1962-11-03", "M1 1AE"),
            ("web", "w1", "Ana", "Kowalsky", "ANNA.K@EXAMPLE.COM", "21/07/1984", "SW1A 1AA"),
            ("crm", "c3", "Priya", "Raman", "", "1990-02-14", "B1 1BB"),
            ("web", "w2", "Robert", "Okafor", "bob@example.org", "1962-11-03", "M1 1AE"),
            ("erp", "e1", "Kowalski", "Anna", "", "1984-07-21", "SW1A 1AA"),
            ("erp", "e2", "Priya", "Ramen", "priya@example.in", "1990-02-14", "B1 1BB"),
            ("web", "w3", "Carl", "Jensen", "carl@example.dk", "1970-01-05", "EC1A 1BB"),
        ];
        rows.iter()
            .map(|(system, id, given, family, email, dob, postcode)| {
                let mut attrs = Map::new();
                for (k, v) in [
                    ("given_name", given),
                    ("family_name", family),
                    ("email", email),
                    ("date_of_birth", dob),
                    ("postcode", postcode),
                ] {
                    if !v.is_empty() {
                        attrs.insert(k.into(), Value::String((*v).into()));
                    }
                }
                json!({"entityType": "customer", "sourceSystem": system, "sourceId": id, "sourceSeq": 1,
                       "attributes": attrs})
            })
            .collect()
    }

    fn hub() -> Arc<Hub<MemoryStore>> {
        let registry = Arc::new(SchemaRegistry::built_in().expect("schemas"));
        let config = HubConfig { keep_history: false, emit_events: false, trace_writes: true, ..HubConfig::default() };
        Arc::new(Hub::new(registry, MemoryStore::new()).with_config(config).with_clock(batch_clock))
    }

    /// Each record's golden record after the whole input.
    async fn clusters(hub: &Hub<MemoryStore>, keys: &[SourceKey]) -> Vec<String> {
        let mut out = Vec::new();
        for k in keys {
            let source = hub.store().get_source(k).await.expect("read").expect("stored");
            let golden = hub.final_record("customer", source.golden_id.as_deref().expect("xref")).await.expect("read");
            out.push(golden.expect("golden").golden_id);
        }
        out
    }

    /// Every decision made before any merge (as far ahead as matching can run) still gives the
    /// clusters of matching and merging one record at a time: each stale decision is made again.
    #[tokio::test]
    async fn decisions_made_ahead_give_the_clusters_of_one_thread() {
        let registry = SchemaRegistry::built_in().expect("schemas");
        let records: Vec<mdm_core::SourceRecord> =
            people().iter().map(|r| validate(&registry, r, 0).expect("valid")).collect();
        let keys: Vec<SourceKey> = records.iter().map(|r| r.key.clone()).collect();

        let one = hub();
        for r in &records {
            one.ingest(r).await.expect("ingest");
            one.process(&r.key).await.expect("process");
        }
        let expected = clusters(&one, &keys).await;
        assert!(expected.iter().collect::<BTreeSet<_>>().len() < records.len(), "the input has duplicates");

        let ahead = hub();
        let mut merger = Merger::new(ahead.clone());
        let shown = vec!["people.csv".to_owned()];
        let mut matched = Vec::new();
        for (i, record) in records.into_iter().enumerate() {
            let prepared = Prepared {
                file_index: 0,
                line: i as u64 + 2,
                record_id: record.key.source_id.to_string(),
                record: Box::new(record),
            };
            matched.push(match_one(&ahead, &merger.merged, &shown, prepared).await.expect("match"));
        }
        assert!(matched.iter().all(|m| m.merged_before == 0 && m.result.decision == mdm_core::MatchDecision::New));
        for m in matched {
            merger.merge(&m.key, m.result, &m.reads, m.merged_before).await.expect("merge");
        }
        assert_eq!(clusters(&ahead, &keys).await, expected);
        assert!(merger.remade > 0, "the duplicates' decisions were stale");
        assert!(merger.remade < keys.len(), "a decision nothing touched since is kept");
    }

    #[test]
    fn a_record_ends_in_the_survivor_of_every_later_merge() {
        let mut s = Survivors::default();
        let (a, b, c, d) = (s.number("ga"), s.number("gb"), s.number("gc"), s.number("gd"));
        assert_eq!(s.number("ga"), a, "one number per golden record");
        s.merged("gb", &["ga".into()]);
        s.merged("gc", &["gb".into(), "gx".into()]);
        let x = s.number("gx");
        let ended = |s: &mut Survivors, g: u32| {
            let n = s.survivor(g);
            s.names()[n as usize].to_owned()
        };
        assert_eq!(ended(&mut s, a), "gc", "a was merged into b, and b into c");
        assert_eq!(ended(&mut s, b), "gc");
        assert_eq!(ended(&mut s, c), "gc");
        assert_eq!(ended(&mut s, d), "gd", "never merged");
        assert_eq!(ended(&mut s, x), "gc");
        s.merged("gd", &["gc".into()]);
        assert_eq!(ended(&mut s, a), "gd", "a shortened path still follows a later merge");
    }

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

    #[test]
    fn a_decision_is_stale_only_after_a_later_merge_touched_what_it_read() {
        let mut merger = Merger::new(hub());
        let (a, b) = (Touched::block("customer", &IndexKey::parse("k=1")), Touched::golden("customer", "g1"));
        merger.last_touch[Merger::slot(a)] = 3;
        assert!(merger.stale(&[b, a], 2), "merge 3 came after the two the match saw");
        assert!(!merger.stale(&[a], 3), "the match saw merge 3");
        assert!(!merger.stale(&[b], 0) || Merger::slot(a) == Merger::slot(b));
        assert!(!merger.stale(&[], 0));
    }
}
