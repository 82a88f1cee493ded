//! `mdm local freshness`: how long after a record is sent its event reaches a subscriber, on the
//! local stack. Sends generated people at a steady rate, one record per `POST /v1/records` through
//! the ingest handler, while the event-source mappings run round after round (ingest → match queue →
//! match → merge queue → merge → table stream → publish → EventBridge → example subscriber queue)
//! and another task polls the subscriber queue. A record's latency runs from the start of its POST
//! to the receipt of the first event whose golden record lists it among its sources (or carries its
//! correlation id). Prints p50, p90, p99 and max, how far each stage had got at the last send, the
//! emulator's request rate and CPU use during the run (from its request log and `/proc`) and,
//! afterwards, the rate it serves back-to-back `GetItem` calls at.

use mdm_aws::local::esm::{LocalRunner, RunStats};
use mdm_aws::local::Resources;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `mdm local freshness`.
#[derive(Debug, Clone, clap::Args)]
pub struct FreshnessArgs {
    /// The local stack's resources (`infra/local/bootstrap.py` writes them).
    #[arg(long, value_name = "FILE")]
    resources: String,
    /// Records to send (generated people, about a third of them duplicates of another).
    #[arg(long, value_name = "N", default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    records: u32,
    /// Records per second, one record per request.
    #[arg(long, value_name = "R", default_value_t = 5.0, value_parser = rate)]
    rate: f64,
    /// Seed of the generated people.
    #[arg(long, value_name = "S", default_value_t = 7)]
    seed: u64,
    /// Pause after a round of the event-source mappings that found nothing, and after an empty
    /// poll of the subscriber queue (milliseconds).
    #[arg(long, value_name = "MS", default_value_t = 50)]
    poll_ms: u64,
    /// How long to wait for the last events after the last send (seconds).
    #[arg(long, value_name = "S", default_value_t = 60)]
    drain_secs: u64,
    /// The emulator's request log (moto writes one line per request; bench/freshness.sh passes
    /// it): the requests it served during the run are counted from it.
    #[arg(long, value_name = "FILE")]
    emulator_log: Option<PathBuf>,
    /// The emulator's process id (Linux): the CPU time it used during the run is read from
    /// `/proc/PID/stat`, to tell whether it was the bottleneck.
    #[arg(long, value_name = "PID")]
    emulator_pid: Option<u32>,
    /// Write each record's timeline here (CSV: source id, ms from the start to its send, its
    /// POST's duration, ms from the start to its first event).
    #[arg(long, value_name = "FILE.csv")]
    timeline: Option<PathBuf>,
    /// Seconds of back-to-back DynamoDB GetItem calls after the run, to measure the emulator's
    /// rate on its own (0: skip).
    #[arg(long, value_name = "S", default_value_t = 5)]
    calibrate_secs: u64,
}

fn rate(v: &str) -> Result<f64, String> {
    v.trim()
        .parse::<f64>()
        .ok()
        .filter(|r| r.is_finite() && *r > 0.0 && *r <= 1000.0)
        .ok_or_else(|| "expected records per second, more than 0 and at most 1000".into())
}

/// `mdm generate people`, in process, into a scratch folder.
#[derive(Debug, clap::Parser)]
#[command(name = "generate")]
struct Generate {
    #[command(flatten)]
    args: crate::generate::GenerateArgs,
}

/// A source record as the subscriber sees it: (system, source id).
type Key = (String, String);

/// One record sent: its key, correlation id, when its POST started and how long it took.
struct Sent {
    key: Key,
    correlation: String,
    at: Instant,
    took: Duration,
    accepted: bool,
}

/// What the subscriber poller saw: when each record's first event arrived, and how many events.
#[derive(Default)]
struct Seen {
    first: HashMap<Key, Instant>,
    events: usize,
    /// ReceiveMessage and DeleteMessageBatch calls the poller made.
    requests: u64,
}

