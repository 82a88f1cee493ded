//! `mdm`: the hub's command line.
//!
//! ```text
//! mdm dedupe --entity E --id-column C [--map COL=ATTR]... [--schemas DIR] --out OUT.csv IN.csv...
//! mdm local demo --resources FILE [--data DIR]   (feature "aws") run the sample data through the local stack
//! mdm local cost --resources FILE --people F.csv  (feature "aws") what a record costs on AWS
//! mdm schemas [--schemas DIR]                    list the entity schemas and check them
//! mdm reindex --table T --run ID [--page N] [--rewrite] [--schemas DIR]   (feature "aws") rebuild index entries and claims
//! ```
#![recursion_limit = "256"]

mod allocator;
mod dedupe;
mod generate;

// The batch engine allocates small strings and maps per record: mimalloc makes that cheaper than
// the system allocator (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: allocator::Mimalloc = allocator::Mimalloc;

#[cfg(feature = "aws")]
mod cost;
#[cfg(feature = "aws")]
mod demo;
#[cfg(feature = "aws")]
mod demo_steward;
#[cfg(feature = "aws")]
mod reindex;

use std::process::ExitCode;

const USAGE: &str = "usage:
  mdm dedupe --entity ENTITY --id-column COLUMN [--map COLUMN=ATTRIBUTE]... [--schemas DIR] --out FILE.csv INPUT.csv...
                                                   batch-deduplicate CSV files (in-process, no AWS)
  mdm generate people|products --records N [--seed S] [--dup-rate R] [--profile standard|febrl] --out DIR
                                                   seeded test data and its ground truth
  mdm train --entity ENTITY --id-column COLUMN [--map COLUMN=ATTRIBUTE]... [--schemas DIR] --out SCHEMA.toml INPUT.csv...
                                                   learn the match weights (m by EM, u from random pairs) into a copy of the schema
  mdm blocking --entity ENTITY --id-column COLUMN [--map COLUMN=ATTRIBUTE]... [--schemas DIR] --truth TRUTH.csv INPUT.csv...
                                                   pairs completeness of the entity type's blocking on data with known clusters
  mdm schemas [--schemas DIR]                      check and list entity schemas
  mdm local demo --resources FILE [--data DIR]     run the sample data through the local stack (build with --features aws)
  mdm local cost --resources FILE [--people F.csv] [--products F.csv] [--prices FILE]
                                                   request units, queue requests, events and $ per record (--features aws)
  mdm reindex --table TABLE --run ID [--page N] [--rewrite] [--schemas DIR]
                                                   rebuild every golden record's index entries and claims from its
                                                   members (resumable by run id; --features aws)";

fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

fn schemas(args: &[String]) -> Result<(), String> {
    let registry = match flag(args, "--schemas") {
        Some(dir) => mdm_core::SchemaRegistry::from_dir(std::path::Path::new(&dir)),
        None => mdm_core::SchemaRegistry::built_in(),
    }
    .map_err(|e| e.to_string())?;
    for name in registry.entities() {
        if let Some(s) = registry.get(name) {
            println!(
                "{name}: {} attributes, link ≥ {}, review ≥ {}",
                s.attributes.len(),
                s.matching.link_threshold,
                s.matching.review_threshold
            );
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("schemas") => schemas(&args),
        Some("dedupe") => {
            allocator::tune_for_batch();
            dedupe::run(&args).await
        }
        Some("generate") => generate::run(&args),
        Some("blocking") => dedupe::blocking(&args),
        Some("train") => dedupe::train(&args),
        #[cfg(feature = "aws")]
        Some("reindex") => reindex::run(&args).await,
        #[cfg(feature = "aws")]
        Some("local") if args.get(1).map(String::as_str) == Some("demo") => demo::run(&args).await,
        #[cfg(feature = "aws")]
        Some("local") if args.get(1).map(String::as_str) == Some("cost") => cost::run(&args).await,
        #[cfg(not(feature = "aws"))]
        Some("local") => {
            Err("this mdm was built without the 'aws' feature: cargo run -p mdm-cli --features aws -- local ...".into())
        }
        _ => Err(USAGE.into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mdm: {e}");
            ExitCode::FAILURE
        }
    }
}
