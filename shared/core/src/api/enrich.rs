//! `POST /v1/enrich`: an order's customer and product references → canonical golden ids and
//! chosen attributes. Identifiers resolve through lookup items read in batches (claims for SKU
//! and GTIN, cross-references for source keys), then the golden records in batches, then any
//! merged-into pointers — no per-line read. A line that cannot be resolved is answered in its
//! place with a reason; only a malformed order as a whole is refused.

use super::scoring::probe_record;
use super::{ApiError, ApiRequest, ApiResponse};
use crate::blocking::block_keys;
use crate::golden::{GoldenRecord, GoldenStatus};
use crate::hub::Hub;
use crate::keys::SourceKey;
use crate::matching::MatchDecision;
use crate::store::{Lookup, LookupStore, Store};
use serde_json::{json, Map, Value};
use std::collections::{BTreeSet, HashMap};

/// Most lines in one order.
pub const MAX_LINES: usize = 100;
/// Most names in `fields=`.
pub const MAX_FIELDS: usize = 50;
pub const CUSTOMER: &str = "customer";
pub const PRODUCT: &str = "product";

/// Why one reference could not be resolved (code and message; no input values).
#[derive(Debug, Clone, PartialEq)]
struct Reason {
    code: &'static str,
    message: String,
    details: Option<Value>,
}

fn reason(code: &'static str, message: impl Into<String>) -> Reason {
    Reason { code, message: message.into(), details: None }
}

/// Where one reference (the customer, or a line) stands while the order resolves.
#[derive(Debug, Clone)]
enum Slot {
    Lookup(Lookup, &'static str),
    Golden(String),
    Failed(Reason),
}

/// The claim key of an identifier attribute's value, as a NEW golden record claimed it.
fn claim_key<S: Store>(hub: &Hub<S>, attribute: &str, value: &str) -> Result<String, Reason> {
    let record = probe_record(hub, &json!(PRODUCT), &json!({ attribute: value }), None)
        .map_err(|e| reason("invalid_reference", e.message))?;
    if record.invalid.contains(attribute) {
        return Err(reason("invalid_identifier", format!("the {attribute} fails validation")));
    }
    let schema = hub.registry().get(PRODUCT).ok_or_else(|| reason("not_resolvable", "no product entity type"))?;
    let prefix = format!("{attribute}.");
    block_keys(schema, &record)
        .into_iter()
        .find(|k| k.claim && k.name.starts_with(&prefix) && !k.name.contains('+'))
        .map(|k| k.key())
        .ok_or_else(|| reason("not_resolvable", format!("the product schema declares no claim key on {attribute}")))
}

fn string_field<'a>(obj: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, Reason> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.trim())),
        Some(_) => Err(reason("invalid_reference", format!("'{name}' must be a non-empty string"))),
    }
}

fn source_slot(entity: &'static str, obj: &Map<String, Value>) -> Result<Slot, Reason> {
    match (string_field(obj, "system")?, string_field(obj, "sourceId")?) {
        (Some(system), Some(id)) => {
            Ok(Slot::Lookup(Lookup::Source(SourceKey::new(entity, system.to_lowercase(), id)), "source key"))
        }
        _ => Err(reason("invalid_reference", "a source reference needs both 'system' and 'sourceId'")),
    }
}

async fn customer_slot<S: Store>(hub: &Hub<S>, value: &Value) -> Slot {
    let Some(obj) = value.as_object() else {
        return Slot::Failed(reason("invalid_reference", "'customer' must be an object"));
    };
    if let Some(attributes) = obj.get("attributes") {
        let record = match probe_record(hub, &json!(CUSTOMER), attributes, None) {
            Ok(r) => r,
            Err(e) => return Slot::Failed(Reason { code: e.code, message: e.message, details: None }),
        };
        return match hub.match_record(&record).await {
            Ok(r) => match r.decision {
                MatchDecision::Link { golden_ids } if !golden_ids.is_empty() => Slot::Golden(golden_ids[0].clone()),
                MatchDecision::Review { golden_ids } => Slot::Failed(Reason {
                    code: "ambiguous",
                    message: "the attributes match more than one customer only possibly; a steward decides".into(),
                    details: Some(json!({"candidateGoldenIds": golden_ids})),
                }),
                _ => Slot::Failed(reason("no_match", "no customer matches these attributes")),
            },
            Err(e) => Slot::Failed(reason("unavailable", format!("matching failed: {}", ApiError::from(e).message))),
        };
    }
    source_slot(CUSTOMER, obj).unwrap_or_else(Slot::Failed)
}

