//! `mdm generate`: seeded synthetic data with ground truth, for the match-quality and throughput
//! benchmarks.
//!
//! ```text
//! mdm generate people   --records N [--seed S] [--dup-rate R] --out DIR   DIR/people.csv, DIR/people.truth.csv
//! mdm generate products --records N [--seed S] [--dup-rate R] --out DIR   DIR/products.csv, DIR/products.truth.csv
//! ```
//!
//! Entities are drawn one after another; each gets one clean record and, with probability
//! `--dup-rate`, one to three corrupted duplicates, until exactly N records exist. The records are
//! then put in a seeded random order and numbered in that order, so neither position nor record id
//! gives a duplicate away. The truth file maps every record id to its entity id.
//!
//! The same arguments give byte-identical files: the only randomness is a xoshiro256** generator
//! seeded through splitmix64, integer arithmetic and IEEE division (no platform maths functions),
//! and no hash-map iteration order reaches the output. The vocabularies (names, towns, brands) come
//! from a fixed seed, so different `--seed`s sample one and the same world.
//!
//! Different entities never share a claim the matcher trusts: no two people have the same
//! given name, family name and date of birth (in either name order, in any record, duplicates
//! included), nor an email address or phone number; no two products share a GTIN, a SKU, or
//! brand + title + size.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::time::Instant;

mod febrl;

/// At most this many records: entity and record indexes are `u32`.
const MAX_RECORDS: usize = 100_000_000;

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Kind {
    People,
    Products,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::People => "people",
            Kind::Products => "products",
        }
    }
}

/// `mdm generate`: seeded test data and its ground truth.
#[derive(Debug, Clone, clap::Args)]
pub struct GenerateArgs {
    /// people or products.
    #[arg(value_enum)]
    kind: Kind,
    /// How many records (1 to 100,000,000).
    #[arg(long, value_name = "N", value_parser = records)]
    records: usize,
    /// The seed: the same arguments give the same bytes.
    #[arg(long, value_name = "S", default_value_t = 42)]
    seed: u64,
    /// The share of entities that get duplicates (0 to 1).
    #[arg(long, value_name = "R", default_value_t = 0.3, value_parser = share)]
    dup_rate: f64,
    /// How people records look and are corrupted (people only).
    #[arg(long, value_enum, default_value_t = Profile::Standard)]
    profile: Profile,
    /// The directory to write `{kind}.csv` and `{kind}.truth.csv` into.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

fn records(v: &str) -> Result<usize, String> {
    let n: usize = v.trim().parse().map_err(|_| "expected a whole number".to_owned())?;
    if !(1..=MAX_RECORDS).contains(&n) {
        return Err(format!("expected 1 to {MAX_RECORDS}"));
    }
    Ok(n)
}

fn share(v: &str) -> Result<f64, String> {
    v.trim()
        .parse::<f64>()
        .ok()
        .filter(|r| (0.0..=1.0).contains(r))
        .ok_or_else(|| "expected a number from 0 to 1".into())
}

/// How people records look and are corrupted: the hub's own shape (`standard`), or FEBRL's
/// columns and corruption model (`febrl`, see the `febrl` module).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Profile {
    Standard,
    Febrl,
}

pub fn run(opts: GenerateArgs) -> Result<(), String> {
    if opts.kind == Kind::Products && opts.profile != Profile::Standard {
        return Err("--profile applies to people only".into());
    }
    let started = Instant::now();
    std::fs::create_dir_all(&opts.out)
        .map_err(|e| format!("{}: cannot create the directory: {e}", opts.out.display()))?;
    let mut rng = Rng::new(opts.seed);
    let plan = plan(&mut rng, opts.records, opts.dup_rate);
    let mut sink = Sink::with_capacity(opts.records);
    let progress = crate::progress::Progress::start("generate", "records", Some(opts.records as u64));
    match opts.kind {
        Kind::People if opts.profile == Profile::Febrl => {
            let world = PeopleWorld::new();
            let mut gen = febrl::FebrlGen::new(&world, opts.records);
            for (e, &copies) in plan.iter().enumerate() {
                gen.entity(&mut rng, e as u32, copies as usize, &mut sink);
                progress.add(u64::from(copies));
            }
        }
        Kind::People => {
            let world = PeopleWorld::new();
            let mut gen = PeopleGen::new(&world, opts.records);
            for (e, &copies) in plan.iter().enumerate() {
                gen.entity(&mut rng, e as u32, copies as usize, &mut sink);
                progress.add(u64::from(copies));
            }
        }
        Kind::Products => {
            let world = ProductWorld::new();
            let mut gen = ProductGen::new(&world, plan.len());
            for (e, &copies) in plan.iter().enumerate() {
                gen.entity(&mut rng, e as u32, copies as usize, &mut sink);
                progress.add(u64::from(copies));
            }
        }
    }
    progress.finish();
    // Output position → generated record: a seeded Fisher-Yates shuffle.
    let mut order: Vec<u32> = (0..sink.len() as u32).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, rng.below(i + 1));
    }
    let name = opts.kind.name();
    let (data, truth) = (opts.out.join(format!("{name}.csv")), opts.out.join(format!("{name}.truth.csv")));
    let prefix = if opts.kind == Kind::People { "p" } else { "r" };
    let id_width = 7.max(digits(opts.records.saturating_sub(1)));
    let entity_width = 7.max(digits(plan.len().saturating_sub(1)));
    let header: &[&str] = match opts.kind {
        Kind::People if opts.profile == Profile::Febrl => &febrl::HEADER,
        Kind::People => &PEOPLE_HEADER,
        Kind::Products => &PRODUCTS_HEADER,
    };
    {
        let mut w = writer(&data)?;
        let fail = |e: csv::Error| format!("{}: cannot write: {}", data.display(), csv_reason(&e));
        w.write_record(header).map_err(fail)?;
        for (pos, &i) in order.iter().enumerate() {
            w.write_field(format!("{prefix}{pos:0id_width$}")).map_err(fail)?;
            for field in sink.get(i as usize).split(SEP) {
                w.write_field(field).map_err(fail)?;
            }
            w.write_record(std::iter::empty::<&[u8]>()).map_err(fail)?;
        }
        w.flush().map_err(|e| format!("{}: cannot write: {e}", data.display()))?;
    }
    {
        let mut w = writer(&truth)?;
        let fail = |e: csv::Error| format!("{}: cannot write: {}", truth.display(), csv_reason(&e));
        w.write_record(["record_id", "entity_id"]).map_err(fail)?;
        for (pos, &i) in order.iter().enumerate() {
            let entity = sink.entity[i as usize];
            w.write_record([format!("{prefix}{pos:0id_width$}"), format!("e{entity:0entity_width$}")]).map_err(fail)?;
        }
        w.flush().map_err(|e| format!("{}: cannot write: {e}", truth.display()))?;
    }
    eprintln!(
        "generate {name}: records {}  entities {}  duplicates {}  seed {}  dup-rate {}  wrote {} {}  elapsed {:.2} s",
        sink.len(),
        plan.len(),
        sink.len() - plan.len(),
        opts.seed,
        opts.dup_rate,
        data.display(),
        truth.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn writer(path: &Path) -> Result<csv::Writer<BufWriter<File>>, String> {
    let file = File::create(path).map_err(|e| format!("{}: cannot write: {e}", path.display()))?;
    Ok(csv::Writer::from_writer(BufWriter::with_capacity(1 << 20, file)))
}

fn csv_reason(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::Io(io) => io.to_string(),
        other => format!("{other:?}"),
    }
}

fn digits(mut n: usize) -> usize {
    let mut d = 1;
    while n >= 10 {
        n /= 10;
        d += 1;
    }
    d
}

/// Records per entity, in entity order: 1, or 2 to 4 with probability `dup_rate`; exactly
/// `records` in all (the last entity may lose duplicates).
fn plan(rng: &mut Rng, records: usize, dup_rate: f64) -> Vec<u8> {
    let mut sizes = Vec::with_capacity(records);
    let mut left = records;
    while left > 0 {
        let dups = if rng.chance(dup_rate) { 1 + rng.below(3) } else { 0 };
        let n = (1 + dups).min(left);
        sizes.push(n as u8);
        left -= n;
    }
    sizes
}

// ---------------------------------------------------------------------------------------------
// Randomness.

/// xoshiro256** seeded through splitmix64.
struct Rng {
    s: [u64; 4],
}

impl Rng {
    fn new(seed: u64) -> Self {
        let mut sm = seed;
        let mut next = || {
            sm = sm.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = sm;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        Rng { s: [next(), next(), next(), next()] }
    }

    fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in `0..n` (n > 0), by multiply-shift.
    fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u32, hi: u32) -> u32 {
        lo + self.below((hi - lo) as usize + 1) as u32
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn digit_string(&mut self, n: usize) -> String {
        (0..n).map(|_| char::from(b'0' + self.below(10) as u8)).collect()
    }
}

/// Zipf-Mandelbrot ranks: P(rank r) ∝ 1 / (r + q). Sampled by inverse CDF.
struct Zipf {
    cumulative: Vec<f64>,
}

impl Zipf {
    fn new(n: usize, q: f64) -> Self {
        let mut total = 0.0;
        let cumulative = (0..n)
            .map(|r| {
                total += 1.0 / (r as f64 + q);
                total
            })
            .collect();
        Zipf { cumulative }
    }

