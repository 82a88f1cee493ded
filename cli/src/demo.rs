//! `mdm local demo`: sends the sample data from three systems through the real handlers on the
//! local stack (HTTP ingest for two systems, CSV files dropped into the files bucket for the third), lets the
//! event-source mappings run until every queue is idle, and prints what a person wants to see:
//! golden records with provenance, counts, and the events a subscriber received.

use mdm_aws::local::esm::LocalRunner;
use mdm_aws::local::Resources;
use mdm_core::store::{GoldenStore, ReviewStore, SourceStore};
use mdm_core::survivorship::Rule;
use mdm_core::{GoldenRecord, ReviewTask, SourceKey};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub(crate) fn read_jsonl(path: &Path) -> Result<Vec<Value>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| serde_json::from_str(l).map_err(|e| format!("{}:{}: {e}", path.display(), i + 1)))
        .collect()
}

fn key_of(v: &Value) -> Option<SourceKey> {
    Some(SourceKey::new(
        v.get("entityType")?.as_str()?,
        v.get("sourceSystem")?.as_str()?.to_lowercase(),
        v.get("sourceId")?.as_str()?,
    ))
}

/// `mdm local demo`.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// The local stack's resources (infra/local/demo writes them with `infra/local/bootstrap.py`).
    #[arg(long, value_name = "FILE")]
    resources: String,
    /// The sample data to send.
    #[arg(long, value_name = "DIR", default_value = "infra/local/sample")]
    data: PathBuf,
}

