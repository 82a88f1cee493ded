//! The local stack: resources created on an emulator from the SAM template (by
//! `infra/local/bootstrap.py`), and a runner that plays Lambda's event-source mappings — it polls
//! the queues and the table's stream and calls the real handlers with the events Lambda would send.

pub mod esm;

use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("bootstrap failed: {0}")]
    Bootstrap(String),
    #[error("resources description is not valid: {0}")]
    Resources(#[from] serde_json::Error),
    #[error(transparent)]
    Config(#[from] crate::ConfigError),
    #[error(
        "the handlers were still busy after {limit:?} ({invocations} invocations): work is left queued or in flight"
    )]
    Busy { limit: std::time::Duration, invocations: usize },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resources {
    pub prefix: String,
    pub region: String,
    pub endpoint: Option<String>,
    pub resources: BTreeMap<String, BTreeMap<String, Option<String>>>,
    pub functions: BTreeMap<String, FunctionDef>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionDef {
    pub binary: String,
    pub env: HashMap<String, String>,
    pub event_sources: Vec<EventSource>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all_fields = "camelCase", tag = "type")]
pub enum EventSource {
    #[serde(rename = "sqs")]
    Sqs { name: String, queue_url: String, batch_size: usize, report_batch_item_failures: bool },
    #[serde(rename = "dynamodb")]
    DynamoDb {
        name: String,
        stream_arn: String,
        batch_size: usize,
        maximum_retry_attempts: i64,
        on_failure_queue_url: Option<String>,
        #[serde(default)]
        filters: Vec<serde_json::Value>,
    },
    #[serde(rename = "http")]
    Http {
        name: String,
        method: Option<String>,
        path: Option<String>,
        /// Scopes the route's JWT authorizer requires.
        #[serde(default)]
        scopes: Vec<String>,
    },
}

impl Resources {
    pub fn from_json(text: &str) -> Result<Self, LocalError> {
        Ok(serde_json::from_str(text)?)
    }

    /// Creates every resource of the template on the endpoint in `AWS_ENDPOINT_URL`, names
    /// prefixed with `prefix`, by running `infra/local/bootstrap.py`.
    pub fn bootstrap(prefix: &str) -> Result<Self, LocalError> {
        Self::bootstrap_with(prefix, &[])
    }

    /// [`Resources::bootstrap`] with template parameters (`FileFeeds`, …) other than their defaults.
    pub fn bootstrap_with(prefix: &str, parameters: &[(&str, &str)]) -> Result<Self, LocalError> {
        let root = workspace_root();
        let python = std::env::var("MDM_PYTHON").map(PathBuf::from).unwrap_or_else(|_| root.join(".venv/bin/python"));
        let out = std::process::Command::new(&python)
            .arg(root.join("infra/local/bootstrap.py"))
            .arg("--prefix")
            .arg(prefix)
            .args(parameters.iter().flat_map(|(k, v)| ["--parameter".to_owned(), format!("{k}={v}")]))
            .output()
            .map_err(|e| {
                LocalError::Bootstrap(format!(
                    "cannot run {}: {e} (tests/run and infra/local/demo install it into .venv)",
                    python.display()
                ))
            })?;
        if !out.status.success() {
            return Err(LocalError::Bootstrap(String::from_utf8_lossy(&out.stderr).chars().take(2000).collect()));
        }
        Self::from_json(&String::from_utf8_lossy(&out.stdout))
    }

    /// A resource attribute (`ref`, `Arn`, `QueueUrl`, ...) of a logical id of the template.
    pub fn attr(&self, logical: &str, attr: &str) -> Option<&str> {
        self.resources.get(logical)?.get(attr)?.as_deref()
    }

    /// The environment every function gets (they share the template's Globals).
    /// Every variable any function gets (they share the template's Globals; some add their own),
    /// with the endpoint as `AWS_ENDPOINT_URL`, as the local runner's functions see it.
    pub fn env(&self) -> HashMap<String, String> {
        let mut env = HashMap::new();
        for f in self.functions.values() {
            env.extend(f.env.clone());
        }
        if let Some(endpoint) = &self.endpoint {
            env.insert("AWS_ENDPOINT_URL".into(), endpoint.clone());
        }
        env
    }

    pub fn settings(&self) -> Result<crate::Settings, LocalError> {
        Ok(crate::Settings::from_map(&self.env())?)
    }

    /// The settings of one function (its own environment only), e.g. `mdm-match`.
    pub fn settings_for(&self, binary: &str) -> Result<crate::Settings, LocalError> {
        let mut env = self.function_by_binary(binary).map(|f| f.env.clone()).unwrap_or_default();
        if let Some(endpoint) = &self.endpoint {
            env.insert("AWS_ENDPOINT_URL".into(), endpoint.clone());
        }
        Ok(crate::Settings::from_map(&env)?)
    }

    pub fn function_by_binary(&self, binary: &str) -> Option<&FunctionDef> {
        self.functions.values().find(|f| f.binary == binary)
    }
}

/// An API Gateway HTTP API (payload v2) event, as API Gateway, a function URL or `cargo lambda
/// watch` delivers it. `scopes`: the JWT authorizer's granted scopes (`None`: no authorizer).
pub fn http_event(
    method: &str,
    path: &str,
    query: &str,
    body: Option<&str>,
    scopes: Option<&[&str]>,
) -> serde_json::Value {
    let mut context = serde_json::json!({
        "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "mdm-local"},
        "routeKey": "$default", "stage": "$default", "requestId": "local", "accountId": "123456789012",
        "apiId": "local", "domainName": "localhost", "domainPrefix": "localhost",
        "time": "01/Jan/2026:00:00:00 +0000", "timeEpoch": 0
    });
    if let Some(scopes) = scopes {
        context["authorizer"] = serde_json::json!({"jwt": {"claims": {"scope": scopes.join(" ")}, "scopes": null}});
    }
    serde_json::json!({
        "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": query,
        "headers": {"content-type": "application/json"}, "requestContext": context,
        "body": body, "isBase64Encoded": false
    })
}

/// The workspace root (where `Cargo.toml`, `infra/` and `.venv/` live).
pub fn workspace_root() -> PathBuf {
    if let Ok(root) = std::env::var("MDM_ROOT") {
        return PathBuf::from(root);
    }
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.ancestors().nth(2).map(PathBuf::from).unwrap_or(here)
}

/// The emulator endpoint for tests. `None` (the test is skipped, loudly) unless `AWS_ENDPOINT_URL`
/// is set; with `MDM_REQUIRE_EMULATOR=1` (as `tests/run` sets it) a missing emulator is an error.
pub fn emulator_for_tests() -> Option<String> {
    match std::env::var("AWS_ENDPOINT_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("MDM_REQUIRE_EMULATOR").as_deref() != Ok("1"),
                "MDM_REQUIRE_EMULATOR=1 but AWS_ENDPOINT_URL is not set: start the emulator (tests/run does)"
            );
            eprintln!("SKIPPED: no emulator (set AWS_ENDPOINT_URL, or run tests/run)");
            None
        }
    }
}

/// A short unique prefix for one test's resources.
pub fn unique_prefix(name: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let clean: String = name.chars().filter(|c| c.is_ascii_alphanumeric()).take(16).collect();
    format!("{clean}-{:x}", (nanos as u64) ^ (std::process::id() as u64) << 32)
}