fn line_slot<S: Store>(hub: &Hub<S>, value: &Value) -> Slot {
    let Some(obj) = value.as_object() else {
        return Slot::Failed(reason("invalid_reference", "a line must be an object"));
    };
    let kinds = ["sku", "gtin", "sourceId"].iter().filter(|k| obj.get(**k).is_some_and(|v| !v.is_null())).count();
    if kinds != 1 {
        return Slot::Failed(reason(
            "invalid_reference",
            "a line needs exactly one of 'sku', 'gtin', or 'system' with 'sourceId'",
        ));
    }
    let resolved = if obj.contains_key("sourceId") {
        source_slot(PRODUCT, obj)
    } else {
        let attribute = if obj.get("sku").is_some_and(|v| !v.is_null()) { "sku" } else { "gtin" };
        string_field(obj, attribute).and_then(|v| {
            let v = v.ok_or_else(|| reason("invalid_reference", format!("'{attribute}' is empty")))?;
            let key = claim_key(hub, attribute, v)?;
            Ok(Slot::Lookup(Lookup::Claim { entity: PRODUCT.into(), key }, attribute))
        })
    };
    resolved.unwrap_or_else(Slot::Failed)
}

fn parse_fields<S: Store>(hub: &Hub<S>, req: &ApiRequest) -> Result<Option<BTreeSet<String>>, ApiError> {
    let Some(text) = req.query.get("fields") else { return Ok(None) };
    let names: BTreeSet<String> = text.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect();
    if names.is_empty() || names.len() > MAX_FIELDS {
        return Err(ApiError::bad_request(
            "invalid_parameter",
            format!("'fields' must name 1 to {MAX_FIELDS} attributes"),
        )
        .with_detail(json!({"parameter": "fields"})));
    }
    let known =
        |n: &str| [CUSTOMER, PRODUCT].iter().any(|e| hub.registry().get(e).is_some_and(|s| s.attribute(n).is_some()));
    if let Some(bad) = names.iter().find(|n| !known(n)) {
        return Err(ApiError::bad_request("unknown_field", "'fields' names an attribute no customer or product has")
            .with_detail(json!({"parameter": "fields", "field": bad})));
    }
    Ok(Some(names))
}

