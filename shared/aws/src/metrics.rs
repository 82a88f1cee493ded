//! CloudWatch Embedded Metric Format: counters per invocation, printed as one JSON line that
//! CloudWatch turns into metrics (namespace from `MDM_METRICS_NAMESPACE`, dimension `Function`).
//! Counters are also kept in-process (cumulative) for the local runner's summary.

use std::collections::BTreeMap;
use std::sync::Mutex;

pub struct Metrics {
    namespace: String,
    function: &'static str,
    pending: Mutex<BTreeMap<&'static str, f64>>,
    totals: Mutex<BTreeMap<&'static str, f64>>,
    emit: bool,
}

impl Metrics {
    pub fn new(namespace: impl Into<String>, function: &'static str) -> Self {
        let emit = std::env::var("MDM_EMF").as_deref() != Ok("off");
        Self { namespace: namespace.into(), function, pending: Mutex::default(), totals: Mutex::default(), emit }
    }

    pub fn add(&self, name: &'static str, value: f64) {
        if let Ok(mut p) = self.pending.lock() {
            *p.entry(name).or_default() += value;
        }
        if let Ok(mut t) = self.totals.lock() {
            *t.entry(name).or_default() += value;
        }
    }

    pub fn incr(&self, name: &'static str) {
        self.add(name, 1.0);
    }

    /// Cumulative counters since start.
    pub fn totals(&self) -> BTreeMap<&'static str, f64> {
        self.totals.lock().map(|t| t.clone()).unwrap_or_default()
    }

    /// The EMF document for the pending counters (and clears them).
    pub fn take_document(&self, now_ms: i64) -> Option<serde_json::Value> {
        let values = std::mem::take(&mut *self.pending.lock().ok()?);
        if values.is_empty() {
            return None;
        }
        let defs: Vec<serde_json::Value> = values
            .keys()
            .map(|k| {
                let unit = if k.ends_with("Ms") { "Milliseconds" } else { "Count" };
                serde_json::json!({"Name": k, "Unit": unit})
            })
            .collect();
        let mut doc = serde_json::json!({
            "_aws": {"Timestamp": now_ms, "CloudWatchMetrics": [{
                "Namespace": self.namespace, "Dimensions": [["Function"]], "Metrics": defs}]},
            "Function": self.function,
        });
        for (k, v) in values {
            doc[k] = serde_json::json!(v);
        }
        Some(doc)
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

    /// Prints the pending counters as one EMF line (unless `MDM_EMF=off`).
    pub fn flush(&self) {
        if let Some(doc) = self.take_document(mdm_core::time::now_ms()) {
            if self.emit {
                println!("{doc}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Metrics;

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
