//! Lambda: a custom step run as a function. Invoked synchronously with the
//! step's payload and lifeboat's context (run, step, mode) in the client
//! context; its result is the step's output, its function error the
//! step's error.
//!
//! An invocation's effect cannot be observed afterwards, so it is never
//! repeated blindly: the SDK does not retry it (its client has retries
//! off), an answer that never came (a timeout, a dropped connection) is a
//! permanent error saying the function may have run, and a resumed run
//! does not invoke again unless the step is `repeatable`. A throttled or
//! refused invocation did not run, and the step's retry may try again.

use aws_sdk_lambda::error::SdkError;
use aws_sdk_lambda::types::{InvocationType, LogType};
use aws_smithy_types::Blob;

use super::aws_error::classify;
use super::region_of;
use crate::aws::AwsClients;
use crate::catalogue::lambda::Invoke;
use crate::engine::{ActionError, Outputs, StepContext};

/// Lifeboat's context for the function (`context.client_context.custom`
/// in the function), base64 JSON as Lambda takes it.
fn client_context(ctx: &StepContext) -> String {
    let context = serde_json::json!({
        "custom": {
            "lifeboat_run": ctx.run_id,
            "lifeboat_step": ctx.step_id,
            "lifeboat_mode": ctx.mode.as_str(),
        }
    });
    aws_smithy_types::base64::encode(context.to_string())
}

/// The error a function reported, from its payload (`errorType`,
/// `errorMessage`, as Lambda's runtimes write them).
pub(crate) fn function_error(kind: &str, result: &serde_json::Value) -> String {
    let field = |k: &str| result.get(k).and_then(serde_json::Value::as_str);
    match (field("errorType"), field("errorMessage")) {
        (Some(t), Some(m)) => format!("{kind} {t}: {m}"),
        (None, Some(m)) => format!("{kind}: {m}"),
        _ => format!("{kind}: {result}"),
    }
}

/// The last lines of the function's log Lambda returned (base64, its last
/// 4 KB), decoded.
fn log_tail(encoded: Option<&str>) -> Option<String> {
    let bytes = aws_smithy_types::base64::decode(encoded?).ok()?;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    (!text.is_empty()).then_some(text)
}

/// Invoke `function` (with `qualifier`) as `w` says.
async fn call(
    aws: &AwsClients,
    ctx: &StepContext,
    function: &str,
    qualifier: Option<&str>,
    w: &Invoke,
) -> Result<Outputs, ActionError> {
    let region = region_of(ctx)?;
    let payload = serde_json::to_vec(w.payload.as_ref().unwrap_or(&serde_json::json!({})))
        .map_err(|e| ActionError::permanent(format!("payload: {e}")))?;
    let remaining = ctx
        .deadline
        .saturating_duration_since(tokio::time::Instant::now())
        .max(std::time::Duration::from_secs(1));
    let named = match qualifier {
        Some(q) => format!("{function}:{q}"),
        None => function.to_string(),
    };
    let answer = aws
        .lambda(region, remaining)
        .invoke()
        .function_name(function)
        .set_qualifier(qualifier.map(str::to_string))
        .invocation_type(InvocationType::RequestResponse)
        .log_type(LogType::Tail)
        .client_context(client_context(ctx))
        .payload(Blob::new(payload))
        .send()
        .await;
    let out = match answer {
        Ok(out) => out,
        Err(
            SdkError::TimeoutError(_) | SdkError::ResponseError(_) | SdkError::DispatchFailure(_),
        ) => {
            return Err(ActionError::permanent(format!(
                "Invoke {named} in {region}: no answer within the step's deadline; the function may have run, so lifeboat does not invoke it again (make the step `repeatable` if running it twice is safe)"
            )));
        }
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            return Err(ActionError::permanent(format!(
                "no Lambda function {named} in {region}"
            )));
        }
        Err(e) => return Err(classify(&format!("Invoke {named} in {region}"), e)),
    };
    let body = out.payload().map(Blob::as_ref).unwrap_or_default();
    let result = serde_json::from_slice::<serde_json::Value>(body)
        .unwrap_or_else(|_| serde_json::json!(String::from_utf8_lossy(body)));
    let log = log_tail(out.log_result());
    if let Some(kind) = out.function_error() {
        let mut message = format!(
            "Lambda function {named} in {region} failed: {}",
            function_error(kind, &result)
        );
        if let Some(log) = &log {
            message.push_str(&format!("\nlog tail:\n{}", log.trim_end()));
        }
        return Err(ActionError::permanent(message));
    }
    Ok(Outputs::from([
        ("function".to_string(), serde_json::json!(named)),
        (
            "status_code".to_string(),
            serde_json::json!(out.status_code()),
        ),
        (
            "executed_version".to_string(),
            serde_json::json!(out.executed_version()),
        ),
        ("result".to_string(), result),
        ("log_tail".to_string(), serde_json::json!(log)),
    ]))
}

/// `lambda.invoke`.
pub(super) async fn invoke(
    aws: &AwsClients,
    ctx: &StepContext,
    w: &Invoke,
) -> Result<Outputs, ActionError> {
    call(aws, ctx, &w.function, w.qualifier.as_deref(), w).await
}

/// `lambda.invoke` in a drill: its `drill_function` (which names its own
/// alias, if any), or `None` when it has none.
pub(super) async fn drill_invoke(
    aws: &AwsClients,
    ctx: &StepContext,
    w: &Invoke,
) -> Option<Result<Outputs, ActionError>> {
    let function = w.drill_function.as_deref()?;
    Some(call(aws, ctx, function, None, w).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_function_error_reads_as_its_type_and_message() {
        let result = serde_json::json!({
            "errorType": "ValueError",
            "errorMessage": "the replica is not caught up",
            "stackTrace": []
        });
        assert_eq!(
            function_error("Unhandled", &result),
            "Unhandled ValueError: the replica is not caught up"
        );
        assert_eq!(
            function_error("Handled", &serde_json::json!("plain")),
            "Handled: \"plain\""
        );
    }

    #[test]
    fn the_log_tail_is_decoded() {
        let encoded = aws_smithy_types::base64::encode("START\nEND\n");
        assert_eq!(log_tail(Some(&encoded)).as_deref(), Some("START\nEND\n"));
        assert_eq!(log_tail(None), None);
    }
}
