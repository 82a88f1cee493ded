//! `mdm dedupe` as a user runs it: the built binary on CSV files.
mod common;
use common::TempDir;
use std::path::{Path, PathBuf};
use std::process::Command;

fn dir(name: &str) -> TempDir {
    let d = TempDir::new("dedupe", name);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

fn write(d: &Path, name: &str, text: &str) -> PathBuf {
    let p = d.join(name);
    std::fs::write(&p, text).expect("write");
    p
}

fn mdm(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mdm")).args(args).output().expect("run mdm");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

/// `mdm dedupe --entity ENTITY --id-column ID [EXTRA...] --out OUT INPUT...`
fn dedupe(entity: &str, id: &str, extra: &[&str], out: &Path, inputs: &[&Path]) -> (bool, String, String) {
    let mut args = vec!["dedupe", "--entity", entity, "--id-column", id];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--out", out.to_str().expect("path")]);
    args.extend(inputs.iter().map(|p| p.to_str().expect("path")));
    mdm(&args)
}

#[test]
fn duplicates_across_files_share_a_golden_id_in_input_order() {
    let d = dir("ok");
    let crm = write(
        &d,
        "crm.csv",
        " rec_id , given_name, surname , email, dob, notes\n\
        c1, Anna , Kowalski, anna.k@example.com, 1984-07-21, vip\n\
        c2, Bob, Okafor, bob@example.org, 1962-11-03,\n\
        c3, Priya, Raman, , 1990-02-14, \n",
    );
    let web = write(
        &d,
        "Web Shop.csv",
        "rec_id,given_name,surname,email,dob,notes\n\
        w1,Ana,Kowalsky,ANNA.K@EXAMPLE.COM,21/07/1984,\n\
        w2,Carl,Jensen,carl@example.dk,1970-01-05,x\n",
    );
    let out = d.join("clusters.csv");
    let maps = ["--map", "surname=family_name", "--map", "dob=date_of_birth"];
    let (ok, _, err) = dedupe("customer", "rec_id", &maps, &out, &[&crm, &web]);
    assert!(ok, "{err}");
    assert!(err.contains("ignoring columns notes"), "unmapped columns are named once per file: {err}");
    assert!(
        err.contains("records 5")
            && err.contains("golden records 4")
            && err.contains("records/s")
            && err.contains("peak memory"),
        "{err}"
    );
    let text = std::fs::read_to_string(&out).expect("output");
    let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split(',').collect()).collect();
    assert_eq!(rows[0], vec!["source", "record_id", "golden_id"]);
    let ids: Vec<(&str, &str)> = rows[1..].iter().map(|r| (r[0], r[1])).collect();
    assert_eq!(
        ids,
        vec![("crm", "c1"), ("crm", "c2"), ("crm", "c3"), ("web_shop", "w1"), ("web_shop", "w2")],
        "input order"
    );
    assert_eq!(rows[1][2], rows[4][2], "Anna from two files: one golden record");
    let distinct: std::collections::BTreeSet<&str> = rows[1..].iter().map(|r| r[2]).collect();
    assert_eq!(distinct.len(), 4);
}

#[test]
fn products_and_user_defined_entities_work_the_same() {
    let d = dir("entities");
    let erp = write(
        &d,
        "erp.csv",
        "id,gtin,name,brand\np1,4006381333931,Oat Milk 1l,Acme\np2,5000000000012,Green Tea,Sunfield\n",
    );
    let shop = write(&d, "shop.csv", "id,gtin,name,brand\ns1,04006381333931,Acme Oat Milk,acme\n");
    let out = d.join("p.csv");
    let (ok, _, err) = dedupe("product", "id", &[], &out, &[&erp, &shop]);
    assert!(ok, "{err}");
    let text = std::fs::read_to_string(&out).expect("out");
    let g: Vec<&str> = text.lines().skip(1).map(|l| l.rsplit(',').next().unwrap_or("")).collect();
    assert_eq!(g[0], g[2], "same GTIN, one product");
    assert_ne!(g[0], g[1]);

    let schemas = d.join("schemas");
    std::fs::create_dir_all(&schemas).expect("dir");
    std::fs::write(schemas.join("supplier.toml"), "entity = \"supplier\"\n[matching]\nlink_threshold = 10.0\nreview_threshold = 5.0\n\
        [[attributes]]\nname = \"vat\"\ntype = \"identifier\"\nnormalisers = [\"uppercase\", \"alphanumeric\"]\n\
        comparator = { kind = \"exact\", m = [0.95], u = [0.0001] }\nblocking = [{ transform = \"value\" }]\nsurvivorship = \"most_recent\"\n")
        .expect("schema");
    let s = write(&d, "suppliers.csv", "key,vat\nA,GB 123 456\nB,gb123456\nC,DE999\n");
    let out = d.join("s.csv");
    let (ok, _, err) = dedupe("supplier", "key", &["--schemas", schemas.to_str().expect("p")], &out, &[&s]);
    assert!(ok, "a new entity type needs no rebuild: {err}");
    let text = std::fs::read_to_string(&out).expect("out");
    let g: Vec<&str> = text.lines().skip(1).map(|l| l.rsplit(',').next().unwrap_or("")).collect();
    assert_eq!(g[0], g[1]);
    assert_ne!(g[0], g[2]);
}

fn one_line_error(args: &[&str], wants: &[&str]) {
    let (ok, _, err) = mdm(args);
    assert!(!ok, "expected failure for {args:?}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.contains("ignoring columns")).collect();
    assert_eq!(lines.len(), 1, "one line: {err}");
    for w in wants {
        assert!(lines[0].contains(w), "{w:?} in {:?}", lines[0]);
    }
}

#[test]
fn bad_inputs_fail_with_one_line_naming_file_line_and_column() {
    let d = dir("bad");
    let out = d.join("o.csv");
    let o = out.to_str().expect("p");
    let missing = d.join("nope.csv");
    one_line_error(
        &["dedupe", "--entity", "customer", "--id-column", "id", "--out", o, missing.to_str().expect("p")],
        &["nope.csv", "cannot read"],
    );
    let no_id = write(&d, "noid.csv", "key,given_name\n1,Anna\n");
    one_line_error(
        &["dedupe", "--entity", "customer", "--id-column", "id", "--out", o, no_id.to_str().expect("p")],
        &["noid.csv", "no id column 'id'"],
    );
    let ragged = write(&d, "ragged.csv", "id,given_name,family_name\n1,Anna,Smith\n2,Bob\n");
    one_line_error(
        &["dedupe", "--entity", "customer", "--id-column", "id", "--out", o, ragged.to_str().expect("p")],
        &["ragged.csv", "line 3", "expected 3 fields, found 2"],
    );
    let repeated = write(&d, "rep.csv", "id,given_name\n1,Anna\n2,Bob\n1,Carl\n");
    one_line_error(
        &["dedupe", "--entity", "customer", "--id-column", "id", "--out", o, repeated.to_str().expect("p")],
        &["rep.csv", "line 4", "column 'id'", "repeats line 2"],
    );
    let fine = write(&d, "fine.csv", "id,given_name\n1,Anna\n");
    one_line_error(
        &[
            "dedupe",
            "--entity",
            "customer",
            "--id-column",
            "id",
            "--map",
            "given_name=shoe_size",
            "--out",
            o,
            fine.to_str().expect("p"),
        ],
        &["--map given_name=shoe_size", "no attribute 'shoe_size'"],
    );
    one_line_error(
        &["dedupe", "--entity", "planet", "--id-column", "id", "--out", o, fine.to_str().expect("p")],
        &["unknown entity type 'planet'"],
    );
    // `mdm dedupe --entity customer --id-column id` with `extra` options on one file.
    let customer = |extra: &[&'static str], file: &Path| -> Vec<String> {
        let head = ["dedupe", "--entity", "customer", "--id-column", "id", "--out", o];
        head.iter().chain(extra).map(|a| a.to_string()).chain([file.display().to_string()]).collect()
    };
    let args = customer(&["--threads", "0"], &fine);
    one_line_error(&args.iter().map(String::as_str).collect::<Vec<_>>(), &["--threads <N>", "0 is not in 1..=64"]);
    // A bad row far into the file, after batches went to every matching thread.
    let mut long = String::from("id,given_name,family_name\n");
    for i in 0..500 {
        long.push_str(&format!("{i},Anna{i},Smith\n"));
    }
    long.push_str("500,Bob\n");
    let long = write(&d, "long.csv", &long);
    let args = customer(&["--threads", "3"], &long);
    one_line_error(
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        &["long.csv", "line 502", "expected 3 fields, found 2"],
    );
    // A row that fails validation far into the second file, while other threads read, prepare
    // and match the rows after it: the first error in input order is the one reported.
    let mut second = String::from("id,given_name,family_name\n");
    for i in 0..300 {
        second.push_str(&format!("s{i},Bob{i},Jones\n"));
    }
    second.push_str(&format!("{},Carl,Long\n", "x".repeat(300)));
    for i in 300..318 {
        second.push_str(&format!("s{i},Bob{i},Jones\n"));
    }
    // A second bad row a batch later (a short one, which ends the reading): still the first
    // error is the one reported, though the threads may have matched the rows in between.
    second.push_str("s318,Bob\n");
    let second = write(&d, "second.csv", &second);
    let fine_start = write(&d, "first.csv", "id,given_name\n1,Anna\n");
    for threads in ["1", "2", "4"] {
        let args = customer(&["--threads", threads], &fine_start);
        let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
        let second = second.to_str().expect("p");
        args.push(second);
        one_line_error(&args, &["second.csv", "line 302", "sourceId"]);
    }
    assert!(!out.exists(), "no output written on error");
}

/// The batch engine matches a few records ahead of its merges, on one or more other threads.
/// Its clusters are those of one thread feeding each record through ingest, match and merge in
/// turn, whatever the number of matching threads.
#[tokio::test]
async fn matching_ahead_gives_the_clusters_of_one_record_at_a_time() {
    use mdm_core::store::memory::MemoryStore;
    use mdm_core::store::SourceStore;
    use mdm_core::{Hub, SchemaRegistry};
    let d = dir("ahead");
    let d_str = d.to_str().expect("path");
    let (ok, _, err) = mdm(&["generate", "people", "--records", "3000", "--seed", "11", "--out", d_str]);
    assert!(ok, "{err}");
    let people = d.join("people.csv");
    let mut outs = Vec::new();
    for threads in ["1", "3"] {
        let out = d.join(format!("clusters-{threads}.csv"));
        let (ok, _, err) = dedupe("customer", "rec_id", &["--threads", threads], &out, &[&people]);
        assert!(ok, "{err}");
        assert!(err.contains("decisions remade"), "{err}");
        // The summary counts the golden records the output names: every active one holds a
        // record, and a record merged away names its survivor.
        let text = std::fs::read_to_string(&out).expect("clusters");
        let distinct: std::collections::BTreeSet<&str> =
            text.lines().skip(1).filter_map(|l| l.rsplit(',').next()).collect();
        assert!(err.contains(&format!("golden records {}  ", distinct.len())), "{} in {err}", distinct.len());
        outs.push(out);
    }

    // A clock that moves on at every reading, as the batch engine's does: where two golden
    // records merge, the older survives, and wall-clock ties would make the survivor's id
    // depend on timing.
    fn clock() -> i64 {
        static TICKS: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(1_700_000_000_000);
        TICKS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }
    let hub = Hub::new(std::sync::Arc::new(SchemaRegistry::built_in().expect("schemas")), MemoryStore::new())
        .with_clock(clock);
    let mut reader = csv::Reader::from_path(&people).expect("people");
    let header: Vec<String> = reader.headers().expect("header").iter().map(str::to_owned).collect();
    let mut keys = Vec::new();
    for row in reader.records() {
        let row = row.expect("row");
        let mut attributes = serde_json::Map::new();
        for (name, value) in header.iter().zip(row.iter()).skip(1) {
            if !value.trim().is_empty() {
                attributes.insert(name.clone(), value.trim().into());
            }
        }
        let input = serde_json::json!({"entityType": "customer", "sourceSystem": "people", "sourceId": &row[0],
                                       "sourceSeq": 1, "attributes": attributes});
        let record = mdm_core::record::validate(hub.registry(), &input, 0).expect("valid");
        hub.ingest(&record).await.expect("ingest");
        hub.process(&record.key).await.expect("process");
        keys.push(record.key);
    }
    let mut expected = vec!["source,record_id,golden_id".to_owned()];
    for k in &keys {
        let source = hub.store().get_source(k).await.expect("read").expect("stored");
        let first = source.golden_id.clone().expect("cross-reference");
        let golden = hub.final_record("customer", &first).await.expect("read").expect("golden record");
        expected.push(format!("people,{},{}", k.source_id, golden.golden_id));
    }
    for out in &outs {
        let got = std::fs::read_to_string(out).expect("clusters");
        let got: Vec<&str> = got.lines().collect();
        assert_eq!(got.len(), expected.len());
        let differ = got.iter().zip(&expected).filter(|(g, e)| *g != e).count();
        assert_eq!(differ, 0, "{}: records whose golden record differs from one thread's", out.display());
    }
    let linked = expected.len()
        - 1
        - expected.iter().skip(1).map(|l| l.rsplit(',').next()).collect::<std::collections::BTreeSet<_>>().len();
    assert!(linked > 100, "the set has duplicates to link ({linked})");
}
