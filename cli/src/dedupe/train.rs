//! `mdm train`: learns an entity type's match weights from unlabelled files and writes them into
//! a copy of its schema.
//!
//! ```text
//! mdm train --entity customer --id-column rec_id [--map COLUMN=ATTRIBUTE]... [--schemas DIR]
//!           [--truth TRUTH.csv] --out customer.toml INPUT.csv [INPUT.csv ...]
//! ```
//!
//! `u` comes from 2,000,000 random pairs (a hundred per record on smaller inputs) of the input's records, `m` from
//! expectation-maximisation over the pairs the schema's blocking brings together
//! (`mdm_core::training`). The output is the schema file (the built-in one, or `DIR/{entity}.toml`)
//! with each comparator's `m` and `u` replaced and everything else — comments included — as it
//! was: load it with `--schemas` (docs/entities.md, "Training the weights").
//!
//! Each correlated group's `subsets` table (members that agree together, such as a town's name,
//! postcode and state) is counted on every pair of the input. With `--truth` (`record_id,entity_id`,
//! as `mdm generate` writes), `m` is counted on the pairs of one entity instead of estimated, each
//! group's cap is counted on every pair (how often two different entities share a whole address:
//! households), and the link threshold is chosen too: `mdm dedupe` runs on the same input with the new weights at link thresholds from 12 to 40
//! (review threshold 8 below), and the one with the best pairwise F1 of the clusters among those
//! whose pairwise precision reaches `--min-precision` (0.999 unless given) is written. Choose it
//! on a labelled set that is not the one you measure on.
//!
//! With `--labels` (data stewards' decisions, exported by `GET /v1/labels` as JSON Lines), the
//! link threshold is the one that best separates the labelled pairs under the new weights (best
//! F1 of the `link` labels): stewards decide the pairs the matcher was unsure of, so their
//! decisions place the boundary. The weights still come from the unlabelled input.

use super::reading::{prepare, Layout, Reading};
use super::{load, Options, TrainArgs};
use mdm_core::training::{train_labelled, Estimates, Subsets, Within};

/// Random pairs sampled for `u`.
const RANDOM_PAIRS: u64 = 2_000_000;

