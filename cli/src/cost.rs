//! `mdm local cost`: what one ingested record costs on AWS. Sends generated CSV records through
//! the real handlers on the local stack (`POST /v1/records` in batches of 100, then the queues and
//! the stream as Lambda's event-source mappings would), and prints per record: DynamoDB requests
//! and request units by operation and item kind (computed by DynamoDB's rules, see
//! `mdm_aws::capacity`), SQS requests, EventBridge entries, Lambda invocations, and the cost
//! model's dollars per million records at the prices in `bench/prices-us-east-1.json`.

use mdm_aws::capacity::{meter, Tally};
use mdm_aws::local::esm::LocalRunner;
use mdm_aws::local::Resources;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// `mdm local cost`.
#[derive(Debug, Clone, clap::Args)]
pub struct CostArgs {
    /// The local stack's resources (`infra/local/bootstrap.py` writes them).
    #[arg(long, value_name = "FILE")]
    resources: String,
    /// People to send (CSV, as `mdm generate people` writes them).
    #[arg(long, value_name = "F.csv")]
    people: Option<String>,
    /// Products to send (CSV, as `mdm generate products` writes them).
    #[arg(long, value_name = "F.csv")]
    products: Option<String>,
    /// Prices per request and unit.
    #[arg(long, value_name = "FILE", default_value = "bench/prices-us-east-1.json")]
    prices: String,
}

/// `(entity, file)` pairs from `--people FILE` / `--products FILE`.
fn inputs(args: &CostArgs) -> Vec<(&'static str, String)> {
    let people = args.people.iter().map(|f| ("customer", f.clone()));
    people.chain(args.products.iter().map(|f| ("product", f.clone()))).collect()
}

/// A generated CSV file (`mdm generate`) as ingest records: the file's stem is the source
/// system, `rec_id` the source id, every other non-empty field an attribute.
fn price(prices: &Value, name: &str) -> Result<f64, String> {
    prices.get(name).and_then(Value::as_f64).ok_or_else(|| format!("prices file: no number '{name}'"))
}

pub async fn run(args: CostArgs) -> Result<(), String> {
    let files = inputs(&args);
    let CostArgs { resources, prices: prices_path, .. } = args;
    let prices: Value =
        serde_json::from_str(&std::fs::read_to_string(&prices_path).map_err(|e| format!("{prices_path}: {e}"))?)
            .map_err(|e| format!("{prices_path}: {e}"))?;
    if files.is_empty() {
        return Err("give at least one --people FILE.csv or --products FILE.csv (mdm generate writes them)".into());
    }
    let text = std::fs::read_to_string(&resources).map_err(|e| format!("{resources}: {e}"))?;
    let res = Resources::from_json(&text).map_err(|e| e.to_string())?;
    let sdk = mdm_aws::config::sdk_config().await;
    let runner = LocalRunner::new(&sdk, res).map_err(|e| e.to_string())?;
    meter().remember_item_sizes(true);
    meter().reset();
    let started = Instant::now();

    let mut records = 0usize;
    let mut api_requests = 0usize;
    for (entity, file) in &files {
        let system = Path::new(file).file_stem().and_then(|s| s.to_str()).unwrap_or("file");
        let batch = crate::source_csv::read_records(entity, system, Path::new(file))?;
        for chunk in batch.chunks(100) {
            let (status, body) = runner.post_records(&json!({ "records": chunk }).to_string()).await;
            if status >= 300 && status != 207 {
                return Err(format!("POST /v1/records answered {status}: {body}"));
            }
            api_requests += 1;
        }
        records += batch.len();
        eprintln!("  sent {} {entity} records from {file}", batch.len());
    }
    let stats = runner.run_until_idle(Duration::from_secs(3600)).await.map_err(|e| e.to_string())?;
    let tally = meter().tally();
    let totals = runner.handlers().totals();
    let t = |k: &str| totals.get(k).copied().unwrap_or(0.0);
    println!(
        "records {records}  golden links {}  merges {}  reviews {}  in {:.0} s on the emulator",
        t("merge.GoldenLinked"),
        t("merge.GoldenMerged"),
        t("merge.ReviewTasksOpened"),
        started.elapsed().as_secs_f64()
    );
    print_report(&tally, records as f64, api_requests as f64, stats.invocations as f64, &prices)
}

