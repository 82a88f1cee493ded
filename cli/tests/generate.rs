//! `mdm generate` as a user runs it: the built binary writing seeded data and its ground truth.
mod common;
use common::TempDir;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::process::Command;

const PEOPLE_HEADER: &str = "rec_id,given_name,family_name,date_of_birth,email,phone,street_number,address_line1,\
                             address_line2,locality,postcode,region";
const PRODUCTS_HEADER: &str = "rec_id,sku,gtin,name,brand,category,size,price,currency";

fn dir(name: &str) -> TempDir {
    TempDir::new("generate", name)
}

fn mdm(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mdm")).args(args).output().expect("run mdm");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

/// Runs `mdm generate KIND --records N EXTRA... --out DIR` and returns DIR and the stderr.
fn generate(name: &str, kind: &str, records: usize, extra: &[&str]) -> (TempDir, String) {
    let d = dir(name);
    let n = records.to_string();
    let mut args = vec!["generate", kind, "--records", n.as_str()];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--out", d.to_str().expect("path")]);
    let (ok, _, err) = mdm(&args);
    assert!(ok, "{err}");
    (d, err)
}

fn read_csv(path: &Path) -> (String, Vec<Vec<String>>) {
    let mut r = csv::Reader::from_path(path).expect("open csv");
    let header = r.headers().expect("header").iter().collect::<Vec<_>>().join(",");
    let rows = r.records().map(|rec| rec.expect("row").iter().map(str::to_owned).collect()).collect();
    (header, rows)
}

/// A generated data set: its rows (rec_id first) and each record's entity.
struct Set {
    header: String,
    rows: Vec<Vec<String>>,
    entity: HashMap<String, String>,
}

impl Set {
    fn load(d: &Path, kind: &str) -> Set {
        let (header, rows) = read_csv(&d.join(format!("{kind}.csv")));
        let (truth_header, truth) = read_csv(&d.join(format!("{kind}.truth.csv")));
        assert_eq!(truth_header, "record_id,entity_id");
        let mut entity = HashMap::new();
        for t in &truth {
            assert!(entity.insert(t[0].clone(), t[1].clone()).is_none(), "{} twice in the truth file", t[0]);
        }
        Set { header, rows, entity }
    }

    fn entity_of(&self, row: &[String]) -> &str {
        self.entity.get(&row[0]).map(String::as_str).unwrap_or_else(|| panic!("{} not in the truth file", row[0]))
    }

    fn by_entity(&self) -> HashMap<&str, Vec<&Vec<String>>> {
        let mut m: HashMap<&str, Vec<&Vec<String>>> = HashMap::new();
        for r in &self.rows {
            m.entry(self.entity_of(r)).or_default().push(r);
        }
        m
    }
}

fn fold(s: &str) -> String {
    s.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect()
}

/// The generator's date spellings to ISO: 1984-07-21, 1984/07/21, 19840721, 21/07/1984,
/// 21/7/1984, 21-07-1984, 21.07.1984, 21 Jul 1984, 21 July 1984.
fn iso_date(s: &str) -> Option<String> {
    const MONTHS: [&str; 12] = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
    let s = s.trim();
    let parts: Vec<&str> = if s.len() == 8 && s.chars().all(|c| c.is_ascii_digit()) {
        vec![&s[..4], &s[4..6], &s[6..]]
    } else {
        s.split(['-', '/', '.', ' ']).collect()
    };
    let [a, b, c] = parts[..] else { return None };
    let (y, m, d) = if a.len() == 4 { (a, b, c) } else { (c, b, a) };
    let y: u32 = y.parse().ok()?;
    let m: u32 =
        m.parse().ok().or_else(|| MONTHS.iter().position(|x| m.to_lowercase().starts_with(x)).map(|i| i as u32 + 1))?;
    let d: u32 = d.parse().ok()?;
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    ((1900..=2010).contains(&y) && (1..=12).contains(&m) && d >= 1 && d <= days[m as usize - 1])
        .then(|| format!("{y:04}-{m:02}-{d:02}"))
}

fn gtin_valid(g: &str) -> bool {
    if !(g.len() == 13 || g.len() == 14) || !g.chars().all(|c| c.is_ascii_digit()) {
        return false;
    }
    let d: Vec<u32> = format!("{g:0>14}").chars().filter_map(|c| c.to_digit(10)).collect();
    let sum: u32 = d[..13].iter().enumerate().map(|(i, x)| if i % 2 == 0 { x * 3 } else { *x }).sum();
    (10 - sum % 10) % 10 == d[13]
}

#[test]
fn same_arguments_give_the_same_bytes_and_another_seed_other_bytes() {
    for kind in ["people", "products"] {
        let (a, _) = generate(&format!("{kind}-a"), kind, 3000, &[]);
        let (b, _) = generate(&format!("{kind}-b"), kind, 3000, &["--seed", "42"]);
        let (c, _) = generate(&format!("{kind}-c"), kind, 3000, &["--seed", "7"]);
        for file in [format!("{kind}.csv"), format!("{kind}.truth.csv")] {
            let bytes = |d: &Path| std::fs::read(d.join(&file)).expect("read");
            assert_eq!(bytes(&a), bytes(&b), "{file}: same arguments (seed 42 is the default)");
            assert_ne!(bytes(&a), bytes(&c), "{file}: another seed");
        }
    }
}

#[test]
fn people_exact_count_header_and_a_truth_row_for_every_record() {
    let (d, err) = generate("people-count", "people", 5000, &[]);
    let set = Set::load(&d, "people");
    assert_eq!(set.header, PEOPLE_HEADER);
    assert_eq!(set.rows.len(), 5000);
    assert!(set.rows.iter().all(|r| r.len() == 12));
    let ids: HashSet<&str> = set.rows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(ids.len(), 5000, "record ids are unique");
    assert!(ids.iter().all(|id| id.len() == 8 && id.starts_with('p')), "ids like p0000123");
    assert_eq!(set.entity.len(), 5000, "the truth file has one row per record");
    assert!(set.entity.keys().all(|id| ids.contains(id.as_str())), "and no other rows");
    let entities: BTreeSet<&String> = set.entity.values().collect();
    assert_eq!(err.lines().count(), 1, "one summary line: {err}");
    assert!(
        err.contains("records 5000")
            && err.contains(&format!("entities {}", entities.len()))
            && err.contains(&format!("duplicates {}", 5000 - entities.len()))
            && err.contains("people.truth.csv"),
        "{err}"
    );
    // Every birth date is a valid date in one of the generator's spellings, mostly ISO.
    let dates: Vec<&str> = set.rows.iter().map(|r| r[3].as_str()).filter(|s| !s.is_empty()).collect();
    assert!(dates.iter().all(|s| iso_date(s).is_some()), "{:?}", dates.iter().find(|s| iso_date(s).is_none()));
    let iso = dates.iter().filter(|s| s.len() == 10 && s.as_bytes()[4] == b'-').count();
    assert!(iso * 10 > dates.len() * 8, "mostly ISO: {iso} of {}", dates.len());
    // Australian mobiles and plausible emails.
    for r in &set.rows {
        let phone: String = r[5].chars().filter(|c| !c.is_whitespace()).collect();
        assert!(phone.is_empty() || (phone.len() == 12 && phone.starts_with("+614")), "{r:?}");
        assert!(
            r[4].is_empty() || r[4].split_once('@').is_some_and(|(l, d)| !l.is_empty() && d.contains('.')),
            "{r:?}"
        );
    }
}

#[test]
fn the_duplicate_rate_is_the_share_of_entities_with_duplicates() {
    let (d, _) = generate("people-rate", "people", 20_000, &[]);
    let set = Set::load(&d, "people");
    let groups = set.by_entity();
    let with_dups = groups.values().filter(|g| g.len() > 1).count();
    let share = with_dups as f64 / groups.len() as f64;
    assert!((0.27..=0.33).contains(&share), "default --dup-rate 0.3: {share:.3}");
    assert!(groups.values().all(|g| g.len() <= 4), "1-3 duplicates");
    // Duplicates are not adjacent: records are shuffled.
    let adjacent = set.rows.windows(2).filter(|w| set.entity_of(&w[0]) == set.entity_of(&w[1])).count();
    assert!(adjacent < 50, "{adjacent} neighbouring records of one entity");

    let (d, _) = generate("people-rate0", "people", 2000, &["--dup-rate", "0"]);
    let set = Set::load(&d, "people");
    assert_eq!(set.by_entity().len(), 2000, "no duplicates at rate 0");
    let (d, _) = generate("products-rate1", "products", 2000, &["--dup-rate", "1", "--seed", "3"]);
    let set = Set::load(&d, "products");
    let singles = set.by_entity().values().filter(|g| g.len() == 1).count();
    assert!(singles <= 1, "every entity has duplicates at rate 1 (the last may be cut short): {singles}");
}

#[test]
fn people_are_diverse_and_distinct_entities_never_share_name_and_birth_date() {
    let (d, _) = generate("people-diverse", "people", 20_000, &[]);
    let set = Set::load(&d, "people");
    let families: HashSet<String> = set.rows.iter().map(|r| fold(&r[2])).filter(|f| !f.is_empty()).collect();
    assert!(families.len() > 2000, "{} distinct family names", families.len());
    let localities: HashSet<String> = set.rows.iter().map(|r| fold(&r[9])).collect();
    assert!(localities.len() > 500, "{} localities", localities.len());

    // Across every record (duplicates too): a name pair (in either order) with a birth date, an
    // email, a phone belongs to one entity.
    let mut owner: HashMap<String, &str> = HashMap::new();
    for r in &set.rows {
        let e = set.entity_of(r);
        let (g, f) = (fold(&r[1]), fold(&r[2]));
        let mut claims = vec![];
        if let (false, false, Some(dob)) = (g.is_empty(), f.is_empty(), iso_date(&r[3])) {
            let (a, b) = if g <= f { (g, f) } else { (f, g) };
            claims.push(format!("name {a} {b} {dob}"));
        }
        if !r[4].is_empty() {
            claims.push(format!("email {}", r[4].trim().to_lowercase()));
        }
        if !r[5].is_empty() {
            claims.push(format!("phone {}", r[5].replace(' ', "")));
        }
        for c in claims {
            let first = *owner.entry(c.clone()).or_insert(e);
            assert_eq!(first, e, "{c}: entities {first} and {e}");
        }
    }

    // Different people still look alike the way real people do: same family name and town,
    // same family name and birth year.
    let mut family_town: HashMap<(String, String), BTreeSet<&str>> = HashMap::new();
    let mut family_year: HashMap<(String, String), BTreeSet<&str>> = HashMap::new();
    for r in &set.rows {
        let e = set.entity_of(r);
        if let Some(dob) = iso_date(&r[3]) {
            family_year.entry((fold(&r[2]), dob[..4].to_owned())).or_default().insert(e);
        }
        family_town.entry((fold(&r[2]), fold(&r[9]))).or_default().insert(e);
    }
    let shared = |m: &HashMap<(String, String), BTreeSet<&str>>| m.values().filter(|s| s.len() > 1).count();
    assert!(shared(&family_town) > 100, "family name + town shared by several people: {}", shared(&family_town));
    assert!(shared(&family_year) > 100, "family name + birth year shared: {}", shared(&family_year));
    let biggest = family_year.values().map(BTreeSet::len).max().unwrap_or(0);
    assert!(biggest < 40, "but no huge block: {biggest}");

    // Duplicates differ from their originals in the documented ways.
    let groups = set.by_entity();
    let dup_groups: Vec<&Vec<&Vec<String>>> = groups.values().filter(|g| g.len() > 1).collect();
    let differs = |col: usize| dup_groups.iter().filter(|g| g.iter().any(|r| r[col] != g[0][col])).count();
    for (col, name) in [(1, "given"), (2, "family"), (3, "birth date"), (4, "email"), (7, "street"), (9, "locality")] {
        assert!(differs(col) * 50 > dup_groups.len(), "{name} varies within some entities: {}", differs(col));
    }
    let abbreviated =
        set.rows.iter().filter(|r| [" St", " Rd", " Ave", " Dr", " Pl"].iter().any(|s| r[7].ends_with(s))).count();
    assert!(abbreviated > 50, "{abbreviated} abbreviated street types");
}

#[test]
fn products_have_valid_gtins_and_duplicates_share_a_code() {
    let (d, err) = generate("products", "products", 5000, &[]);
    let set = Set::load(&d, "products");
    assert_eq!(set.header, PRODUCTS_HEADER);
    assert_eq!(set.rows.len(), 5000);
    assert!(err.contains("records 5000") && err.contains("products.truth.csv"), "{err}");
    let present: Vec<&str> = set.rows.iter().map(|r| r[2].as_str()).filter(|g| !g.is_empty()).collect();
    assert!(present.len() > 4500, "most records carry a GTIN: {}", present.len());
    assert!(present.iter().all(|g| gtin_valid(g)), "{:?}", present.iter().find(|g| !gtin_valid(g)));
    assert!(set.rows.iter().all(|r| !(r[1].is_empty() && r[2].is_empty())), "never both codes missing");

    // One entity: one GTIN and one SKU (when present, however written); entities never share them.
    let norm_sku = |s: &str| s.chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>().to_uppercase();
    let mut gtin_owner: HashMap<String, &str> = HashMap::new();
    let mut sku_owner: HashMap<String, &str> = HashMap::new();
    for r in &set.rows {
        let e = set.entity_of(r);
        if !r[2].is_empty() {
            let g = format!("{:0>14}", r[2]);
            assert_eq!(*gtin_owner.entry(g.clone()).or_insert(e), e, "GTIN {g}");
        }
        if !r[1].is_empty() {
            let s = norm_sku(&r[1]);
            assert_eq!(*sku_owner.entry(s.clone()).or_insert(e), e, "SKU {s}");
        }
    }
    let groups = set.by_entity();
    for g in groups.values() {
        let gtins: HashSet<String> = g.iter().filter(|r| !r[2].is_empty()).map(|r| format!("{:0>14}", r[2])).collect();
        let skus: HashSet<String> = g.iter().filter(|r| !r[1].is_empty()).map(|r| norm_sku(&r[1])).collect();
        assert!(gtins.len() <= 1 && skus.len() <= 1, "{g:?}");
        // Prices within 5 %.
        let prices: Vec<f64> = g.iter().map(|r| r[7].parse::<f64>().expect("price")).collect();
        let (lo, hi) = prices.iter().fold((f64::MAX, 0.0f64), |(lo, hi), p| (lo.min(*p), hi.max(*p)));
        assert!(hi <= lo * 1.11, "{g:?}");
    }
    // Duplicates have other titles, sizes written differently; distinct products share brands.
    let dup_groups: Vec<_> = groups.values().filter(|g| g.len() > 1).collect();
    let titles = dup_groups.iter().filter(|g| g.iter().any(|r| r[3] != g[0][3])).count();
    assert!(titles * 2 > dup_groups.len(), "titles vary within entities: {titles} of {}", dup_groups.len());
    let sizes = dup_groups.iter().filter(|g| g.iter().any(|r| r[6] != g[0][6])).count();
    assert!(sizes * 10 > dup_groups.len(), "size spellings vary: {sizes}");
    let mut brand_entities: HashMap<String, BTreeSet<&str>> = HashMap::new();
    for r in &set.rows {
        brand_entities.entry(fold(&r[4])).or_default().insert(set.entity_of(r));
    }
    let shared = brand_entities.values().filter(|s| s.len() > 1).count();
    assert!(shared > 200, "hard negatives: brands with several products: {shared}");
}

#[test]
fn errors_are_one_line_and_fail() {
    let d = dir("errors");
    std::fs::create_dir_all(&d).expect("dir");
    let file = d.join("a-file");
    std::fs::write(&file, "x").expect("write");
    let under_file = file.join("out");
    let out = d.join("out");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["generate", "people", "--records", "10"], "--out"),
        (vec!["generate", "people", "--out", out.to_str().expect("path")], "--records"),
        (vec!["generate", "people", "--records", "ten", "--out", out.to_str().expect("path")], "ten"),
        (vec!["generate", "people", "--records", "-5", "--out", out.to_str().expect("path")], "-5"),
        (vec!["generate", "people", "--records", "10", "--seed", "x", "--out", out.to_str().expect("path")], "--seed"),
        (
            vec!["generate", "people", "--records", "10", "--dup-rate", "1.5", "--out", out.to_str().expect("path")],
            "--dup-rate",
        ),
        (vec!["generate", "cars", "--records", "10", "--out", out.to_str().expect("path")], "cars"),
        (vec!["generate", "--records", "10", "--out", out.to_str().expect("path")], "KIND"),
        (vec!["generate", "people", "--records", "10", "--out", under_file.to_str().expect("path")], "a-file"),
    ];
    for (args, needle) in cases {
        let (ok, _, err) = mdm(&args);
        assert!(!ok, "{args:?} should fail");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: one line: {err}");
        assert!(err.starts_with("mdm: ") && err.contains(needle), "{args:?}: {err}");
    }
    assert!(!out.exists(), "nothing written on argument errors");
}

