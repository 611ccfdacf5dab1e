//! Readiness: each bound runbook's preflights, checked on an interval.

use serde::Serialize;
use tracing::{info, warn};

use super::{Daemon, load_bound};
use crate::actions::Registry;
use crate::notify::Event;
use crate::runbook::Mode;

/// What a readiness check of one binding found.
#[derive(Debug, Clone, Serialize)]
pub(super) struct Readiness {
    pub(super) binding: String,
    pub(super) runbook: String,
    pub(super) ready: bool,
    /// The preflights that would fail, or why the runbook did not load.
    pub(super) problems: Vec<String>,
    pub(super) checked_at: String,
    /// The SHA-256 of the runbook's text, when it could be read.
    pub(super) sha256: Option<String>,
}

impl Daemon {
    /// Run every bound runbook's preflight in the background.
    pub(super) fn check_readiness(&mut self) {
        if self.checking_readiness || self.config.bindings.is_empty() {
            return;
        }
        self.checking_readiness = true;
        let bindings = self.config.bindings.clone();
        let registry = Registry::with_aws(self.aws.clone());
        let results = self.readiness_results.clone();
        tokio::spawn(async move {
            let mut found = Vec::new();
            for b in bindings {
                let (runbook, ready, problems, sha256) = match load_bound(&b) {
                    Err(why) => (b.runbook.display().to_string(), false, vec![why], None),
                    Ok((text, loaded)) => {
                        let checks = crate::actions::preflight::check(
                            &registry,
                            &loaded.runbook,
                            Mode::Failover,
                        )
                        .await;
                        let problems: Vec<String> = checks
                            .iter()
                            .filter_map(|c| match &c.readiness {
                                crate::actions::Readiness::WouldFail(why) => {
                                    Some(format!("step `{}` ({}): {why}", c.step, c.action))
                                }
                                _ => None,
                            })
                            .collect();
                        (
                            loaded.runbook.name,
                            problems.is_empty(),
                            problems,
                            Some(crate::engine::sha256_hex(&text)),
                        )
                    }
                };
                found.push(Readiness {
                    binding: b.name,
                    runbook,
                    ready,
                    problems,
                    checked_at: crate::engine::now(),
                    sha256,
                });
            }
            let _ = results.send(found).await;
        });
    }

    /// Readiness results: export them, and tell when a runbook stops (or
    /// starts again) being ready.
    pub(super) fn on_readiness(&mut self, results: Vec<Readiness>) {
        self.checking_readiness = false;
        for r in results {
            self.metrics
                .set_runbook_ready(&r.binding, &r.runbook, r.ready);
            let was = self.readiness.get(&r.binding).map(|p| p.ready);
            if was != Some(r.ready) {
                let (event, summary) = if r.ready {
                    (
                        "runbook-ready",
                        format!("binding `{}`: runbook {} is ready", r.binding, r.runbook),
                    )
                } else {
                    (
                        "runbook-not-ready",
                        format!(
                            "binding `{}`: runbook {} would fail now: {}",
                            r.binding,
                            r.runbook,
                            r.problems.join("; ")
                        ),
                    )
                };
                if r.ready {
                    info!(binding = %r.binding, "{summary}");
                } else {
                    warn!(binding = %r.binding, "{summary}");
                }
                self.notifier.send(Event {
                    event: event.into(),
                    at: r.checked_at.clone(),
                    binding: Some(r.binding.clone()),
                    region: None,
                    run: None,
                    summary,
                    detail: serde_json::to_value(&r).ok(),
                });
            }
            self.readiness.insert(r.binding.clone(), r);
        }
        self.refresh_bindings();
    }
}
