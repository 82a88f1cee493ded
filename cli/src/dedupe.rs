//! `mdm dedupe`: the batch engine. Reads CSV files, feeds their records one at a time, in file
//! order, through the same validation, match and merge code the Lambda path uses, on the
//! in-process store, and writes each record's golden record id after the whole input.
//!
//! ```text
//! mdm dedupe --entity customer --id-column rec_id [--map COLUMN=ATTRIBUTE]... [--schemas DIR]
//!            --out clusters.csv FILE.csv [FILE.csv ...]
//! ```

mod blocking_report;
mod clusters;
mod online;
mod reading;
mod survivors;
mod train;
mod workers;

use mdm_core::hub::{Hub, HubConfig};
use mdm_core::store::memory::{Expected, MemoryStore};
use mdm_core::SchemaRegistry;
use reading::{estimate_rows, system_of, Layout, Reading, MAX_EXPECTED_ROWS};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Instant;
use workers::{Engine, Merger, Merging};

#[derive(Debug, Clone)]
struct Options {
    entity: String,
    id_column: String,
    maps: BTreeMap<String, String>,
    /// Threads that read, match and merge in turn.
    threads: usize,
    schemas: Option<PathBuf>,
    out: PathBuf,
    /// Through the hub one record at a time, as the Lambda handlers (`--online`).
    online: bool,
    /// `mdm blocking` only: the true clusters (`record_id,entity_id`).
    truth: Option<PathBuf>,
    /// `mdm train` only: steward decisions (`GET /v1/labels` items) that choose the threshold.
    labels: Option<PathBuf>,
    inputs: Vec<PathBuf>,
}

pub use blocking_report::run as blocking;
pub use train::run as train;

/// The input of `dedupe`, `train` and `blocking`: CSV files of one entity type.
#[derive(Debug, Clone, clap::Args)]
pub struct InputArgs {
    /// The entity type (its schema's name, e.g. customer).
    #[arg(long)]
    entity: String,
    /// The column that holds each row's record id.
    #[arg(long, value_name = "COLUMN")]
    id_column: String,
    /// Read a column as an attribute of another name (repeatable).
    #[arg(long = "map", value_name = "COLUMN=ATTRIBUTE", value_parser = column_map)]
    maps: Vec<(String, String)>,
    /// Load the entity schemas from this folder instead of the built-in set.
    #[arg(long, value_name = "DIR")]
    schemas: Option<PathBuf>,
    /// Threads that read, match and merge in turn [default: one per core, at most 8].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(1..=64))]
    threads: Option<u8>,
    /// CSV files with a header row, one per source system (the file name's stem names it).
    #[arg(required = true, value_name = "INPUT.csv")]
    inputs: Vec<PathBuf>,
}

/// `--map COLUMN=ATTRIBUTE`.
fn column_map(m: &str) -> Result<(String, String), String> {
    let (col, attr) = m.split_once('=').ok_or("expected COLUMN=ATTRIBUTE")?;
    Ok((col.trim().to_owned(), attr.trim().to_owned()))
}

#[derive(Debug, Clone, clap::Args)]
pub struct DedupeArgs {
    #[command(flatten)]
    input: InputArgs,
    /// Where each record's golden record id is written (`source,record_id,golden_id`).
    #[arg(long, value_name = "FILE.csv")]
    out: PathBuf,
    /// Through the hub one record at a time, as the Lambda handlers do, instead of the batch engine.
    #[arg(long)]
    online: bool,
}

#[derive(Debug, Clone, clap::Args)]
pub struct TrainArgs {
    #[command(flatten)]
    input: InputArgs,
    /// The schema file to write: the entity's schema with the learned weights.
    #[arg(long, value_name = "SCHEMA.toml")]
    out: PathBuf,
    /// Known clusters (`record_id,entity_id`): count `m` on the matches and the group caps on
    /// every pair, and choose the link threshold by the F1 of `mdm dedupe` on this input.
    #[arg(long, value_name = "TRUTH.csv", conflicts_with = "labels")]
    truth: Option<PathBuf>,
    /// Data stewards' decisions (`GET /v1/labels`, JSON Lines): they choose the link threshold.
    #[arg(long, value_name = "LABELS.jsonl")]
    labels: Option<PathBuf>,
    /// With `--truth`: the pairwise precision the link threshold must reach on this input; the
    /// best F1 among the thresholds that reach it is chosen (the best F1 of all when none does).
    #[arg(long, value_name = "P", default_value_t = 0.999, value_parser = precision_target, requires = "truth")]
    min_precision: f64,
}

