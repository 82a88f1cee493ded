//! Configuration from the environment. Every AWS client honours `AWS_ENDPOINT_URL` (the SDK reads
//! it), so the same code runs against moto, LocalStack or AWS.

use mdm_core::schema::{SchemaError, SchemaRegistry};
use std::collections::{BTreeSet, HashMap};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is not set")]
    Missing(&'static str),
    #[error(transparent)]
    Schema(#[from] SchemaError),
    #[error("environment variable {0} has an invalid value (expected {1})")]
    Invalid(&'static str, &'static str),
    #[error("MDM_FILE_FEEDS: {0}")]
    Feeds(mdm_core::files::FileError),
}

/// Names and URLs of the hub's resources, as the SAM template passes them to every function.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub table: String,
    pub match_queue_url: String,
    pub merge_queue_url: String,
    pub ingest_dlq_url: String,
    pub match_dlq_url: String,
    pub merge_dlq_url: String,
    pub event_bus: String,
    pub metrics_namespace: String,
    /// Load entity schemas from this folder instead of the built-in set.
    pub schemas_dir: Option<String>,
    /// Scopes every HTTP caller is granted on the local stack, where function URLs carry no
    /// JWT (`MDM_LOCAL_SCOPES`, comma- or space-separated). Honoured only when every AWS endpoint
    /// variable that is set (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_<SERVICE>`) names this machine
    /// (an emulator), so a deployed function never trusts it.
    pub local_scopes: Option<BTreeSet<String>>,
    /// The caller's identity on the local stack (`MDM_LOCAL_PRINCIPAL`, default `local-steward`),
    /// honoured with [`Settings::local_scopes`] only: the actor steward actions record.
    pub local_principal: Option<String>,
    /// The erasure queue (requests accepted over HTTP or from `ErasureRequested` events) and its DLQ.
    pub erasure_queue_url: String,
    pub erasure_dlq_url: String,
    /// Secrets of the suppression markers' keyed hashes, newest first (`MDM_SUPPRESSION_SECRETS`,
    /// comma-separated). Markers are written with the first and checked under every one.
    pub suppression_secrets: Vec<Vec<u8>>,
    /// The source systems each principal may write (`MDM_SOURCE_GRANTS`, from the template's
    /// `SourceGrants`: `principal=system|system;…`), besides `mdm/write:{system}` scopes.
    pub source_grants: std::collections::BTreeMap<String, BTreeSet<String>>,
    /// `MDM_SUPPRESSION_MODE`: `reject` (default) or `hold` a record of an erased subject.
    pub suppression_mode: mdm_core::SuppressionMode,
    /// Bulk files (the files function's variables; empty for the others).
    pub files: FileSettings,
}

/// The files function's settings (docs/files.md).
#[derive(Debug, Clone, Default)]
pub struct FileSettings {
    /// `MDM_FILES_BUCKET`: where files are dropped and reports written.
    pub bucket: Option<String>,
    /// `MDM_FILES_QUEUE_URL`: the function's own queue (a file that needs another invocation
    /// sends its notification there again).
    pub queue_url: Option<String>,
    /// `MDM_FILES_DLQ_URL`.
    pub dlq_url: Option<String>,
    /// `MDM_FILE_FEEDS`: per entity type and source system, the columns of its files.
    pub feeds: mdm_core::files::feed::Feeds,
    /// `MDM_FILE_RETENTION_DAYS`: 0 (default) deletes a file once its report is written; more
    /// leaves it to the bucket's lifecycle rule.
    pub retention_days: u32,
    /// `MDM_FILE_ROWS_PER_INVOCATION`: rows one invocation reads before handing the file on (by
    /// default, as many as its time allows).
    pub rows_per_invocation: Option<u64>,
}

impl FileSettings {
    fn from_map(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let opt = |k: &str| vars.get(k).map(|v| v.trim()).filter(|v| !v.is_empty()).map(str::to_owned);
        Ok(Self {
            bucket: opt("MDM_FILES_BUCKET"),
            queue_url: opt("MDM_FILES_QUEUE_URL"),
            dlq_url: opt("MDM_FILES_DLQ_URL"),
            feeds: mdm_core::files::feed::Feeds::parse(vars.get("MDM_FILE_FEEDS").map_or("", String::as_str))
                .map_err(ConfigError::Feeds)?,
            retention_days: match opt("MDM_FILE_RETENTION_DAYS") {
                None => 0,
                Some(v) => {
                    v.parse().map_err(|_| ConfigError::Invalid("MDM_FILE_RETENTION_DAYS", "a number of days"))?
                }
            },
            rows_per_invocation: match opt("MDM_FILE_ROWS_PER_INVOCATION") {
                None => None,
                Some(v) => Some(
                    v.parse::<u64>()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or(ConfigError::Invalid("MDM_FILE_ROWS_PER_INVOCATION", "a positive number"))?,
                ),
            },
        })
    }
}

