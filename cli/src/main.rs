//! `mdm`: the hub's command line (`mdm --help`; every subcommand has its own `--help`).
//!
//! Exit status: 0 on success (and for `--help` / `--version`), 1 when the work fails, 2 on a
//! usage error (a one-line message naming the `--help` to read).
#![recursion_limit = "256"]

mod allocator;
mod dedupe;
mod generate;
mod progress;

// The batch engine allocates small strings and maps per record: mimalloc makes that cheaper than
// the system allocator (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: allocator::Mimalloc = allocator::Mimalloc;

#[cfg(feature = "aws")]
mod console;
#[cfg(feature = "aws")]
mod cost;
#[cfg(feature = "aws")]
mod demo;
#[cfg(feature = "aws")]
mod demo_steward;
#[cfg(feature = "aws")]
mod files_cost;
#[cfg(feature = "aws")]
mod freshness;
#[cfg(feature = "aws")]
mod reindex;
#[cfg(feature = "aws")]
mod source_csv;

use clap::{CommandFactory, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// The MDM hub's command line: batch deduplication, seeded test data, match-weight training and
/// blocking checks on CSV files (in-process, no AWS); with the `aws` feature, the local stack and
/// maintenance of a deployed table.
#[derive(Debug, Parser)]
#[command(name = "mdm", version, propagate_version = true, max_term_width = 100)]
struct Cli {
    /// No progress on stderr (each command's summary line is still printed).
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Batch-deduplicate CSV files through the hub's matching and survivorship (in-process, no AWS).
    Dedupe(dedupe::DedupeArgs),
    /// Write seeded test data (people or products) and its ground truth.
    Generate(generate::GenerateArgs),
    /// Learn the match weights (m by EM or from known clusters, u from random pairs) into a copy of
    /// the entity's schema.
    Train(dedupe::TrainArgs),
    /// Pairs completeness of the entity type's blocking on data with known clusters.
    Blocking(dedupe::BlockingArgs),
    /// Check and list the entity schemas.
    Schemas {
        /// Load the schemas from this folder instead of the built-in set.
        #[arg(long, value_name = "DIR")]
        schemas: Option<PathBuf>,
    },
    /// The local stack on the emulator.
    #[cfg(feature = "aws")]
    #[command(subcommand)]
    Local(LocalCommand),
    /// Rebuild every golden record's index entries and claims from its members (resumable by run id).
    #[cfg(feature = "aws")]
    Reindex(reindex::ReindexArgs),
    /// Present in builds without the `aws` feature only to say how to get it.
    #[cfg(not(feature = "aws"))]
    #[command(hide = true)]
    Local {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        rest: Vec<String>,
    },
    /// Print a completion script for a shell (e.g. `mdm completions bash > /etc/bash_completion.d/mdm`).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[cfg(feature = "aws")]
#[derive(Debug, Subcommand)]
enum LocalCommand {
    /// Run the sample data through the local stack (infra/local/demo starts the emulator first).
    Demo(demo::DemoArgs),
    /// Request units, queue requests, events and dollars per record on AWS.
    Cost(cost::CostArgs),
    /// Rows per second through the bulk-file path, and what a row costs on AWS.
    Files(files_cost::FilesArgs),
    /// Latency from sending a record to its event reaching a subscriber, at a steady rate.
    Freshness(freshness::FreshnessArgs),
    /// The steward console on one loopback origin (infra/local/console starts the emulator first).
    Console(console::ConsoleArgs),
}

fn schemas(dir: Option<PathBuf>) -> Result<(), String> {
    let registry = match dir {
        Some(dir) => mdm_core::SchemaRegistry::from_dir(&dir),
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

/// Parses the command line. Help and version go to stdout with status 0; a usage error is one
/// line on stderr with status 2.
fn parse() -> Result<Cli, ExitCode> {
    Cli::try_parse().map_err(|e| {
        use clap::error::ErrorKind;
        if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
            let argv: Vec<String> = std::env::args().collect();
            eprintln!("{}", usage_line("error: a command is required", &argv));
            return ExitCode::from(2);
        }
        eprintln!("{}", usage_line(&e.render().to_string(), &std::env::args().collect::<Vec<_>>()));
        ExitCode::from(2)
    })
}

/// clap's error (several lines: the error, tips, usage) as one line naming the help to read.
fn usage_line(rendered: &str, argv: &[String]) -> String {
    // The error is its first paragraph (a missing argument's names follow on indented lines).
    let paragraph: Vec<&str> =
        rendered.lines().map(str::trim).skip_while(|l| l.is_empty()).take_while(|l| !l.is_empty()).collect();
    let joined = paragraph.join(" ");
    let message = joined.strip_prefix("error: ").unwrap_or(&joined);
    let message = if message.is_empty() { "invalid arguments" } else { message };
    let names: Vec<String> = Cli::command().get_subcommands().map(|c| c.get_name().to_owned()).collect();
    match argv.iter().skip(1).find(|a| names.contains(a)) {
        Some(sub) => format!("mdm: {message} (see 'mdm {sub} --help')"),
        None => format!("mdm: {message} (see 'mdm --help')"),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = match parse() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    progress::init(cli.quiet);
    let result = match cli.command {
        Command::Schemas { schemas: dir } => schemas(dir),
        Command::Dedupe(args) => {
            allocator::tune_for_batch();
            dedupe::run(args).await
        }
        Command::Generate(args) => generate::run(args),
        Command::Blocking(args) => dedupe::blocking(args),
        Command::Train(args) => dedupe::train(args),
        #[cfg(feature = "aws")]
        Command::Reindex(args) => reindex::run(args).await,
        #[cfg(feature = "aws")]
        Command::Local(LocalCommand::Demo(args)) => demo::run(args).await,
        #[cfg(feature = "aws")]
        Command::Local(LocalCommand::Cost(args)) => cost::run(args).await,
        #[cfg(feature = "aws")]
        Command::Local(LocalCommand::Files(args)) => files_cost::run(args).await,
        #[cfg(feature = "aws")]
        Command::Local(LocalCommand::Freshness(args)) => freshness::run(args).await,
        #[cfg(feature = "aws")]
        Command::Local(LocalCommand::Console(args)) => console::run(args).await,
        #[cfg(not(feature = "aws"))]
        Command::Local { .. } => {
            Err("this mdm was built without the 'aws' feature: cargo run -p mdm-cli --features aws -- local ...".into())
        }
        Command::Completions { shell } => {
            // Into memory first: clap_complete panics when its writer fails (a closed pipe).
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "mdm", &mut script);
            std::io::Write::write_all(&mut std::io::stdout(), &script).map_err(|e| format!("stdout: {e}"))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mdm: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn a_usage_error_is_one_line_naming_the_subcommand_help() {
        let argv: Vec<String> = ["mdm", "dedupe", "--nope"].iter().map(|s| s.to_string()).collect();
        let e = Cli::try_parse_from(&argv).expect_err("unknown option");
        let line = usage_line(&e.render().to_string(), &argv);
        assert!(!line.contains('\n'), "{line}");
        assert!(line.starts_with("mdm: unexpected argument '--nope'"), "{line}");
        assert!(line.ends_with("(see 'mdm dedupe --help')"), "{line}");
        let argv: Vec<String> = ["mdm", "generate", "people", "--records", "3"].iter().map(|s| s.to_string()).collect();
        let e = Cli::try_parse_from(&argv).expect_err("no --out");
        let line = usage_line(&e.render().to_string(), &argv);
        assert!(!line.contains('\n') && line.contains("--out <DIR>"), "{line}");
    }
}
