//! `wait` and `exec`.

use std::process::Stdio;

use tokio::time::Instant;

use super::Readiness;
use crate::catalogue::ActionInput;
use crate::catalogue::generic::{Exec, Notify, Wait, WaitHealthy};
use crate::engine::{ActionError, Outputs, StepContext};

/// Most bytes of a command's output kept in the journal (the end of it).
const OUTPUT_TAIL_BYTES: usize = 4096;

pub(super) async fn wait(w: &Wait) -> Result<Outputs, ActionError> {
    tokio::time::sleep(w.duration.get()).await;
    Ok(Outputs::new())
}

pub(super) fn describe_wait(w: &Wait) -> Vec<String> {
    vec![format!("wait {}", w.duration)]
}

fn tail(bytes: &[u8]) -> String {
    let start = bytes.len().saturating_sub(OUTPUT_TAIL_BYTES);
    String::from_utf8_lossy(&bytes[start..]).into_owned()
}

pub(super) async fn exec(ctx: &StepContext, e: &Exec) -> Result<Outputs, ActionError> {
    let Some((program, args)) = e.argv.split_first() else {
        return Err(ActionError::permanent("`argv` is empty"));
    };
    let mut command = tokio::process::Command::new(program);
    command
        .args(args)
        .envs(&e.env)
        .env("LIFEBOAT_RUN_ID", &ctx.run_id)
        .env("LIFEBOAT_STEP_ID", &ctx.step_id)
        .env("LIFEBOAT_MODE", ctx.mode.as_str())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(region) = &ctx.region {
        command.env("AWS_REGION", region);
    }
    let child = command
        .spawn()
        .map_err(|err| ActionError::permanent(format!("cannot start `{program}`: {err}")))?;
    let limit = e
        .timeout
        .map_or(ctx.deadline, |t| Instant::now() + t.get())
        .min(ctx.deadline);
    let output = match tokio::time::timeout_at(limit, child.wait_with_output()).await {
        Ok(result) => {
            result.map_err(|err| ActionError::permanent(format!("`{program}`: {err}")))?
        }
        Err(_) => {
            return Err(ActionError::permanent(format!(
                "`{program}` did not finish in time and was killed{}",
                e.timeout
                    .map_or(String::new(), |t| format!(" (its timeout is {t})"))
            )));
        }
    };
    let stdout = tail(&output.stdout);
    let stderr = tail(&output.stderr);
    match output.status.code() {
        Some(0) => Ok(Outputs::from([
            ("exit_code".to_string(), serde_json::json!(0)),
            ("stdout".to_string(), serde_json::json!(stdout)),
            ("stderr".to_string(), serde_json::json!(stderr)),
        ])),
        Some(code) => Err(ActionError::permanent(format!(
            "`{program}` exited with status {code}: {}",
            stderr.trim()
        ))),
        None => Err(ActionError::permanent(format!(
            "`{program}` was killed by a signal"
        ))),
    }
}

pub(super) fn describe_exec(ctx: &StepContext, e: &Exec) -> Vec<String> {
    let mut env: Vec<String> = e.env.keys().map(|k| format!("{k}=…")).collect();
    env.push(format!("LIFEBOAT_MODE={}", ctx.mode));
    vec![format!("run {:?} with {}", e.argv, env.join(" "))]
}

fn http_client(timeout: std::time::Duration) -> Result<reqwest::Client, ActionError> {
    reqwest::Client::builder()
        .timeout(timeout)
        .build()
        .map_err(|e| ActionError::permanent(format!("cannot build an HTTP client: {e}")))
}