/// The FEBRL profile: FEBRL's columns, the same ids and truth as the default profile, no two
/// entities sharing a name pair and birth date, and duplicates that differ from their originals.
#[test]
fn febrl_profile_has_febrl_columns_and_corrupted_duplicates() {
    let (d, err) = generate("people-febrl", "people", 5000, &["--profile", "febrl"]);
    let set = Set::load(&d, "people");
    assert_eq!(
        set.header,
        "rec_id,given_name,surname,street_number,address_1,address_2,suburb,postcode,state,date_of_birth,soc_sec_id"
    );
    assert_eq!(set.rows.len(), 5000, "{err}");
    assert!(set.rows.iter().all(|r| r.len() == 11));
    assert_eq!(set.entity.len(), 5000);
    let mut by_entity: BTreeMap<&String, Vec<&Vec<String>>> = BTreeMap::new();
    for r in &set.rows {
        by_entity.entry(&set.entity[&r[0]]).or_default().push(r);
    }
    let mut owner: BTreeMap<(String, String, String), &String> = BTreeMap::new();
    let (mut duplicates, mut identical) = (0, 0);
    for (entity, rows) in &by_entity {
        for r in rows {
            if !r[1].is_empty() && !r[2].is_empty() && !r[9].is_empty() {
                let (a, b) = if r[1] <= r[2] { (&r[1], &r[2]) } else { (&r[2], &r[1]) };
                let o = owner.entry((a.clone(), b.clone(), r[9].clone())).or_insert(entity);
                assert_eq!(*o, *entity, "name pair and birth date of two entities: {r:?}");
            }
        }
        for pair in rows.windows(2) {
            duplicates += 1;
            identical += usize::from(pair[0][1..] == pair[1][1..]);
        }
    }
    assert!(duplicates > 1000, "{duplicates}");
    assert!(identical * 50 < duplicates, "{identical} of {duplicates} duplicates equal their original");
    let lower = set.rows.iter().all(|r| r[1..9].iter().all(|f| *f == f.to_lowercase()));
    assert!(lower, "FEBRL values are lower case");
    let out = dir("people-febrl-products");
    let (ok, _, bad) =
        mdm(&["generate", "products", "--records", "10", "--profile", "febrl", "--out", out.to_str().expect("path")]);
    assert!(!ok && bad.contains("--profile applies to people only"), "{bad}");
}
