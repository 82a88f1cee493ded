//! Request units, computed from the calls and item sizes by DynamoDB's published rules, plus the
//! SQS requests and EventBridge entries that go with them: what a deployment pays per record.
//!
//! DynamoDB's rules as applied here (on-demand: one read request unit = one strongly consistent
//! read of up to 4 KB, one write request unit = one write of up to 1 KB):
//! - item size = the UTF-8 length of every attribute name plus its value's size (a string's
//!   UTF-8 length, a number's significant digits / 2 + 1, 1 for a boolean or null, 3 + contents
//!   for a list or map);
//! - `GetItem` (strongly consistent): ⌈size / 4 KB⌉, at least 1 even when the item is missing;
//!   `BatchGetItem` the same per key (projections do not reduce it: the full item is charged);
//! - `Query`: the returned items' sizes summed, ⌈sum / 4 KB⌉ per page, at least 1;
//! - `PutItem` / `UpdateItem` / `DeleteItem`: ⌈max(size before, size after) / 1 KB⌉, at least 1;
//! - `TransactWriteItems`: twice that for every item (prepare and commit); a `ConditionCheck`
//!   is charged as a transactional write of the checked item (2 units) — a conservative reading.
//!
//! Sizes before a write are known only for items this process has written or read in full; the
//! local cost run turns on [`Meter::remember_item_sizes`] so that updates and deletes are charged
//! for the real item. `Scan` is charged for the items it returns, a lower bound (the hub sends
//! none; the counter stays so that tests can say so).

use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, OnceLock};

pub type Item = HashMap<String, AttributeValue>;

const READ_UNIT: usize = 4096;
const WRITE_UNIT: usize = 1024;

/// The size of a number as DynamoDB stores it: significant digits / 2 + 1 (rounded up).
pub fn number_size(n: &str) -> usize {
    let digits: String = n.chars().filter(char::is_ascii_digit).collect();
    let significant = digits.trim_start_matches('0').trim_end_matches('0').len().max(1);
    significant.div_ceil(2) + 1
}

/// The stored size of one attribute value.
pub fn value_size(v: &AttributeValue) -> usize {
    match v {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => number_size(n),
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::Ss(v) => v.iter().map(String::len).sum(),
        AttributeValue::Ns(v) => v.iter().map(|n| number_size(n)).sum(),
        AttributeValue::Bs(v) => v.iter().map(|b| b.as_ref().len()).sum(),
        AttributeValue::L(l) => 3 + l.iter().map(|e| 1 + value_size(e)).sum::<usize>(),
        AttributeValue::M(m) => 3 + m.iter().map(|(k, e)| 1 + k.len() + value_size(e)).sum::<usize>(),
        _ => 0,
    }
}

/// The stored size of an item: attribute names plus values.
pub fn item_size(item: &Item) -> usize {
    item.iter().map(|(k, v)| k.len() + value_size(v)).sum()
}

/// Read units of one strongly consistent read of `bytes` (at least one).
pub fn read_units(bytes: usize) -> u64 {
    bytes.div_ceil(READ_UNIT).max(1) as u64
}

/// Read units of one read of `bytes`, strongly or eventually consistent (half).
pub fn read_units_as(bytes: usize, consistent: bool) -> f64 {
    let units = read_units(bytes) as f64;
    if consistent {
        units
    } else {
        units / 2.0
    }
}

/// Write units of one standard write of an item of `bytes` (at least one).
pub fn write_units(bytes: usize) -> u64 {
    bytes.div_ceil(WRITE_UNIT).max(1) as u64
}

/// What an item is, from its key (the single-table layout of docs/architecture.md).
pub fn kind_of(pk: &str, sk: &str) -> &'static str {
    let prefix = pk.split('#').next().unwrap_or("");
    match prefix {
        "SRC" => "source",
        "GOLD" if sk.starts_with("V#") => "history",
        "GOLD" if sk.starts_with("P#") => "golden part",
        "GOLD" => "golden",
        "BLK" => "index",
        "CLM" => "claim",
        "REV" | "REVG" | "REVQ" => "review",
        "HELD" => "held list",
        "TERM" | "TERMS" => "term count",
        "LABEL" => "label",
        "OUT" => "outbox",
        "PEND" => "pending event",
        "SUP" => "suppression",
        "ERA" => "erasure",
        "ID" => "identifier",
        _ => "other",
    }
}