/// `--min-precision`: a share from 0 to 1.
fn precision_target(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
        _ => Err(format!("`{s}`: expected a share from 0 to 1, e.g. 0.999")),
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct BlockingArgs {
    #[command(flatten)]
    input: InputArgs,
    /// The true clusters (`record_id,entity_id`, as `mdm generate` writes them).
    #[arg(long, value_name = "TRUTH.csv")]
    truth: PathBuf,
}

impl InputArgs {
    fn options(self, out: PathBuf, truth: Option<PathBuf>, labels: Option<PathBuf>, online: bool) -> Options {
        Options {
            entity: self.entity,
            id_column: self.id_column,
            maps: self.maps.into_iter().collect(),
            // One thread per core (at most eight).
            threads: self
                .threads
                .map_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get().min(8)), usize::from),
            schemas: self.schemas,
            out,
            online,
            truth,
            labels,
            inputs: self.inputs,
        }
    }
}

impl From<DedupeArgs> for Options {
    fn from(a: DedupeArgs) -> Self {
        a.input.options(a.out, None, None, a.online)
    }
}

impl From<TrainArgs> for Options {
    fn from(a: TrainArgs) -> Self {
        a.input.options(a.out, a.truth, a.labels, false)
    }
}

impl From<BlockingArgs> for Options {
    fn from(a: BlockingArgs) -> Self {
        a.input.options(PathBuf::new(), Some(a.truth), None, false)
    }
}

/// How the batch engine runs the hub: no history or events (the output is the clusters), writes
/// traced (decisions made ahead are checked against them), term counts kept by the engine in
/// input order rather than by the store.
fn batch_config() -> HubConfig {
    HubConfig {
        keep_history: false,
        emit_events: false,
        trace_writes: true,
        count_terms: false,
        ..HubConfig::default()
    }
}

/// The batch engine's clock: the time the run started, plus one millisecond per reading. Where
/// two golden records merge, the older one survives (after the one with more members); with
/// wall-clock time, two created in the same millisecond fall back to the smaller id, so the
/// survivor depended on how fast the machine ran. Read by the merges only, in input order
/// (one thread at a time), so every run gives the same ids.
fn batch_clock() -> i64 {
    static START: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    static TICKS: AtomicI64 = AtomicI64::new(0);
    START.get_or_init(mdm_core::time::now_ms) + TICKS.fetch_add(1, Ordering::Relaxed)
}

/// Peak resident memory of this process, in MiB (Linux).
fn peak_memory_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// The schemas, the entity type's attribute names, and the check of `--map` and of the inputs'
/// source systems.
fn load(opts: &Options) -> Result<(SchemaRegistry, BTreeSet<String>), String> {
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
    Ok((registry, attributes))
}

