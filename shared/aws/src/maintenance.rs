//! Table walks for maintenance tools (`mdm reindex`): golden records page by page, and a job's
//! checkpoint item. Live paths never walk the table; these do, by nature, with `Scan`.

use super::*;

/// A position in a walk of the table: the last key of a page.
pub type Cursor = (String, String);

/// The checkpoint of a maintenance job.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobState {
    pub cursor: Option<Cursor>,
    pub done: bool,
    /// Counters, by name.
    pub counts: BTreeMap<String, u64>,
}

fn job_key(kind: &str, run: &str) -> Item {
    HashMap::from([("pk".into(), s(keys::compose("JOB", &[kind, run]))), ("sk".into(), s(META))])
}

impl DynamoStore {
    /// Up to about `limit` golden records (entity, id) after `cursor`, in table order, with the
    /// cursor to go on from (`None` at the end). A `Scan` page filtered to golden records.
    pub async fn golden_page(
        &self,
        cursor: Option<&Cursor>,
        limit: usize,
    ) -> Result<(Vec<(String, String)>, Option<Cursor>), StoreError> {
        self.count(&self.counts.scan);
        meter().request("Scan");
        let start = cursor.map(|(pk, sk)| HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))]));
        let resp = self
            .client
            .scan()
            .table_name(&self.table)
            .filter_expression("#k = :g")
            .expression_attribute_names("#k", "kind")
            .expression_attribute_values(":g", s("golden"))
            .projection_expression("pk, sk")
            .limit(limit.clamp(1, 1000) as i32)
            .set_exclusive_start_key(start)
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable("Scan"))?;
        let mut out = Vec::new();
        for item in resp.items() {
            let pk = item.get("pk").and_then(|v| v.as_s().ok()).map(String::as_str).unwrap_or("");
            if let Some((entity, id)) = pk.strip_prefix("GOLD#").and_then(|rest| rest.split_once('#')) {
                out.push((keys::decode_part(entity), keys::decode_part(id)));
            }
        }
        let next = resp.last_evaluated_key.and_then(|k| {
            let get = |n: &str| k.get(n).and_then(|v| v.as_s().ok()).cloned();
            Some((get("pk")?, get("sk")?))
        });
        Ok((out, next))
    }

    /// A job's checkpoint (a new job's is empty).
    pub async fn job_state(&self, kind: &str, run: &str) -> Result<JobState, StoreError> {
        let Some(item) = self.get(job_key(kind, run), true).await? else { return Ok(JobState::default()) };
        let get = |n: &str| item.get(n).and_then(|v| v.as_s().ok()).cloned();
        let cursor = get("cursor_pk").zip(get("cursor_sk"));
        let done = item.get("done").and_then(|v| v.as_bool().ok()).copied().unwrap_or(false);
        let counts = match item.get("counts") {
            Some(AttributeValue::M(m)) => {
                m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_n().ok()?.parse().ok()?))).collect()
            }
            _ => BTreeMap::new(),
        };
        Ok(JobState { cursor, done, counts })
    }

    /// Stores a job's checkpoint.
    pub async fn save_job_state(&self, kind: &str, run: &str, state: &JobState) -> Result<(), StoreError> {
        let mut attrs = vec![
            ("kind", s("job")),
            ("done", AttributeValue::Bool(state.done)),
            ("counts", AttributeValue::M(state.counts.iter().map(|(k, v)| (k.clone(), n(*v))).collect())),
        ];
        if let Some((pk, sk)) = &state.cursor {
            attrs.push(("cursor_pk", s(pk)));
            attrs.push(("cursor_sk", s(sk)));
        }
        self.set_attributes(job_key(kind, run), attrs).await
    }
}