    fn sample(&self, rng: &mut Rng) -> usize {
        let total = self.cumulative.last().copied().unwrap_or(0.0);
        let u = rng.unit() * total;
        self.cumulative.partition_point(|&c| c <= u).min(self.cumulative.len().saturating_sub(1))
    }
}

/// A weighted choice among a few `(item, weight)` pairs.
fn weighted<T: Copy>(rng: &mut Rng, items: &[(T, u32)]) -> T {
    weighted_by(rng, items, |(_, w)| *w).0
}

/// A weighted choice among a few items (not empty; weights not all zero).
fn weighted_by<'a, T>(rng: &mut Rng, items: &'a [T], weight: impl Fn(&T) -> u32) -> &'a T {
    let total: u32 = items.iter().map(&weight).sum();
    let mut x = rng.below(total as usize) as u32;
    for item in items {
        let w = weight(item);
        if x < w {
            return item;
        }
        x -= w;
    }
    &items[items.len() - 1]
}

/// FNV-1a over a tag and parts: the identity of a claim (a name triple, an email, a GTIN).
fn claim_key(tag: u8, parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |b: u8| {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    };
    eat(tag);
    for p in parts {
        for b in p.bytes() {
            eat(b);
        }
        eat(0xff);
    }
    h
}

/// Which entity holds each claim key.
struct Claims {
    owner: HashMap<u64, u32, BuildHasherDefault<KeyHasher>>,
}

/// Claim keys are hashes already: the map need not hash them again.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ *b as u64).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

impl Claims {
    fn with_capacity(n: usize) -> Self {
        Claims { owner: HashMap::with_capacity_and_hasher(n, BuildHasherDefault::default()) }
    }

    fn free_for(&self, key: u64, entity: u32) -> bool {
        self.owner.get(&key).is_none_or(|&o| o == entity)
    }

    /// Claims all keys for `entity` if none belongs to another entity.
    fn claim_all(&mut self, keys: &[u64], entity: u32) -> bool {
        if !keys.iter().all(|&k| self.free_for(k, entity)) {
            return false;
        }
        for &k in keys {
            self.owner.insert(k, entity);
        }
        true
    }
}

// ---------------------------------------------------------------------------------------------
// Records in generation order, before the shuffle: fields joined by a unit separator in one buffer.

const SEP: char = '\u{1f}';

struct Sink {
    buf: String,
    ends: Vec<usize>,
    entity: Vec<u32>,
}

impl Sink {
    fn with_capacity(records: usize) -> Self {
        Sink { buf: String::with_capacity(records * 120), ends: Vec::with_capacity(records), entity: Vec::new() }
    }

    fn push<S: AsRef<str>>(&mut self, entity: u32, fields: &[S]) {
        for (i, f) in fields.iter().enumerate() {
            if i > 0 {
                self.buf.push(SEP);
            }
            let f = f.as_ref();
            if f.contains(SEP) {
                self.buf.extend(f.chars().filter(|&c| c != SEP));
            } else {
                self.buf.push_str(f);
            }
        }
        self.ends.push(self.buf.len());
        self.entity.push(entity);
    }

    fn len(&self) -> usize {
        self.ends.len()
    }

    fn get(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.buf[start..self.ends[i]]
    }
}

// ---------------------------------------------------------------------------------------------
// Text helpers.

fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut start = true;
    for c in s.chars() {
        if start {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        start = c == ' ' || c == '-';
    }
    out
}

/// Lower-case letters and digits only: the identity of a name for the claim keys.
fn fold(s: &str) -> String {
    s.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect()
}

const LETTERS: &[u8] = b"abcdefghijklmnopqrstuvwxyz";

/// One keyboard slip: a letter inserted, deleted, substituted, or two letters transposed. The
/// first letter is kept; `None` for words too short to change.
fn typo(rng: &mut Rng, s: &str) -> Option<String> {
    let mut c: Vec<char> = s.chars().collect();
    if c.len() < 3 {
        return None;
    }
    let letter = |rng: &mut Rng| char::from(*rng.pick(LETTERS));
    match rng.below(4) {
        0 => {
            let at = 1 + rng.below(c.len());
            c.insert(at, letter(rng));
        }
        1 => {
            c.remove(1 + rng.below(c.len() - 1));
        }
        2 => {
            let at = 1 + rng.below(c.len() - 1);
            let old = c[at].to_ascii_lowercase();
            let mut new = letter(rng);
            while new == old {
                new = letter(rng);
            }
            c[at] = if c[at].is_uppercase() { new.to_ascii_uppercase() } else { new };
        }
        _ => {
            let at = 1 + rng.below(c.len() - 2);
            if c[at] == c[at + 1] {
                c.remove(at);
            } else {
                c.swap(at, at + 1);
            }
        }
    }
    let out: String = c.into_iter().collect();
    (out != s).then_some(out)
}

/// Upper case, lower case or extra spaces: a different rendering of the same text.
fn recase(rng: &mut Rng, s: &str) -> Option<String> {
    for _ in 0..4 {
        let out = match rng.below(4) {
            0 => s.to_uppercase(),
            1 => s.to_lowercase(),
            2 if s.contains(' ') => s.replacen(' ', "  ", 1),
            _ => format!(" {s}  "),
        };
        if out != s {
            return Some(out);
        }
    }
    None
}

// ---------------------------------------------------------------------------------------------
// Dates.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Date {
    y: u32,
    m: u32,
    d: u32,
}

fn days_in_month(y: u32, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => 0,
    }
}

impl Date {
    fn valid(self) -> bool {
        (1900..=2010).contains(&self.y)
            && (1..=12).contains(&self.m)
            && self.d >= 1
            && self.d <= days_in_month(self.y, self.m)
    }

    fn iso(self) -> String {
        format!("{:04}-{:02}-{:02}", self.y, self.m, self.d)
    }

    fn random(rng: &mut Rng, from: u32, to: u32) -> Date {
        let y = rng.range(from, to);
        let m = rng.range(1, 12);
        Date { y, m, d: rng.range(1, days_in_month(y, m)) }
    }

