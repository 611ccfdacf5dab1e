//! The engine driven by fake actions: scheduling, retries, deadlines,
//! failure policies, cancellation, approvals and resume.

use std::collections::HashMap;
use std::sync::Mutex;

use super::*;
use crate::journal::{Access, NewRun, RequestKind};
use crate::runbook::{MissingParams, load};

/// What a fake step does on each attempt.
#[derive(Clone)]
enum Behaviour {
    /// Succeed after this long, returning these outputs.
    Ok(Duration, Outputs),
    /// Fail this many times with this kind, then succeed.
    FailFirst(u32, FailureKind),
    /// Never finish.
    Hang,
    /// Fail permanently the first time, then never finish.
    FailThenHang,
}

#[derive(Default)]
struct Fake {
    behaviour: HashMap<String, Behaviour>,
    calls: Mutex<Vec<Call>>,
    /// What reading the recovery point finds (unset: the trait's default).
    reading: Option<RecoveryReading>,
}

#[derive(Clone, Debug)]
struct Call {
    step: String,
    attempt: u32,
    resumed: bool,
    start: Instant,
    end: Option<Instant>,
    input: String,
    expected: Option<Expected>,
}

impl Fake {
    fn with(mut self, step: &str, b: Behaviour) -> Self {
        self.behaviour.insert(step.into(), b);
        self
    }

    fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    fn calls_of(&self, step: &str) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.step == step)
            .collect()
    }
}

impl Actions for Fake {
    fn supports(&self, _: ActionKind) -> bool {
        true
    }

    fn run<'a>(
        &'a self,
        ctx: &'a StepContext,
        input: &'a ActionInput,
    ) -> BoxFuture<'a, Result<Outputs, ActionError>> {
        Box::pin(async move {
            let index = {
                let mut calls = self.calls.lock().unwrap();
                calls.push(Call {
                    step: ctx.step_id.clone(),
                    attempt: ctx.attempt,
                    resumed: ctx.resumed,
                    start: Instant::now(),
                    end: None,
                    input: serde_json::to_string(input).unwrap(),
                    expected: ctx.expected,
                });
                calls.len() - 1
            };
            let behaviour = self
                .behaviour
                .get(&ctx.step_id)
                .cloned()
                .unwrap_or(Behaviour::Ok(Duration::from_millis(10), Outputs::new()));
            let result = match behaviour {
                Behaviour::Ok(d, outputs) => {
                    tokio::time::sleep(d).await;
                    Ok(outputs)
                }
                Behaviour::FailFirst(n, kind) => {
                    let failures = self.calls_of(&ctx.step_id).len() as u32;
                    if failures <= n {
                        Err(ActionError {
                            kind,
                            message: format!("fake failure {failures}"),
                        })
                    } else {
                        Ok(Outputs::new())
                    }
                }
                Behaviour::Hang => std::future::pending().await,
                Behaviour::FailThenHang => {
                    if self.calls_of(&ctx.step_id).len() == 1 {
                        Err(ActionError::permanent("fake failure"))
                    } else {
                        std::future::pending().await
                    }
                }
            };
            self.calls.lock().unwrap()[index].end = Some(Instant::now());
            result
        })
    }

    fn describe(&self, _: &StepContext, _: &ActionInput) -> Vec<String> {
        Vec::new()
    }

    fn read_recovery_point<'a>(
        &'a self,
        ctx: &'a StepContext,
        region: Option<&'a str>,
        source: &'a crate::runbook::RecoveryPoint,
        incident_start: jiff::Timestamp,
    ) -> BoxFuture<'a, RecoveryReading> {
        match &self.reading {
            Some(reading) => {
                let reading = reading.clone();
                Box::pin(async move { reading })
            }
            None => {
                let _ = (ctx, region, source, incident_start);
                Box::pin(async { RecoveryReading::unmeasurable("no reading in this test") })
            }
        }
    }
}

struct Harness {
    _dir: tempfile::TempDir,
    journal: Arc<Journal>,
    runbook: Arc<Runbook>,
}

const HEAD: &str =
    "name: t\nstrategy: pilot-light\nregions: { from: us-east-1, to: us-west-2 }\nsteps:\n";

