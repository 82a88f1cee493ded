//! `mdm reindex`: rebuilds the index entries and claims of every golden record in a table from
//! its members' source records (`mdm_aws::reindex`). Resumable: the same `--run` id goes on
//! from the last page it finished. With the functions' `MDM_SUPPRESSION_SECRETS` in the
//! environment it also migrates suppression markers written under a superseded normaliser
//! (docs/privacy.md, "When a normaliser changes"); without, markers are left as they are.

use mdm_aws::reindex::{self, ReindexJob};
use mdm_core::{Hub, HubConfig, SchemaRegistry};
use std::sync::Arc;

#[derive(Debug, Clone, clap::Args)]
pub struct ReindexArgs {
    /// The hub's DynamoDB table (the stack's `HubTable`).
    #[arg(long, value_name = "TABLE")]
    table: String,
    /// The run's id: a new id starts a run, the same id resumes it.
    #[arg(long, value_name = "ID")]
    run: String,
    /// Golden records per page (one checkpoint per page).
    #[arg(long, value_name = "N", default_value_t = 100, value_parser = clap::value_parser!(u16).range(1..=1000))]
    page: u16,
    /// Rewrite every index entry and claim, not only the missing or changed ones.
    #[arg(long)]
    rewrite: bool,
    /// Load the entity schemas from this folder instead of the built-in set.
    #[arg(long, value_name = "DIR")]
    schemas: Option<std::path::PathBuf>,
}

pub async fn run(args: ReindexArgs) -> Result<(), String> {
    let ReindexArgs { table, run, page, rewrite, schemas } = args;
    let registry = match schemas {
        Some(dir) => SchemaRegistry::from_dir(&dir),
        None => SchemaRegistry::built_in(),
    }
    .map_err(|e| e.to_string())?;
    let sdk = mdm_aws::config::sdk_config().await;
    let store = mdm_aws::DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), table);
    let suppression_secrets: Vec<Vec<u8>> = std::env::var("MDM_SUPPRESSION_SECRETS")
        .map(|v| v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(|s| s.as_bytes().to_vec()).collect())
        .unwrap_or_default();
    let hub =
        Hub::new(Arc::new(registry), store).with_config(HubConfig { suppression_secrets, ..HubConfig::default() });
    let job = ReindexJob { run, rewrite, page: usize::from(page), max_pages: None };
    let state = reindex::run(&hub, &job).await.map_err(|e| e.to_string())?;
    println!(
        "reindex run '{}': {} — {}",
        job.run,
        if state.done { "complete" } else { "stopped" },
        state.counts.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ")
    );
    Ok(())
}