/// Whether an endpoint URL names this machine (`localhost`, `127.x.x.x`, `[::1]`): the host the
/// client would connect to, parsed as a URL (so `http://localhost@remote` is `remote`).
pub fn is_loopback(endpoint: &str) -> bool {
    let Ok(url) = url::Url::parse(endpoint.trim()) else { return false };
    if !matches!(url.scheme(), "http" | "https") {
        return false;
    }
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// The endpoint variables the AWS SDK reads: the general one and the per-service ones
/// (`AWS_ENDPOINT_URL_SQS`, …).
fn endpoint_vars(vars: &HashMap<String, String>) -> impl Iterator<Item = (&String, &String)> {
    vars.iter().filter(|(k, v)| {
        (k.as_str() == "AWS_ENDPOINT_URL" || k.starts_with("AWS_ENDPOINT_URL_")) && !v.trim().is_empty()
    })
}

/// The local scopes, when every endpoint variable that is set names this machine (and one is).
fn local_scopes(vars: &HashMap<String, String>) -> Option<BTreeSet<String>> {
    let scopes = vars.get("MDM_LOCAL_SCOPES").filter(|v| !v.trim().is_empty())?;
    let mut endpoints = endpoint_vars(vars).peekable();
    let local = endpoints.peek().is_some() && endpoints.all(|(_, url)| is_loopback(url));
    if !local {
        tracing::warn!("MDM_LOCAL_SCOPES is set but an AWS endpoint variable is not a local emulator: ignored");
        return None;
    }
    Some(mdm_core::api::scope::from_claim(scopes))
}

impl Settings {
    pub fn from_env() -> Result<Self, ConfigError> {
        let vars: HashMap<String, String> = std::env::vars().collect();
        Self::from_map(&vars)
    }

    pub fn from_map(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let get = |k: &'static str| vars.get(k).filter(|v| !v.is_empty()).cloned().ok_or(ConfigError::Missing(k));
        let scopes = local_scopes(vars);
        Ok(Self {
            table: get("MDM_TABLE_NAME")?,
            match_queue_url: get("MDM_MATCH_QUEUE_URL")?,
            merge_queue_url: get("MDM_MERGE_QUEUE_URL")?,
            ingest_dlq_url: get("MDM_INGEST_DLQ_URL")?,
            match_dlq_url: get("MDM_MATCH_DLQ_URL")?,
            merge_dlq_url: get("MDM_MERGE_DLQ_URL")?,
            event_bus: get("MDM_EVENT_BUS_NAME")?,
            metrics_namespace: get("MDM_METRICS_NAMESPACE").unwrap_or_else(|_| "MdmHub".into()),
            schemas_dir: vars.get("MDM_SCHEMAS_DIR").filter(|v| !v.is_empty()).cloned(),
            local_principal: scopes.as_ref().map(|_| {
                vars.get("MDM_LOCAL_PRINCIPAL")
                    .filter(|v| !v.trim().is_empty())
                    .cloned()
                    .unwrap_or_else(|| "local-steward".into())
            }),
            local_scopes: scopes,
            erasure_queue_url: get("MDM_ERASURE_QUEUE_URL")?,
            erasure_dlq_url: get("MDM_ERASURE_DLQ_URL")?,
            suppression_secrets: vars
                .get("MDM_SUPPRESSION_SECRETS")
                .map(|v| v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(|s| s.as_bytes().to_vec()).collect())
                .unwrap_or_default(),
            source_grants: mdm_core::api::scope::parse_grants(vars.get("MDM_SOURCE_GRANTS").map_or("", String::as_str)),
            suppression_mode: match vars.get("MDM_SUPPRESSION_MODE").map(|v| v.trim()) {
                None | Some("") | Some("reject") => mdm_core::SuppressionMode::Reject,
                Some("hold") => mdm_core::SuppressionMode::Hold,
                Some(_) => return Err(ConfigError::Invalid("MDM_SUPPRESSION_MODE", "reject or hold")),
            },
            files: FileSettings::from_map(vars)?,
        })
    }

    pub fn registry(&self) -> Result<SchemaRegistry, ConfigError> {
        Ok(match &self.schemas_dir {
            Some(dir) => SchemaRegistry::from_dir(std::path::Path::new(dir))?,
            None => SchemaRegistry::built_in()?,
        })
    }
}

/// The shared SDK configuration (region, credentials, endpoint from the environment).
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await
}