    /// A data-entry slip: day and month swapped (when the day could be a month), or one digit of
    /// the day, the month or the year's last two digits changed; always a valid, different date.
    fn slip(self, rng: &mut Rng) -> Date {
        if self.d <= 12 && self.d != self.m && rng.chance(0.5) {
            return Date { y: self.y, m: self.d, d: self.m };
        }
        for _ in 0..32 {
            let mut digits: Vec<u8> = format!("{:04}{:02}{:02}", self.y, self.m, self.d).into_bytes();
            let at = *rng.pick(&[2usize, 3, 4, 5, 6, 7]);
            digits[at] = b'0' + rng.below(10) as u8;
            let n = |a: usize, b: usize| digits[a..b].iter().fold(0u32, |acc, d| acc * 10 + (d - b'0') as u32);
            let new = Date { y: n(0, 4), m: n(4, 6), d: n(6, 8) };
            if new != self && new.valid() {
                return new;
            }
        }
        let d = if self.d > 1 { self.d - 1 } else { 2 };
        Date { d, ..self }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DateFormat {
    Iso,
    DmySlash,
    DmySlashShort,
    DmyDash,
    DmyDot,
    DayMonYear,
    DayMonthYear,
    YmdSlash,
    Compact,
}

const OTHER_DATE_FORMATS: [DateFormat; 8] = [
    DateFormat::DmySlash,
    DateFormat::DmySlashShort,
    DateFormat::DmyDash,
    DateFormat::DmyDot,
    DateFormat::DayMonYear,
    DateFormat::DayMonthYear,
    DateFormat::YmdSlash,
    DateFormat::Compact,
];

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

fn render_date(d: Date, f: DateFormat) -> String {
    let Date { y, m, d } = d;
    let month = MONTHS[(m as usize).clamp(1, 12) - 1];
    match f {
        DateFormat::Iso => format!("{y:04}-{m:02}-{d:02}"),
        DateFormat::DmySlash => format!("{d:02}/{m:02}/{y:04}"),
        DateFormat::DmySlashShort => format!("{d}/{m}/{y:04}"),
        DateFormat::DmyDash => format!("{d:02}-{m:02}-{y:04}"),
        DateFormat::DmyDot => format!("{d:02}.{m:02}.{y:04}"),
        DateFormat::DayMonYear => format!("{d} {} {y:04}", &month[..3]),
        DateFormat::DayMonthYear => format!("{d} {month} {y:04}"),
        DateFormat::YmdSlash => format!("{y:04}/{m:02}/{d:02}"),
        DateFormat::Compact => format!("{y:04}{m:02}{d:02}"),
    }
}

// ---------------------------------------------------------------------------------------------
// People.

const PEOPLE_HEADER: [&str; 12] = [
    "rec_id",
    "given_name",
    "family_name",
    "date_of_birth",
    "email",
    "phone",
    "street_number",
    "address_line1",
    "address_line2",
    "locality",
    "postcode",
    "region",
];

#[rustfmt::skip]
const GIVEN_NAMES: &[&str] = &[
    // Male.
    "james", "john", "robert", "michael", "william", "david", "richard", "joseph", "thomas", "charles",
    "christopher", "daniel", "matthew", "anthony", "donald", "mark", "paul", "steven", "andrew", "kenneth",
    "joshua", "kevin", "brian", "george", "edward", "ronald", "timothy", "jason", "jeffrey", "ryan",
    "jacob", "gary", "nicholas", "eric", "jonathan", "stephen", "lawrence", "justin", "scott", "brandon",
    "benjamin", "samuel", "gregory", "frank", "alexander", "raymond", "patrick", "jack", "dennis", "tyler",
    "aaron", "adam", "henry", "nathan", "douglas", "zachary", "peter", "kyle", "walter", "ethan",
    "jeremy", "harold", "keith", "christian", "roger", "noah", "gerald", "carl", "terry", "sean",
    "austin", "arthur", "jesse", "dylan", "bryan", "jordan", "bruce", "albert", "gabriel", "logan",
    "alan", "wayne", "roy", "ralph", "randy", "eugene", "vincent", "russell", "elijah", "louis",
    "philip", "liam", "oliver", "lucas", "mason", "hudson", "leo", "archie", "harrison", "isaac",
    "hunter", "cooper", "lachlan", "angus", "hamish", "callum", "declan", "fraser", "connor", "riley",
    "mitchell", "bradley", "craig", "darren", "glenn", "graham", "grant", "ian", "malcolm", "neil",
    "nigel", "rodney", "ross", "shane", "stuart", "trevor", "warren", "wesley", "barry", "colin",
    "derek", "dean", "brett", "troy", "luke", "max", "theodore", "oscar", "hugo", "felix",
    "sebastian", "xavier", "marcus", "dominic", "joel", "toby", "spencer", "tristan", "vaughan", "wade",
    // Female.
    "mary", "patricia", "jennifer", "linda", "elizabeth", "barbara", "susan", "jessica", "sarah", "karen",
    "nancy", "lisa", "margaret", "sandra", "ashley", "kimberly", "emily", "donna", "michelle", "dorothy",
    "carol", "amanda", "melissa", "deborah", "stephanie", "rebecca", "sharon", "laura", "cynthia", "kathleen",
    "amy", "shirley", "angela", "helen", "anna", "brenda", "pamela", "nicole", "emma", "samantha",
    "katherine", "christine", "rachel", "catherine", "carolyn", "janet", "ruth", "maria", "heather", "diane",
    "virginia", "julie", "joyce", "victoria", "olivia", "kelly", "christina", "lauren", "joan", "evelyn",
    "judith", "megan", "cheryl", "andrea", "hannah", "martha", "jacqueline", "frances", "gloria", "ann",
    "teresa", "kathryn", "janice", "jean", "alice", "madison", "doris", "abigail", "julia", "grace",
    "denise", "amber", "marilyn", "beverly", "danielle", "theresa", "sophia", "marie", "diana", "natalie",
    "isabella", "charlotte", "rose", "alexis", "kayla", "chloe", "mia", "ava", "amelia", "ruby",
    "zoe", "matilda", "harper", "ella", "isla", "georgia", "lily", "sienna", "willow", "jasmine",
    "leah", "holly", "kylie", "tracey", "leanne", "kerry", "belinda", "narelle", "tanya", "vanessa",
    "natasha", "monique", "simone", "renee", "melanie", "fiona", "gillian", "joanne", "wendy", "yvonne",
    "lorraine", "maureen", "beryl", "gwen", "june", "valerie", "vivienne", "colleen", "robyn", "dianne",
    "glenda", "heidi", "alison", "bridget", "claire", "eleanor", "gabrielle", "isobel", "jane", "lucy",
    "naomi", "penelope", "phoebe", "rosemary", "stella", "tessa", "alexandra", "nicola", "priya", "mei",
];

/// Formal names and the short forms people go by (each pair is known to the matcher's table).
const NICKNAMES: &[(&str, &[&str])] = &[
    ("robert", &["rob", "bob", "bobby", "robbie"]),
    ("william", &["will", "bill", "billy"]),
    ("elizabeth", &["liz", "beth", "betty", "lizzie"]),
    ("margaret", &["maggie", "peggy", "meg"]),
    ("richard", &["rick", "dick", "rich"]),
    ("katherine", &["kate", "kathy", "katie"]),
    ("catherine", &["cathy", "kate", "cath"]),
    ("james", &["jim", "jimmy", "jamie"]),
    ("john", &["jack", "johnny"]),
    ("michael", &["mike", "mick"]),
    ("thomas", &["tom", "tommy"]),
    ("christopher", &["chris"]),
    ("daniel", &["dan", "danny"]),
    ("david", &["dave"]),
    ("edward", &["ed", "eddie", "ted"]),
    ("anthony", &["tony"]),
    ("joseph", &["joe", "joey"]),
    ("andrew", &["andy", "drew"]),
    ("matthew", &["matt"]),
    ("nicholas", &["nick"]),
    ("patricia", &["pat", "trish"]),
    ("jennifer", &["jen", "jenny"]),
    ("rebecca", &["becky", "bec"]),
    ("samantha", &["sam"]),
    ("samuel", &["sam", "sammy"]),
    ("stephen", &["steve"]),
    ("steven", &["steve"]),
    ("susan", &["sue", "susie"]),
    ("timothy", &["tim"]),
    ("victoria", &["vicky", "tori"]),
    ("alexander", &["alex"]),
    ("alexandra", &["alex", "sandra"]),
    ("benjamin", &["ben"]),
    ("charles", &["charlie", "chuck"]),
    ("deborah", &["deb", "debbie"]),
    ("donald", &["don"]),
    ("dorothy", &["dot", "dolly"]),
    ("gregory", &["greg"]),
    ("harold", &["harry"]),
    ("henry", &["harry", "hank"]),
    ("jacob", &["jake"]),
    ("jessica", &["jess"]),
    ("jonathan", &["jon"]),
    ("kenneth", &["ken"]),
    ("lawrence", &["larry"]),
    ("peter", &["pete"]),
    ("philip", &["phil"]),
    ("ronald", &["ron"]),
    ("walter", &["walt"]),
    ("zachary", &["zach"]),
    ("abigail", &["abby"]),
    ("barbara", &["barb"]),
    ("christine", &["chris", "tina"]),
    ("christina", &["tina"]),
    ("eleanor", &["ellie", "nell"]),
    ("emily", &["em", "millie"]),
    ("frances", &["fran"]),
    ("isabella", &["bella", "izzy"]),
    ("judith", &["judy"]),
    ("gabrielle", &["gabby"]),
    ("charlotte", &["lottie", "charlie"]),
    ("joshua", &["josh"]),
    ("albert", &["al", "bert"]),
    ("stephanie", &["steph"]),
    ("sarah", &["sally"]),
    ("theodore", &["theo", "ted"]),
    ("nicola", &["nikki"]),
];

fn nicknames_of(given: &str) -> &'static [&'static str] {
    NICKNAMES.iter().find(|(formal, _)| *formal == given).map_or(&[], |(_, n)| n)
}

/// Whether two given names are forms of one name (by the table above).
fn same_name(a: &str, b: &str) -> bool {
    a == b
        || NICKNAMES
            .iter()
            .any(|(formal, short)| (a == *formal || short.contains(&a)) && (b == *formal || short.contains(&b)))
}

#[rustfmt::skip]
const FAMILY_NAMES: &[&str] = &[
    "smith", "jones", "williams", "brown", "wilson", "taylor", "johnson", "white", "martin", "anderson",
    "thompson", "nguyen", "thomas", "walker", "harris", "lee", "ryan", "robinson", "kelly", "king",
    "davis", "wright", "evans", "roberts", "green", "hall", "wood", "jackson", "clarke", "patel",
    "khan", "lewis", "james", "phillips", "mitchell", "young", "campbell", "turner", "edwards", "scott",
    "clark", "baker", "hill", "morris", "cooper", "ward", "moore", "murphy", "hughes", "allen",
    "parker", "bell", "graham", "stewart", "kennedy", "murray", "collins", "morgan", "cook", "bailey",
    "richardson", "cox", "howard", "chapman", "bennett", "gray", "price", "wilkinson", "russell", "marshall",
    "hunt", "hamilton", "fraser", "reid", "ross", "henderson", "watson", "simpson", "ellis", "o'brien",
    "o'connor", "sullivan", "mcdonald", "macdonald", "mackenzie", "mclean", "mcgrath", "walsh", "byrne", "doyle",
    "burke", "quinn", "lynch", "gallagher", "brennan", "fitzgerald", "dunn", "mason", "palmer", "holmes",
    "mills", "barnes", "knight", "lloyd", "butler", "russo", "rossi", "romano", "esposito", "ricci",
    "marino", "greco", "bruno", "gallo", "conti", "costa", "ferrari", "papadopoulos", "nikolaidis", "georgiou",
    "tran", "le", "pham", "huynh", "vo", "dang", "bui", "do", "ho", "ngo",
    "wang", "li", "zhang", "liu", "chen", "yang", "huang", "zhao", "wu", "zhou",
    "xu", "sun", "ma", "zhu", "hu", "guo", "he", "lin", "luo", "zheng",
    "liang", "song", "tang", "han", "feng", "deng", "cao", "peng", "zeng", "xiao",
    "singh", "kaur", "sharma", "kumar", "gupta", "shah", "mehta", "joshi", "reddy", "rao",
    "kim", "park", "choi", "jung", "kang", "cho", "yoon", "jang", "lim", "shin",
    "garcia", "rodriguez", "martinez", "hernandez", "lopez", "gonzalez", "perez", "sanchez", "ramirez", "torres",
    "flores", "rivera", "gomez", "diaz", "reyes", "cruz", "morales", "ortiz", "gutierrez", "chavez",
    "silva", "santos", "oliveira", "pereira", "ferreira", "alves", "ribeiro", "carvalho", "almeida", "lopes",
    "muller", "schmidt", "schneider", "fischer", "weber", "meyer", "wagner", "becker", "schulz", "hoffmann",
    "kowalski", "nowak", "wisniewski", "wojcik", "kowalczyk", "kaminski", "lewandowski", "zielinski", "szymanski", "wozniak",
    "jensen", "nielsen", "hansen", "pedersen", "andersen", "larsen", "sorensen", "rasmussen", "petersen", "madsen",
    "johansson", "karlsson", "nilsson", "eriksson", "larsson", "olsson", "persson", "svensson", "gustafsson", "pettersson",
    "dubois", "durand", "lefebvre", "moreau", "laurent", "simon", "michel", "leroy", "roux", "fournier",
    "de jong", "de vries", "van dijk", "bakker", "janssen", "visser", "smit", "meijer", "de boer", "mulder",
    "ivanov", "petrov", "popov", "sokolov", "novak", "horvat", "kovac", "babic", "jovanovic", "petrovic",
    "okafor", "okeke", "adeyemi", "mensah", "owusu", "mwangi", "otieno", "kamau", "abebe", "haile",
    "hassan", "ali", "ahmed", "ibrahim", "mohamed", "yilmaz", "kaya", "demir", "sahin", "celik",
    "tanaka", "suzuki", "takahashi", "watanabe", "ito", "yamamoto", "nakamura", "kobayashi", "sato", "kato",
    "santos", "reyes", "bautista", "ocampo", "garcia", "mendoza", "villanueva", "castillo", "aquino", "ramos",
    "armstrong", "atkinson", "barker", "barrett", "bates", "black", "booth", "bradley", "burton", "carter",
    "chambers", "dawson", "dixon", "duncan", "fisher", "fleming", "ford", "foster", "gibson", "gordon",
    "grant", "hart", "harvey", "hayes", "hodgson", "holland", "hudson", "hunter", "jenkins", "johnston",
    "kerr", "lane", "lawrence", "lawson", "marsh", "matthews", "miller", "newman", "owen", "pearce",
    "pearson", "porter", "powell", "reynolds", "rice", "richards", "riley", "saunders", "shaw", "spencer",
    "stone", "sutton", "tucker", "wallace", "warren", "watts", "webb", "wells", "west", "wheeler",
];

/// Syllables for synthesised family names, streets, towns and brands.
#[rustfmt::skip]
const SYLLABLES: &[&str] = &[
    "bar", "ken", "dal", "mor", "ri", "ton", "sel", "wick", "ham", "ley", "ford", "ett", "ins", "son", "ber", "gar", "lan", "mer", "nor", "pel", "quin", "ros", "stan", "tal", "ver", "wes", "yar", "zel", "ash", "brook", "cal", "dun", "el", "fen", "gil", "hal", "ing", "jor", "kin", "lock", "mac", "nel", "or", "pen", "rad", "sher", "thorn", "ul", "vin", "war", "by", "cot", "den", "field", "gate", "holt", "lowe", "mont", "ney", "ridge",
];

const TOWN_SUFFIXES: &[(&str, u32)] = &[
    ("", 40),
    ("ton", 6),
    ("ville", 5),
    (" creek", 5),
    (" heights", 4),
    (" park", 4),
    (" valley", 3),
    (" beach", 3),
    (" hill", 3),
    (" springs", 2),
    (" bay", 2),
    (" point", 2),
    (" north", 2),
    (" south", 2),
    (" east", 1),
    (" west", 1),
];

/// Street types, their abbreviations (as the matcher's street normaliser knows them) and weights.
const STREET_TYPES: &[(&str, &str, u32)] = &[
    ("street", "st", 30),
    ("road", "rd", 20),
    ("avenue", "ave", 12),
    ("crescent", "cres", 6),
    ("drive", "dr", 8),
    ("place", "pl", 6),
    ("close", "cl", 3),
    ("court", "ct", 5),
    ("lane", "ln", 3),
    ("way", "wy", 3),
    ("parade", "pde", 2),
    ("terrace", "tce", 2),
    ("boulevard", "blvd", 1),
    ("circuit", "cct", 1),
];

/// Regions with population weights and their postcode ranges.
/// Inclusive postcode ranges.
type Postcodes = &'static [(u32, u32)];

const REGIONS: &[(&str, u32, Postcodes)] = &[
    ("NSW", 32, &[(2000, 2599), (2619, 2899)]),
    ("VIC", 26, &[(3000, 3999)]),
    ("QLD", 20, &[(4000, 4999)]),
    ("WA", 10, &[(6000, 6797)]),
    ("SA", 7, &[(5000, 5799)]),
    ("TAS", 2, &[(7000, 7799)]),
    ("ACT", 2, &[(2600, 2618), (2900, 2920)]),
    ("NT", 1, &[(800, 899)]),
];

const EMAIL_DOMAINS: &[&str] = &[
    "gmail.com",
    "outlook.com",
    "hotmail.com",
    "yahoo.com.au",
    "bigpond.com",
    "icloud.com",
    "optusnet.com.au",
    "live.com.au",
    "iinet.net.au",
    "proton.me",
];

const SYNTHETIC_FAMILY_NAMES: usize = 60_000;
const LOCALITIES: usize = 2_000;

struct Locality {
    name: String,
    postcode: String,
    region: &'static str,
}

/// The fixed vocabularies of the people world.
struct PeopleWorld {
    given: Vec<String>,
    given_zipf: Zipf,
    family: Vec<String>,
    family_common: Zipf,
    family_rare: Zipf,
    localities: Vec<Locality>,
    locality_zipf: Zipf,
}

fn syllable_word(rng: &mut Rng, min: usize, max: usize) -> String {
    let n = min + rng.below(max - min + 1);
    (0..n).map(|_| *rng.pick(SYLLABLES)).collect()
}

impl PeopleWorld {
    fn new() -> Self {
        let mut rng = Rng::new(0x00C0_FFEE_5EED_0001);
        let mut seen = HashSet::new();
        let given: Vec<String> = GIVEN_NAMES.iter().filter(|n| seen.insert(**n)).map(|n| title(n)).collect();
        let mut seen = HashSet::new();
        let mut family: Vec<String> =
            FAMILY_NAMES.iter().filter(|n| seen.insert((*n).to_string())).map(|n| title(n)).collect();
        let common = family.len();
        while family.len() < common + SYNTHETIC_FAMILY_NAMES {
            let w = syllable_word(&mut rng, 2, 3);
            if seen.insert(w.clone()) {
                family.push(title(&w));
            }
        }
        let mut seen = HashSet::new();
        let mut localities = Vec::with_capacity(LOCALITIES);
        while localities.len() < LOCALITIES {
            let name = format!("{}{}", syllable_word(&mut rng, 2, 2), weighted(&mut rng, TOWN_SUFFIXES));
            if !seen.insert(name.clone()) {
                continue;
            }
            let &(region, _, ranges) = weighted_by(&mut rng, REGIONS, |r| r.1);
            let (lo, hi) = *rng.pick(ranges);
            localities.push(Locality { name: title(&name), postcode: format!("{:04}", rng.range(lo, hi)), region });
        }
        PeopleWorld {
            given_zipf: Zipf::new(given.len(), 12.0),
            given,
            family_common: Zipf::new(common, 20.0),
            family_rare: Zipf::new(SYNTHETIC_FAMILY_NAMES, 200.0),
            family,
            locality_zipf: Zipf::new(LOCALITIES, 30.0),
            localities,
        }
    }