/// The generated people as ingest records with their own correlation ids.
fn people(records: u32, seed: u64) -> Result<Vec<Value>, String> {
    let dir = std::env::temp_dir().join(format!("mdm-freshness-{}", std::process::id()));
    let argv = ["generate", "people", "--records", &records.to_string(), "--seed", &seed.to_string(), "--out"];
    let parsed = <Generate as clap::Parser>::try_parse_from(
        argv.iter().map(|s| s.to_string()).chain([dir.display().to_string()]),
    )
    .map_err(|e| e.to_string())?;
    crate::generate::run(parsed.args)?;
    let out = read_people(&dir.join("people.csv"));
    let _ = std::fs::remove_dir_all(&dir);
    out
}

fn read_people(path: &Path) -> Result<Vec<Value>, String> {
    let mut records = crate::source_csv::read_records("customer", "people", path)?;
    for r in &mut records {
        let id = r["sourceId"].as_str().unwrap_or("").to_owned();
        r["correlationId"] = json!(format!("fresh-{id}"));
    }
    Ok(records)
}

/// Requests in the emulator's log so far (one line per request).
fn logged_requests(log: &Path) -> Result<u64, String> {
    let text = std::fs::read(log).map_err(|e| format!("{}: {e}", log.display()))?;
    Ok(text.split(|b| *b == b'\n').filter(|l| l.windows(7).any(|w| w == b"HTTP/1.")).count() as u64)
}

/// CPU seconds a process has used (user + system), from `/proc/PID/stat` at Linux's 100 ticks a second.
fn cpu_seconds(pid: u32) -> Result<f64, String> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    // The fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).ok_or_else(|| format!("{path}: unexpected format"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).ok_or(format!("{path}: no field {i}"));
    Ok((ticks(11)? + ticks(12)?) / 100.0)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn summary(values: &mut [f64]) -> String {
    values.sort_by(f64::total_cmp);
    format!(
        "p50 {:.0}  p90 {:.0}  p99 {:.0}  max {:.0}",
        percentile(values, 50.0),
        percentile(values, 90.0),
        percentile(values, 99.0),
        values.last().copied().unwrap_or(f64::NAN)
    )
}

/// The event-source mappings, round after round until `stop`; a round that found nothing is
/// followed by a pause of `poll`. Returns the stats and the busy and idle rounds' durations.
async fn run_mappings(
    runner: Arc<LocalRunner>,
    poll: Duration,
    stop: Arc<AtomicBool>,
) -> Result<(RunStats, Vec<f64>, Vec<f64>), String> {
    let mut stats = RunStats::default();
    let (mut busy, mut idle) = (Vec::new(), Vec::new());
    while !stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        let handled = runner.round(&mut stats).await.map_err(|e| e.to_string())?;
        if handled == 0 {
            idle.push(ms(started.elapsed()));
            tokio::time::sleep(poll).await;
        } else {
            busy.push(ms(started.elapsed()));
        }
    }
    Ok((stats, busy, idle))
}

/// Sends one record per request on a fixed schedule (`rate` per second from the first send);
/// tells `done` when the last one went.
async fn send(
    runner: Arc<LocalRunner>,
    records: Vec<Value>,
    rate: f64,
    done: tokio::sync::watch::Sender<Option<Instant>>,
) -> Vec<Sent> {
    let start = tokio::time::Instant::now();
    let mut out = Vec::with_capacity(records.len());
    for (i, r) in records.into_iter().enumerate() {
        tokio::time::sleep_until(start + Duration::from_secs_f64(i as f64 / rate)).await;
        let key =
            (r["sourceSystem"].as_str().unwrap_or("").to_lowercase(), r["sourceId"].as_str().unwrap_or("").to_owned());
        let correlation = r["correlationId"].as_str().unwrap_or("").to_owned();
        let at = Instant::now();
        let (status, body) = runner.post_records(&json!({ "records": [r] }).to_string()).await;
        let took = at.elapsed();
        let accepted = (200..300).contains(&status) && body["stored"].as_u64() == Some(1);
        if !accepted {
            eprintln!("  POST /v1/records for {}/{} answered {status}: {body}", key.0, key.1);
        }
        out.push(Sent { key, correlation, at, took, accepted });
    }
    let _ = done.send(Some(Instant::now()));
    out
}

