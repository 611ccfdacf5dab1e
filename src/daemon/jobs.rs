//! Scheduled work: verification jobs and drills on their cron schedules.

use std::time::Duration;

use tracing::{error, info, warn};

use super::Daemon;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::notify::Event;
use crate::runbook::Mode;
use crate::trigger::DAEMON;

/// What runs on a schedule.
#[derive(Debug, Clone)]
pub(super) enum Work {
    /// A verification job.
    Verify(crate::verify::JobSpec),
    /// A drill of a binding's runbook.
    Drill(String),
}

/// Work on its schedule.
pub(super) struct Scheduled {
    pub(super) work: Work,
    pub(super) schedule: crate::verify::Schedule,
    pub(super) next: Option<jiff::Timestamp>,
    /// A verification job still running (drills are tracked as runs).
    pub(super) running: bool,
}

impl Scheduled {
    pub(super) fn job_name(&self) -> Option<&str> {
        match &self.work {
            Work::Verify(job) => Some(&job.name),
            Work::Drill(_) => None,
        }
    }
}

/// The scheduled work of `config`: verification jobs and binding drills
/// that have a schedule.
pub(super) fn scheduled(config: &Config, metrics: &Metrics, running: &[String]) -> Vec<Scheduled> {
    let now = jiff::Timestamp::now();
    let jobs = config.jobs.iter().filter_map(|job| {
        let schedule =
            crate::verify::Schedule::parse(job.schedule.as_deref()?, job.timezone.as_deref())
                .ok()?;
        if let Some(every) = schedule.interval(now) {
            metrics.set_verify_interval(&job.name, every.as_secs_f64());
        }
        Some(Scheduled {
            next: schedule.next_after(now),
            running: running.contains(&job.name),
            work: Work::Verify(job.clone()),
            schedule,
        })
    });
    let drills = config.bindings.iter().filter_map(|b| {
        let d = b.drill.as_ref()?;
        let schedule = crate::verify::Schedule::parse(&d.schedule, d.timezone.as_deref()).ok()?;
        Some(Scheduled {
            next: schedule.next_after(now),
            running: false,
            work: Work::Drill(b.name.clone()),
            schedule,
        })
    });
    jobs.chain(drills).collect()
}

impl Daemon {
    /// How long until the next scheduled job is due.
    pub(super) fn until_next_job(&self) -> Duration {
        let now = jiff::Timestamp::now();
        self.jobs
            .iter()
            .filter_map(|j| j.next)
            .min()
            .map_or(Duration::from_secs(3600), |next| {
                next.duration_since(now)
                    .try_into()
                    .unwrap_or(Duration::ZERO)
            })
    }

    /// Start the work that is due; skip (and count) what is still running.
    pub(super) fn run_due_jobs(&mut self) {
        // With a shared journal only the leader runs scheduled work.
        let executes = self.executes();
        let now = jiff::Timestamp::now();
        let mut drills = Vec::new();
        for j in &mut self.jobs {
            if j.next.is_none_or(|next| next > now) {
                continue;
            }
            j.next = j.schedule.next_after(now);
            if !executes {
                continue;
            }
            let job = match &j.work {
                Work::Drill(binding) => {
                    drills.push(binding.clone());
                    continue;
                }
                Work::Verify(job) => job.clone(),
            };
            if j.running {
                self.metrics.count_verify_skipped(&job.name);
                warn!(job = %job.name, "verification due while its previous run is still going: skipped");
                continue;
            }
            j.running = true;
            let (aws, results) = (self.aws.clone(), self.verify_results.clone());
            tokio::spawn(async move {
                let result = crate::verify::run(&aws, &job).await;
                let _ = results.send(result).await;
            });
        }
        for name in drills {
            let Some(binding) = self.binding(&name) else {
                continue;
            };
            let drilling = self.runs.iter().any(|(id, t)| {
                t.binding.as_deref() == Some(name.as_str())
                    && self.journal.run(id).is_ok_and(|r| r.run.mode == "drill")
            });
            if drilling {
                warn!(binding = %name, "scheduled drill skipped: the previous drill is still running");
                continue;
            }
            let _ = self.start(&binding, Mode::Drill, DAEMON, "scheduled drill", None);
        }
    }

    /// A job ended: journal, export and, on failure, notify.
    pub(super) fn on_verified(&mut self, result: crate::verify::JobResult) {
        if let Some(j) = self
            .jobs
            .iter_mut()
            .find(|j| j.job_name() == Some(result.job.as_str()))
        {
            j.running = false;
        }
        self.metrics.record_verification(
            &result.job,
            result.ok,
            result.duration_s,
            &result.restores,
        );
        self.metrics.record_api_calls(self.aws.calls());
        match serde_json::to_value(&result) {
            Ok(value) => {
                if let Err(e) = self.journal.record_verification(
                    &result.job,
                    &result.started_at,
                    result.ok,
                    &value,
                ) {
                    error!(job = %result.job, error = %e, "cannot journal the verification");
                }
            }
            Err(e) => error!(job = %result.job, error = %e, "verification result"),
        }
        if result.ok {
            info!(job = %result.job, checks = result.checks.len(), "verification passed");
            return;
        }
        let failed: Vec<String> = result
            .checks
            .iter()
            .filter(|c| !c.ok)
            .map(|c| format!("{} {}: {}", c.resource, c.check, c.detail))
            .collect();
        warn!(job = %result.job, failed = ?failed, "verification failed");
        self.notifier.send(Event {
            event: "verification-failed".into(),
            at: crate::engine::now(),
            binding: None,
            region: None,
            run: None,
            summary: format!("verification {} failed: {}", result.job, failed.join("; ")),
            detail: serde_json::to_value(&result).ok(),
        });
    }
}