    fn given(&self, rng: &mut Rng) -> String {
        self.given[self.given_zipf.sample(rng)].clone()
    }

    /// Half from the common names (Zipf: Smith about 0.8 %), half from the long synthesised tail.
    fn family(&self, rng: &mut Rng) -> String {
        let common = self.family.len() - SYNTHETIC_FAMILY_NAMES;
        let i = if rng.chance(0.5) { self.family_common.sample(rng) } else { common + self.family_rare.sample(rng) };
        self.family[i].clone()
    }

    fn address(&self, rng: &mut Rng) -> Address {
        let &(street_type, _, _) = weighted_by(rng, STREET_TYPES, |t| t.2);
        let line2 = if rng.chance(0.3) {
            match rng.below(5) {
                0 | 1 => format!("Unit {}", rng.range(1, 40)),
                2 => format!("Apartment {}", rng.range(1, 250)),
                3 => format!("Level {}", rng.range(1, 20)),
                _ => format!("{} House", title(&syllable_word(rng, 2, 2))),
            }
        } else {
            String::new()
        };
        let locality = &self.localities[self.locality_zipf.sample(rng)];
        Address {
            number: rng.range(1, 300).to_string(),
            line1: title(&format!("{} {street_type}", syllable_word(rng, 1, 2))),
            line2,
            locality: locality.name.clone(),
            postcode: locality.postcode.clone(),
            region: locality.region.to_owned(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Address {
    number: String,
    line1: String,
    line2: String,
    locality: String,
    postcode: String,
    region: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Person {
    given: String,
    family: String,
    dob: Option<Date>,
    dob_format: DateFormat,
    email: String,
    phone: String,
    address: Address,
}

impl Person {
    fn write(&self, e: u32, sink: &mut Sink) {
        let a = &self.address;
        let dob = self.dob.map(|d| render_date(d, self.dob_format)).unwrap_or_default();
        sink.push(
            e,
            &[
                &self.given,
                &self.family,
                &dob,
                &self.email,
                &self.phone,
                &a.number,
                &a.line1,
                &a.line2,
                &a.locality,
                &a.postcode,
                &a.region,
            ],
        );
    }

    /// The claims of this record: the name pair (either order) with the birth date, when all are
    /// present; the email; the phone.
    fn keys(&self) -> Vec<u64> {
        let mut keys = Vec::with_capacity(3);
        let (g, f) = (fold(&self.given), fold(&self.family));
        if let Some(d) = self.dob.filter(|_| !g.is_empty() && !f.is_empty()) {
            let (a, b) = if g <= f { (g, f) } else { (f, g) };
            keys.push(claim_key(1, &[&a, &b, &d.iso()]));
        }
        if !self.email.trim().is_empty() {
            keys.push(claim_key(2, &[&self.email.trim().to_lowercase()]));
        }
        let phone: String = self.phone.chars().filter(char::is_ascii_digit).collect();
        if !phone.is_empty() {
            keys.push(claim_key(3, &[&phone]));
        }
        keys
    }
}

/// The ways a duplicate differs from its entity's clean record; applied in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum PersonSlip {
    Moved,
    Nickname,
    NameTypo,
    SwapNames,
    StreetAbbreviation,
    DateSlip,
    DateFormat,
    Email,
    CaseOrSpaces,
    Missing,
}

const PERSON_SLIPS: &[(PersonSlip, u32)] = &[
    (PersonSlip::NameTypo, 20),
    (PersonSlip::Missing, 14),
    (PersonSlip::Nickname, 10),
    (PersonSlip::StreetAbbreviation, 10),
    (PersonSlip::DateFormat, 10),
    (PersonSlip::CaseOrSpaces, 10),
    (PersonSlip::DateSlip, 8),
    (PersonSlip::Email, 8),
    (PersonSlip::Moved, 6),
    (PersonSlip::SwapNames, 5),
];

/// Picks 1-3 different slips and applies them in their order; false if none could apply.
fn apply_slips<T, S: Copy + Ord>(
    rng: &mut Rng,
    table: &[(S, u32)],
    record: &mut T,
    mut apply: impl FnMut(&mut Rng, &mut T, S) -> bool,
) -> bool {
    let want = 1 + rng.below(3);
    let mut chosen: Vec<S> = Vec::with_capacity(want);
    let mut tried = 0;
    while chosen.len() < want && tried < 24 {
        tried += 1;
        let s = weighted(rng, table);
        if !chosen.contains(&s) {
            chosen.push(s);
        }
    }
    chosen.sort();
    let mut applied = false;
    for s in chosen {
        applied |= apply(rng, record, s);
    }
    applied
}

struct PeopleGen<'w> {
    world: &'w PeopleWorld,
    claims: Claims,
    /// Recent entities' clean records: households and twins are drawn from them.
    recent: Vec<Person>,
}

const RECENT: usize = 64;

impl<'w> PeopleGen<'w> {
    fn new(world: &'w PeopleWorld, records: usize) -> Self {
        PeopleGen { world, claims: Claims::with_capacity(records * 2), recent: Vec::with_capacity(RECENT) }
    }

    fn entity(&mut self, rng: &mut Rng, e: u32, copies: usize, sink: &mut Sink) {
        let base = self.draw(rng, e);
        let mut first = base.clone();
        if rng.chance(0.03) {
            first.dob_format = *rng.pick(&OTHER_DATE_FORMATS);
        }
        first.write(e, sink);
        for _ in 1..copies {
            let dup = self.duplicate(rng, e, &base);
            dup.write(e, sink);
        }
        if self.recent.len() < RECENT {
            self.recent.push(base);
        } else {
            let at = e as usize % RECENT;
            self.recent[at] = base;
        }
    }

    /// A new person: mostly fresh; 5.5 % a household member of a recent person (same family
    /// name and address), 0.5 % their twin (same birth date too): hard negatives. Never one whose name pair and
    /// birth date, email or phone another entity has used.
    fn draw(&mut self, rng: &mut Rng, e: u32) -> Person {
        let w = self.world;
        let mut attempt = 0;
        let mut p = loop {
            attempt += 1;
            let r = rng.unit();
            let relative = (!self.recent.is_empty() && r < 0.06 && attempt < 8).then(|| rng.pick(&self.recent).clone());
            let mut p = Person {
                given: w.given(rng),
                family: String::new(),
                dob: None,
                dob_format: DateFormat::Iso,
                email: String::new(),
                phone: String::new(),
                address: w.address(rng),
            };
            let twin = relative.is_some() && r < 0.005;
            match &relative {
                Some(rel) => {
                    p.family = rel.family.clone();
                    p.address = rel.address.clone();
                    p.dob = Some(if twin {
                        rel.dob.unwrap_or_else(|| Date::random(rng, 1930, 2006))
                    } else {
                        Date::random(rng, 1930, 2006)
                    });
                    let mut tries = 0;
                    while same_name(&p.given.to_lowercase(), &rel.given.to_lowercase()) && tries < 16 {
                        p.given = w.given(rng);
                        tries += 1;
                    }
                    if tries == 16 {
                        continue;
                    }
                }
                None => {
                    p.family = w.family(rng);
                    p.dob = Some(Date::random(rng, 1930, 2006));
                }
            }
            // The name pair and birth date: another birth date (or, for a twin, another name).
            let mut ok = false;
            for _ in 0..32 {
                let sibling_name =
                    relative.as_ref().is_some_and(|r| same_name(&p.given.to_lowercase(), &r.given.to_lowercase()));
                if !sibling_name && p.keys().iter().all(|&k| self.claims.free_for(k, e)) {
                    ok = true;
                    break;
                }
                if twin {
                    p.given = w.given(rng);
                } else {
                    p.dob = Some(Date::random(rng, 1930, 2006));
                }
            }
            if ok {
                break p;
            }
        };
        if rng.chance(0.6) {
            let local = format!("{}.{}", fold(&p.given), fold(&p.family));
            for i in 0.. {
                let number = match i {
                    0 if rng.chance(0.5) => String::new(),
                    0..=3 => format!("{:02}", rng.range(1, 99)),
                    _ => rng.range(100, 99_999).to_string(),
                };
                let email = format!("{local}{number}@{}", rng.pick(EMAIL_DOMAINS));
                if self.claims.free_for(claim_key(2, &[&email]), e) {
                    p.email = email;
                    break;
                }
            }
        }
        if rng.chance(0.5) {
            loop {
                // An Australian mobile in international form (valid under any default region):
                // +61 4[0-3] and seven digits, a range libphonenumber knows as mobile.
                let phone = format!("+614{}{}", rng.below(4), rng.digit_string(7));
                if self.claims.free_for(claim_key(3, &[&phone[1..]]), e) {
                    p.phone = phone;
                    break;
                }
            }
        }
        let claimed = self.claims.claim_all(&p.keys(), e);
        debug_assert!(claimed, "every key was checked free");
        p
    }

    /// A corrupted copy of `base` whose claims belong to no other entity.
    fn duplicate(&mut self, rng: &mut Rng, e: u32, base: &Person) -> Person {
        let world = self.world;
        for _ in 0..24 {
            let mut d = base.clone();
            let applied = apply_slips(rng, PERSON_SLIPS, &mut d, |rng, d, s| slip_person(world, rng, d, base, s));
            if applied && d != *base && self.claims.claim_all(&d.keys(), e) {
                return d;
            }
        }
        // Rare: every try collided with another entity. No birth date claims nothing new.
        Person { dob: None, ..base.clone() }
    }
}

fn slip_person(w: &PeopleWorld, rng: &mut Rng, d: &mut Person, base: &Person, s: PersonSlip) -> bool {
    match s {
        PersonSlip::NameTypo => {
            let family_first = rng.chance(0.6) || d.given.chars().count() < 3;
            let field = if family_first { &mut d.family } else { &mut d.given };
            match typo(rng, field) {
                Some(t) => {
                    *field = t;
                    true
                }
                None => false,
            }
        }
        PersonSlip::SwapNames => {
            std::mem::swap(&mut d.given, &mut d.family);
            true
        }
        PersonSlip::Nickname => {
            let given = d.given.to_lowercase();
            if given.chars().count() < 2 {
                return false;
            }
            let nicks = nicknames_of(&given);
            d.given = if !nicks.is_empty() && rng.chance(0.7) {
                title(rng.pick::<&str>(nicks))
            } else {
                let initial: String = d.given.chars().take(1).flat_map(char::to_uppercase).collect();
                if rng.chance(0.3) {
                    format!("{initial}.")
                } else {
                    initial
                }
            };
            true
        }
        PersonSlip::StreetAbbreviation => {
            let line1 = d.address.line1.clone();
            let Some((street, kind)) = line1.rsplit_once(' ') else { return false };
            let kind = kind.to_lowercase();
            match STREET_TYPES.iter().find(|(long, _, _)| *long == kind) {
                Some((_, short, _)) => {
                    let dot = if rng.chance(0.2) { "." } else { "" };
                    d.address.line1 = format!("{street} {}{dot}", title(short));
                    true
                }
                None => false,
            }
        }
        PersonSlip::Moved => {
            let mut new = w.address(rng);
            for _ in 0..8 {
                if new.locality != base.address.locality {
                    break;
                }
                new = w.address(rng);
            }
            d.address = new;
            true
        }
        PersonSlip::DateSlip => match d.dob {
            Some(date) => {
                d.dob = Some(date.slip(rng));
                true
            }
            None => false,
        },
        PersonSlip::DateFormat => {
            if d.dob.is_none() {
                return false;
            }
            d.dob_format = *rng.pick(&OTHER_DATE_FORMATS);
            true
        }
        PersonSlip::Email => {
            let Some((local, domain)) = d.email.split_once('@') else { return false };
            if rng.chance(0.4) {
                d.email.clear();
            } else {
                let others: Vec<&&str> = EMAIL_DOMAINS.iter().filter(|x| **x != domain).collect();
                d.email = format!("{local}@{}", rng.pick(&others));
            }
            true
        }
        PersonSlip::CaseOrSpaces => {
            let a = &mut d.address;
            let mut fields: Vec<&mut String> = vec![&mut d.given, &mut d.family, &mut a.line1, &mut a.locality];
            if !a.line2.is_empty() {
                fields.push(&mut a.line2);
            }
            let phone = d.phone.len() == 12 && d.phone.starts_with("+61");
            if phone && rng.chance(0.2) {
                d.phone = format!("{} {} {} {}", &d.phone[..3], &d.phone[3..6], &d.phone[6..9], &d.phone[9..]);
                return true;
            }
            let at = rng.below(fields.len());
            match recase(rng, fields[at]) {
                Some(v) => {
                    *fields[at] = v;
                    true
                }
                None => false,
            }
        }
        PersonSlip::Missing => {
            let a = &mut d.address;
            let mut fields: Vec<&mut String> = [
                &mut d.given,
                &mut d.family,
                &mut d.email,
                &mut d.phone,
                &mut a.number,
                &mut a.line1,
                &mut a.line2,
                &mut a.locality,
                &mut a.postcode,
                &mut a.region,
            ]
            .into_iter()
            .filter(|f| !f.is_empty())
            .collect();
            // The birth date is one field among the others.
            let at = rng.below(fields.len() + usize::from(d.dob.is_some()));
            match fields.get_mut(at) {
                Some(f) => f.clear(),
                None => d.dob = None,
            }
            true
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Products.

const PRODUCTS_HEADER: [&str; 9] = ["rec_id", "sku", "gtin", "name", "brand", "category", "size", "price", "currency"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Size {
    Grams(u32),
    Millilitres(u32),
    Count(u32, &'static str),
}

/// `1500` → `1.5`, `500` → `0.5`, `2000` → `2`.
fn thousandths(n: u32) -> String {
    let (whole, frac) = (n / 1000, n % 1000);
    if frac == 0 {
        whole.to_string()
    } else {
        format!("{whole}.{}", format!("{frac:03}").trim_end_matches('0'))
    }
}

impl Size {
    fn canonical(self) -> String {
        match self {
            Size::Grams(g) if g >= 1000 => format!("{}kg", thousandths(g)),
            Size::Grams(g) => format!("{g}g"),
            Size::Millilitres(ml) if ml >= 1000 => format!("{}l", thousandths(ml)),
            Size::Millilitres(ml) => format!("{ml}ml"),
            Size::Count(n, unit) => format!("{n} {unit}"),
        }
    }

    /// The same size written another way: `500g`, `500 g`, `0.5kg`, `500 grams`, `500G`, ...
    fn variant(self, rng: &mut Rng) -> String {
        let canonical = self.canonical();
        for _ in 0..8 {
            let v = match self {
                Size::Grams(g) => match rng.below(6) {
                    0 => format!("{g}g"),
                    1 => format!("{g} g"),
                    2 => format!("{}kg", thousandths(g)),
                    3 => format!("{} kg", thousandths(g)),
                    4 => format!("{g} grams"),
                    _ => format!("{g}G"),
                },
                Size::Millilitres(ml) => match rng.below(6) {
                    0 => format!("{ml}ml"),
                    1 => format!("{ml} mL"),
                    2 => format!("{}l", thousandths(ml)),
                    3 => format!("{} L", thousandths(ml)),
                    4 => format!("{} litre", thousandths(ml)),
                    _ => format!("{ml}ML"),
                },
                Size::Count(n, unit) => match rng.below(4) {
                    0 => format!("{n}{unit}"),
                    1 => format!("{n} {}", title(unit)),
                    2 => format!("{n} pack"),
                    _ => format!("{n}pk"),
                },
            };
            if v != canonical {
                return v;
            }
        }
        canonical.to_uppercase()
    }
}

struct ProductType {
    category: &'static str,
    name: &'static str,
    sizes: &'static [Size],
    variants: &'static [&'static str],
    /// Price range in cents for the smallest size; larger sizes cost more.
    price: (u32, u32),
}

use Size::{Count, Grams, Millilitres};

#[rustfmt::skip]
const PRODUCT_TYPES: &[ProductType] = &[
    ProductType { category: "tea", name: "green tea", sizes: &[Count(25, "bags"), Count(50, "bags"), Count(100, "bags")], variants: &["", "jasmine", "lemon", "mint", "sencha", "matcha"], price: (250, 600) },
    ProductType { category: "tea", name: "black tea", sizes: &[Count(25, "bags"), Count(50, "bags"), Count(100, "bags")], variants: &["", "english breakfast", "earl grey", "decaf", "irish breakfast"], price: (250, 650) },
    ProductType { category: "tea", name: "herbal tea", sizes: &[Count(20, "bags"), Count(40, "bags")], variants: &["peppermint", "chamomile", "rooibos", "lemon ginger", "berry"], price: (300, 700) },
    ProductType { category: "coffee", name: "ground coffee", sizes: &[Grams(200), Grams(250), Grams(500), Grams(1000)], variants: &["", "espresso", "dark roast", "medium roast", "decaf", "italian"], price: (600, 1400) },
    ProductType { category: "coffee", name: "instant coffee", sizes: &[Grams(100), Grams(150), Grams(200), Grams(400)], variants: &["", "gold", "smooth", "rich", "decaf"], price: (500, 1200) },
    ProductType { category: "coffee", name: "coffee capsules", sizes: &[Count(10, "capsules"), Count(20, "capsules"), Count(50, "capsules")], variants: &["espresso", "lungo", "ristretto", "decaf", "vanilla"], price: (450, 900) },
    ProductType { category: "breakfast", name: "muesli", sizes: &[Grams(500), Grams(750), Grams(1000)], variants: &["", "fruit", "nut", "berry", "honey", "toasted"], price: (400, 900) },
    ProductType { category: "breakfast", name: "rolled oats", sizes: &[Grams(500), Grams(750), Grams(1000), Grams(1500)], variants: &["", "quick", "wholegrain"], price: (200, 500) },
    ProductType { category: "breakfast", name: "cornflakes", sizes: &[Grams(380), Grams(500), Grams(725)], variants: &["", "honey", "crunchy"], price: (300, 700) },
    ProductType { category: "snacks", name: "potato chips", sizes: &[Grams(45), Grams(90), Grams(175)], variants: &["", "salted", "salt and vinegar", "chicken", "sour cream", "barbecue"], price: (150, 500) },
    ProductType { category: "snacks", name: "corn chips", sizes: &[Grams(170), Grams(230), Grams(300)], variants: &["", "cheese", "lime", "mild salsa"], price: (250, 550) },
    ProductType { category: "snacks", name: "rice crackers", sizes: &[Grams(100), Grams(150), Grams(200)], variants: &["", "seaweed", "cheese", "sesame", "sweet chilli"], price: (200, 450) },
    ProductType { category: "confectionery", name: "chocolate block", sizes: &[Grams(100), Grams(180), Grams(200), Grams(350)], variants: &["milk", "dark", "hazelnut", "caramel", "mint", "white"], price: (300, 800) },
    ProductType { category: "biscuits", name: "biscuits", sizes: &[Grams(200), Grams(250), Grams(400)], variants: &["shortbread", "chocolate chip", "oatmeal", "ginger", "assorted"], price: (200, 600) },
    ProductType { category: "dairy", name: "milk", sizes: &[Millilitres(1000), Millilitres(2000), Millilitres(3000)], variants: &["full cream", "lite", "skim", "lactose free", "a2"], price: (150, 500) },
    ProductType { category: "dairy", name: "yoghurt", sizes: &[Grams(170), Grams(500), Grams(1000)], variants: &["natural", "greek", "vanilla", "strawberry", "mango", "passionfruit"], price: (150, 700) },
    ProductType { category: "dairy", name: "cheddar cheese", sizes: &[Grams(250), Grams(500), Grams(1000)], variants: &["tasty", "mild", "vintage", "sharp", "light"], price: (400, 1200) },
    ProductType { category: "dairy", name: "butter", sizes: &[Grams(250), Grams(500)], variants: &["salted", "unsalted", "spreadable", "cultured"], price: (350, 800) },
    ProductType { category: "pantry", name: "pasta", sizes: &[Grams(500), Grams(1000)], variants: &["spaghetti", "penne", "fusilli", "linguine", "macaroni", "farfalle"], price: (150, 450) },
    ProductType { category: "pantry", name: "pasta sauce", sizes: &[Grams(500), Grams(700)], variants: &["tomato basil", "bolognese", "napoletana", "arrabbiata", "roasted garlic"], price: (250, 600) },
    ProductType { category: "pantry", name: "olive oil", sizes: &[Millilitres(500), Millilitres(750), Millilitres(1000), Millilitres(2000)], variants: &["", "extra virgin", "light", "classic"], price: (600, 1500) },
    ProductType { category: "pantry", name: "rice", sizes: &[Grams(1000), Grams(2000), Grams(5000)], variants: &["", "jasmine", "basmati", "brown", "arborio", "sushi"], price: (250, 900) },
    ProductType { category: "pantry", name: "peanut butter", sizes: &[Grams(375), Grams(750)], variants: &["smooth", "crunchy", "natural"], price: (350, 800) },
    ProductType { category: "pantry", name: "honey", sizes: &[Grams(250), Grams(500), Grams(1000)], variants: &["", "manuka", "leatherwood", "creamed", "raw"], price: (500, 2500) },
    ProductType { category: "beverages", name: "orange juice", sizes: &[Millilitres(1000), Millilitres(2000)], variants: &["", "no pulp", "with pulp", "fresh squeezed"], price: (300, 700) },
    ProductType { category: "beverages", name: "sparkling water", sizes: &[Millilitres(500), Millilitres(1250)], variants: &["natural", "lemon", "lime", "berry"], price: (100, 300) },
    ProductType { category: "beverages", name: "cola", sizes: &[Millilitres(375), Millilitres(1250), Millilitres(2000)], variants: &["", "diet", "zero sugar", "vanilla", "cherry"], price: (150, 450) },
    ProductType { category: "household", name: "dishwashing liquid", sizes: &[Millilitres(500), Millilitres(900)], variants: &["", "lemon", "lime", "original", "sensitive"], price: (250, 600) },
    ProductType { category: "household", name: "laundry powder", sizes: &[Grams(1000), Grams(2000), Grams(4000)], variants: &["", "sensitive", "front loader", "top loader"], price: (700, 2500) },
    ProductType { category: "household", name: "toilet paper", sizes: &[Count(6, "rolls"), Count(12, "rolls"), Count(24, "rolls")], variants: &["", "3 ply", "4 ply", "recycled"], price: (400, 1500) },
    ProductType { category: "household", name: "paper towels", sizes: &[Count(2, "rolls"), Count(4, "rolls"), Count(6, "rolls")], variants: &["", "absorbent", "recycled"], price: (250, 800) },
    ProductType { category: "personal care", name: "shampoo", sizes: &[Millilitres(400), Millilitres(700), Millilitres(900)], variants: &["", "volume", "anti dandruff", "repair", "everyday", "curl"], price: (400, 1200) },
    ProductType { category: "personal care", name: "conditioner", sizes: &[Millilitres(400), Millilitres(700), Millilitres(900)], variants: &["", "volume", "repair", "everyday", "smooth"], price: (400, 1200) },
    ProductType { category: "personal care", name: "toothpaste", sizes: &[Grams(110), Grams(160), Grams(200)], variants: &["", "whitening", "sensitive", "fresh mint", "kids"], price: (250, 800) },
    ProductType { category: "personal care", name: "body wash", sizes: &[Millilitres(500), Millilitres(1000)], variants: &["", "coconut", "sensitive", "citrus", "oatmeal"], price: (400, 1000) },
    ProductType { category: "pet food", name: "dry dog food", sizes: &[Grams(3000), Grams(8000), Grams(15000)], variants: &["chicken", "beef", "lamb and rice", "puppy", "senior"], price: (1500, 3500) },
    ProductType { category: "pet food", name: "cat food", sizes: &[Grams(400), Grams(800), Grams(2000)], variants: &["chicken", "fish", "beef", "kitten", "indoor"], price: (300, 1200) },
];

#[rustfmt::skip]
const BRANDS: &[&str] = &[
    "acme", "sunfield", "bluegum", "wattle", "southern cross", "goldleaf", "riverbend", "harvest moon", "kookaburra", "coastal",
    "greenvale", "red rock", "silver fern", "bush kitchen", "outback", "pure earth", "meadow lane", "stonemill", "oakridge", "brightside",
    "little farm", "honeybee", "mountain peak", "clearwater", "urban pantry", "nature's way", "farmhouse", "golden crust", "kiwi", "emu",
    "billabong foods", "pacific", "seaside", "highland", "valley fresh", "sunrise", "dawn", "everfresh", "simply good", "true blue",
];

const LINES: &[(&str, u32)] = &[
    ("", 40),
    ("organic", 8),
    ("classic", 6),
    ("premium", 6),
    ("original", 5),
    ("gold", 3),
    ("select", 3),
    ("everyday", 4),
    ("homestyle", 3),
    ("natural", 3),
    ("family", 2),
];

const ABBREVIATIONS: &[(&str, &str)] = &[
    ("organic", "org"),
    ("chocolate", "choc"),
    ("original", "orig"),
    ("premium", "prem"),
    ("assorted", "asst"),
    ("vanilla", "van"),
    ("strawberry", "strawb"),
    ("classic", "clsc"),
    ("family", "fam"),
    ("wholegrain", "w/grain"),
    ("natural", "nat"),
    ("coffee", "cof"),
    ("sensitive", "sens"),
    ("chicken", "chkn"),
    ("cheese", "chs"),
    ("extra", "xtra"),
    ("virgin", "vrgn"),
    ("breakfast", "bkfst"),
    ("dishwashing", "dishwash"),
    ("conditioner", "cond"),
    ("toothpaste", "tpaste"),
    ("and", "&"),
    ("capsules", "caps"),
    ("crackers", "crkrs"),
    ("biscuits", "bisc"),
];

#[rustfmt::skip]
const MARKETING: &[&str] = &[
    "new", "value pack", "bonus", "special", "best seller", "limited edition", "now bigger", "great taste", "save", "online only",
    "family size", "new look",
];

const SYNTHETIC_BRANDS: usize = 6_000;

struct ProductWorld {
    brands: Vec<String>,
    brand_zipf: Zipf,
}

impl ProductWorld {
    fn new() -> Self {
        let mut rng = Rng::new(0x00C0_FFEE_5EED_0002);
        let mut seen: HashSet<String> = HashSet::new();
        let mut brands: Vec<String> =
            BRANDS.iter().filter(|b| seen.insert((*b).to_string())).map(|b| title(b)).collect();
        let target = brands.len() + SYNTHETIC_BRANDS;
        while brands.len() < target {
            let w = syllable_word(&mut rng, 2, 3);
            if seen.insert(w.clone()) {
                brands.push(title(&w));
            }
        }
        ProductWorld { brand_zipf: Zipf::new(brands.len(), 50.0), brands }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Product {
    brand_index: usize,
    brand: String,
    line: &'static str,
    kind: usize,
    variant: &'static str,
    size: Size,
    sku: String,
    gtin: String,
    price_cents: u32,
    // Rendered (and corrupted) fields.
    name: String,
    size_text: String,
    category: String,
    currency: String,
}

impl Product {
    fn identity(&self) -> u64 {
        let kind = PRODUCT_TYPES[self.kind].name;
        claim_key(4, &[&self.brand, self.line, self.variant, kind, &self.size.canonical()])
    }

    fn title_words(&self) -> String {
        let kind = PRODUCT_TYPES[self.kind].name;
        let size = self.size.canonical();
        let words: Vec<&str> =
            [self.brand.as_str(), self.line, self.variant, kind, &size].into_iter().filter(|w| !w.is_empty()).collect();
        title(&words.join(" "))
    }

    fn write(&self, e: u32, sink: &mut Sink) {
        let price = format!("{}.{:02}", self.price_cents / 100, self.price_cents % 100);
        sink.push(
            e,
            &[&self.sku, &self.gtin, &self.name, &self.brand, &self.category, &self.size_text, &price, &self.currency],
        );
    }
}

/// The GS1 check digit of a GTIN body (the digits before the check digit).
fn gtin_check_digit(body: &str) -> u32 {
    let sum: u32 =
        body.bytes().rev().enumerate().map(|(i, b)| (b - b'0') as u32 * if i % 2 == 0 { 3 } else { 1 }).sum();
    (10 - sum % 10) % 10
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum ProductSlip {
    WordOrder,
    Abbreviation,
    Marketing,
    TitleTypo,
    SizeWritten,
    Brand,
    Price,
    CodeFormat,
    Category,
    MissingCode,
}

const PRODUCT_SLIPS: &[(ProductSlip, u32)] = &[
    (ProductSlip::Abbreviation, 12),
    (ProductSlip::Marketing, 12),
    (ProductSlip::TitleTypo, 12),
    (ProductSlip::WordOrder, 10),
    (ProductSlip::SizeWritten, 12),
    (ProductSlip::Brand, 10),
    (ProductSlip::Price, 12),
    (ProductSlip::MissingCode, 12),
    (ProductSlip::CodeFormat, 5),
    (ProductSlip::Category, 5),
];

struct ProductGen<'w> {
    world: &'w ProductWorld,
    claims: Claims,
    sku_digits: usize,
    recent: Vec<Product>,
}

impl<'w> ProductGen<'w> {
    fn new(world: &'w ProductWorld, entities: usize) -> Self {
        // Room for at least three times as many SKUs as products, so random draws rarely collide.
        let mut sku_digits = 6;
        while 9 * 10usize.pow(sku_digits as u32 - 1) < entities * 3 {
            sku_digits += 1;
        }
        ProductGen {
            world,
            claims: Claims::with_capacity(entities * 3),
            sku_digits,
            recent: Vec::with_capacity(RECENT),
        }
    }

    fn entity(&mut self, rng: &mut Rng, e: u32, copies: usize, sink: &mut Sink) {
        let base = self.draw(rng, e);
        base.write(e, sink);
        for _ in 1..copies {
            let mut tries = 0;
            let d = loop {
                let mut d = base.clone();
                tries += 1;
                if (apply_slips(rng, PRODUCT_SLIPS, &mut d, slip_product) && d != base) || tries == 8 {
                    break d;
                }
            };
            d.write(e, sink);
        }
        if self.recent.len() < RECENT {
            self.recent.push(base);
        } else {
            let at = e as usize % RECENT;
            self.recent[at] = base;
        }
    }

    /// A new product: mostly fresh; often a sibling of a recent one (same brand, line and type,
    /// another size or variant). Its own GTIN (the brand's company prefix and an item number)
    /// and SKU.
    fn draw(&mut self, rng: &mut Rng, e: u32) -> Product {
        let w = self.world;
        let mut p = loop {
            let sibling = (!self.recent.is_empty() && rng.chance(0.3)).then(|| rng.pick(&self.recent).clone());
            let mut p = match sibling {
                Some(mut s) => {
                    let t = &PRODUCT_TYPES[s.kind];
                    if rng.chance(0.5) && t.sizes.len() > 1 {
                        s.size = *rng.pick(t.sizes);
                    } else {
                        s.variant = *rng.pick(t.variants);
                    }
                    s
                }
                None => {
                    let brand_index = w.brand_zipf.sample(rng);
                    let kind = rng.below(PRODUCT_TYPES.len());
                    let t = &PRODUCT_TYPES[kind];
                    Product {
                        brand_index,
                        brand: w.brands[brand_index].clone(),
                        line: weighted(rng, LINES),
                        kind,
                        variant: rng.pick::<&str>(t.variants),
                        size: *rng.pick(t.sizes),
                        sku: String::new(),
                        gtin: String::new(),
                        price_cents: 0,
                        name: String::new(),
                        size_text: String::new(),
                        category: String::new(),
                        currency: String::new(),
                    }
                }
            };
            if self.claims.claim_all(&[p.identity()], e) {
                let t = &PRODUCT_TYPES[p.kind];
                let smallest = t.sizes.first().map_or(1, |s| size_amount(*s)).max(1);
                let steps = (size_amount(p.size) / smallest).clamp(1, 10);
                let cents = rng.range(t.price.0, t.price.1) * (10 + (steps - 1) * 7) / 10;
                p.price_cents = (cents / 10) * 10 + if rng.chance(0.6) { 9 } else { 0 };
                p.name = p.title_words();
                p.size_text = p.size.canonical();
                p.category = title(t.category);
                p.currency = "AUD".into();
                break p;
            }
        };
        // GTIN-13: "93" (GS1 Australia), the brand's 5-digit company prefix, a 5-digit item number.
        let company = 10_000 + (p.brand_index as u64 * 7_919) % 90_000;
        let mut body = String::new();
        for attempt in 0.. {
            body = if attempt < 64 {
                format!("93{company:05}{}", rng.digit_string(5))
            } else {
                format!("9{}", rng.digit_string(11))
            };
            if self.claims.claim_all(&[claim_key(5, &[&body])], e) {
                break;
            }
        }
        p.gtin = format!("{body}{}", gtin_check_digit(&body));
        loop {
            let sku = format!("SKU-{}{}", rng.range(1, 9), rng.digit_string(self.sku_digits - 1));
            if self.claims.claim_all(&[claim_key(6, &[&sku])], e) {
                p.sku = sku;
                break;
            }
        }
        p
    }
}

fn size_amount(s: Size) -> u32 {
    match s {
        Size::Grams(n) | Size::Millilitres(n) | Size::Count(n, _) => n,
    }
}

fn slip_product(rng: &mut Rng, d: &mut Product, s: ProductSlip) -> bool {
    match s {
        ProductSlip::WordOrder => {
            // Move the brand to the end, or swap two adjacent words after it.
            let mut words: Vec<&str> = d.name.split(' ').collect();
            if words.len() < 3 {
                return false;
            }
            let name = if rng.chance(0.3) {
                let brand_words = d.brand.split(' ').count().min(words.len() - 1);
                let brand: Vec<&str> = words.drain(..brand_words).collect();
                words.extend(brand);
                words.join(" ")
            } else {
                let at = 1 + rng.below(words.len() - 2);
                words.swap(at, at + 1);
                words.join(" ")
            };
            let changed = name != d.name;
            d.name = name;
            changed
        }
        ProductSlip::Abbreviation => {
            let words: Vec<String> = d.name.split(' ').map(str::to_owned).collect();
            let hits: Vec<usize> = (0..words.len())
                .filter(|&i| ABBREVIATIONS.iter().any(|(long, _)| *long == words[i].to_lowercase()))
                .collect();
            if hits.is_empty() {
                return false;
            }
            let at = *rng.pick(&hits);
            let lower = words[at].to_lowercase();
            let Some((_, short)) = ABBREVIATIONS.iter().find(|(long, _)| *long == lower) else { return false };
            let mut words = words;
            words[at] = title(short);
            d.name = words.join(" ");
            true
        }
        ProductSlip::Marketing => {
            let extra = title(rng.pick::<&str>(MARKETING));
            d.name = if rng.chance(0.5) { format!("{} {extra}", d.name) } else { format!("{extra} {}", d.name) };
            true
        }
        ProductSlip::TitleTypo => {
            let words: Vec<&str> = d.name.split(' ').collect();
            let long: Vec<usize> = (0..words.len())
                .filter(|&i| words[i].chars().count() >= 4 && words[i].chars().all(char::is_alphabetic))
                .collect();
            if long.is_empty() {
                return false;
            }
            let at = *rng.pick(&long);
            match typo(rng, words[at]) {
                Some(t) => {
                    let mut words: Vec<String> = words.iter().map(|w| (*w).to_owned()).collect();
                    words[at] = t;
                    d.name = words.join(" ");
                    true
                }
                None => false,
            }
        }
        ProductSlip::SizeWritten => {
            let old = d.size_text.clone();
            d.size_text = d.size.variant(rng);
            // Often the title carries the same spelling.
            if rng.chance(0.5) {
                let canonical = title(&d.size.canonical());
                if d.name.contains(&canonical) {
                    d.name = d.name.replacen(&canonical, &d.size_text, 1);
                }
            }
            d.size_text != old
        }
        ProductSlip::Brand => {
            let old = d.brand.clone();
            d.brand = match rng.below(4) {
                0 => d.brand.to_uppercase(),
                1 => d.brand.to_lowercase(),
                2 => format!("{} {}", d.brand, rng.pick(&["Foods", "Co", "Pty Ltd", "Brands", "Australia"])),
                _ => typo(rng, &d.brand).unwrap_or_else(|| d.brand.to_uppercase()),
            };
            d.brand != old
        }
        ProductSlip::Price => {
            // ±1 to 5 %.
            let permille = rng.range(10, 50);
            let delta = (d.price_cents * permille / 1000).max(1);
            d.price_cents =
                if rng.chance(0.5) || d.price_cents <= delta { d.price_cents + delta } else { d.price_cents - delta };
            true
        }
        ProductSlip::CodeFormat => {
            if rng.chance(0.5) && !d.gtin.is_empty() {
                // GTIN-14 with a leading zero: the same number.
                d.gtin = format!("0{}", d.gtin);
            } else if !d.sku.is_empty() {
                let digits = d.sku.trim_start_matches("SKU-").to_owned();
                d.sku = if rng.chance(0.5) { format!("sku{digits}") } else { format!("SKU {digits}") };
            } else {
                return false;
            }
            true
        }
        ProductSlip::Category => {
            if rng.chance(0.5) {
                d.category.clear();
            } else {
                d.category = d.category.to_uppercase();
            }
            true
        }
        ProductSlip::MissingCode => {
            // Never both.
            if d.gtin.is_empty() || d.sku.is_empty() {
                return false;
            }
            if rng.chance(0.5) {
                d.gtin.clear();
            } else {
                d.sku.clear();
            }
            true
        }
    }
}
