//! `mdm local files`: the bulk-file path on the local stack. Drops a generated people file into
//! the files bucket (`incoming/customer/<stem>/`), runs the files function's queue until it is
//! empty (rows stored and queued for matching; the match queue is left as it is), and prints rows
//! per second on the emulator and what a row costs on AWS by the cost method of `mdm local cost`.

use mdm_aws::capacity::meter;
use mdm_aws::local::esm::LocalRunner;
use mdm_aws::local::Resources;
use serde_json::Value;
use std::path::Path;
use std::time::Instant;

/// `mdm local files`.
#[derive(Debug, Clone, clap::Args)]
pub struct FilesArgs {
    /// The local stack's resources (`infra/local/bootstrap.py` writes them, with a `FileFeeds`
    /// entry `customer/<the file's stem>`).
    #[arg(long, value_name = "FILE")]
    resources: String,
    /// The file to drop (CSV, as `mdm generate people` writes it).
    #[arg(long, value_name = "F.csv")]
    people: String,
    /// Prices per request and unit.
    #[arg(long, value_name = "FILE", default_value = "bench/prices-us-east-1.json")]
    prices: String,
}

pub async fn run(args: FilesArgs) -> Result<(), String> {
    let FilesArgs { resources, people, prices } = args;
    let prices: Value = serde_json::from_str(&std::fs::read_to_string(&prices).map_err(|e| format!("{prices}: {e}"))?)
        .map_err(|e| format!("{prices}: {e}"))?;
    let text = std::fs::read_to_string(&resources).map_err(|e| format!("{resources}: {e}"))?;
    let res = Resources::from_json(&text).map_err(|e| e.to_string())?;
    let bucket = res.attr("FilesBucket", "ref").ok_or("no FilesBucket in the resources")?.to_owned();
    let sdk = mdm_aws::config::sdk_config().await;
    let runner = LocalRunner::new(&sdk, res).map_err(|e| e.to_string())?;
    let path = Path::new(&people);
    let bytes = std::fs::read(path).map_err(|e| format!("{people}: {e}"))?;
    let rows = bytes.iter().filter(|b| **b == b'\n').count().saturating_sub(1);
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("people");
    let name = path.file_name().and_then(|s| s.to_str()).unwrap_or("people.csv");
    let key = format!("incoming/customer/{stem}/{name}");
    let s3 = &runner.handlers().files.s3;
    // S3's test event (from setting up the notification) first, outside the measurement.
    runner.run_function_until_idle("mdm-files").await.map_err(|e| e.to_string())?;
    s3.put_object()
        .bucket(&bucket)
        .key(&key)
        .body(bytes.into())
        .send()
        .await
        .map_err(|e| format!("dropping {key}: {e:?}"))?;
    meter().remember_item_sizes(true);
    meter().reset();
    let started = Instant::now();
    let stats = runner.run_function_until_idle("mdm-files").await.map_err(|e| e.to_string())?;
    let seconds = started.elapsed().as_secs_f64();
    let tally = meter().tally();
    let report_key = format!("reports/customer/{stem}/{name}.json");
    let report = s3
        .get_object()
        .bucket(&bucket)
        .key(&report_key)
        .send()
        .await
        .map_err(|e| format!("no report {report_key}: {e:?}"))?
        .body
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .into_bytes();
    let report: Value = serde_json::from_slice(&report).map_err(|e| format!("{report_key}: {e}"))?;
    println!(
        "rows {rows}  stored {}  rejected {}  in {seconds:.1} s: {:.0} rows/s through the files function on the emulator ({} invocations)",
        report["rows"]["stored"],
        report["rows"]["rejected"],
        rows as f64 / seconds,
        stats.invocations
    );
    println!("(up to the match queue: matching and merging cost what they cost for any record, `mdm local cost`)");
    crate::cost::print_report(&tally, rows as f64, 0.0, stats.invocations as f64, &prices)
}
