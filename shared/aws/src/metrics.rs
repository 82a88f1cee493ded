//! CloudWatch Embedded Metric Format: counters per invocation, and latencies as the individual
//! values measured (so CloudWatch computes real percentiles, not percentiles of sums), printed as
//! JSON lines that CloudWatch turns into metrics (namespace from `MDM_METRICS_NAMESPACE`,
//! dimension `Function`; a value recorded for an entity type or an API route also gets the
//! dimension set `[Function, EntityType]` or `[Function, Route]`). Everything is also kept
//! in-process (cumulative) for the local runner's summary.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// What a value is recorded for, besides its function: the dimensions it adds.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    Function,
    EntityType(String),
    Route(String),
    /// An entity type's records from one source system.
    Source {
        entity: String,
        system: String,
    },
}

impl Scope {
    pub fn entity(entity: impl Into<String>) -> Self {
        Self::EntityType(entity.into())
    }

    /// The extra dimensions' names and values, most specific last.
    fn dimensions(&self) -> Vec<(&'static str, &str)> {
        match self {
            Self::Function => Vec::new(),
            Self::EntityType(e) => vec![("EntityType", e)],
            Self::Route(r) => vec![("Route", r)],
            Self::Source { entity, system } => vec![("EntityType", entity), ("SourceSystem", system)],
        }
    }

    /// The dimension sets: every prefix of [`Scope::dimensions`] after `Function`, longest
    /// first (`[Function, EntityType, SourceSystem]`, `[Function, EntityType]`, `[Function]`), so
    /// an alarm or a graph can take any level.
    fn dimension_sets(&self) -> serde_json::Value {
        let names: Vec<&str> = self.dimensions().iter().map(|(n, _)| *n).collect();
        let sets: Vec<Vec<&str>> = (0..=names.len())
            .rev()
            .map(|n| std::iter::once("Function").chain(names[..n].iter().copied()).collect())
            .collect();
        serde_json::json!(sets)
    }
}