pub(crate) fn print_report(
    tally: &Tally,
    n: f64,
    api_requests: f64,
    invocations: f64,
    prices: &Value,
) -> Result<(), String> {
    println!(
        "\nDynamoDB per ingested record (request units by DynamoDB's rules; an eventually consistent read counts half)"
    );
    println!("  {:<20} {:<12} {:>8} {:>8} {:>8}", "operation", "item kind", "items", "RRU", "WRU");
    for ((op, kind), u) in &tally.dynamo {
        println!(
            "  {op:<20} {kind:<12} {:>8.2} {:>8.2} {:>8.2}",
            u.items as f64 / n,
            u.read_units / n,
            u.write_units as f64 / n
        );
    }
    let mut by_kind: BTreeMap<&str, (f64, u64)> = BTreeMap::new();
    for ((_, kind), u) in &tally.dynamo {
        let e = by_kind.entry(kind).or_default();
        e.0 += u.read_units;
        e.1 += u.write_units;
    }
    println!("  by item kind:");
    for (kind, (r, w)) in &by_kind {
        println!("  {:<33} {:>8} {:>8.2} {:>8.2}", kind, "", *r / n, *w as f64 / n);
    }
    let (rru, wru) = (tally.read_units() / n, tally.write_units() as f64 / n);
    let requests: u64 = tally.requests.values().sum();
    println!(
        "  {:<33} {:>8.2} {:>8.2} {:>8.2}   = {:.2} request units",
        "total",
        requests as f64 / n,
        rru,
        wru,
        rru + wru
    );
    println!(
        "  requests: {}",
        tally.requests.iter().map(|(k, v)| format!("{k} {:.2}", *v as f64 / n)).collect::<Vec<_>>().join(", ")
    );
    println!("\nSQS per record (billed requests: each started 64 KB counts)");
    for (op, (calls, billed, messages)) in &tally.sqs {
        println!(
            "  {op:<20} {:>8.2} requests ({:.2} billed), {:.2} messages",
            *calls as f64 / n,
            *billed as f64 / n,
            *messages as f64 / n
        );
    }
    let (put_calls, entries, billed_entries) = tally.events;
    println!(
        "\nEventBridge per record: {:.2} entries ({:.2} billed 64 KB events) in {:.2} PutEvents calls",
        entries as f64 / n,
        billed_entries as f64 / n,
        put_calls as f64 / n
    );
    println!("Lambda invocations per record: {:.3}; API requests per record: {:.3}", invocations / n, api_requests / n);

    let lambda_gb_s = invocations
        * price(prices, "assumed_lambda_seconds_per_invocation")?
        * price(prices, "assumed_lambda_memory_gb")?;
    let rows = [
        ("DynamoDB writes", tally.write_units() as f64 * price(prices, "dynamodb_write_request_unit")?),
        ("DynamoDB reads", tally.read_units() * price(prices, "dynamodb_read_request_unit")?),
        ("SQS", tally.sqs_requests() as f64 * price(prices, "sqs_request")?),
        ("EventBridge", billed_entries as f64 * price(prices, "eventbridge_custom_event")?),
        ("Lambda requests", invocations * price(prices, "lambda_request")?),
        ("Lambda compute (assumed duration)", lambda_gb_s * price(prices, "lambda_gb_second")?),
        ("API Gateway", api_requests * price(prices, "api_gateway_http_request")?),
    ];
    println!(
        "\nCost model: $ per 1M records ({}, prices as of {})",
        prices.get("region").and_then(Value::as_str).unwrap_or("?"),
        prices.get("as_of").and_then(Value::as_str).unwrap_or("?")
    );
    let mut total = 0.0;
    for (name, dollars) in rows {
        let per_million = dollars / n * 1e6;
        total += per_million;
        println!("  {name:<36} {per_million:>9.2}");
    }
    println!("  {:<36} {total:>9.2}", "total");
    Ok(())
}