/// The records an event is about: the sources of its golden record, and its correlation id.
fn keys_of(event: &Value, by_correlation: &HashMap<String, Key>) -> Vec<Key> {
    let detail = &event["detail"];
    let mut keys: Vec<Key> = detail["golden"]["sources"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| Some((s["system"].as_str()?.to_lowercase(), s["sourceId"].as_str()?.to_owned())))
        .collect();
    if let Some(k) = detail["correlationId"].as_str().and_then(|c| by_correlation.get(c)) {
        keys.push(k.clone());
    }
    keys
}

/// Polls the subscriber queue until every expected record has had an event, or `drain` after the
/// last send.
async fn watch_subscriber(
    sqs: aws_sdk_sqs::Client,
    url: String,
    expected: HashSet<Key>,
    by_correlation: HashMap<String, Key>,
    poll: Duration,
    drain: Duration,
    sent: tokio::sync::watch::Receiver<Option<Instant>>,
) -> Result<Seen, String> {
    let mut seen = Seen::default();
    loop {
        let out = sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .wait_time_seconds(0)
            .send()
            .await
            .map_err(|e| mdm_aws::errors::describe("ReceiveMessage", &e))?;
        let now = Instant::now();
        seen.requests += 1;
        let messages = out.messages();
        for m in messages {
            let Some(event) = m.body().and_then(|b| serde_json::from_str::<Value>(b).ok()) else { continue };
            seen.events += 1;
            for k in keys_of(&event, &by_correlation) {
                if expected.contains(&k) {
                    seen.first.entry(k).or_insert(now);
                }
            }
        }
        if !messages.is_empty() {
            let entries: Vec<_> = messages
                .iter()
                .enumerate()
                .filter_map(|(i, m)| {
                    aws_sdk_sqs::types::DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(m.receipt_handle().unwrap_or(""))
                        .build()
                        .ok()
                })
                .collect();
            sqs.delete_message_batch()
                .queue_url(&url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| mdm_aws::errors::describe("DeleteMessageBatch", &e))?;
            seen.requests += 1;
        }
        if seen.first.len() == expected.len() {
            return Ok(seen);
        }
        let last_send = *sent.borrow();
        if last_send.is_some_and(|t| now > t + drain) {
            return Ok(seen);
        }
        if messages.is_empty() {
            tokio::time::sleep(poll).await;
        }
    }
}

/// Back-to-back GetItem calls for `secs` seconds: requests per second.
async fn calibrate(sdk: &aws_config::SdkConfig, table: &str, secs: u64) -> Result<(u64, f64), String> {
    use aws_sdk_dynamodb::types::AttributeValue;
    let ddb = aws_sdk_dynamodb::Client::new(sdk);
    let started = Instant::now();
    let mut n = 0u64;
    while started.elapsed() < Duration::from_secs(secs) {
        ddb.get_item()
            .table_name(table)
            .key("pk", AttributeValue::S("FRESHNESS#probe".into()))
            .key("sk", AttributeValue::S("META".into()))
            .send()
            .await
            .map_err(|e| mdm_aws::errors::describe("GetItem", &e))?;
        n += 1;
    }
    Ok((n, n as f64 / started.elapsed().as_secs_f64()))
}

