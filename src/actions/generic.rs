//! `wait` and `exec`.

use std::process::Stdio;

use tokio::time::Instant;

use crate::catalogue::generic::{Exec, Wait};
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
