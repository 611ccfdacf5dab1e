//! SDK errors as action errors: retryable or permanent, with the service's
//! own code and message and the resource concerned.

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::engine::ActionError;

/// Error codes AWS services use for throttling and transient trouble.
const RETRYABLE_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "ProvisionedThroughputExceededException",
    "SlowDown",
    "PriorRequestNotComplete",
    "InternalError",
    "InternalFailure",
    "ServiceUnavailable",
    "RequestTimeout",
    "RequestTimeoutException",
    "IDPCommunicationError",
];

/// Classify an SDK error: throttling, 5xx, timeouts and connection errors
/// are retryable; anything else (bad input, not found, denied) is not.
/// `what` names the call and resource, e.g. "StartInstances i-123 in us-west-2".
pub fn classify<E, R>(what: &str, err: SdkError<E, R>) -> ActionError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + HasStatus + 'static,
{
    let retryable = match &err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or_default();
            RETRYABLE_CODES.contains(&code) || service.raw().status_code() >= 500
        }
        _ => false,
    };
    let message = match &err {
        SdkError::ServiceError(service) => {
            let e = service.err();
            match (e.code(), e.message()) {
                (Some(code), message) => {
                    format!("{what}: {} ({code})", message.unwrap_or("no message"))
                }
                // No error document the SDK could read: say what came back.
                (None, _) => format!(
                    "{what}: HTTP {} with no error code",
                    service.raw().status_code()
                ),
            }
        }
        other => format!("{what}: {}", causes(other)),
    };
    if retryable {
        ActionError::retryable(message)
    } else {
        ActionError::permanent(message)
    }
}

pub use crate::diag::causes;

/// A describe or get call's answer, with the service's "no such resource"
/// error (told by `absent`) as `Ok(None)`: how actions observe whether
/// something exists.
pub fn found<T, E, R>(
    what: &str,
    answer: Result<T, SdkError<E, R>>,
    absent: impl Fn(&E) -> bool,
) -> Result<Option<T>, ActionError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + HasStatus + 'static,
{
    match answer {
        Ok(out) => Ok(Some(out)),
        Err(e) if e.as_service_error().is_some_and(&absent) => Ok(None),
        Err(e) => Err(classify(what, e)),
    }
}

/// A raw response's HTTP status.
pub trait HasStatus {
    /// The status code.
    fn status_code(&self) -> u16;
}

impl HasStatus for aws_smithy_runtime_api::http::Response {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn causes_read_as_a_sentence_without_the_debug_dump() {
        #[derive(Debug)]
        struct Layer(&'static str, Option<Box<Layer>>);
        impl std::fmt::Display for Layer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.0)
            }
        }
        impl std::error::Error for Layer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                self.1.as_deref().map(|l| l as _)
            }
        }
        let chain = Layer(
            "dispatch failure",
            Some(Box::new(Layer(
                "other: no credentials found",
                Some(Box::new(Layer("no credentials found", None))),
            ))),
        );
        assert_eq!(
            super::causes(&chain),
            "dispatch failure: other: no credentials found"
        );
    }
}