type Key = (Scope, &'static str);

pub struct Metrics {
    namespace: String,
    function: &'static str,
    pending: Mutex<BTreeMap<Key, f64>>,
    /// Values measured one at a time (latencies), emitted as EMF value lists.
    observed: Mutex<BTreeMap<Key, Vec<f64>>>,
    totals: Mutex<BTreeMap<&'static str, f64>>,
    emit: bool,
}

impl Metrics {
    pub fn new(namespace: impl Into<String>, function: &'static str) -> Self {
        let emit = std::env::var("MDM_EMF").as_deref() != Ok("off");
        Self {
            namespace: namespace.into(),
            function,
            pending: Mutex::default(),
            observed: Mutex::default(),
            totals: Mutex::default(),
            emit,
        }
    }

    /// One measured value (a latency): emitted as itself, not summed with the others.
    pub fn observe(&self, name: &'static str, value: f64) {
        self.observe_for(Scope::Function, name, value);
    }

    /// [`Metrics::observe`] for an entity type or a route.
    pub fn observe_for(&self, scope: Scope, name: &'static str, value: f64) {
        if let Ok(mut o) = self.observed.lock() {
            o.entry((scope, name)).or_default().push(value);
        }
        if let Ok(mut t) = self.totals.lock() {
            *t.entry(name).or_default() += value;
        }
    }

    pub fn add(&self, name: &'static str, value: f64) {
        self.add_for(Scope::Function, name, value);
    }

    /// [`Metrics::add`] for an entity type or a route.
    pub fn add_for(&self, scope: Scope, name: &'static str, value: f64) {
        if let Ok(mut p) = self.pending.lock() {
            *p.entry((scope, name)).or_default() += value;
        }
        if let Ok(mut t) = self.totals.lock() {
            *t.entry(name).or_default() += value;
        }
    }

    pub fn incr(&self, name: &'static str) {
        self.add(name, 1.0);
    }

    pub fn incr_for(&self, scope: Scope, name: &'static str) {
        self.add_for(scope, name, 1.0);
    }

    /// Cumulative counters since start.
    pub fn totals(&self) -> BTreeMap<&'static str, f64> {
        self.totals.lock().map(|t| t.clone()).unwrap_or_default()
    }

    /// The EMF documents for the pending counters and measured values (and clears them): one
    /// per scope, or more when a metric has more values than EMF takes in one
    /// ([`MAX_EMF_VALUES`]).
    pub fn take_documents(&self, now_ms: i64) -> Vec<serde_json::Value> {
        let counts = self.pending.lock().map(|mut p| std::mem::take(&mut *p)).unwrap_or_default();
        let observed = self.observed.lock().map(|mut o| std::mem::take(&mut *o)).unwrap_or_default();
        let mut scopes: Vec<&Scope> = counts.keys().chain(observed.keys()).map(|(s, _)| s).collect();
        scopes.sort();
        scopes.dedup();
        let mut out = Vec::new();
        for scope in scopes {
            let mut chunk = 0;
            loop {
                let mut members: Vec<(&'static str, serde_json::Value)> = Vec::new();
                if chunk == 0 {
                    members.extend(
                        counts.iter().filter(|((s, _), _)| s == scope).map(|((_, k), v)| (*k, serde_json::json!(v))),
                    );
                }
                for ((_, k), values) in observed.iter().filter(|((s, _), _)| s == scope) {
                    let part: Vec<f64> =
                        values.iter().copied().skip(chunk * MAX_EMF_VALUES).take(MAX_EMF_VALUES).collect();
                    match part.len() {
                        0 => {}
                        1 => members.push((k, serde_json::json!(part[0]))),
                        _ => members.push((k, serde_json::json!(part))),
                    }
                }
                if members.is_empty() {
                    break;
                }
                out.push(self.document(now_ms, scope, &members));
                chunk += 1;
            }
        }
        out
    }

    fn document(&self, now_ms: i64, scope: &Scope, members: &[(&'static str, serde_json::Value)]) -> serde_json::Value {
        let defs: Vec<serde_json::Value> =
            members.iter().map(|(k, _)| serde_json::json!({"Name": k, "Unit": unit_of(k)})).collect();
        let mut doc = serde_json::json!({
            "_aws": {"Timestamp": now_ms, "CloudWatchMetrics": [{
                "Namespace": self.namespace, "Dimensions": scope.dimension_sets(), "Metrics": defs}]},
            "Function": self.function,
        });
        for (name, value) in scope.dimensions() {
            doc[name] = serde_json::json!(value);
        }
        for (k, v) in members {
            doc[*k] = v.clone();
        }
        doc
    }

    /// An EMF document of values measured for one entity type (gauges: the value at this moment,
    /// not counted up), with the dimension sets `[Function, EntityType]` and `[Function]`, so an
    /// alarm can watch every entity type at once.
    pub fn entity_document(&self, now_ms: i64, entity: &str, values: &[(&str, &str, f64)]) -> serde_json::Value {
        let defs: Vec<serde_json::Value> =
            values.iter().map(|(name, unit, _)| serde_json::json!({"Name": name, "Unit": unit})).collect();
        let mut doc = serde_json::json!({
            "_aws": {"Timestamp": now_ms, "CloudWatchMetrics": [{
                "Namespace": self.namespace, "Dimensions": [["Function", "EntityType"], ["Function"]],
                "Metrics": defs}]},
            "Function": self.function,
            "EntityType": entity,
        });
        for (name, _, v) in values {
            doc[*name] = serde_json::json!(v);
        }
        doc
    }

    /// Prints [`Metrics::entity_document`] as one EMF line (unless `MDM_EMF=off`).
    pub fn emit_for_entity(&self, entity: &str, values: &[(&str, &str, f64)]) {
        if self.emit {
            println!("{}", self.entity_document(mdm_core::time::now_ms(), entity, values));
        }
    }

    /// Prints the pending counters and measured values as EMF lines (unless `MDM_EMF=off`).
    pub fn flush(&self) {
        for doc in self.take_documents(mdm_core::time::now_ms()) {
            if self.emit {
                println!("{doc}");
            }
        }
    }
}

/// A metric's CloudWatch unit, by its name's ending.
fn unit_of(name: &str) -> &'static str {
    if name.ends_with("Ms") {
        "Milliseconds"
    } else if name.ends_with("Percent") {
        "Percent"
    } else {
        "Count"
    }
}

/// Most values one metric may carry in one EMF document (the specification's limit).
pub const MAX_EMF_VALUES: usize = 100;

#[cfg(test)]
mod tests {
    use super::{Metrics, MAX_EMF_VALUES};

    /// Counters are summed per invocation; latencies keep every value (a list, at most 100 a
    /// document), so CloudWatch's percentiles are of the values measured; every named metric is
    /// a member with its unit.
    #[test]
    fn latencies_are_emitted_as_their_values_and_counters_as_counts() {
        let m = Metrics::new("MdmHub", "match");
        m.incr("RecordsMatched");
        m.incr("RecordsMatched");
        for v in 0..(MAX_EMF_VALUES + 5) {
            m.observe("MatchLatencyMs", v as f64);
        }
        let docs = m.take_documents(1_700_000_000_000);
        assert_eq!(docs.len(), 2, "105 values: two documents");
        assert_eq!(docs[0]["RecordsMatched"], 2.0, "a count, once");
        assert!(docs[1].get("RecordsMatched").is_none());
        let first: Vec<f64> = serde_json::from_value(docs[0]["MatchLatencyMs"].clone()).expect("a list");
        assert_eq!(first.len(), MAX_EMF_VALUES);
        assert_eq!(docs[1]["MatchLatencyMs"], serde_json::json!([100.0, 101.0, 102.0, 103.0, 104.0]));
        for doc in &docs {
            assert_eq!(doc["_aws"]["Timestamp"], 1_700_000_000_000i64);
            let cw = &doc["_aws"]["CloudWatchMetrics"][0];
            assert_eq!((cw["Namespace"].as_str(), doc["Function"].as_str()), (Some("MdmHub"), Some("match")));
            for def in cw["Metrics"].as_array().expect("metrics") {
                let name = def["Name"].as_str().expect("name");
                assert!(doc[name].is_number() || doc[name].is_array(), "{name} is a member");
                assert_eq!(def["Unit"], super::unit_of(name));
            }
        }
        assert!(m.take_documents(0).is_empty(), "taken");
        assert_eq!(m.totals()["MatchLatencyMs"], (0..105).sum::<i32>() as f64, "the local summary sums");
    }

    /// A value recorded for an entity type or a route is its own document, with that dimension
    /// beside `Function` and the `Function` set alone (so function-wide alarms still see it).
    #[test]
    fn entity_types_and_routes_are_dimensions() {
        use super::Scope;
        let m = Metrics::new("MdmHub", "match");
        m.incr_for(Scope::entity("customer"), "RecordsMatched");
        m.incr_for(Scope::entity("product"), "RecordsMatched");
        m.observe_for(Scope::entity("customer"), "MatchLatencyMs", 4.0);
        m.observe_for(Scope::Route("GET /v1/golden/{entity}/{id}".into()), "RequestLatencyMs", 2.0);
        m.incr("MessagesRetried");
        let docs = m.take_documents(1);
        assert_eq!(docs.len(), 4, "function, customer, product, route: {docs:?}");
        let customer = docs.iter().find(|d| d["EntityType"] == "customer").expect("customer");
        assert_eq!(customer["RecordsMatched"], 1.0);
        assert_eq!(customer["MatchLatencyMs"], 4.0);
        assert_eq!(
            customer["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            serde_json::json!([["Function", "EntityType"], ["Function"]])
        );
        let route = docs.iter().find(|d| d.get("Route").is_some()).expect("route");
        assert_eq!(
            route["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            serde_json::json!([["Function", "Route"], ["Function"]])
        );
        let plain = docs.iter().find(|d| d.get("MessagesRetried").is_some()).expect("function-wide");
        assert!(plain.get("EntityType").is_none() && plain.get("Route").is_none());
        m.observe_for(Scope::Source { entity: "customer".into(), system: "crm".into() }, "DataQualityPercent", 80.0);
        let docs = m.take_documents(1);
        let cw = &docs[0]["_aws"]["CloudWatchMetrics"][0];
        let sets =
            serde_json::json!([["Function", "EntityType", "SourceSystem"], ["Function", "EntityType"], ["Function"]]);
        assert_eq!(cw["Dimensions"], sets);
        assert_eq!((docs[0]["EntityType"].as_str(), docs[0]["SourceSystem"].as_str()), (Some("customer"), Some("crm")));
        assert_eq!(cw["Metrics"][0]["Unit"], "Percent");
        assert_eq!(m.totals()["RecordsMatched"], 2.0);
    }

    /// The review SLA's EMF document: both dimension sets, every value a named metric with its
    /// unit and a member of the document (the EMF specification's rules).
    #[test]
    fn an_entity_document_follows_the_embedded_metric_format() {
        let m = Metrics::new("MdmHub", "steward");
        let doc = m.entity_document(
            1_700_000_000_000,
            "customer",
            &[("OpenReviews", "Count", 3.0), ("OldestReviewAgeSeconds", "Seconds", 120.0)],
        );
        assert_eq!(doc["_aws"]["Timestamp"], 1_700_000_000_000i64);
        let cw = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(cw["Namespace"], "MdmHub");
        assert_eq!(cw["Dimensions"], serde_json::json!([["Function", "EntityType"], ["Function"]]));
        assert_eq!((doc["Function"].as_str(), doc["EntityType"].as_str()), (Some("steward"), Some("customer")));
        for def in cw["Metrics"].as_array().expect("metrics") {
            let name = def["Name"].as_str().expect("name");
            assert!(doc[name].is_number(), "{name} is a member");
            assert!(["Count", "Seconds"].contains(&def["Unit"].as_str().expect("unit")));
        }
        assert_eq!(doc["OldestReviewAgeSeconds"], 120.0);
    }
}
