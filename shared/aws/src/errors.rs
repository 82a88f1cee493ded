//! Describing AWS SDK errors for logs and error messages: the operation and the service's error
//! code only. The SDK's `Debug` output can carry request and response details; a code cannot
//! carry attribute values.

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};

pub fn describe<E: ProvideErrorMetadata, R>(op: &str, e: &SdkError<E, R>) -> String {
    let what = match e {
        SdkError::ServiceError(_) => e.code().unwrap_or("service error"),
        SdkError::TimeoutError(_) => "timeout",
        SdkError::DispatchFailure(_) => "dispatch failure (endpoint unreachable?)",
        SdkError::ResponseError(_) => "unreadable response",
        SdkError::ConstructionFailure(_) => "request construction failed",
        _ => "unknown error",
    };
    format!("{op}: {what}")
}