/// Follows merged-into pointers for every slot holding a golden id, one batched read per hop;
/// returns the active golden records by id.
async fn load_goldens<S: Store + LookupStore>(
    hub: &Hub<S>,
    slots: &mut [(&'static str, Slot)],
) -> Result<HashMap<String, GoldenRecord>, ApiError> {
    let mut active: HashMap<String, GoldenRecord> = HashMap::new();
    for _ in 0..=hub.config().max_pointer_hops {
        let wanted: BTreeSet<(String, String)> = slots
            .iter()
            .filter_map(|(e, s)| match s {
                Slot::Golden(id) if !active.contains_key(id) => Some(((*e).to_owned(), id.clone())),
                _ => None,
            })
            .collect();
        if wanted.is_empty() {
            return Ok(active);
        }
        let refs: Vec<(String, String)> = wanted.into_iter().collect();
        let found: HashMap<String, GoldenRecord> =
            hub.store().get_golden_refs(&refs).await?.into_iter().map(|g| (g.golden_id.clone(), g)).collect();
        for (_, slot) in slots.iter_mut() {
            let Slot::Golden(id) = slot else { continue };
            if active.contains_key(id) {
                continue;
            }
            *slot = match found.get(id) {
                None => {
                    Slot::Failed(reason("not_found", "the reference points at a golden record that does not exist"))
                }
                Some(g) => match &g.status {
                    GoldenStatus::Active => {
                        active.insert(id.clone(), g.clone());
                        continue;
                    }
                    GoldenStatus::MergedInto { survivor } => Slot::Golden(survivor.clone()),
                    GoldenStatus::Erased => Slot::Failed(reason("erased", "the golden record was erased")),
                },
            };
        }
    }
    for (_, slot) in slots.iter_mut() {
        if matches!(slot, Slot::Golden(id) if !active.contains_key(id)) {
            *slot = Slot::Failed(reason("unavailable", "too many merged-into pointers to follow; retry shortly"));
        }
    }
    Ok(active)
}

fn render(
    slot: &Slot,
    entity: &str,
    goldens: &HashMap<String, GoldenRecord>,
    fields: Option<&BTreeSet<String>>,
) -> Value {
    match slot {
        Slot::Golden(id) => match goldens.get(id) {
            Some(g) => {
                let attributes: Map<String, Value> = g
                    .attributes
                    .iter()
                    .filter(|(k, _)| fields.is_none_or(|f| f.contains(k.as_str())))
                    .map(|(k, a)| (k.to_string(), json!(a.value)))
                    .collect();
                json!({"entityType": entity, "goldenId": g.golden_id, "version": g.version, "attributes": attributes})
            }
            None => {
                json!({"error": {"code": "not_found", "message": "the golden record does not exist", "details": []}})
            }
        },
        Slot::Failed(r) => {
            let details = r.details.clone().map_or_else(|| json!([]), |d| json!([d]));
            json!({"error": {"code": r.code, "message": r.message, "details": details}})
        }
        Slot::Lookup(..) => json!({"error": {"code": "unavailable", "message": "not resolved", "details": []}}),
    }
}

pub async fn enrich<S: Store + LookupStore>(
    hub: &Hub<S>,
    body: &Value,
    req: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    let obj =
        body.as_object().ok_or_else(|| ApiError::bad_request("invalid_body", "the body must be a JSON object"))?;
    if let Some(k) = obj.keys().find(|k| !["orderId", "customer", "lines"].contains(&k.as_str())) {
        return Err(
            ApiError::bad_request("unknown_field", format!("unknown field '{k}'")).with_detail(json!({"field": k}))
        );
    }
    let order_id = match obj.get("orderId") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.len() <= 128 => Some(s.clone()),
        Some(_) => {
            return Err(ApiError::bad_request("invalid_field", "'orderId' must be a string of at most 128 bytes"))
        }
    };
    let lines = match obj.get("lines") {
        None | Some(Value::Null) => &[][..],
        Some(Value::Array(a)) if a.len() <= MAX_LINES => a.as_slice(),
        Some(Value::Array(a)) => {
            return Err(ApiError::new(413, "too_many_lines", format!("at most {MAX_LINES} lines per order"))
                .with_detail(json!({"lines": a.len(), "max": MAX_LINES})))
        }
        Some(_) => return Err(ApiError::bad_request("invalid_field", "'lines' must be an array")),
    };
    let customer = obj.get("customer").filter(|c| !c.is_null());
    if customer.is_none() && lines.is_empty() {
        return Err(ApiError::bad_request("empty_order", "an order needs a customer or at least one line"));
    }
    let fields = parse_fields(hub, req)?;

    // 1. Every reference to a lookup, a golden id, or a reason.
    let mut slots: Vec<(&'static str, Slot)> = Vec::with_capacity(lines.len() + 1);
    if let Some(c) = customer {
        slots.push((CUSTOMER, customer_slot(hub, c).await));
    }
    slots.extend(lines.iter().map(|l| (PRODUCT, line_slot(hub, l))));

    // 2. Identifiers → golden ids, in batches.
    let lookups: Vec<Lookup> = slots
        .iter()
        .filter_map(|(_, s)| if let Slot::Lookup(l, _) = s { Some(l.clone()) } else { None })
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let resolved = if lookups.is_empty() { HashMap::new() } else { hub.store().resolve_lookups(&lookups).await? };
    for (_, slot) in slots.iter_mut() {
        if let Slot::Lookup(l, kind) = slot {
            *slot = match resolved.get(l) {
                Some(g) => Slot::Golden(g.clone()),
                None if matches!(l, Lookup::Source(_)) => {
                    Slot::Failed(reason("unknown_source", "no linked source record has this key"))
                }
                None => Slot::Failed(reason("unknown_identifier", format!("no product is known by this {kind}"))),
            };
        }
    }

    // 3. Golden records (and merged-into pointers), in batches.
    let goldens = load_goldens(hub, &mut slots).await?;

    let has_customer = customer.is_some();
    let mut rendered = slots.iter().map(|(e, s)| render(s, e, &goldens, fields.as_ref()));
    let customer_out = if has_customer { rendered.next().unwrap_or(Value::Null) } else { Value::Null };
    let lines_out: Vec<Value> = rendered
        .enumerate()
        .map(|(i, mut v)| {
            if let Some(o) = v.as_object_mut() {
                o.insert("line".into(), json!(i));
            }
            v
        })
        .collect();
    let unresolved = lines_out.iter().filter(|l| l.get("error").is_some()).count();
    tracing::info!(lines = lines_out.len(), resolved = lines_out.len() - unresolved, unresolved, "order enriched");
    let mut out = json!({"customer": customer_out, "lines": lines_out,
                         "summary": {"lines": lines.len(), "resolved": lines.len() - unresolved, "unresolved": unresolved}});
    if let Some(id) = order_id {
        out["orderId"] = json!(id);
    }
    Ok(ApiResponse::json(200, out))
}