pub fn run(args: TrainArgs) -> Result<(), String> {
    let min_precision = args.min_precision;
    let opts = Options::from(args);
    let started = std::time::Instant::now();
    let (registry, attributes) = load(&opts)?;
    let schema = registry.get(&opts.entity).ok_or("unknown entity type")?;
    let text = match &opts.schemas {
        Some(dir) => {
            let path = dir.join(format!("{}.toml", opts.entity));
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?
        }
        None => mdm_core::schema::built_in_text(&opts.entity).ok_or("no built-in schema file")?.to_owned(),
    };
    let layout =
        Layout { entity: opts.entity.clone(), id_column: opts.id_column.clone(), maps: opts.maps.clone(), attributes };
    let rows: usize = opts.inputs.iter().map(|p| super::reading::estimate_rows(p)).sum();
    let progress = crate::progress::Progress::start("train: reading", "records", Some(rows as u64));
    let mut reading =
        Reading::new(layout, opts.inputs.clone(), vec![0; opts.inputs.len()]).with_progress(progress.counter());
    let mut records = Vec::new();
    let mut ids = Vec::new();
    while let Some((_, rows)) = reading.next_batch() {
        for row in rows {
            let p = prepare(&registry, row?)?;
            ids.push(p.record_id);
            records.push(*p.record);
        }
    }
    progress.finish();
    crate::progress::note(&format!("train {}: {} records read; estimating u and m …", opts.entity, records.len()));
    // With the truth, each record's entity (a record the truth does not name is an entity of
    // its own): the groups' caps are counted on every pair.
    let entities: Option<Vec<u32>> = match &opts.truth {
        Some(path) => {
            let truth = read_truth(path)?;
            let mut numbers: std::collections::HashMap<&str, u32> = std::collections::HashMap::new();
            let mut next = 0u32;
            let mut out = Vec::with_capacity(ids.len());
            for id in &ids {
                let e = match truth.get(id.as_str()) {
                    Some(e) => {
                        let len = numbers.len() as u32;
                        *numbers.entry(e.as_str()).or_insert(len)
                    }
                    None => {
                        next += 1;
                        u32::MAX - next
                    }
                };
                out.push(e);
            }
            Some(out)
        }
        None => None,
    };
    // A hundred random pairs per record is plenty below 20,000 records.
    let pairs = RANDOM_PAIRS.min(100 * records.len() as u64);
    let est = train_labelled(schema, &records, pairs, 42, entities.as_deref());
    let names: Vec<&str> = schema.attributes.iter().map(|a| a.name.as_str()).collect();
    let groups: Vec<&str> = schema.matching.groups.iter().map(|g| g.name.as_str()).collect();
    let mut out = rewrite(&text, &names, &groups, &est)?;
    // The result must load: a schema the hub would refuse is never written.
    mdm_core::SchemaRegistry::from_texts([(opts.out.display().to_string(), out.clone())]).map_err(|e| e.to_string())?;
    if let Some(truth) = &opts.truth {
        let fit = choose_threshold(&opts, &out, truth, min_precision)?;
        out = set_thresholds(&out, fit.threshold);
        if fit.precision < min_precision {
            crate::progress::note(&format!(
                "train {}: no link threshold from 12 to 40 reaches a pairwise precision of {min_precision} on this input; the best F1 is chosen",
                opts.entity
            ));
        }
        eprintln!(
            "train {}: link threshold {} (pairwise F1 {:.5}, precision {:.5}, recall {:.5}), review threshold {}",
            opts.entity,
            fit.threshold,
            fit.f1,
            fit.precision,
            fit.recall,
            fit.threshold - 8.0
        );
    }
    if let Some(path) = &opts.labels {
        let pairs = read_labels(&registry, &opts.entity, path)?;
        let trained = mdm_core::SchemaRegistry::from_texts([(opts.out.display().to_string(), out.clone())])
            .map_err(|e| e.to_string())?;
        let schema = trained.get(&opts.entity).ok_or("unknown entity type")?;
        let fit = mdm_core::training::threshold_from_labels(schema, &pairs)
            .ok_or_else(|| format!("{}: no `link` label of entity type {}", path.display(), opts.entity))?;
        out = set_thresholds(&out, fit.threshold);
        eprintln!(
            "train {}: link threshold {} (F1 {:.4} on {} link and {} distinct labels), review threshold {}",
            opts.entity,
            fit.threshold,
            fit.f1,
            fit.links,
            fit.distinct,
            fit.threshold - 8.0
        );
    }
    std::fs::write(&opts.out, out).map_err(|e| format!("{}: {e}", opts.out.display()))?;
    eprintln!(
        "train {}: records {}  random pairs {}  blocked pairs {}  match share {:.4}  EM iterations {}  elapsed {:.2} s  wrote {}",
        opts.entity,
        records.len(),
        est.random_pairs,
        est.blocked_pairs,
        est.match_share,
        est.iterations,
        started.elapsed().as_secs_f64(),
        opts.out.display()
    );
    Ok(())
}