pub async fn run(args: DemoArgs) -> Result<(), String> {
    let DemoArgs { resources, data } = args;
    let text = std::fs::read_to_string(&resources).map_err(|e| format!("{resources}: {e}"))?;
    let res = Resources::from_json(&text).map_err(|e| e.to_string())?;
    let sdk = mdm_aws::config::sdk_config().await;
    let runner = LocalRunner::new(&sdk, res.clone()).map_err(|e| e.to_string())?;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let started = Instant::now();

    println!("== Sending sample data (three systems) through the ingest handler");
    let mut all_records = Vec::new();
    let mut rejected: BTreeMap<String, usize> = BTreeMap::new();
    for system in ["crm", "erp"] {
        let records = read_jsonl(&data.join(format!("{system}.jsonl")))?;
        for chunk in records.chunks(100) {
            let (status, body) = runner.post_records(&json!({ "records": chunk }).to_string()).await;
            println!(
                "  POST /v1/records  {system:<8} {:>3} records -> {status}  stored {} duplicates {} stale {} rejected {}",
                chunk.len(),
                body["stored"],
                body["duplicates"],
                body["stale"],
                body["rejected"].as_array().map_or(0, Vec::len)
            );
            for r in body["rejected"].as_array().into_iter().flatten() {
                *rejected.entry(r["code"].as_str().unwrap_or("?").to_owned()).or_default() += 1;
            }
        }
        all_records.extend(records);
    }
    // The web shop sends files: one CSV file per entity type, dropped into the files bucket
    // (S3 notifies the files queue; the files function reads them through the ingest path).
    let web = read_jsonl(&data.join("webshop.jsonl"))?;
    let bucket = res.attr("FilesBucket", "ref").ok_or("no FilesBucket")?.to_owned();
    let s3 = &runner.handlers().files.s3;
    let mut by_entity: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for r in &web {
        by_entity.entry(r["entityType"].as_str().unwrap_or("?").to_owned()).or_default().push(r.clone());
    }
    let mut report_keys = Vec::new();
    for (entity, records) in &by_entity {
        let key = format!("incoming/{entity}/webshop/webshop-{entity}s.csv");
        s3.put_object()
            .bucket(&bucket)
            .key(&key)
            .body(webshop_csv(records)?.into_bytes().into())
            .send()
            .await
            .map_err(|e| format!("dropping {key} into the files bucket: {e:?}"))?;
        println!("  S3 file           webshop  {:>3} records in {key}", records.len());
        report_keys.push(format!("reports/{entity}/webshop/webshop-{entity}s.csv.json"));
    }
    all_records.extend(web);

    println!("== Running the handlers as Lambda's event-source mappings would (queues and stream) ...");
    let stats = runner.run_until_idle(Duration::from_secs(1800)).await.map_err(|e| e.to_string())?;
    println!(
        "  {} invocations, {} queue messages, {} stream records, {} partial-batch failures, {:.1} s",
        stats.invocations,
        stats.messages,
        stats.stream_records,
        stats.failures_reported,
        started.elapsed().as_secs_f64()
    );

    for key in &report_keys {
        let report = match s3.get_object().bucket(&bucket).key(key).send().await {
            Ok(out) => out.body.collect().await.map(|b| b.into_bytes().to_vec()).unwrap_or_default(),
            Err(e) => return Err(format!("the files function wrote no report {key}: {e:?}")),
        };
        let report: Value = serde_json::from_slice(&report).map_err(|e| format!("{key}: {e}"))?;
        let rows = &report["rows"];
        println!(
            "  file report       {key}: {} rows read, {} stored, {} rejected {}",
            rows["read"],
            rows["stored"],
            rows["rejected"],
            report["rejected"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|r| format!(
                    "(line {} {} {})",
                    r["line"],
                    r["column"].as_str().unwrap_or("-"),
                    r["code"].as_str().unwrap_or("?")
                ))
                .collect::<Vec<_>>()
                .join(" ")
        );
        for r in report["rejected"].as_array().into_iter().flatten() {
            *rejected.entry(r["code"].as_str().unwrap_or("?").to_owned()).or_default() += 1;
        }
    }

    let store = runner.handlers().merger.hub.store().clone();
    // Every record's golden record, following merged-into pointers.
    let mut golden_of: HashMap<SourceKey, String> = HashMap::new();
    let mut goldens: BTreeMap<String, GoldenRecord> = BTreeMap::new();
    let keys: BTreeSet<SourceKey> = all_records.iter().filter_map(key_of).collect();
    let keys: Vec<SourceKey> = keys.into_iter().collect();
    let sources = store.get_sources(&keys).await.map_err(|e| e.to_string())?;
    let stored_sources = sources.len() as u64;
    for src in sources {
        let Some(mut id) = src.golden_id.clone() else { continue };
        for _ in 0..8 {
            let g = match goldens.get(&id) {
                Some(g) => g.clone(),
                None => match store.get_golden(&src.key.entity, &id).await.map_err(|e| e.to_string())? {
                    Some(g) => g,
                    None => break,
                },
            };
            goldens.insert(id.clone(), g.clone());
            match &g.status {
                mdm_core::GoldenStatus::MergedInto { survivor } => id = survivor.clone(),
                _ => break,
            }
        }
        golden_of.insert(src.key.clone(), id);
    }
    let active: Vec<&GoldenRecord> = goldens.values().filter(|g| g.is_active()).collect();

    let mut shown: Vec<&GoldenRecord> = Vec::new();
    let mut by_size = active.clone();
    by_size.sort_by(|a, b| b.members.len().cmp(&a.members.len()).then(a.golden_id.cmp(&b.golden_id)));
    shown.extend(by_size.iter().filter(|g| g.entity == "customer").take(2));
    shown.extend(by_size.iter().filter(|g| g.entity == "product").take(1));
    println!(
        "\n== Golden records (showing {} of {}: the customers and the product with the most members)",
        shown.len(),
        active.len()
    );
    println!("   value  <- system/sourceId @sourceSeq, survivorship rule");
    for g in shown {
        println!(
            "\n  {} {}  version {}  members: {}",
            g.entity,
            g.golden_id,
            g.version,
            g.members.iter().map(|m| format!("{}/{}", m.system, m.source_id)).collect::<Vec<_>>().join(", ")
        );
        for (name, a) in g.attributes.iter() {
            println!(
                "    {name:<14} {:<34} <- {}/{} @{}, {}",
                a.value,
                a.source(),
                a.source_id(),
                a.source_seq,
                rule_name(a.rule)
            );
        }
    }

    print_reviews(&store, &goldens).await?;

    let totals = runner.handlers().totals();
    // Records come in through the ingest function (HTTP) and the files function (files).
    let t = |k: &str| {
        let one = |k: &str| totals.get(k).copied().unwrap_or(0.0) as u64;
        match k.strip_prefix("ingest.") {
            Some(name) => one(k) + one(&format!("files.{name}")),
            None => one(k),
        }
    };
    let events = drain_subscriber(&sqs, res.attr("ExampleSubscriberQueue", "QueueUrl").unwrap_or_default()).await?;
    let mut per_type: BTreeMap<String, usize> = BTreeMap::new();
    for e in &events {
        *per_type.entry(e["detail-type"].as_str().unwrap_or("?").to_owned()).or_default() += 1;
    }
    println!("\n== Counts");
    // Every record the ingest handler saw ends in exactly one of these counters.
    let sent = all_records.len() as u64;
    let (written, duplicates, stale) =
        (t("ingest.RecordsStored"), t("ingest.RecordsDuplicate"), t("ingest.RecordsStale"));
    let (held, rejected_n) = (t("ingest.RecordsHeld"), t("ingest.RecordsRejected"));
    let held_part = if held > 0 { format!(" + {held} held") } else { String::new() };
    println!(
        "  records sent            {sent} = {written} written + {duplicates} duplicates + {stale} stale{held_part} \
         + {rejected_n} rejected"
    );
    println!(
        "    written               {} first versions (one per source record) + {} updates (a higher sourceSeq \
         than the stored one)",
        written.min(stored_sources),
        written.saturating_sub(stored_sources)
    );
    println!("    duplicates            the stored sourceSeq again: nothing written, matched again (harmless)");
    println!("    stale                 an older sourceSeq than the stored one: dropped (out-of-order updates)");
    if held > 0 {
        println!("    held                  matches an erased data subject: stored for a steward, not matched");
    }
    let dlq = drain_dead_letters(&sqs, res.attr("IngestDLQ", "QueueUrl").unwrap_or_default()).await?;
    println!(
        "    rejected              invalid, never stored (HTTP answers and file reports {rejected:?}; ingest DLQ \
         {dlq:?})"
    );
    let counted = written + duplicates + stale + held + rejected_n;
    if counted != sent {
        println!(
            "    (the ingest handler counted {counted} records, not {sent}: a request failed or a message was \
             handled twice)"
        );
    }
    for entity in ["customer", "product"] {
        println!("  golden records ({entity:<8}) {}", active.iter().filter(|g| g.entity == entity).count());
    }
    println!("  links                   {}", t("merge.GoldenLinked"));
    println!("  merges (bridging)       {}", t("merge.GoldenMerged"));
    println!("  review tasks opened     {}", t("merge.ReviewTasksOpened"));
    println!("  data-quality flags      {}", count_quality(&store, &keys).await?);
    if let Some((p, r)) = pairwise_quality(&data, &golden_of) {
        println!("  vs ground truth         pairwise precision {p:.3}, recall {r:.3}");
    }
    println!("\n== Events received by the example subscriber queue (EventBridge rule -> SQS)");
    for (k, v) in &per_type {
        println!("  {k:<22} {v}");
    }
    if let Some(e) = events
        .iter()
        .find(|e| e["detail-type"] == "GoldenRecordsMerged")
        .or_else(|| events.iter().find(|e| e["detail-type"] == "GoldenRecordUpdated"))
    {
        let mut d = e["detail"].clone();
        if let Some(attrs) = d["golden"]["attributes"].as_object_mut() {
            let keep: Vec<String> = attrs.keys().take(3).cloned().collect();
            attrs.retain(|k, _| keep.contains(k));
        }
        println!(
            "\n  one of them ({}), golden attributes cut to three:\n{}",
            e["detail-type"],
            indent(&serde_json::to_string_pretty(&d).unwrap_or_default())
        );
    }
    super::demo_steward::run(&sdk, &res, &runner).await?;
    println!("\nDone in {:.1} s.", started.elapsed().as_secs_f64());
    Ok(())
}