fn harness(steps: &str) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let journal = Arc::new(Journal::open(dir.path(), Access::Executor).unwrap());
    let text = format!("{HEAD}{steps}");
    let runbook = Arc::new(
        load("t.yaml", &text, &[], MissingParams::Refuse)
            .unwrap()
            .runbook,
    );
    journal
        .create_run(&NewRun {
            id: "run-1".into(),
            runbook: "t".into(),
            file: "t.yaml".into(),
            runbook_sha256: String::new(),
            runbook_text: text,
            params: Vec::new(),
            secret_params: Vec::new(),
            mode: "failover".into(),
            started_by: "test".into(),
            started_at: now(),
        })
        .unwrap();
    Harness {
        _dir: dir,
        journal,
        runbook,
    }
}

impl Harness {
    fn engine(&self, fake: Arc<Fake>) -> Engine {
        let options = EngineOptions {
            concurrency: 8,
            poll_interval: Duration::from_millis(50),
        };
        Engine::new(Arc::clone(&self.journal), fake, options)
    }

    async fn run(&self, fake: &Arc<Fake>) -> RunOutcome {
        self.engine(Arc::clone(fake))
            .execute("run-1", Arc::clone(&self.runbook), Mode::Failover)
            .await
            .unwrap()
    }

    fn states(&self, step: &str) -> Vec<String> {
        self.journal
            .events("run-1")
            .unwrap()
            .into_iter()
            .filter(|e| e.step == step && e.phase == "main")
            .map(|e| e.state.to_string())
            .collect()
    }
}

fn wait_step(id: &str, extra: &str) -> String {
    format!("  - {{ id: {id}, action: wait, with: {{ duration: 1s }}{extra} }}\n")
}

#[tokio::test(start_paused = true)]
async fn independent_steps_overlap_and_dependents_wait_for_both() {
    let h = harness(
        &[
            wait_step("a", ""),
            wait_step("b", ""),
            wait_step("c", ", needs: [a, b]"),
        ]
        .concat(),
    );
    let fake = Arc::new(
        Fake::default()
            .with("a", Behaviour::Ok(Duration::from_secs(2), Outputs::new()))
            .with("b", Behaviour::Ok(Duration::from_secs(3), Outputs::new())),
    );
    assert_eq!(h.run(&fake).await, RunOutcome::Succeeded);
    let (a, b, c) = (
        &fake.calls_of("a")[0],
        &fake.calls_of("b")[0],
        &fake.calls_of("c")[0],
    );
    assert!(
        b.start < a.end.unwrap() && a.start < b.end.unwrap(),
        "a and b ran together"
    );
    assert!(
        c.start >= b.end.unwrap() && c.start >= a.end.unwrap(),
        "c waited for both"
    );
    assert_eq!(h.journal.run("run-1").unwrap().state, "succeeded");
}

/// A run whose promotion the recovery point (replica lag) is read before,
/// under a data-loss limit of 5 minutes, the incident having started at
/// `incident`, the data being current to `current` (`None`: the lag
/// unreadable).
fn held_run(current: Option<&str>) -> (Harness, Arc<Fake>) {
    let steps = "  - { id: promote, action: rds.promote_read_replica, with: { db_instance: app-db-replica } }\n  - { id: after, action: wait, needs: [promote], with: { duration: 1s } }\n";
    let text = format!(
        "name: t\nstrategy: pilot-light\nregions: {{ from: us-east-1, to: us-west-2 }}\nrecovery_point: {{ from: rds.replica_lag, db_instance: app-db-replica }}\nsteps:\n{steps}"
    );
    let h = harness(steps);
    let h = Harness {
        runbook: Arc::new(
            load("t.yaml", &text, &[], MissingParams::Refuse)
                .unwrap()
                .runbook,
        ),
        ..h
    };
    for (kind, detail) in [
        (MarkKind::IncidentStart, None),
        (
            MarkKind::DataLossLimit,
            Some(serde_json::json!({ "seconds": 300.0 })),
        ),
    ] {
        h.journal
            .mark(
                "run-1",
                &journal::Mark {
                    kind,
                    at: "2026-12-04T10:00:00Z".into(),
                    detail,
                },
            )
            .unwrap();
    }
    let reading = match current {
        Some(at) => RecoveryReading {
            at: Some(at.into()),
            how: "replica lag".into(),
            not_measurable: None,
        },
        None => RecoveryReading::unmeasurable("no ReplicaLag datapoint in the last 5 minutes"),
    };
    let fake = Arc::new(Fake {
        reading: Some(reading),
        ..Fake::default()
    });
    (h, fake)
}