/// Steward decisions as `GET /v1/labels` returns them: JSON Lines of label items or of whole pages
/// (`{"items": [...]}`), or one JSON array of items. Labels of other entity types are not in an
/// export of this one; every item must hold two records that validate.
fn read_labels(
    registry: &mdm_core::SchemaRegistry,
    entity: &str,
    path: &std::path::Path,
) -> Result<Vec<mdm_core::training::LabelledPair>, String> {
    use serde_json::Value;
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let at = |line: usize, why: String| format!("{}: line {line}: {why}", path.display());
    let mut items: Vec<(usize, Value)> = Vec::new();
    if text.trim_start().starts_with('[') {
        let all: Vec<Value> = serde_json::from_str(&text).map_err(|e| at(e.line(), e.to_string()))?;
        items.extend(all.into_iter().map(|v| (1, v)));
    } else {
        for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let v: Value = serde_json::from_str(line).map_err(|e| at(i + 1, e.to_string()))?;
            match v.get("items").and_then(Value::as_array) {
                Some(page) => items.extend(page.iter().cloned().map(|v| (i + 1, v))),
                None => items.push((i + 1, v)),
            }
        }
    }
    let record = |line: usize, side: &Value, which: &str| -> Result<mdm_core::SourceRecord, String> {
        let field = |name: &str| side.get(name).and_then(Value::as_str);
        let (Some(system), Some(id)) = (field("system"), field("sourceId")) else {
            return Err(at(line, format!("`{which}` needs `system` and `sourceId`")));
        };
        let input = serde_json::json!({
            "entityType": entity, "sourceSystem": system, "sourceId": id, "sourceSeq": 1,
            "attributes": side.get("attributes").cloned().unwrap_or(Value::Object(Default::default())),
        });
        mdm_core::record::validate(registry, &input, 0).map_err(|e| at(line, format!("`{which}`: {e}")))
    };
    let mut pairs = Vec::with_capacity(items.len());
    for (line, item) in items {
        let link = match item.get("label").and_then(Value::as_str) {
            Some("link") => true,
            Some("distinct") => false,
            other => return Err(at(line, format!("label {other:?}: expected \"link\" or \"distinct\""))),
        };
        let (Some(left), Some(right)) = (item.get("left"), item.get("right")) else {
            return Err(at(line, "a label needs `left` and `right` records".into()));
        };
        pairs.push(mdm_core::training::LabelledPair {
            left: record(line, left, "left")?,
            right: record(line, right, "right")?,
            link,
        });
    }
    Ok(pairs)
}

/// How `mdm dedupe`'s clusters at one link threshold score against the truth.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Fit {
    threshold: f64,
    precision: f64,
    recall: f64,
    f1: f64,
}

impl Fit {
    /// Whether this threshold is to be chosen over `other`: one that reaches the precision
    /// target beats one that does not; otherwise the better F1 wins (the lower threshold on a tie).
    fn beats(&self, other: &Fit, min_precision: f64) -> bool {
        let (mine, theirs) = (self.precision >= min_precision, other.precision >= min_precision);
        if mine != theirs {
            return mine;
        }
        self.f1 > other.f1 || (self.f1 == other.f1 && self.threshold < other.threshold)
    }
}

/// The link threshold for `mdm dedupe`'s clusters on the training input: the best pairwise F1
/// among the thresholds whose pairwise precision reaches `min_precision` (a false merge joins two
/// people's data and publishes it; a missed one waits in review), the best F1 of all when none
/// does. A coarse pass in steps of 4 from 12 to 40, then steps of 1 around the best.
fn choose_threshold(
    opts: &super::Options,
    schema: &str,
    truth: &std::path::Path,
    min_precision: f64,
) -> Result<Fit, String> {
    let truth = read_truth(truth)?;
    let work = std::env::temp_dir().join(format!("mdm-train-{}", std::process::id()));
    let result = (|| {
        let mut tried: Vec<Fit> = Vec::new();
        let mut fit_at = |t: f64| -> Result<Fit, String> {
            if let Some(f) = tried.iter().find(|f| f.threshold == t) {
                return Ok(*f);
            }
            let (precision, recall) = dedupe_scores(opts, &set_thresholds(schema, t), &work, &truth)?;
            let f1 = if precision + recall > 0.0 { 2.0 * precision * recall / (precision + recall) } else { 0.0 };
            let f = Fit { threshold: t, precision, recall, f1 };
            crate::progress::note(&format!(
                "train {}: link threshold {t}: pairwise F1 {f1:.5}, precision {precision:.5}, recall {recall:.5}",
                opts.entity
            ));
            tried.push(f);
            Ok(f)
        };
        let better = |best: Fit, f: Fit| if f.beats(&best, min_precision) { f } else { best };
        let mut best = fit_at(12.0)?;
        for t in (16..=40).step_by(4) {
            best = better(best, fit_at(t as f64)?);
        }
        let centre = best.threshold;
        for d in [-3.0, -2.0, -1.0, 1.0, 2.0, 3.0] {
            let t = centre + d;
            if (12.0..=40.0).contains(&t) {
                best = better(best, fit_at(t)?);
            }
        }
        Ok(best)
    })();
    let _ = std::fs::remove_dir_all(&work);
    result
}

