//! Capacity in a crunch: when AWS has no capacity of a kind in a zone (as
//! in the rush a regional failover causes), the step's alternatives are
//! tried in order, each refusal said in the step's outputs or error and in
//! the log; none is a permanent failure, since AWS adds capacity within
//! minutes, so the step's retry policy tries the whole list again.

use std::future::Future;

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::aws_error::{HasStatus, classify};
use crate::engine::ActionError;

/// The error codes by which EC2 and RDS say they have no capacity of the
/// requested kind where it was asked for.
pub const CAPACITY_CODES: &[&str] = &[
    "InsufficientInstanceCapacity",
    "InsufficientHostCapacity",
    "InsufficientDBInstanceCapacity",
];

/// Why one attempt did not get its resource.
#[derive(Debug)]
pub enum Refusal {
    /// AWS has no capacity for this attempt: the next one may.
    NoCapacity(String),
    /// Anything else: the attempts stop here.
    Failed(ActionError),
}

/// An SDK error as a [`Refusal`]; `what` names the call and resource.
pub fn refusal<E, R>(what: &str, err: SdkError<E, R>) -> Refusal
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + HasStatus + 'static,
{
    let capacity = err
        .as_service_error()
        .and_then(|e| e.code())
        .is_some_and(|code| CAPACITY_CODES.contains(&code));
    let e = classify(what, err);
    if capacity {
        Refusal::NoCapacity(e.message)
    } else {
        Refusal::Failed(e)
    }
}

/// A creating call's answer as one attempt's outcome; `what` names the
/// call and resource.
pub async fn answer<T, E, R>(
    what: String,
    answer: impl Future<Output = Result<T, SdkError<E, R>>>,
) -> Result<T, Refusal>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + HasStatus + 'static,
{
    answer.await.map_err(|e| refusal(&what, e))
}

impl From<ActionError> for Refusal {
    fn from(e: ActionError) -> Refusal {
        Refusal::Failed(e)
    }
}

/// What came of trying the options in order.
#[derive(Debug)]
pub struct Placed<T, P> {
    /// What the attempt that worked gave.
    pub value: T,
    /// The option it used.
    pub option: P,
    /// Each earlier attempt's refusal, in order.
    pub refused: Vec<String>,
}

/// Try `attempt` with each of `options` in turn (the step's own first),
/// going on to the next only when AWS has no capacity; `resource` names
/// what is being created or started, for the error when none worked.
pub async fn first_with_capacity<T, P, F, Fut>(
    resource: &str,
    options: &[P],
    mut attempt: F,
) -> Result<Placed<T, P>, ActionError>
where
    P: Clone,
    F: FnMut(usize, P) -> Fut,
    Fut: Future<Output = Result<T, Refusal>>,
{
    let mut refused = Vec::new();
    for (i, option) in options.iter().enumerate() {
        match attempt(i, option.clone()).await {
            Ok(value) => {
                return Ok(Placed {
                    value,
                    option: option.clone(),
                    refused,
                });
            }
            Err(Refusal::NoCapacity(why)) => {
                tracing::warn!(
                    resource,
                    attempt = i + 1,
                    of = options.len(),
                    "no capacity: {why}"
                );
                refused.push(why);
            }
            Err(Refusal::Failed(mut e)) => {
                if !refused.is_empty() {
                    e.message =
                        format!("{} (after no capacity: {})", e.message, refused.join("; "));
                }
                return Err(e);
            }
        }
    }
    let next = if options.len() > 1 {
        "none of its alternatives had capacity either"
    } else {
        "the step gives no `alternatives` (other instance types or zones) to try"
    };
    Err(ActionError::retryable(format!(
        "no capacity for {resource}: {}; {next}",
        refused.join("; ")
    )))
}

#[cfg(test)]
mod tests {
    use super::{Refusal, first_with_capacity};
    use crate::engine::{ActionError, FailureKind};

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(f)
    }

    #[test]
    fn options_are_tried_in_order_until_one_has_capacity() {
        let options = ["m5.large", "m5a.large", "m6i.large"];
        let mut tried = Vec::new();
        let placed = block_on(first_with_capacity("app", &options, |i, o| {
            tried.push(o);
            async move {
                if i < 2 {
                    Err(Refusal::NoCapacity(format!("none of {o}")))
                } else {
                    Ok(o.len())
                }
            }
        }))
        .expect("the third has capacity");
        assert_eq!(tried, options);
        assert_eq!(placed.option, "m6i.large");
        assert_eq!(placed.refused, ["none of m5.large", "none of m5a.large"]);

        let err = block_on(first_with_capacity(
            "instance app-1",
            &options[..1],
            |_, o| async move { Err::<(), _>(Refusal::NoCapacity(format!("none of {o}"))) },
        ))
        .expect_err("no capacity anywhere");
        assert_eq!(err.kind, FailureKind::Retryable, "capacity comes back");
        assert_eq!(
            err.message,
            "no capacity for instance app-1: none of m5.large; the step gives no `alternatives` (other instance types or zones) to try"
        );

        let mut calls = 0;
        let err = block_on(first_with_capacity("app", &options, |i, _| {
            calls += 1;
            async move {
                if i == 0 {
                    Err::<(), _>(Refusal::NoCapacity("none here".into()))
                } else {
                    Err(Refusal::Failed(ActionError::permanent("bad type")))
                }
            }
        }))
        .expect_err("another error stops the attempts");
        assert_eq!(calls, 2);
        assert_eq!(err.kind, FailureKind::Permanent);
        assert_eq!(err.message, "bad type (after no capacity: none here)");
    }
}