fn key_of(item: &Item) -> (String, String) {
    let get = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
    (get("pk"), get("sk"))
}

/// The attributes an update expression of the form `SET a = :x, #b = :y REMOVE c` sets and
/// removes, with placeholders resolved (the only form the store writes).
pub fn update_parts(
    expr: &str,
    names: Option<&HashMap<String, String>>,
    values: Option<&HashMap<String, AttributeValue>>,
) -> (Vec<(String, AttributeValue)>, Vec<String>) {
    let name = |n: &str| -> String {
        let n = n.trim();
        names.and_then(|m| m.get(n)).cloned().unwrap_or_else(|| n.to_owned())
    };
    let (mut set, mut remove) = (Vec::new(), Vec::new());
    // Clauses: SET a = :x, b = :y | REMOVE c | ADD d :z (counted as setting d to :z) | DELETE …
    let mut clauses: Vec<(&str, String)> = Vec::new();
    for word in expr.split_whitespace() {
        match word {
            "SET" | "REMOVE" | "ADD" | "DELETE" => clauses.push((word, String::new())),
            w => {
                if let Some((_, text)) = clauses.last_mut() {
                    text.push(' ');
                    text.push_str(w);
                }
            }
        }
    }
    for (clause, text) in &clauses {
        for part in text.split(',') {
            match *clause {
                "SET" => {
                    if let Some((n, v)) = part.split_once('=') {
                        let value = values.and_then(|m| m.get(v.trim())).cloned().unwrap_or(AttributeValue::Null(true));
                        set.push((name(n), value));
                    }
                }
                "ADD" => {
                    let mut it = part.split_whitespace();
                    if let (Some(n), Some(v)) = (it.next(), it.next()) {
                        let value = values.and_then(|m| m.get(v)).cloned().unwrap_or(AttributeValue::Null(true));
                        set.push((name(n), value));
                    }
                }
                "REMOVE" if !part.trim().is_empty() => remove.push(name(part)),
                _ => {}
            }
        }
    }
    (set, remove)
}

/// Requests and units of one (operation, item kind).
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Usage {
    /// Items touched (read, written, deleted or checked).
    pub items: u64,
    /// Read request units (an eventually consistent read costs half).
    pub read_units: f64,
    pub write_units: u64,
}

/// One write inside a transaction or on its own.
pub enum Write<'a> {
    /// A whole item.
    Put(&'a Item),
    /// Attributes set and removed on the item with this key.
    Update {
        key: &'a Item,
        set: Vec<(String, AttributeValue)>,
        remove: Vec<String>,
    },
    Delete(&'a Item),
    /// A condition on the item with this key, nothing written.
    Check(&'a Item),
}

#[derive(Default)]
struct State {
    dynamo: BTreeMap<(&'static str, &'static str), Usage>,
    requests: BTreeMap<&'static str, u64>,
    /// SQS: operation → (requests, billed 64 KB chunks, messages).
    sqs: BTreeMap<&'static str, (u64, u64, u64)>,
    /// EventBridge: (PutEvents calls, entries, billed 64 KB chunks).
    events: (u64, u64, u64),
    /// pk, sk → attribute name → stored size (only with `remember_item_sizes`).
    sizes: Option<HashMap<(String, String), HashMap<String, usize>>>,
}

/// The process-wide tally of requests and units (cheap enough to stay on in Lambda).
#[derive(Default)]
pub struct Meter {
    state: Mutex<State>,
}

/// A snapshot of the tally.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Tally {
    pub dynamo: BTreeMap<(&'static str, &'static str), Usage>,
    pub requests: BTreeMap<&'static str, u64>,
    pub sqs: BTreeMap<&'static str, (u64, u64, u64)>,
    pub events: (u64, u64, u64),
}

impl Tally {
    pub fn read_units(&self) -> f64 {
        self.dynamo.values().map(|u| u.read_units).sum()
    }

    pub fn write_units(&self) -> u64 {
        self.dynamo.values().map(|u| u.write_units).sum()
    }

    pub fn sqs_requests(&self) -> u64 {
        self.sqs.values().map(|v| v.1).sum()
    }
}

static GLOBAL: OnceLock<Meter> = OnceLock::new();

/// The meter every adapter of this process reports to.
pub fn meter() -> &'static Meter {
    GLOBAL.get_or_init(Meter::default)
}

