//! # mdm-aws
//!
//! AWS adapters of the MDM hub (DynamoDB store, SQS queues, EventBridge bus), the Lambda handler
//! logic that the thin `functions/*` binaries wire up, and (feature `local`) the local runner that
//! plays Lambda's event-source mappings against an emulator.

pub mod bus;
pub mod capacity;
pub mod config;
pub mod dynamo;
pub mod errors;
pub mod handlers;
#[cfg(feature = "local")]
pub mod local;
pub mod messages;
pub mod metrics;
pub mod parts;
pub mod recent;
pub mod reindex;
pub mod sqs;

pub use config::{ConfigError, Settings};
pub use dynamo::DynamoStore;