/// The message of the step's last event in `state`.
fn message_of(h: &Harness, step: &str, state: StepState) -> Option<String> {
    h.journal
        .events("run-1")
        .unwrap()
        .into_iter()
        .rev()
        .find(|e| e.step == step && e.state == state)
        .and_then(|e| e.message)
}

#[tokio::test(start_paused = true)]
async fn a_promotion_past_the_data_loss_limit_waits_for_a_human_then_goes_on() {
    // Current to 09:50: promoting would lose ten minutes.
    let (h, fake) = held_run(Some("2026-12-04T09:50:00Z"));
    let engine = h.engine(Arc::clone(&fake));
    let run = engine.execute("run-1", Arc::clone(&h.runbook), Mode::Failover);
    tokio::pin!(run);
    // An hour later the promotion is still held, untried.
    let held = tokio::time::timeout(Duration::from_secs(3600), &mut run).await;
    assert!(held.is_err(), "the run ended: {held:?}");
    assert!(fake.calls_of("promote").is_empty());
    let why = message_of(&h, "promote", StepState::Waiting).expect("held");
    assert!(
        why.contains("promoting would lose 10m of data, over the limit of 5m"),
        "{why}"
    );
    assert!(why.contains("lifeboat approve run-1 promote"), "{why}");
    // A human approves: it promotes, and the approval is journaled.
    h.journal
        .request(
            "run-1",
            Some("promote"),
            RequestKind::Approve,
            "alice",
            &now(),
        )
        .unwrap();
    assert_eq!(run.await.unwrap(), RunOutcome::Succeeded);
    assert_eq!(fake.calls_of("promote").len(), 1);
    let accepted = h
        .journal
        .marks("run-1")
        .unwrap()
        .into_iter()
        .find(|m| m.kind == MarkKind::DataLossAccepted)
        .expect("the approval is a mark");
    assert_eq!(accepted.detail.unwrap()["by"], "alice");
}

