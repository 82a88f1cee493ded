//! The end of `mdm local demo`: a data steward's day through the steward function's handler —
//! one review decided, one golden record split, one value pinned — each printed before and
//! after.

use mdm_aws::handlers::{steward, Ctx};
use mdm_aws::local::{esm::LocalRunner, http_event, Resources};
use serde_json::{json, Value};
use std::time::Duration;

/// One request to the steward handler (the local stack grants the steward scope and names the
/// local steward as the actor).
async fn call(
    ctx: &Ctx,
    method: &str,
    path: &str,
    query: &str,
    body: Option<Value>,
    if_match: Option<u64>,
) -> (u16, Value) {
    let text = body.map(|b| b.to_string());
    let mut event = http_event(method, path, query, text.as_deref(), None);
    if let Some(v) = if_match {
        event["headers"]["if-match"] = json!(format!("\"{v}\""));
    }
    let out = Box::pin(steward::handle_event(ctx, event)).await;
    let status = out["statusCode"].as_u64().unwrap_or(0) as u16;
    let body = out["body"].as_str().and_then(|b| serde_json::from_str(b).ok()).unwrap_or(Value::Null);
    (status, body)
}

fn members(g: &Value) -> String {
    g["sources"]
        .as_array()
        .map(|s| {
            s.iter().map(|m| format!("{}/{}", m["system"].as_str().unwrap_or(""), m["sourceId"].as_str().unwrap_or("")))
        })
        .map(|m| m.collect::<Vec<_>>().join(", "))
        .unwrap_or_default()
}

pub async fn run(sdk: &aws_config::SdkConfig, res: &Resources, runner: &LocalRunner) -> Result<(), String> {
    let settings = res.settings_for("mdm-steward").map_err(|e| e.to_string())?;
    let ctx = Ctx::new(sdk, settings, "steward").map_err(|e| e.to_string())?;
    println!("\n== A data steward's corrections, through the steward function (actor: the local steward)");

    // 1. The oldest open review: decided `distinct`.
    let (_, page) = call(&ctx, "GET", "/v1/reviews", "entity=customer&limit=1", None, None).await;
    match page["items"].as_array().and_then(|i| i.first()) {
        Some(task) => {
            let id = task["taskId"].as_str().unwrap_or("");
            let record = &task["record"];
            println!(
                "  review {id}: {}/{} (score {:.1}) may be {}",
                record["system"].as_str().unwrap_or(""),
                record["sourceId"].as_str().unwrap_or(""),
                task["score"].as_f64().unwrap_or(0.0),
                task["candidates"][0]["goldenId"].as_str().unwrap_or("")
            );
            let version = task["holder"]["golden"]["version"].as_u64();
            let body = json!({"decision": "distinct", "reason": "demo: different people, checked with the customer"});
            let (status, out) = call(&ctx, "POST", &format!("/v1/reviews/{id}"), "", Some(body), version).await;
            println!(
                "  review resolved: {} ({status}), by {}",
                out["resolution"]["decision"].as_str().unwrap_or("?"),
                out["resolution"]["actor"].as_str().unwrap_or("?")
            );
        }
        None => println!("  no open review"),
    }

    // 2. The customer golden record with the most members: its last member split off.
    let store = ctx.hub.store();
    let mut biggest: Option<mdm_core::GoldenRecord> = None;
    let mut cursor = None;
    loop {
        let (page, next) = store.golden_page(cursor.as_ref(), 200).await.map_err(|e| e.to_string())?;
        for (entity, id) in page.into_iter().filter(|(e, _)| e == "customer") {
            use mdm_core::store::GoldenStore;
            if let Some(g) = store.get_golden(&entity, &id).await.map_err(|e| e.to_string())? {
                if g.is_active() && biggest.as_ref().is_none_or(|b| g.members.len() > b.members.len()) {
                    biggest = Some(g);
                }
            }
        }
        match next {
            Some(n) => cursor = Some(n),
            None => break,
        }
    }
    let Some(g) = biggest.filter(|g| g.members.len() > 1) else {
        println!("  no golden record with two members to split");
        return Ok(());
    };
    let leaving = g.members.last().cloned().ok_or("no member")?;
    println!(
        "  before split: {} v{}  members: {}",
        g.golden_id,
        g.version,
        g.members.iter().map(|m| format!("{}/{}", m.system, m.source_id)).collect::<Vec<_>>().join(", ")
    );
    let body = json!({"sources": [{"system": leaving.system.as_str(), "sourceId": leaving.source_id.as_str()}],
                      "reason": "demo: two people shared this record"});
    let path = format!("/v1/golden/customer/{}/split", g.golden_id);
    let (status, out) = call(&ctx, "POST", &path, "", Some(body), Some(g.version)).await;
    println!(
        "  split ({status}): {} v{}  members: {}",
        out["goldenId"].as_str().unwrap_or("?"),
        out["version"],
        members(&out["golden"])
    );
    println!(
        "                  {} v{}  members: {}  (kept apart from now on)",
        out["splitGoldenId"].as_str().unwrap_or("?"),
        out["splitOff"]["version"],
        members(&out["splitOff"])
    );

    // 3. A value pinned on the record that stayed.
    let version = out["version"].as_u64();
    let before = out["golden"]["attributes"]["locality"].clone();
    let path = format!("/v1/golden/customer/{}/pins/locality", g.golden_id);
    let body = json!({"value": "Leeds", "reason": "demo: confirmed by the customer"});
    let (status, pinned) = call(&ctx, "PUT", &path, "", Some(body), version).await;
    let after = &pinned["golden"]["attributes"]["locality"];
    println!(
        "  pin ({status}): locality {} <- {}/{}  =>  {} <- {}/{}, rule {}",
        before["value"],
        before["source"].as_str().unwrap_or("-"),
        before["sourceId"].as_str().unwrap_or("-"),
        after["value"],
        after["source"].as_str().unwrap_or("-"),
        after["sourceId"].as_str().unwrap_or("-"),
        after["rule"].as_str().unwrap_or("?")
    );

    // Their events, published like every other change.
    runner.run_until_idle(Duration::from_secs(120)).await.map_err(|e| e.to_string())?;
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let events =
        super::demo::drain_subscriber(&sqs, res.attr("ExampleSubscriberQueue", "QueueUrl").unwrap_or_default()).await?;
    let mut per_type: std::collections::BTreeMap<String, usize> = Default::default();
    for e in &events {
        *per_type.entry(e["detail-type"].as_str().unwrap_or("?").to_owned()).or_default() += 1;
    }
    println!("  events of the corrections: {per_type:?}");
    Ok(())
}