/// Crates whose debug and trace output can hold request or response bodies (attribute values,
/// keys): capped at INFO whatever `RUST_LOG` says, so no log level leaks personal data.
pub const BODY_LOGGING_TARGETS: [&str; 8] =
    ["aws_smithy", "aws_sdk", "aws_config", "hyper", "h2", "rustls", "lambda_runtime", "lambda_http"];

/// The handlers' log subscriber: JSON lines with the current span, no timestamps (CloudWatch
/// adds them), levels from `filter` (`RUST_LOG` syntax), the body-logging crates capped at INFO.
pub fn log_subscriber<W>(filter: &str, writer: W) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::Layer;
    let levels =
        tracing_subscriber::EnvFilter::try_new(filter).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let cap = tracing_subscriber::filter::filter_fn(|meta| {
        *meta.level() <= tracing::Level::INFO || !BODY_LOGGING_TARGETS.iter().any(|t| meta.target().starts_with(t))
    });
    let json = tracing_subscriber::fmt::layer()
        .json()
        .with_current_span(true)
        .with_target(false)
        .without_time()
        .with_writer(writer)
        .with_filter(cap);
    tracing_subscriber::registry().with(levels).with(json)
}

/// Installs [`log_subscriber`] on stdout with the level from `RUST_LOG` (default `info`).
pub fn init_tracing() {
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into());
    let _ = log_subscriber(&filter, std::io::stdout).try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        let base = [
            ("MDM_TABLE_NAME", "t"),
            ("MDM_MATCH_QUEUE_URL", "q"),
            ("MDM_MERGE_QUEUE_URL", "q"),
            ("MDM_INGEST_DLQ_URL", "q"),
            ("MDM_MATCH_DLQ_URL", "q"),
            ("MDM_MERGE_DLQ_URL", "q"),
            ("MDM_EVENT_BUS_NAME", "b"),
            ("MDM_ERASURE_QUEUE_URL", "q"),
            ("MDM_ERASURE_DLQ_URL", "q"),
        ];
        base.iter().chain(pairs).map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn local_scopes_only_on_a_local_endpoint() {
        let scopes = ("MDM_LOCAL_SCOPES", "mdm/read mdm/write");
        for local in ["http://127.0.0.1:5000", "http://localhost:4566/", "http://[::1]:5000"] {
            let s = Settings::from_map(&vars(&[scopes, ("AWS_ENDPOINT_URL", local)])).expect("settings");
            assert_eq!(s.local_scopes.map(|s| s.len()), Some(2), "{local}");
        }
        for remote in
            ["", "https://dynamodb.us-east-1.amazonaws.com", "http://127.0.0.1.evil.example", "http://10.0.0.1"]
        {
            let s = Settings::from_map(&vars(&[scopes, ("AWS_ENDPOINT_URL", remote)])).expect("settings");
            assert_eq!(s.local_scopes, None, "{remote:?} is not local");
        }
        let s = Settings::from_map(&vars(&[])).expect("settings");
        assert_eq!(s.local_scopes, None);
        // Userinfo and look-alike hosts: the host is what the client connects to.
        for remote in ["http://localhost:1@real-host.example", "http://127.0.0.1@10.0.0.1:4566", "localhost", "http://"]
        {
            let s = Settings::from_map(&vars(&[scopes, ("AWS_ENDPOINT_URL", remote)])).expect("settings");
            assert_eq!(s.local_scopes, None, "{remote:?} is not local");
        }
        // Every endpoint variable that is set must be local: a per-service one may point away.
        let away = ("AWS_ENDPOINT_URL_DYNAMODB", "https://dynamodb.eu-west-1.amazonaws.com");
        let s = Settings::from_map(&vars(&[scopes, ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"), away]))
            .expect("settings");
        assert_eq!(s.local_scopes, None, "a per-service endpoint points at AWS");
        // LocalStack for SQS and EventBridge beside moto for DynamoDB: local throughout.
        let split = [
            scopes,
            ("AWS_ENDPOINT_URL_SQS", "http://localhost:4566"),
            ("AWS_ENDPOINT_URL_EVENTBRIDGE", "http://localhost:4566"),
            ("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:5000"),
        ];
        let s = Settings::from_map(&vars(&split)).expect("settings");
        assert_eq!(s.local_scopes.map(|s| s.len()), Some(2), "per-service endpoints, all local");
    }
}
