//! The requests a step makes, counted by name where they are sent (the AWS
//! clients count each attempt of each request here), so the journal can
//! say what each attempt of each step called. The engine scopes each
//! attempt; it never looks at what the names mean.

use std::collections::BTreeMap;
use std::sync::Arc;

/// Requests by name (`Service.Operation`), made within one scope.
pub type CallLog = BTreeMap<String, u64>;

tokio::task_local! {
    static CALL_LOG: Arc<std::sync::Mutex<CallLog>>;
}

/// Run `fut`, and return with its output every request it made (each
/// attempt of each), by name: what one attempt of one step called.
pub async fn logging_calls<F: std::future::Future>(fut: F) -> (F::Output, CallLog) {
    let log = Arc::new(std::sync::Mutex::new(CallLog::new()));
    let out = CALL_LOG.scope(Arc::clone(&log), fut).await;
    let calls = log.lock().map(|l| l.clone()).unwrap_or_default();
    (out, calls)
}

/// `fut`, logging its calls where the current task logs them: for tasks an
/// action spawns, whose requests are still the action's.
pub fn same_call_log<F: std::future::Future>(
    fut: F,
) -> impl std::future::Future<Output = F::Output> {
    let log = CALL_LOG.try_with(Arc::clone).ok();
    async move {
        match log {
            Some(log) => CALL_LOG.scope(log, fut).await,
            None => fut.await,
        }
    }
}

/// Count one request named `name` in the current task's scope, if any.
pub fn count(name: &str) {
    let _ = CALL_LOG.try_with(|log| {
        if let Ok(mut log) = log.lock() {
            *log.entry(name.to_string()).or_default() += 1;
        }
    });
}