pub async fn run(args: FreshnessArgs) -> Result<(), String> {
    let text = std::fs::read_to_string(&args.resources).map_err(|e| format!("{}: {e}", args.resources))?;
    let res = Resources::from_json(&text).map_err(|e| e.to_string())?;
    let url = res.attr("ExampleSubscriberQueue", "QueueUrl").ok_or("resources: no ExampleSubscriberQueue")?.to_owned();
    let table = res.attr("HubTable", "ref").ok_or("resources: no HubTable")?.to_owned();
    let records = people(args.records, args.seed)?;
    let sdk = mdm_aws::config::sdk_config().await;
    let runner = Arc::new(LocalRunner::new(&sdk, res).map_err(|e| e.to_string())?);
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let poll = Duration::from_millis(args.poll_ms);

    let keys: Vec<Key> = records
        .iter()
        .map(|r| (r["sourceSystem"].as_str().unwrap_or("").to_owned(), r["sourceId"].as_str().unwrap_or("").to_owned()))
        .collect();
    let by_correlation: HashMap<String, Key> = records
        .iter()
        .zip(&keys)
        .filter_map(|(r, k)| Some((r["correlationId"].as_str()?.to_owned(), k.clone())))
        .collect();
    eprintln!(
        "  sending {} records at {} records/s, one per POST /v1/records, while the mappings run (pause {} ms when idle)",
        records.len(),
        args.rate,
        args.poll_ms
    );

    let log_before = args.emulator_log.as_deref().map(logged_requests).transpose()?;
    let cpu_before = args.emulator_pid.map(cpu_seconds).transpose()?;
    let started = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let (done_tx, done_rx) = tokio::sync::watch::channel(None);
    let mappings = tokio::spawn(run_mappings(runner.clone(), poll, stop.clone()));
    let watcher = tokio::spawn(watch_subscriber(
        sqs,
        url,
        keys.iter().cloned().collect(),
        by_correlation,
        poll,
        Duration::from_secs(args.drain_secs),
        done_rx,
    ));
    let sender = tokio::spawn(send(runner.clone(), records, args.rate, done_tx));
    let sent = sender.await.map_err(|e| format!("sender: {e}"))?;
    let sending = started.elapsed();
    // Where the records are when the last one has been sent: a stage behind the one before it
    // holds the backlog.
    let stages = runner.handlers().totals();
    let seen = watcher.await.map_err(|e| format!("subscriber poller: {e}"));
    let window = started.elapsed();
    let log_after = args.emulator_log.as_deref().map(logged_requests).transpose()?;
    let cpu_after = args.emulator_pid.map(cpu_seconds).transpose()?;
    stop.store(true, Ordering::Relaxed);
    let (stats, mut busy, mut idle) = mappings.await.map_err(|e| format!("event-source mappings: {e}"))??;
    let seen = seen??;

    if let Some(path) = &args.timeline {
        let mut csv = String::from("source_id,sent_ms,post_ms,event_ms\n");
        for s in &sent {
            let event = seen.first.get(&s.key).map_or(String::new(), |t| format!("{:.0}", ms(*t - started)));
            csv += &format!("{},{:.0},{:.0},{event}\n", s.key.1, ms(s.at - started), ms(s.took));
        }
        std::fs::write(path, csv).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let accepted = sent.iter().filter(|s| s.accepted).count();
    let mut latencies: Vec<f64> =
        sent.iter().filter_map(|s| seen.first.get(&s.key).map(|t| ms(t.saturating_duration_since(s.at)))).collect();
    let mut posts: Vec<f64> = sent.iter().map(|s| ms(s.took)).collect();
    let missing: Vec<String> = sent
        .iter()
        .filter(|s| !seen.first.contains_key(&s.key))
        .map(|s| format!("{}/{} ({})", s.key.0, s.key.1, s.correlation))
        .take(5)
        .collect();
    println!(
        "records sent {}  accepted {accepted}  in {:.1} s ({:.2} records/s; target {})",
        sent.len(),
        sending.as_secs_f64(),
        sent.len() as f64 / sending.as_secs_f64(),
        args.rate
    );
    println!(
        "records with an event {} of {}  (subscriber received {} events in {:.1} s)",
        latencies.len(),
        sent.len(),
        seen.events,
        window.as_secs_f64()
    );
    if !missing.is_empty() {
        println!("  no event for e.g. {}", missing.join(", "));
    }
    println!("send → event on the subscriber queue, ms: {}", summary(&mut latencies));
    let goal = percentile(&latencies, 99.0) < 1000.0 && latencies.len() == sent.len();
    let by_quarter: Vec<String> = sent
        .chunks(sent.len().div_ceil(4))
        .map(|part| {
            let mut v: Vec<f64> = part
                .iter()
                .filter_map(|s| seen.first.get(&s.key).map(|t| ms(t.saturating_duration_since(s.at))))
                .collect();
            v.sort_by(f64::total_cmp);
            format!("{:.0}", percentile(&v, 50.0))
        })
        .collect();
    println!("  p50 by quarter of the sends, ms: {} (growing when the pipeline falls behind)", by_quarter.join(", "));
    let t = |k: &str| stages.get(k).copied().unwrap_or(0.0);
    println!(
        "  at the last send: {} records matched, {} merged, {} events published (of {} sent)",
        t("match.RecordsMatched"),
        t("merge.GoldenCreated") + t("merge.GoldenLinked"),
        t("publish.EventsPublished"),
        sent.len()
    );
    println!("  goal p99 < 1000 ms with every record delivered: {}", if goal { "met" } else { "NOT met" });
    println!("  of which the ingest POST itself, ms: {}", summary(&mut posts));
    let (nb, ni) = (busy.len(), idle.len());
    println!(
        "mapping rounds {} ({nb} busy, {ni} idle), {} invocations, {} queue messages, {} stream records",
        stats.rounds, stats.invocations, stats.messages, stats.stream_records
    );
    println!("  busy round, ms: {}", summary(&mut busy));
    println!("  idle round, ms: {}  (then a {} ms pause)", summary(&mut idle), args.poll_ms);
    if let (Some(before), Some(after)) = (log_before, log_after) {
        let n = after.saturating_sub(before);
        println!(
            "emulator requests during the run: {n} in {:.1} s = {:.0} requests/s (from its request log; {} of them \
             the subscriber poller's; {:.1} per record sent, idle polls included)",
            window.as_secs_f64(),
            n as f64 / window.as_secs_f64(),
            seen.requests,
            n.saturating_sub(seen.requests) as f64 / sent.len() as f64
        );
    }
    if let (Some(before), Some(after)) = (cpu_before, cpu_after) {
        let used = after - before;
        println!(
            "emulator CPU during the run: {used:.1} s in {:.1} s = busy {:.0}% of the time (it serves one request at a time)",
            window.as_secs_f64(),
            100.0 * used / window.as_secs_f64()
        );
    }
    if args.calibrate_secs > 0 {
        let (n, per_s) = calibrate(&sdk, &table, args.calibrate_secs).await?;
        println!("emulator alone: {n} back-to-back GetItem calls in {} s = {per_s:.0} requests/s", args.calibrate_secs);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!((percentile(&v, 50.0), percentile(&v, 99.0), percentile(&v, 100.0)), (50.0, 99.0, 100.0));
        assert_eq!(percentile(&[7.0], 99.0), 7.0);
        assert!(percentile(&[], 50.0).is_nan());
    }

    #[test]
    fn an_event_names_the_records_of_its_golden_record_and_its_cause() {
        let by_corr = HashMap::from([("fresh-p1".to_owned(), ("people".to_owned(), "p1".to_owned()))]);
        let e = json!({"detail": {"correlationId": "fresh-p1",
            "golden": {"sources": [{"system": "People", "sourceId": "p0"}]}}});
        let keys = keys_of(&e, &by_corr);
        assert_eq!(keys, vec![("people".to_owned(), "p0".to_owned()), ("people".to_owned(), "p1".to_owned())]);
    }
}