#[tokio::test(start_paused = true)]
async fn a_promotion_whose_data_loss_cannot_be_told_is_held_and_a_rejection_fails_it() {
    let (h, fake) = held_run(None);
    h.journal
        .request("run-1", Some("promote"), RequestKind::Reject, "bob", &now())
        .unwrap();
    let outcome = h.run(&fake).await;
    assert!(matches!(outcome, RunOutcome::Failed(_)), "{outcome:?}");
    assert!(fake.calls_of("promote").is_empty(), "never promoted");
    let failed = message_of(&h, "promote", StepState::Failed).unwrap();
    assert!(
        failed.contains("rejected by bob: the data loss cannot be told (no ReplicaLag datapoint"),
        "{failed}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_promotion_within_the_data_loss_limit_goes_on_alone() {
    // Current to 09:58: two minutes, within five.
    let (h, fake) = held_run(Some("2026-12-04T09:58:00Z"));
    assert_eq!(h.run(&fake).await, RunOutcome::Succeeded);
    assert_eq!(fake.calls_of("promote").len(), 1);
    assert_eq!(message_of(&h, "promote", StepState::Waiting), None);
}

// Real time: the journal's timestamps are the wall clock's.
#[tokio::test]
async fn a_step_is_told_how_long_it_took_when_the_runbook_last_went_through() {
    let h = harness(
        &[
            wait_step("a", ""),
            wait_step("b", ", retry: { attempts: 2, backoff: 10ms }"),
        ]
        .concat(),
    );
    let fake = Arc::new(
        Fake::default()
            .with(
                "a",
                Behaviour::Ok(Duration::from_millis(300), Outputs::new()),
            )
            .with("b", Behaviour::FailFirst(1, FailureKind::Retryable)),
    );
    assert_eq!(h.run(&fake).await, RunOutcome::Succeeded);
    assert!(
        fake.calls().iter().all(|c| c.expected.is_none()),
        "no history yet"
    );

    let second = NewRun {
        id: "run-2".into(),
        ..h.journal.run("run-1").unwrap().run
    };
    h.journal.create_run(&second).unwrap();
    let fake = Arc::new(Fake::default());
    let outcome = h
        .engine(Arc::clone(&fake))
        .execute("run-2", Arc::clone(&h.runbook), Mode::Failover)
        .await
        .unwrap();
    assert_eq!(outcome, RunOutcome::Succeeded);
    let a = &fake.calls_of("a")[0];
    let expected = a.expected.expect("a's last time");
    assert!(
        (Duration::from_millis(300)..Duration::from_secs(2)).contains(&expected.took),
        "{expected:?}"
    );
    assert!(expected.at - a.start >= expected.took - Duration::from_millis(50));
    // b went through on a retry last time: no expectation from it.
    assert_eq!(fake.calls_of("b")[0].expected, None);
}

#[tokio::test(start_paused = true)]
async fn retryable_failures_are_retried_with_bounded_backoff() {
    let h = harness(&wait_step(
        "a",
        ", retry: { attempts: 4, backoff: 2s, max_backoff: 3s }, timeout: 1m",
    ));
    let fake = Arc::new(Fake::default().with("a", Behaviour::FailFirst(3, FailureKind::Retryable)));
    assert_eq!(h.run(&fake).await, RunOutcome::Succeeded);
    let calls = fake.calls_of("a");
    assert_eq!(
        calls.iter().map(|c| c.attempt).collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
    let gaps: Vec<Duration> = calls
        .windows(2)
        .map(|w| w[1].start - w[0].end.unwrap())
        .collect();
    // Exponential (2s, 4s, 8s) capped at 3s, each between half and all of it.
    let bounds = [(1000, 2000), (1500, 3000), (1500, 3000)];
    for (gap, (lo, hi)) in gaps.iter().zip(bounds) {
        assert!(gap.as_millis() >= lo && gap.as_millis() <= hi, "{gaps:?}");
    }
    assert_eq!(
        h.states("a"),
        vec![
            "running",
            "retrying",
            "running",
            "retrying",
            "running",
            "retrying",
            "running",
            "succeeded"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn permanent_failures_are_not_retried() {
    let h = harness(&wait_step("a", ", retry: { attempts: 5 }"));
    let fake =
        Arc::new(Fake::default().with("a", Behaviour::FailFirst(10, FailureKind::Permanent)));
    assert!(matches!(h.run(&fake).await, RunOutcome::Failed(e) if e.contains("fake failure 1")));
    assert_eq!(fake.calls_of("a").len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_step_that_never_finishes_fails_at_its_deadline() {
    let h = harness(
        &[
            wait_step("a", ", timeout: 90s"),
            wait_step("b", ", needs: [a]"),
        ]
        .concat(),
    );
    let fake = Arc::new(Fake::default().with("a", Behaviour::Hang));
    let start = Instant::now();
    let outcome = h.run(&fake).await;
    assert!(
        matches!(&outcome, RunOutcome::Failed(e) if e.contains("timed out after 1m30s")),
        "{outcome:?}"
    );
    let elapsed = start.elapsed();
    assert!(
        elapsed >= Duration::from_secs(90) && elapsed < Duration::from_secs(91),
        "{elapsed:?}"
    );
    assert!(fake.calls_of("b").is_empty());
    assert_eq!(h.states("b"), vec!["skipped"]);
}

#[tokio::test(start_paused = true)]
async fn rollback_undoes_completed_steps_in_reverse_order() {
    let rb = |id: &str| {
        format!(
            ", rollback: {{ action: wait, with: {{ duration: 1s }} }}{}",
            if id == "a" { "" } else { ", needs: [a]" }
        )
    };
    let steps = [
        wait_step("a", &rb("a")),
        wait_step("b", &rb("b")),
        wait_step("c", ", needs: [b], on_failure: rollback"),
        wait_step("d", ", needs: [c]"),
    ]
    .concat();
    let h = harness(&steps);
    let fake = Arc::new(Fake::default().with("c", Behaviour::FailFirst(5, FailureKind::Permanent)));
    assert!(matches!(h.run(&fake).await, RunOutcome::Failed(_)));
    let order: Vec<(String, String)> = h
        .journal
        .events("run-1")
        .unwrap()
        .into_iter()
        .filter(|e| e.phase == "rollback" && e.state == "succeeded")
        .map(|e| (e.step, e.state.to_string()))
        .collect();
    assert_eq!(
        order,
        vec![
            ("b".into(), "succeeded".into()),
            ("a".into(), "succeeded".into())
        ]
    );
    assert_eq!(h.states("d"), vec!["skipped"]);
}

#[tokio::test(start_paused = true)]
async fn abort_stops_scheduling_but_lets_running_steps_finish() {
    let steps = [
        wait_step("slow", ""),
        wait_step("bad", ""),
        wait_step("after", ", needs: [slow]"),
    ]
    .concat();
    let h = harness(&steps);
    let fake = Arc::new(
        Fake::default()
            .with(
                "slow",
                Behaviour::Ok(Duration::from_secs(5), Outputs::new()),
            )
            .with("bad", Behaviour::FailFirst(5, FailureKind::Permanent)),
    );
    assert!(matches!(h.run(&fake).await, RunOutcome::Failed(e) if e.contains("`bad`")));
    assert_eq!(
        h.states("slow").last().map(String::as_str),
        Some("succeeded")
    );
    assert!(fake.calls_of("after").is_empty());
    assert_eq!(h.states("after"), vec!["skipped"]);
}

#[tokio::test(start_paused = true)]
async fn continue_keeps_going_and_skips_only_dependents() {
    let steps = [
        wait_step("flaky", ", on_failure: continue"),
        wait_step("needs-flaky", ", needs: [flaky]"),
        wait_step("other", ""),
    ]
    .concat();
    let h = harness(&steps);
    let fake =
        Arc::new(Fake::default().with("flaky", Behaviour::FailFirst(5, FailureKind::Permanent)));
    // The run went on, and says it was not a clean success.
    match h.run(&fake).await {
        RunOutcome::SucceededWithFailures(failed) => {
            assert_eq!(failed.len(), 1, "{failed:?}");
            assert_eq!(failed[0].0, "flaky");
        }
        other => panic!("expected succeeded with failures, got {other:?}"),
    }
    assert_eq!(fake.calls_of("other").len(), 1);
    assert_eq!(h.states("needs-flaky"), vec!["skipped"]);
    let record = h.journal.run("run-1").unwrap();
    assert_eq!(record.state, "succeeded-with-failures");
    assert!(
        record.error.as_deref().is_some_and(
            |e| e.contains("step `flaky` failed") && e.contains("on_failure: continue")
        ),
        "{:?}",
        record.error
    );
}

#[tokio::test(start_paused = true)]
async fn cancel_lets_running_steps_finish_and_starts_nothing_new() {
    let h = harness(&[wait_step("long", ""), wait_step("next", ", needs: [long]")].concat());
    let fake = Arc::new(Fake::default().with(
        "long",
        Behaviour::Ok(Duration::from_secs(10), Outputs::new()),
    ));
    let engine = h.engine(Arc::clone(&fake));
    let runbook = Arc::clone(&h.runbook);
    let task = tokio::spawn(async move { engine.execute("run-1", runbook, Mode::Failover).await });
    tokio::time::sleep(Duration::from_secs(1)).await;
    h.journal
        .request("run-1", None, RequestKind::Cancel, "tester", &now())
        .unwrap();
    assert_eq!(task.await.unwrap().unwrap(), RunOutcome::Cancelled);
    assert_eq!(
        h.states("long").last().map(String::as_str),
        Some("succeeded")
    );
    assert!(fake.calls_of("next").is_empty());
    assert_eq!(h.journal.run("run-1").unwrap().state, "cancelled");
}

#[tokio::test(start_paused = true)]
async fn a_drain_lets_running_steps_finish_and_leaves_the_rest_to_resume() {
    let h = harness(&[wait_step("long", ""), wait_step("next", ", needs: [long]")].concat());
    let fake = Arc::new(Fake::default().with(
        "long",
        Behaviour::Ok(Duration::from_secs(10), Outputs::new()),
    ));
    let (drain, drained) = tokio::sync::watch::channel(false);
    let engine = h.engine(Arc::clone(&fake)).with_drain(drained);
    let runbook = Arc::clone(&h.runbook);
    let task = tokio::spawn(async move { engine.execute("run-1", runbook, Mode::Failover).await });
    tokio::time::sleep(Duration::from_secs(1)).await;
    drain.send(true).unwrap();
    assert_eq!(task.await.unwrap().unwrap(), RunOutcome::Interrupted);
    assert_eq!(h.states("long"), vec!["running", "succeeded"]);
    assert!(h.states("next").is_empty(), "nothing new started");
    assert_eq!(h.journal.run("run-1").unwrap().state, "running");

    // The next start resumes: `next` runs, `long` is not repeated.
    assert_eq!(h.run(&fake).await, RunOutcome::Succeeded);
    assert_eq!(fake.calls_of("long").len(), 1);
    assert_eq!(fake.calls_of("next").len(), 1);
}

#[tokio::test(start_paused = true)]
async fn outputs_of_a_step_reach_the_steps_that_need_it() {
    let steps = "  - { id: a, action: wait, with: { duration: 1s } }\n  - { id: b, action: exec, needs: [a], with: { argv: [echo, 'db=${steps.a.outputs.db}', '${run.id}'] } }\n";
    let h = harness(steps);
    let outputs = Outputs::from([("db".to_string(), serde_json::json!("app-db-1"))]);
    let fake = Arc::new(Fake::default().with("a", Behaviour::Ok(Duration::ZERO, outputs)));
    assert_eq!(h.run(&fake).await, RunOutcome::Succeeded);
    let input = &fake.calls_of("b")[0].input;
    assert!(
        input.contains(r#""argv":["echo","db=app-db-1","run-1"]"#),
        "{input}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_fallback_rescues_a_failed_step() {
    let steps = "  - { id: switch, action: wait, with: { duration: 1s }, retry: { attempts: 2, backoff: 1s }, fallback: { action: exec, with: { argv: [flip] } } }\n  - { id: after, action: wait, needs: [switch], with: { duration: 1s } }\n";
    let h = harness(steps);
    let fake =
        Arc::new(Fake::default().with("switch", Behaviour::FailFirst(2, FailureKind::Retryable)));
    assert_eq!(h.run(&fake).await, RunOutcome::Succeeded);
    // Two attempts of the action, then the fallback (a third call for the step).
    assert_eq!(fake.calls_of("switch").len(), 3);
    assert_eq!(fake.calls_of("after").len(), 1);
    assert_eq!(
        h.states("switch").last().map(String::as_str),
        Some("succeeded")
    );
}

#[tokio::test(start_paused = true)]
async fn a_step_interrupted_in_its_fallback_resumes_the_fallback_not_the_failed_action() {
    let steps = "  - { id: switch, action: wait, with: { duration: 1s }, fallback: { action: exec, with: { argv: [flip] } } }\n";
    let h = harness(steps);
    let first_process = Arc::new(Fake::default().with("switch", Behaviour::FailThenHang));
    let engine = h.engine(Arc::clone(&first_process));
    let runbook = Arc::clone(&h.runbook);
    let first = tokio::spawn(async move { engine.execute("run-1", runbook, Mode::Failover).await });
    // The action failed, the fallback started; the process dies.
    while first_process.calls_of("switch").len() < 2 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    first.abort();
    let _ = first.await;

    let fake = Arc::new(Fake::default());
    assert_eq!(h.run(&fake).await, RunOutcome::Succeeded);
    let calls = fake.calls_of("switch");
    assert_eq!(calls.len(), 1, "only the fallback again: {calls:?}");
    assert!(calls[0].input.contains("flip"), "{calls:?}");
    let last = h.journal.events("run-1").unwrap().pop().unwrap();
    assert_eq!(last.state, "succeeded");
    assert!(
        last.message.unwrap_or_default().contains("fake failure"),
        "the step's end still names the failure it fell back from"
    );
}

#[tokio::test(start_paused = true)]
async fn approval_waits_for_a_human_and_survives_a_restart() {
    let steps = [
        wait_step("before", ""),
        "  - { id: ok, action: manual.approval, needs: [before], with: { prompt: go?, timeout: 1h } }\n".to_string(),
        wait_step("after", ", needs: [ok]"),
    ]
    .concat();
    let h = harness(&steps);
    let fake = Arc::new(Fake::default());
    // First process: runs `before`, then waits; it dies while waiting.
    let engine = h.engine(Arc::clone(&fake));
    let runbook = Arc::clone(&h.runbook);
    let first = tokio::spawn(async move { engine.execute("run-1", runbook, Mode::Failover).await });
    while h.states("ok").last().map(String::as_str) != Some("waiting") {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    first.abort();
    let _ = first.await;
    assert!(
        fake.calls_of("after").is_empty(),
        "nothing runs before approval"
    );

    // Someone approves; a new process resumes and finishes without repeating `before`.
    h.journal
        .request(
            "run-1",
            Some("ok"),
            RequestKind::Approve,
            "alice (uid 1000)",
            &now(),
        )
        .unwrap();
    assert_eq!(h.run(&fake).await, RunOutcome::Succeeded);
    assert_eq!(fake.calls_of("before").len(), 1);
    assert_eq!(fake.calls_of("after").len(), 1);
    let approved = h
        .journal
        .events("run-1")
        .unwrap()
        .into_iter()
        .find(|e| e.step == "ok" && e.state == "succeeded")
        .unwrap();
    assert_eq!(
        approved.message.as_deref(),
        Some("approved by alice (uid 1000)")
    );
}

#[tokio::test(start_paused = true)]
async fn an_approval_is_used_up_only_once_its_step_is_journaled() {
    // A crash between the two writes must leave the approval, not lose
    // it: when the step's end is durable, its request is still pending.
    let h =
        harness("  - { id: ok, action: manual.approval, with: { prompt: go?, timeout: 1h } }\n");
    h.journal
        .request(
            "run-1",
            Some("ok"),
            RequestKind::Approve,
            "alice (uid 1000)",
            &now(),
        )
        .unwrap();
    let seen = Arc::new(Mutex::new(None));
    let (journal, seen_by) = (Arc::clone(&h.journal), Arc::clone(&seen));
    let engine =
        h.engine(Arc::new(Fake::default()))
            .with_observer(Arc::new(move |e: &StepEvent| {
                if e.step == "ok" && e.state == "succeeded" {
                    let pending = journal.pending_requests("run-1").unwrap();
                    *seen_by.lock().unwrap() = Some(pending.len());
                }
            }));
    let outcome = engine
        .execute("run-1", Arc::clone(&h.runbook), Mode::Failover)
        .await
        .unwrap();
    assert_eq!(outcome, RunOutcome::Succeeded);
    assert_eq!(
        *seen.lock().unwrap(),
        Some(1),
        "the approval was still pending when the step's end was journaled"
    );
    assert!(h.journal.pending_requests("run-1").unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn rejection_and_timeout_follow_the_approval_config() {
    let steps = "  - { id: ok, action: manual.approval, with: { prompt: go?, timeout: 10m } }\n  - { id: soft, action: manual.approval, with: { prompt: fine?, timeout: 5m, on_timeout: continue } }\n";
    let h = harness(steps);
    let fake = Arc::new(Fake::default());
    let engine = h.engine(Arc::clone(&fake));
    let runbook = Arc::clone(&h.runbook);
    let task = tokio::spawn(async move { engine.execute("run-1", runbook, Mode::Failover).await });
    while h.states("ok").last().map(String::as_str) != Some("waiting") {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    h.journal
        .request("run-1", Some("ok"), RequestKind::Reject, "bob", &now())
        .unwrap();
    let outcome = task.await.unwrap().unwrap();
    assert!(
        matches!(&outcome, RunOutcome::Failed(e) if e.contains("rejected by bob")),
        "{outcome:?}"
    );
    assert_eq!(
        h.states("soft").last().map(String::as_str),
        Some("succeeded"),
        "timed out, continue"
    );
}

#[tokio::test(start_paused = true)]
async fn resume_reenters_an_interrupted_step_without_repeating_finished_ones() {
    let h = harness(
        &[
            wait_step("a", ""),
            wait_step("b", ", needs: [a]"),
            wait_step("c", ", needs: [b]"),
        ]
        .concat(),
    );
    let hanging = Arc::new(Fake::default().with("b", Behaviour::Hang));
    let engine = h.engine(Arc::clone(&hanging));
    let runbook = Arc::clone(&h.runbook);
    let first = tokio::spawn(async move { engine.execute("run-1", runbook, Mode::Failover).await });
    while hanging.calls_of("b").is_empty() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    first.abort(); // the process dies mid-step
    let _ = first.await;

    let fake = Arc::new(Fake::default());
    assert_eq!(h.run(&fake).await, RunOutcome::Succeeded);
    assert!(fake.calls_of("a").is_empty(), "a finished before the crash");
    let b = fake.calls_of("b");
    assert_eq!(b.len(), 1);
    assert!(
        b[0].resumed,
        "b is re-entered through its observe-first path"
    );
    assert_eq!(fake.calls_of("c").len(), 1);
}

#[tokio::test(start_paused = true)]
async fn an_interrupted_unobservable_step_waits_for_a_decision() {
    let steps = "  - { id: hook, action: exec, with: { argv: [notify-oncall] } }\n  - { id: next, action: wait, needs: [hook], with: { duration: 1s } }\n";
    let h = harness(steps);
    let hanging = Arc::new(Fake::default().with("hook", Behaviour::Hang));
    let engine = h.engine(Arc::clone(&hanging));
    let runbook = Arc::clone(&h.runbook);
    let first = tokio::spawn(async move { engine.execute("run-1", runbook, Mode::Failover).await });
    while hanging.calls_of("hook").is_empty() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    first.abort();
    let _ = first.await;

    let fake = Arc::new(Fake::default());
    let engine = h.engine(Arc::clone(&fake));
    let runbook = Arc::clone(&h.runbook);
    let second =
        tokio::spawn(async move { engine.execute("run-1", runbook, Mode::Failover).await });
    while h.states("hook").last().map(String::as_str) != Some("needs-decision") {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(h.journal.run("run-1").unwrap().state, "paused");
    h.journal
        .request("run-1", Some("hook"), RequestKind::Skip, "carol", &now())
        .unwrap();
    assert_eq!(second.await.unwrap().unwrap(), RunOutcome::Succeeded);
    assert!(fake.calls_of("hook").is_empty(), "not re-run blindly");
    assert_eq!(fake.calls_of("next").len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_retried_run_redoes_what_failed_or_was_rolled_back_and_keeps_the_rest() {
    let steps = [
        wait_step("keep", ""),
        wait_step("a", ", rollback: { action: wait, with: { duration: 1s } }"),
        wait_step("c", ", needs: [a, keep], on_failure: rollback"),
        wait_step("d", ", needs: [c]"),
    ]
    .concat();
    let h = harness(&steps);
    let fake = Arc::new(Fake::default().with("c", Behaviour::FailFirst(1, FailureKind::Permanent)));
    assert!(matches!(h.run(&fake).await, RunOutcome::Failed(_)));

    let again = prepare_retry(&h.journal, "run-1", &h.runbook, Mode::Failover, "tester").unwrap();
    assert_eq!(
        again,
        vec!["a", "c", "d"],
        "`a` was rolled back; `keep` stands"
    );
    assert_eq!(h.run(&fake).await, RunOutcome::Succeeded);
    let done = |step: &str| {
        h.journal
            .events("run-1")
            .unwrap()
            .into_iter()
            .filter(|e| e.step == step && e.phase == "main" && e.state == "succeeded")
            .map(|e| e.attempt)
            .collect::<Vec<_>>()
    };
    assert_eq!(done("keep"), vec![1], "kept, not repeated");
    assert_eq!(done("a"), vec![1, 2], "done again after its rollback");
    assert_eq!(done("c"), vec![2]);
    assert_eq!(done("d"), vec![1]);
    // The retried attempts start afresh: their earlier ones had ended.
    let c = fake.calls_of("c");
    assert_eq!(c.len(), 2);
    assert!(!c[1].resumed && c[1].attempt == 2, "{:?}", c[1].attempt);
    assert_eq!(h.journal.run("run-1").unwrap().state, "succeeded");
}