/// `mdm dedupe` (this binary) on the training input under `schema`; the pairwise precision and
/// recall of its clusters against the truth.
fn dedupe_scores(
    opts: &super::Options,
    schema: &str,
    work: &std::path::Path,
    truth: &std::collections::HashMap<String, String>,
) -> Result<(f64, f64), String> {
    let dir = work.join("schemas");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    // The folder holds the trained entity type only: `mdm dedupe` reads no other.
    std::fs::write(dir.join(format!("{}.toml", opts.entity)), schema).map_err(|e| e.to_string())?;
    let clusters = work.join("clusters.csv");
    let mut cmd = std::process::Command::new(std::env::current_exe().map_err(|e| e.to_string())?);
    cmd.arg("--quiet").arg("dedupe").arg("--schemas").arg(&dir).arg("--out").arg(&clusters);
    cmd.arg("--entity").arg(&opts.entity).arg("--id-column").arg(&opts.id_column);
    cmd.arg("--threads").arg(opts.threads.to_string());
    for (col, attr) in &opts.maps {
        cmd.arg("--map").arg(format!("{col}={attr}"));
    }
    cmd.args(&opts.inputs);
    let run = cmd.output().map_err(|e| format!("mdm dedupe: {e}"))?;
    if !run.status.success() {
        return Err(format!("mdm dedupe failed: {}", String::from_utf8_lossy(&run.stderr).trim()));
    }
    let mut r = csv::Reader::from_path(&clusters).map_err(|e| e.to_string())?;
    let mut by_record = std::collections::HashMap::new();
    for row in r.records() {
        let row = row.map_err(|e| e.to_string())?;
        by_record.insert(row.get(1).unwrap_or("").to_owned(), row.get(2).unwrap_or("").to_owned());
    }
    Ok(pairwise_scores(truth, &by_record))
}

/// Pairwise precision and recall of predicted clusters (record → cluster) against the truth
/// (record → entity); a record missing from the prediction is a cluster of its own.
fn pairwise_scores(
    truth: &std::collections::HashMap<String, String>,
    predicted: &std::collections::HashMap<String, String>,
) -> (f64, f64) {
    use std::collections::HashMap;
    let pairs = |n: u64| n * n.saturating_sub(1) / 2;
    let mut by_entity: HashMap<&str, u64> = HashMap::new();
    let mut by_cluster: HashMap<&str, u64> = HashMap::new();
    let mut by_both: HashMap<(&str, &str), u64> = HashMap::new();
    for (record, entity) in truth {
        let cluster = predicted.get(record).map_or(record.as_str(), String::as_str);
        *by_entity.entry(entity).or_default() += 1;
        *by_cluster.entry(cluster).or_default() += 1;
        *by_both.entry((entity, cluster)).or_default() += 1;
    }
    let t: u64 = by_entity.values().map(|n| pairs(*n)).sum();
    let p: u64 = by_cluster.values().map(|n| pairs(*n)).sum();
    let tp: u64 = by_both.values().map(|n| pairs(*n)).sum();
    (if p == 0 { 1.0 } else { tp as f64 / p as f64 }, if t == 0 { 1.0 } else { tp as f64 / t as f64 })
}

/// `record_id,entity_id`: record id → entity.
fn read_truth(path: &std::path::Path) -> Result<std::collections::HashMap<String, String>, String> {
    Ok(super::blocking_report::read_truth(path)?.into_iter().map(|((_, record), entity)| (record, entity)).collect())
}