/// Billed 64 KB chunks of a payload (SQS and EventBridge both bill per started 64 KB).
pub fn chunks_64k(bytes: usize) -> u64 {
    bytes.div_ceil(64 * 1024).max(1) as u64
}

impl Meter {
    /// Keep every item's attribute sizes, so that updates and deletes are charged for the stored
    /// item (for cost runs; memory grows with the items touched).
    pub fn remember_item_sizes(&self, on: bool) {
        if let Ok(mut s) = self.state.lock() {
            s.sizes = on.then(HashMap::new);
        }
    }

    pub fn tally(&self) -> Tally {
        self.state
            .lock()
            .map(|s| Tally {
                dynamo: s.dynamo.clone(),
                requests: s.requests.clone(),
                sqs: s.sqs.clone(),
                events: s.events,
            })
            .unwrap_or_default()
    }

    /// Clears the counts (remembered sizes stay).
    pub fn reset(&self) {
        if let Ok(mut s) = self.state.lock() {
            s.dynamo.clear();
            s.requests.clear();
            s.sqs.clear();
            s.events = (0, 0, 0);
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> Option<T> {
        self.state.lock().ok().map(|mut s| f(&mut s))
    }

    /// One DynamoDB request.
    pub fn request(&self, op: &'static str) {
        self.with(|s| *s.requests.entry(op).or_default() += 1);
    }

    /// Items read in full by a `GetItem` or `BatchGetItem` (`found`), and keys that were missing.
    pub fn read_items(&self, op: &'static str, keys: &[&Item], found: &[Item], consistent: bool) {
        self.with(|s| {
            let mut missing: Vec<(String, String)> = keys.iter().map(|k| key_of(k)).collect();
            for item in found {
                let key = key_of(item);
                missing.retain(|k| *k != key);
                let size = s.remember(item);
                let u = s.dynamo.entry((op, kind_of(&key.0, &key.1))).or_default();
                u.items += 1;
                u.read_units += read_units_as(size, consistent);
            }
            for (pk, sk) in missing {
                let u = s.dynamo.entry((op, kind_of(&pk, &sk))).or_default();
                u.read_units += read_units_as(0, consistent);
            }
        });
    }

    /// Items read with a projection: charged for the whole stored item where its size is known.
    /// With `claims`, block items are counted as claims (the claim is the block item's
    /// `golden_id`, and the projection asked for it).
    pub fn read_projected(&self, op: &'static str, keys: &[&Item], found: &[Item], consistent: bool, claims: bool) {
        self.with(|s| {
            for k in keys {
                let (pk, sk) = key_of(k);
                let returned = found.iter().find(|i| key_of(i) == (pk.clone(), sk.clone()));
                let size = s.stored_size(&pk, &sk).or_else(|| returned.map(crate::capacity::item_size)).unwrap_or(0);
                let kind = match kind_of(&pk, &sk) {
                    "index" if claims => "claim",
                    kind => kind,
                };
                let u = s.dynamo.entry((op, kind)).or_default();
                u.items += u64::from(returned.is_some());
                u.read_units += read_units_as(size, consistent);
            }
        });
    }

    /// One page of a `Query` (or `Scan`) on partition `pk`.
    pub fn read_page(&self, op: &'static str, pk: &str, items: &[Item], consistent: bool) {
        self.with(|s| {
            let mut bytes = 0;
            let mut kind = kind_of(pk, "");
            for item in items {
                bytes += s.remember(item);
                let (ipk, isk) = key_of(item);
                kind = kind_of(&ipk, &isk);
            }
            let u = s.dynamo.entry((op, kind)).or_default();
            u.items += items.len() as u64;
            u.read_units += read_units_as(bytes, consistent);
        });
    }

    /// Writes of one request: standard (`transactional = false`) or one `TransactWriteItems`.
    pub fn write(&self, op: &'static str, writes: &[Write<'_>], transactional: bool) {
        let factor = if transactional { 2 } else { 1 };
        self.with(|s| {
            for w in writes {
                // A claim is the `golden_id` of its block's item: an update setting or removing
                // it is counted as a claim write.
                let mut claim = false;
                let (key, units) = match w {
                    Write::Put(item) => {
                        let key = key_of(item);
                        let before = s.stored_size(&key.0, &key.1).unwrap_or(0);
                        let after = s.replace(&key, item.iter().map(|(k, v)| (k.clone(), k.len() + value_size(v))));
                        (key, write_units(before.max(after)))
                    }
                    Write::Update { key, set, remove } => {
                        let key = key_of(key);
                        let before = s.stored_size(&key.0, &key.1).unwrap_or(0);
                        let after = s.update(&key, set, remove);
                        if set.iter().any(|(n, _)| n == "golden_id") || remove.iter().any(|n| n == "golden_id") {
                            claim = kind_of(&key.0, &key.1) == "index";
                        }
                        (key, write_units(before.max(after)))
                    }
                    Write::Delete(k) => {
                        let key = key_of(k);
                        let before = s.stored_size(&key.0, &key.1).unwrap_or(0);
                        if let Some(m) = s.sizes.as_mut() {
                            m.remove(&key);
                        }
                        (key, write_units(before))
                    }
                    Write::Check(k) => (key_of(k), 1),
                };
                let kind = if claim { "claim" } else { kind_of(&key.0, &key.1) };
                let u = s.dynamo.entry((op, kind)).or_default();
                u.items += 1;
                u.write_units += units * factor;
            }
        });
    }

    /// One SQS request carrying `messages` with `bytes` of payload in all.
    pub fn sqs(&self, op: &'static str, messages: u64, bytes: usize) {
        self.with(|s| {
            let e = s.sqs.entry(op).or_default();
            e.0 += 1;
            e.1 += chunks_64k(bytes);
            e.2 += messages;
        });
    }

    /// One `PutEvents` call with its entries' sizes (each entry is billed per started 64 KB).
    pub fn put_events(&self, entry_sizes: &[usize]) {
        self.with(|s| {
            s.events.0 += 1;
            s.events.1 += entry_sizes.len() as u64;
            s.events.2 += entry_sizes.iter().map(|b| chunks_64k(*b)).sum::<u64>();
        });
    }
}

impl State {
    fn stored_size(&self, pk: &str, sk: &str) -> Option<usize> {
        self.sizes.as_ref()?.get(&(pk.to_owned(), sk.to_owned())).map(|a| a.values().sum())
    }

