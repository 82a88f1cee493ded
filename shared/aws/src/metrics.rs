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

    /// Prints the pending counters as one EMF line (unless `MDM_EMF=off`).
    pub fn flush(&self) {
        if let Some(doc) = self.take_document(mdm_core::time::now_ms()) {
            if self.emit {
                println!("{doc}");
            }
        }
    }
}
