//! `mdm reindex`: rebuilds the index entries and claims of every golden record in a table from
//! its members' source records (`mdm_aws::reindex`). Resumable: the same `--run` id goes on
//! from the last page it finished. With the functions' `MDM_SUPPRESSION_SECRETS` in the
//! environment it also migrates suppression markers written under a superseded normaliser
//! (docs/privacy.md, "When a normaliser changes"); without, markers are left as they are.

use mdm_aws::reindex::{self, ReindexJob};
use mdm_core::{Hub, HubConfig, SchemaRegistry};
use std::sync::Arc;

pub async fn run(args: &[String]) -> Result<(), String> {
    let table = crate::flag(args, "--table").ok_or("mdm reindex: --table TABLE is required")?;
    let run = crate::flag(args, "--run")
        .ok_or("mdm reindex: --run ID is required (a new id for a new run; the same id resumes one)")?;
    let page = match crate::flag(args, "--page") {
        Some(p) => p.parse::<usize>().map_err(|_| "--page takes a number of golden records")?,
        None => 100,
    };
    let registry = match crate::flag(args, "--schemas") {
        Some(dir) => SchemaRegistry::from_dir(std::path::Path::new(&dir)),
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
    let job = ReindexJob { run, rewrite: args.iter().any(|a| a == "--rewrite"), page, max_pages: None };
    let state = reindex::run(&hub, &job).await.map_err(|e| e.to_string())?;
    println!(
        "reindex run '{}': {} — {}",
        job.run,
        if state.done { "complete" } else { "stopped" },
        state.counts.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ")
    );
    Ok(())
}