/// A survivorship rule by the name the entity schema files and the JSON use (`source_priority`).
fn rule_name(rule: Rule) -> String {
    match serde_json::to_value(rule) {
        Ok(Value::String(name)) => name,
        _ => format!("{rule:?}"),
    }
}

/// Review tasks listed at most.
const REVIEWS_SHOWN: usize = 10;

/// The open review tasks, oldest first, one line each: the record under review, the candidate
/// golden record it may belong to (with its members) and the match score.
async fn print_reviews(store: &mdm_aws::DynamoStore, goldens: &BTreeMap<String, GoldenRecord>) -> Result<(), String> {
    let mut tasks: Vec<ReviewTask> = Vec::new();
    for entity in ["customer", "product"] {
        let mut after: Option<String> = None;
        loop {
            let page = store.review_queue(entity, true, after.as_deref(), 100).await.map_err(|e| e.to_string())?;
            tasks.extend(page.tasks);
            match page.next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
    }
    println!(
        "\n== Review tasks: {} open (a steward decides; record  ~ candidate golden record (its members), score)",
        tasks.len()
    );
    for task in tasks.iter().take(REVIEWS_SHOWN) {
        let candidate = task.candidate_golden_ids.first().cloned().unwrap_or_default();
        let score = task.explanation.iter().find(|c| c.golden_id == candidate).map_or(task.score, |c| c.score);
        let read;
        let golden = match goldens.get(&candidate) {
            Some(g) => Some(g),
            None => {
                read = store.get_golden(&task.entity, &candidate).await.map_err(|e| e.to_string())?;
                read.as_ref()
            }
        };
        let members = match golden.map(|g| (&g.status, g)) {
            Some((mdm_core::GoldenStatus::MergedInto { survivor }, _)) => format!("merged into {survivor}"),
            Some((_, g)) => {
                g.members.iter().map(|m| format!("{}/{}", m.system, m.source_id)).collect::<Vec<_>>().join(", ")
            }
            None => "gone".to_owned(),
        };
        let others = match task.candidate_golden_ids.len() {
            0 | 1 => String::new(),
            2 => "  (+1 other candidate)".to_owned(),
            n => format!("  (+{} other candidates)", n - 1),
        };
        println!(
            "  {:<8} {}/{}  ~ {candidate} ({members})  score {score:.1}{others}",
            task.entity, task.source.system, task.source.source_id
        );
    }
    if tasks.len() > REVIEWS_SHOWN {
        println!("  … and {} more", tasks.len() - REVIEWS_SHOWN);
    }
    Ok(())
}

fn indent(s: &str) -> String {
    s.lines().map(|l| format!("    {l}")).collect::<Vec<_>>().join("\n")
}

async fn count_quality(store: &mdm_aws::DynamoStore, keys: &[SourceKey]) -> Result<usize, String> {
    Ok(store.get_sources(keys).await.map_err(|e| e.to_string())?.iter().map(|r| r.quality.len()).sum())
}

/// Every message on a queue (received with its attributes, then deleted).
async fn take_all(sqs: &aws_sdk_sqs::Client, url: &str) -> Result<Vec<aws_sdk_sqs::types::Message>, String> {
    let mut out = Vec::new();
    loop {
        let resp = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .message_attribute_names("All")
            .wait_time_seconds(0)
            .send()
            .await
            .map_err(|e| mdm_aws::errors::describe("ReceiveMessage", &e))?;
        if resp.messages().is_empty() {
            return Ok(out);
        }
        for m in resp.messages() {
            let _ = sqs.delete_message().queue_url(url).receipt_handle(m.receipt_handle().unwrap_or("")).send().await;
            out.push(m.clone());
        }
    }
}

/// Records of one entity type as the web shop's CSV file: `id`, `seq`, `updated_at`, then one
/// column per attribute (the files feed maps them by name).
fn webshop_csv(records: &[Value]) -> Result<String, String> {
    let attributes: BTreeSet<String> =
        records.iter().filter_map(|r| r["attributes"].as_object()).flat_map(|a| a.keys().cloned()).collect();
    let mut out = csv::Writer::from_writer(Vec::new());
    let header = ["id", "seq", "updated_at"].into_iter().map(str::to_owned).chain(attributes.iter().cloned());
    out.write_record(header).map_err(|e| e.to_string())?;
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    for r in records {
        let mut row = vec![text(&r["sourceId"]), text(&r["sourceSeq"]), text(&r["sourceUpdatedAt"])];
        row.extend(attributes.iter().map(|a| text(&r["attributes"][a])));
        out.write_record(&row).map_err(|e| e.to_string())?;
    }
    String::from_utf8(out.into_inner().map_err(|e| e.to_string())?).map_err(|e| e.to_string())
}

/// Dead-lettered messages by their `mdm-error-code`.
async fn drain_dead_letters(sqs: &aws_sdk_sqs::Client, url: &str) -> Result<BTreeMap<String, usize>, String> {
    let mut out = BTreeMap::new();
    for m in take_all(sqs, url).await? {
        let code = m.message_attributes().and_then(|a| a.get("mdm-error-code")).and_then(|v| v.string_value());
        *out.entry(code.unwrap_or("?").to_owned()).or_default() += 1;
    }
    Ok(out)
}

/// Events the subscriber queue received (EventBridge envelopes).
pub(crate) async fn drain_subscriber(sqs: &aws_sdk_sqs::Client, url: &str) -> Result<Vec<Value>, String> {
    Ok(take_all(sqs, url).await?.iter().filter_map(|m| m.body().and_then(|b| serde_json::from_str(b).ok())).collect())
}

/// Pairwise precision and recall of the golden records against `truth.json` (record → entity).
fn pairwise_quality(data: &Path, golden_of: &HashMap<SourceKey, String>) -> Option<(f64, f64)> {
    let truth: BTreeMap<String, String> =
        serde_json::from_str(&std::fs::read_to_string(data.join("truth.json")).ok()?).ok()?;
    let mut items: Vec<(&String, &String)> = Vec::new();
    for (k, g) in golden_of {
        if let Some(t) = truth.get(&format!("{}/{}", k.system, k.source_id)) {
            items.push((g, t));
        }
    }
    let (mut tp, mut fp, mut fn_) = (0u64, 0u64, 0u64);
    for i in 0..items.len() {
        for j in i + 1..items.len() {
            let same_g = items[i].0 == items[j].0;
            let same_t = items[i].1 == items[j].1;
            match (same_g, same_t) {
                (true, true) => tp += 1,
                (true, false) => fp += 1,
                (false, true) => fn_ += 1,
                _ => {}
            }
        }
    }
    let p = if tp + fp == 0 { 1.0 } else { tp as f64 / (tp + fp) as f64 };
    let r = if tp + fn_ == 0 { 1.0 } else { tp as f64 / (tp + fn_) as f64 };
    Some((p, r))
}