/// `http.wait_healthy`: poll the URL until it answers the expected status
/// (and body text), within the step's deadline.
pub(super) async fn wait_healthy(
    ctx: &StepContext,
    w: &WaitHealthy,
) -> Result<Outputs, ActionError> {
    let per_request = w.interval.get().clamp(
        std::time::Duration::from_secs(1),
        std::time::Duration::from_secs(10),
    );
    let client = http_client(per_request)?;
    let mut polls = 0u32;
    loop {
        polls += 1;
        let last = match client.get(&w.url).send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let body = response.text().await.unwrap_or_default();
                let body_ok = w
                    .body_contains
                    .as_ref()
                    .is_none_or(|text| body.contains(text.as_str()));
                if status == w.status && body_ok {
                    return Ok(Outputs::from([
                        ("status".to_string(), serde_json::json!(status)),
                        ("polls".to_string(), serde_json::json!(polls)),
                    ]));
                }
                if body_ok {
                    format!("answered {status}, expected {}", w.status)
                } else {
                    format!("answered {status} without the expected text")
                }
            }
            Err(e) => format!("no answer: {e}"),
        };
        if Instant::now() + w.interval.get() >= ctx.deadline {
            return Err(ActionError::permanent(format!(
                "{} not healthy by the step's deadline after {polls} poll(s); last: {last}",
                w.url
            )));
        }
        tokio::time::sleep(w.interval.get()).await;
    }
}

/// `notify`: POST a JSON message (Slack-compatible `text`) to the webhook.
/// The webhook URL is a secret: errors never include it.
pub(super) async fn notify(ctx: &StepContext, n: &Notify) -> Result<Outputs, ActionError> {
    let client = http_client(std::time::Duration::from_secs(10))?;
    let text = if ctx.mode == crate::runbook::Mode::Drill {
        format!("[DRILL] {}", n.message)
    } else {
        n.message.clone()
    };
    let body = serde_json::json!({
        "text": text,
        "run_id": ctx.run_id,
        "step_id": ctx.step_id,
        "mode": ctx.mode.as_str(),
    });
    let response = client
        .post(&n.webhook)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| ActionError::retryable(format!("webhook unreachable: {}", e.without_url())))?;
    let status = response.status();
    if status.is_success() {
        Ok(Outputs::from([(
            "status".to_string(),
            serde_json::json!(status.as_u16()),
        )]))
    } else if status.is_server_error() || status.as_u16() == 429 {
        Err(ActionError::retryable(format!("webhook answered {status}")))
    } else {
        Err(ActionError::permanent(format!("webhook answered {status}")))
    }
}

/// Whether a generic action could run now. Nothing is sent: the webhook is
/// not called and the URL not polled (the endpoint a failover brings up is
/// expected to be down before it).
pub(super) fn preflight(ctx: &StepContext, input: &ActionInput) -> Readiness {
    match input {
        ActionInput::Exec(e) => match e.argv.first() {
            None => Readiness::WouldFail("`argv` is empty".to_string()),
            Some(program) => match find_program(program) {
                Some(path) => Readiness::Ready(format!("`{program}` is {}", path.display())),
                None => Readiness::WouldFail(format!(
                    "`{program}` is not an executable file{}",
                    if program.contains('/') {
                        String::new()
                    } else {
                        " on PATH".to_string()
                    }
                )),
            },
        },
        ActionInput::Notify(n) => match reqwest::Url::parse(&n.webhook) {
            Ok(url) if ["https", "http"].contains(&url.scheme()) => Readiness::Ready(format!(
                "the webhook is an {} URL (not called)",
                url.scheme()
            )),
            // Never echo the URL: it is a secret.
            _ => Readiness::WouldFail("the webhook is not an http(s) URL".to_string()),
        },
        ActionInput::HttpWaitHealthy(w) => Readiness::Unchecked(format!(
            "{} is polled during the run, when it is expected to come up",
            w.url
        )),
        ActionInput::Wait(_) | ActionInput::ManualApproval(_) => {
            Readiness::Ready("needs nothing".to_string())
        }
        other => Readiness::Unchecked(format!(
            "`{}` is not a generic action (step {})",
            other.kind(),
            ctx.step_id
        )),
    }
}

/// The executable `program` names: a path, or a file found on `PATH`.
fn find_program(program: &str) -> Option<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &std::path::Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        let path = std::path::PathBuf::from(program);
        return executable(&path).then_some(path);
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|p| executable(p))
}