/// The schema text with `link_threshold` set to `t` and `review_threshold` to `t - 8`.
fn set_thresholds(text: &str, t: f64) -> String {
    text.split_inclusive('\n')
        .map(|line| {
            let eol = if line.ends_with('\n') { "\n" } else { "" };
            if line.starts_with("link_threshold = ") {
                format!("link_threshold = {t:.1}{eol}")
            } else if line.starts_with("review_threshold = ") {
                format!("review_threshold = {:.1}{eol}", t - 8.0)
            } else {
                line.to_owned()
            }
        })
        .collect()
}

/// Six significant digits: enough for a weight, short enough to read.
fn number(x: f64) -> String {
    if x == 0.0 {
        return "0.0".into();
    }
    let digits = (5 - x.abs().log10().floor() as i32).max(0) as usize;
    let s = format!("{x:.digits$}");
    let s = s.trim_end_matches('0');
    if s.ends_with('.') {
        format!("{s}0")
    } else {
        s.to_owned()
    }
}

fn list(xs: &[f64]) -> String {
    format!("[{}]", xs.iter().map(|x| number(*x)).collect::<Vec<_>>().join(", "))
}

/// The schema text with each attribute's comparator `m = [...]` and `u = [...]` replaced.
pub fn rewrite(text: &str, names: &[&str], groups: &[&str], est: &Estimates) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut current: Option<usize> = None;
    // The group whose inline table is open: `{ name = "address", ...` up to its `max_weight`,
    // which may stand on a later line.
    let mut group: Option<usize> = None;
    for line in text.split_inclusive('\n') {
        let t = line.trim_start();
        if let Some(g) = groups.iter().position(|g| t.contains(&format!("{{ name = \"{g}\""))) {
            group = Some(g);
        }
        if let Some((g, cap)) =
            group.and_then(|g| Some((g, est.group_caps.get(g)?))).filter(|_| line.contains("max_weight = "))
        {
            let line = replace_number(line, "max_weight = ", &format!("{cap:.1}"));
            out.push_str(&replace_tables(&line, est.subsets.get(g), est.within.get(g).and_then(Option::as_ref))?);
            group = None;
            continue;
        }
        if t.starts_with("[[") {
            current = None;
        }
        if let Some(name) = t.strip_prefix("name = \"").and_then(|r| r.split('"').next()) {
            current = names.iter().position(|n| *n == name);
        }
        match current {
            Some(i) if t.starts_with("comparator = ") => {
                let line = replace_list(line, "m = ", &list(&est.m[i]))?;
                out.push_str(&replace_list(&line, "u = ", &list(&est.u[i]))?);
            }
            _ => out.push_str(line),
        }
    }
    Ok(out)
}

/// A group's line (the one holding its `max_weight`) with its `subsets` and `within` tables
/// replaced, or removed where there is none: the tables go last, before the group's closing
/// brace.
fn replace_tables(line: &str, subsets: Option<&Subsets>, within: Option<&Within>) -> Result<String, String> {
    let subsets = subsets
        .filter(|s| !s.is_empty())
        .map(|s| s.iter().map(|(k, cap)| format!("\"{k}\" = {cap:.1}")).collect::<Vec<_>>().join(", "));
    let within =
        within.map(|w| w.iter().map(|(name, u)| format!("{name} = {}", list(u))).collect::<Vec<_>>().join(", "));
    let line = replace_table(line, "subsets", subsets)?;
    replace_table(&line, "within", within)
}

/// `key = { body }` in a group's line replaced by `body`, or removed when `None`.
fn replace_table(line: &str, key: &str, body: Option<String>) -> Result<String, String> {
    let mut line = line.to_owned();
    if let Some(at) = line.find(&format!(", {key} = {{")) {
        let end = line[at..].find('}').map(|i| at + i + 1).ok_or_else(|| format!("unterminated `{key}` table"))?;
        line.replace_range(at..end, "");
    }
    let Some(body) = body else { return Ok(line) };
    let close = line.rfind('}').ok_or_else(|| format!("no closing brace in: {}", line.trim()))?;
    let before = line[..close].trim_end().to_owned();
    Ok(format!("{before}, {key} = {{ {body} }} {}", &line[close..]))
}

