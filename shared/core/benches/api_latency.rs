//! In-process latency of the read API (`mdm_core::api::handle`, the code the Lambda runs) over the
//! in-process store holding N golden records: GET golden record, xref, match, and a 100-line
//! enrich. Prints p50 / p99 / max per route. Figures in docs/benchmarks.md.
//!
//!     cargo bench -p mdm-core --bench api_latency [-- GOLDENS]     (default 100000)
use mdm_core::api::{self, scope, ApiRequest};
use mdm_core::scenario;
use mdm_core::store::memory::MemoryStore;
use mdm_core::{Hub, HubConfig, SchemaRegistry};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A small deterministic generator (no dependency): xorshift64*.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n as u64) as usize
    }
}

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "{name:<24} n={:<6} p50 {:>8.1} µs   p99 {:>8.1} µs   max {:>8.1} µs",
        samples.len(),
        us(at(0.50)),
        us(at(0.99)),
        us(*samples.last().unwrap_or(&Duration::ZERO))
    );
}

async fn time(hub: &Hub<MemoryStore>, reqs: &[ApiRequest], expect: u16) -> Vec<Duration> {
    let mut out = Vec::with_capacity(reqs.len());
    for r in reqs {
        let t = Instant::now();
        let resp = api::handle(hub, r).await;
        out.push(t.elapsed());
        assert_eq!(resp.status, expect, "{} {}: {:?}", r.method, r.path, resp.body);
    }
    out
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let n: u64 = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(100_000);
    let registry = Arc::new(SchemaRegistry::built_in().expect("schemas"));
    // Seeding needs neither history nor events; reads do not depend on them.
    let config = HubConfig { keep_history: false, emit_events: false, ..HubConfig::default() };
    let hub = Hub::new(registry, MemoryStore::new()).with_config(config);
    let t = Instant::now();
    let (customers, products) = (n / 2, n - n / 2);
    for i in 0..customers {
        scenario::feed(&hub, &scenario::customer("crm", i)).await.expect("customer");
    }
    let mut product_ids = Vec::with_capacity(products as usize);
    for i in 0..products {
        product_ids
            .push(scenario::feed(&hub, &scenario::product("erp", i)).await.expect("product").golden_id().to_owned());
    }
    let counts = hub.store().counts();
    println!(
        "seeded {} active golden records ({customers} customers, {products} products) in {:.1} s",
        counts.goldens_active,
        t.elapsed().as_secs_f64()
    );
    assert_eq!(counts.goldens_active as u64, n, "every record is its own golden record");

    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let read = |method: &str, path: String| ApiRequest::new(method, &path).with_scopes([scope::READ]);
    let golden: Vec<ApiRequest> = (0..20_000)
        .map(|_| read("GET", format!("/v1/golden/product/{}", product_ids[rng.below(product_ids.len())])))
        .collect();
    let xref: Vec<ApiRequest> = (0..20_000)
        .map(|_| read("GET", format!("/v1/xref/customer/crm/C-{}", rng.below(customers as usize))))
        .collect();
    let matches: Vec<ApiRequest> = (0..5_000)
        .map(|_| {
            let i = rng.below(customers as usize);
            let c = scenario::customer("probe", i as u64);
            read("POST", "/v1/match".into())
                .with_json(&json!({"entityType": "customer", "attributes": c["attributes"]}))
        })
        .collect();
    let enrich: Vec<ApiRequest> = (0..2_000)
        .map(|_| {
            let lines: Vec<_> = (0..100)
                .map(|k| {
                    let i = rng.below(products as usize);
                    match k % 3 {
                        0 => json!({"sku": format!("SKU-{i:06}")}),
                        1 => json!({"gtin": scenario::gtin13(i as u64)}),
                        _ => json!({"system": "erp", "sourceId": format!("P-{i}")}),
                    }
                })
                .collect();
            let customer = json!({"system": "crm", "sourceId": format!("C-{}", rng.below(customers as usize))});
            read("POST", "/v1/enrich".into()).with_json(&json!({"customer": customer, "lines": lines}))
        })
        .collect();

    // Warm up once, then measure.
    time(&hub, &golden[..1000], 200).await;
    report("GET /v1/golden", time(&hub, &golden, 200).await);
    report("GET /v1/xref", time(&hub, &xref, 200).await);
    report("POST /v1/match", time(&hub, &matches, 200).await);
    report("POST /v1/enrich (100)", time(&hub, &enrich, 200).await);
}