    /// Remembers a full item read or written; returns its size.
    fn remember(&mut self, item: &Item) -> usize {
        let key = key_of(item);
        self.replace(&key, item.iter().map(|(k, v)| (k.clone(), k.len() + value_size(v))))
    }

    fn replace(&mut self, key: &(String, String), attrs: impl Iterator<Item = (String, usize)>) -> usize {
        let attrs: HashMap<String, usize> = attrs.collect();
        let size = attrs.values().sum();
        if let Some(m) = self.sizes.as_mut() {
            m.insert(key.clone(), attrs);
        }
        size
    }

    fn update(&mut self, key: &(String, String), set: &[(String, AttributeValue)], remove: &[String]) -> usize {
        let key_sizes = [("pk", key.0.len()), ("sk", key.1.len())];
        let mut attrs: HashMap<String, usize> = match self.sizes.as_ref().and_then(|m| m.get(key)) {
            Some(a) => a.clone(),
            None => key_sizes.iter().map(|(k, n)| ((*k).to_owned(), k.len() + n)).collect(),
        };
        for (name, v) in set {
            attrs.insert(name.clone(), name.len() + value_size(v));
        }
        for name in remove {
            attrs.remove(name);
        }
        let size = attrs.values().sum();
        if let Some(m) = self.sizes.as_mut() {
            m.insert(key.clone(), attrs);
        }
        size
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> AttributeValue {
        AttributeValue::S(v.to_owned())
    }

    fn item(pairs: &[(&str, AttributeValue)]) -> Item {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect()
    }

    #[test]
    fn sizes_follow_dynamodb_rules() {
        assert_eq!(number_size("1"), 2);
        assert_eq!(number_size("123456"), 4);
        assert_eq!(number_size("1000"), 2, "trailing zeros are not significant");
        assert_eq!(value_size(&s("héllo")), 6, "UTF-8 bytes");
        let it = item(&[("pk", s("SRC#a")), ("sk", s("META")), ("n", AttributeValue::N("42".into()))]);
        assert_eq!(item_size(&it), 2 + 5 + 2 + 4 + 1 + 2);
        let l = AttributeValue::L(vec![s("ab"), AttributeValue::Bool(true)]);
        assert_eq!(value_size(&l), 3 + (1 + 2) + (1 + 1));
    }

    #[test]
    fn units_round_up_per_request_and_item() {
        assert_eq!(read_units(0), 1);
        assert_eq!(read_units(4096), 1);
        assert_eq!(read_units(4097), 2);
        assert_eq!(write_units(1), 1);
        assert_eq!(write_units(1025), 2);
    }

    #[test]
    fn transactions_cost_twice_and_updates_charge_the_larger_size() {
        let m = Meter::default();
        m.remember_item_sizes(true);
        let big = item(&[("pk", s("SRC#c#crm#1")), ("sk", s("META")), ("data", s(&"x".repeat(1500)))]);
        m.write("UpdateItem", &[Write::Put(&big)], false);
        // An update that only sets a small attribute still rewrites the 1.5 KB item: 2 units, ×2.
        let key = item(&[("pk", s("SRC#c#crm#1")), ("sk", s("META"))]);
        let g = s("g1");
        m.write(
            "TransactWriteItems",
            &[
                Write::Update { key: &key, set: vec![("golden_id".into(), g.clone())], remove: vec![] },
                Write::Check(&key),
            ],
            true,
        );
        let t = m.tally();
        assert_eq!(t.dynamo[&("UpdateItem", "source")].write_units, 2);
        assert_eq!(t.dynamo[&("TransactWriteItems", "source")].write_units, 2 * 2 + 2);
        // Without remembered sizes, the same update counts only what it sets.
        let fresh = Meter::default();
        fresh.write(
            "TransactWriteItems",
            &[Write::Update { key: &key, set: vec![("golden_id".into(), g)], remove: vec![] }],
            true,
        );
        assert_eq!(fresh.tally().write_units(), 2);
    }

    #[test]
    fn update_expressions_resolve_placeholders() {
        let names = HashMap::from([("#d".to_owned(), "data".to_owned())]);
        let values = HashMap::from([(":d".to_owned(), s("x")), (":seq".to_owned(), AttributeValue::N("3".into()))]);
        let (set, remove) =
            update_parts("SET #d = :d, source_seq = :seq REMOVE request_id", Some(&names), Some(&values));
        assert_eq!(set, vec![("data".to_owned(), s("x")), ("source_seq".to_owned(), AttributeValue::N("3".into()))]);
        assert_eq!(remove, vec!["request_id".to_owned()]);
        // A claim that adds its golden record to the block in the same update.
        let values =
            HashMap::from([(":g", s("g1")), (":k", s("index")), (":gs", AttributeValue::Ss(vec!["g1".into()]))])
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect::<HashMap<_, _>>();
        let names = HashMap::from([("#k".to_owned(), "kind".to_owned())]);
        let (set, remove) = update_parts("SET golden_id = :g, #k = :k ADD g :gs", Some(&names), Some(&values));
        assert_eq!(
            set,
            vec![
                ("golden_id".to_owned(), s("g1")),
                ("kind".to_owned(), s("index")),
                ("g".to_owned(), AttributeValue::Ss(vec!["g1".into()]))
            ]
        );
        assert!(remove.is_empty());
    }

    #[test]
    fn reads_charge_missing_keys_and_pages() {
        let m = Meter::default();
        let k1 = item(&[("pk", s("CLM#c#e")), ("sk", s("META"))]);
        let k2 = item(&[("pk", s("CLM#c#f")), ("sk", s("META"))]);
        let found = item(&[("pk", s("CLM#c#e")), ("sk", s("META")), ("golden_id", s("g1"))]);
        m.read_items("BatchGetItem", &[&k1, &k2], std::slice::from_ref(&found), true);
        m.read_page("Query", "BLK#c#k", &[], true);
        m.read_page("Query", "BLK#c#k", &[], false);
        let t = m.tally();
        assert_eq!(t.dynamo[&("BatchGetItem", "claim")], Usage { items: 1, read_units: 2.0, write_units: 0 });
        assert_eq!(
            t.dynamo[&("Query", "index")].read_units,
            1.5,
            "an empty page costs one unit, or half eventually consistent"
        );
    }
}