fn replace_number(line: &str, key: &str, with: &str) -> String {
    let Some(at) = line.find(key) else { return line.to_owned() };
    let start = at + key.len();
    let end = line[start..].find([',', ' ', '}']).map_or(line.len(), |i| start + i);
    format!("{}{with}{}", &line[..start], &line[end..])
}

fn replace_list(line: &str, key: &str, with: &str) -> Result<String, String> {
    let at =
        line.find(&format!(" {key}[")).map(|i| i + 1).ok_or_else(|| format!("no `{key}[...]` in: {}", line.trim()))?;
    let open = at + key.len();
    let close = line[open..].find(']').map(|i| open + i).ok_or("unterminated list")?;
    Ok(format!("{}{with}{}", &line[..open], &line[close + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrite_replaces_only_m_and_u() {
        let text = "# keep\n[[attributes]]\nname = \"a\"\ncomparator = { kind = \"exact\", m = [0.9], u = [0.1] }\n\n[[attributes]]\nname = \"b\"\ncomparator = { kind = \"jaro_winkler\", thresholds = [1.0, 0.9], m = [0.7, 0.1], u = [0.01, 0.02] }\n";
        let est = Estimates {
            m: vec![vec![0.95], vec![0.8, 0.05]],
            u: vec![vec![0.0123456789], vec![0.000012, 0.3]],
            match_share: 0.1,
            random_pairs: 1,
            blocked_pairs: 1,
            iterations: 1,
            group_caps: vec![7.25],
            within: vec![Some([("b".to_owned(), vec![0.5, 0.25])].into_iter().collect())],
            subsets: vec![[("a+b".to_owned(), 3.25)].into_iter().collect()],
        };
        let text = format!(
            "groups = [{{ name = \"g\", attributes = [\"a\", \"b\"], max_weight = 40.0, min_weight = -3.0 }}]\n{text}"
        );
        let out = rewrite(&text, &["a", "b"], &["g"], &est).expect("rewritten");
        assert!(
            out.contains(
                "max_weight = 7.2, min_weight = -3.0, subsets = { \"a+b\" = 3.2 }, within = { b = [0.5, 0.25] } }]"
            ),
            "{out}"
        );
        // Written again: the tables are replaced, not repeated; without them they go.
        let again = rewrite(&out, &["a", "b"], &["g"], &est).expect("rewritten");
        assert_eq!(again.matches("within").count(), 1, "{again}");
        assert_eq!(again.matches("subsets").count(), 1, "{again}");
        let none = Estimates { within: vec![None], subsets: vec![Subsets::new()], ..est };
        let out = rewrite(&out, &["a", "b"], &["g"], &none).expect("rewritten");
        assert!(out.contains("max_weight = 7.2, min_weight = -3.0 }]"), "{out}");
        assert!(out.contains("\n# keep\n"));
        assert!(out.contains("m = [0.95], u = [0.0123457] }"), "{out}");
        assert!(out.contains("thresholds = [1.0, 0.9], m = [0.8, 0.05], u = [0.000012, 0.3] }"), "{out}");
    }

    #[test]
    fn the_threshold_reaches_the_precision_target_before_it_maximises_f1() {
        let fit = |threshold: f64, precision: f64, recall: f64| Fit {
            threshold,
            precision,
            recall,
            f1: 2.0 * precision * recall / (precision + recall),
        };
        // 17 has the best F1 but misses the target; 18 reaches it and beats 19 on F1.
        let curve = [
            fit(16.0, 0.9970, 0.9925),
            fit(17.0, 0.9987, 0.9911),
            fit(18.0, 0.9992, 0.9899),
            fit(19.0, 0.9996, 0.9889),
        ];
        let pick = |target: f64| {
            curve.iter().copied().reduce(|best, f| if f.beats(&best, target) { f } else { best }).map(|f| f.threshold)
        };
        assert_eq!(pick(0.999), Some(18.0));
        assert_eq!(pick(0.0), Some(17.0), "no target: the best F1");
        assert_eq!(pick(0.9999), Some(17.0), "none reaches the target: the best F1 of all");
    }
}