pub async fn run(args: DedupeArgs) -> Result<(), String> {
    let opts = Options::from(args);
    let (registry, attributes) = load(&opts)?;
    let started = Instant::now();
    let registry = Arc::new(registry);
    if opts.online {
        let layout = Layout {
            entity: opts.entity.clone(),
            id_column: opts.id_column.clone(),
            maps: opts.maps.clone(),
            attributes,
        };
        let systems: Vec<String> = opts.inputs.iter().map(|p| system_of(p)).collect();
        let records = online::run(registry, layout, &opts.inputs, &systems, &opts.out).await?;
        eprintln!("records {records}  online  elapsed {:.2} s", started.elapsed().as_secs_f64());
        return Ok(());
    }
    let config = batch_config();
    // Tables sized for the input where the input says how large they get: one source record
    // per row. The others are left to grow: a table holds a power of two of entries, so a guess
    // twice too high doubles it (golden records number anything from a few to one per row;
    // blocks and claims per record vary with the data).
    let per_file: Vec<usize> = opts.inputs.iter().map(|p| estimate_rows(p).min(MAX_EXPECTED_ROWS)).collect();
    let rows: usize = per_file.iter().sum::<usize>().min(MAX_EXPECTED_ROWS);
    let expected = Expected { sources: rows, ..Expected::default() };
    let store = MemoryStore::with_expected(expected);
    let hub = Arc::new(Hub::new(registry.clone(), store).with_config(config).with_clock(batch_clock));
    let shown: Vec<String> = opts.inputs.iter().map(|p| p.display().to_string()).collect();
    let layout =
        Layout { entity: opts.entity.clone(), id_column: opts.id_column.clone(), maps: opts.maps.clone(), attributes };
    let progress = crate::progress::Progress::start("dedupe", "records", Some(rows as u64));
    let reading = Reading::new(layout, opts.inputs.clone(), per_file).with_progress(progress.counter());
    let merging = Merging::new(Merger::new(hub.clone()), rows);
    // Every thread reads, matches (a few batches ahead of the merges) and merges in turn; the
    // merges run one at a time, in input order. A decision whose reads a merge since has
    // touched is made again, so the result is the one a single thread gives.
    let engine = Engine::new(hub.clone(), registry, shown, reading, merging, workers::LOOKAHEAD);
    let Merging { merger, mut survivors, processed, tally, .. } = engine.run(opts.threads)?;
    progress.finish();
    let system_names: Vec<String> = opts.inputs.iter().map(|p| system_of(p)).collect();
    clusters::write(&opts.out, &processed, &system_names, &mut survivors, opts.threads)?;
    let elapsed = started.elapsed().as_secs_f64();
    // Every active golden record holds at least one input record, and every golden record a
    // merge took is marked merged: the survivors' roots are the active golden records.
    let goldens = survivors.active();
    // The store is dropped by the operating system at exit: freeing it item by item takes longer
    // than the whole run on large inputs.
    std::mem::forget(hub);
    eprintln!(
        "records {}  golden records {goldens}  links {}  merges {}  reviews {}  elapsed {elapsed:.2} s  \
         records/s {:.0}  peak memory {} MiB  candidates/record {:.2}  too-common keys/record {:.3}  \
         decisions remade {}",
        processed.len(),
        tally.links,
        tally.merges,
        tally.reviews,
        processed.len() as f64 / elapsed.max(1e-9),
        peak_memory_mib().map_or("?".into(), |m| format!("{m:.0}")),
        tally.candidates as f64 / processed.len().max(1) as f64,
        tally.too_common as f64 / processed.len().max(1) as f64,
        merger.remade,
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(clap::Parser)]
    struct Line {
        #[command(flatten)]
        args: DedupeArgs,
    }

    fn parse(extra: &[&str]) -> Result<Options, clap::Error> {
        use clap::Parser;
        let argv = ["dedupe", "--entity", "customer", "--id-column", "id", "--out", "o.csv"].iter().chain(extra);
        Line::try_parse_from(argv.chain(&["in.csv"])).map(|l| Options::from(l.args))
    }

    #[test]
    fn threads_are_one_to_sixty_four() {
        assert_eq!(parse(&["--threads", "3"]).expect("valid").threads, 3);
        assert!(parse(&[]).expect("valid").threads >= 1);
        for bad in ["0", "65", "two"] {
            let e = parse(&["--threads", bad]).expect_err(bad).to_string();
            assert!(e.contains("--threads"), "{e}");
        }
    }

    #[test]
    fn maps_are_column_equals_attribute() {
        let o = parse(&["--map", "surname = family_name", "--map", "dob=date_of_birth"]).expect("valid");
        assert_eq!(o.maps.get("surname").map(String::as_str), Some("family_name"));
        assert_eq!(o.maps.len(), 2);
        assert!(parse(&["--map", "surname"]).expect_err("no =").to_string().contains("COLUMN=ATTRIBUTE"));
    }
}
