//! Configuration from the environment. Every AWS client honours `AWS_ENDPOINT_URL` (the SDK reads
//! it), so the same code runs against moto, LocalStack or AWS.

use mdm_core::schema::{SchemaError, SchemaRegistry};
use std::collections::HashMap;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is not set")]
    Missing(&'static str),
    #[error(transparent)]
    Schema(#[from] SchemaError),
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
}

impl Settings {
    pub fn from_env() -> Result<Self, ConfigError> {
        let vars: HashMap<String, String> = std::env::vars().collect();
        Self::from_map(&vars)
    }

    pub fn from_map(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let get = |k: &'static str| vars.get(k).filter(|v| !v.is_empty()).cloned().ok_or(ConfigError::Missing(k));
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

/// JSON logs without timestamps (CloudWatch adds them), level from `RUST_LOG`.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_target(false)
        .without_time()
        .try_init();
}
