//! `with` blocks of the generic actions (no AWS service).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::duration::HumanDuration;

/// `wait`: do nothing for a while.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Wait {
    /// How long.
    pub duration: HumanDuration,
}

/// `exec`: run a command with arguments and an environment, without a shell.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Exec {
    /// The program and its arguments.
    pub argv: Vec<String>,
    /// Extra environment variables.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Kill the command after this long; default: the step's timeout.
    pub timeout: Option<HumanDuration>,
}

impl Exec {
    pub(super) fn check(&self) -> Vec<String> {
        if self.argv.first().is_none_or(|p| p.is_empty()) {
            vec!["`argv` must start with the program to run".into()]
        } else {
            Vec::new()
        }
    }
}

/// `http.wait_healthy`: poll a URL until it answers as expected.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WaitHealthy {
    /// The URL to poll (`http://` or `https://`).
    pub url: String,
    /// In a drill, the URL polled instead: the drill stack's (its record
    /// or its instances, often `${steps.<id>.outputs.<key>}`). A drill
    /// without one polls nothing and measures no RTO.
    pub drill_url: Option<String>,
    /// Expected HTTP status.
    #[serde(default = "ok")]
    pub status: u16,
    /// Text the body must contain.
    pub body_contains: Option<String>,
    /// Time between polls.
    #[serde(default = "five_seconds")]
    pub interval: HumanDuration,
}

impl WaitHealthy {
    pub(super) fn check(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for (field, url) in [
            ("url", Some(&self.url)),
            ("drill_url", self.drill_url.as_ref()),
        ] {
            if let Some(url) = url
                && !(url.starts_with("http://") || url.starts_with("https://"))
            {
                problems.push(format!(
                    "`{field}` must start with http:// or https://, found `{url}`"
                ));
            }
        }
        if !(100..=599).contains(&self.status) {
            problems.push(format!("`status` {} is not an HTTP status", self.status));
        }
        if self.interval.get().is_zero() {
            problems.push("`interval` must be above zero".into());
        }
        problems
    }
}

/// `notify`: POST a message to a webhook.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Notify {
    /// Webhook URL (a secret: never printed).
    pub webhook: String,
    /// The message.
    pub message: String,
}

/// What a `manual.approval` step does when nobody answers in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnTimeout {
    /// The step fails (and the step's `on_failure` applies).
    Fail,
    /// The step succeeds as if approved.
    Continue,
}

/// `manual.approval`: pause until a human approves or rejects.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Approval {
    /// What the approver is asked.
    pub prompt: String,
    /// How long to wait for an answer.
    pub timeout: HumanDuration,
    /// What happens when nobody answers in time.
    #[serde(default = "fail")]
    pub on_timeout: OnTimeout,
}

fn ok() -> u16 {
    200
}

fn five_seconds() -> HumanDuration {
    HumanDuration::from_secs(5)
}

fn fail() -> OnTimeout {
    OnTimeout::Fail
}
