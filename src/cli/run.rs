//! The commands that execute runs here: `run` (and `--resume`), `drill`,
//! `sweep` (a drill's leftovers), `demo`.

use std::fmt::Write as _;
use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use super::args::{DrillArgs, RunArgs};
use super::error::CliError;
use super::shared::{
    eprint, load_file, load_or_report, print, registry_for, render_run, report_calls, step_rows,
    who,
};
use crate::actions::Registry;
use crate::engine::{Engine, EngineOptions, RunOutcome, StepContext};
use crate::journal::{Access, Journal, MarkKind, Phase, RunState, StepEvent, StepState};
use crate::runbook::plan::Plan;
use crate::runbook::{Loaded, Mode};

/// `lifeboat drill`: the runbook in drill mode, then its teardown.
pub fn drill(state_dir: &Path, args: DrillArgs) -> Result<(), CliError> {
    let (name, text, loaded) = load_file(&args.file, &args.params)?;
    confirm(args.yes, &loaded, Mode::Drill)?;
    let journal = Arc::new(Journal::open(state_dir, Access::Executor)?);
    let record = crate::engine::new_run(
        &loaded.runbook,
        name,
        text,
        &args.params,
        Mode::Drill,
        who(),
    );
    let id = record.id.clone();
    journal.create_run(&record)?;
    eprint(&format!(
        "drill {id}: {} (state in {}); production is not changed",
        loaded.runbook.name,
        state_dir.display()
    ));
    execute(
        journal,
        id,
        loaded,
        Mode::Drill,
        args.concurrency,
        args.keep,
        args.progress_every.map(crate::duration::HumanDuration::get),
    )
}

/// `lifeboat sweep`: remove drill resources whose drill is over or whose
/// process died.
pub fn sweep(state_dir: &Path, regions: &[String]) -> Result<(), CliError> {
    // Holding the executor lock proves no process is running a drill here:
    // every unfinished drill in the journal is then an orphan.
    let (journal, orphaned) = match Journal::open(state_dir, Access::Executor) {
        Ok(j) => (j, true),
        Err(crate::journal::JournalError::Locked { .. }) => {
            (Journal::open(state_dir, Access::Client)?, false)
        }
        Err(e) => return Err(e.into()),
    };
    let mut scope = crate::actions::drill::sweep_scope(&journal)?;
    scope.regions.extend(regions.iter().cloned());
    let (live, dead): (std::collections::BTreeSet<String>, Vec<String>) = if orphaned {
        (
            std::collections::BTreeSet::new(),
            scope.unfinished.iter().cloned().collect(),
        )
    } else {
        (scope.unfinished.clone(), Vec::new())
    };
    if scope.regions.is_empty() {
        return Err(CliError::Usage(
            "no drill in the journal names a region: give --region".into(),
        ));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)?;
    let aws = runtime.block_on(crate::aws::AwsClients::load(
        &crate::aws::AwsSettings::default(),
        crate::aws::Credentials::Chain,
    ));
    let which = crate::actions::drill::Which::AllBut(live.clone());
    let teardown = runtime.block_on(crate::actions::drill::teardown_in_accounts(
        &aws,
        &scope.roles,
        &scope.regions,
        &which,
    ));
    for id in &dead {
        journal.set_run_state(
            id,
            RunState::Failed,
            Some(&crate::engine::now()),
            Some("its process died; `lifeboat sweep` removed its drill resources"),
        )?;
    }
    let mut out = String::new();
    for r in &teardown.removed {
        let _ = writeln!(out, "removed {r}");
    }
    let _ = writeln!(
        out,
        "swept {} drill resource(s) in {}{}",
        teardown.removed.len(),
        scope.regions.iter().cloned().collect::<Vec<_>>().join(", "),
        if live.is_empty() {
            String::new()
        } else {
            format!(
                "; kept those of drills still running ({})",
                live.iter().cloned().collect::<Vec<_>>().join(", ")
            )
        }
    );
    print(&out)?;
    report_calls(&aws);
    if teardown.errors.is_empty() {
        Ok(())
    } else {
        for e in &teardown.errors {
            eprint(&format!("sweep: {e}"));
        }
        Err(CliError::Teardown(teardown.errors.len()))
    }
}

/// `lifeboat run`.
pub fn run(state_dir: &Path, args: RunArgs) -> Result<(), CliError> {
    if let Some(id) = &args.resume {
        return resume(state_dir, id, &args, false);
    }
    if let Some(id) = &args.retry {
        return resume(state_dir, id, &args, true);
    }
    let Some(file) = &args.file else {
        return Err(CliError::Usage(
            "give a runbook FILE, or --resume RUN".into(),
        ));
    };
    let (name, text, loaded) = load_file(file, &args.params)?;
    let mode = args.mode.into();
    if let Some(why) = crate::runbook::nothing_to_do(&loaded.runbook, mode) {
        return Err(CliError::Usage(why));
    }
    if args.dry_run {
        return print(&dry_run(&loaded, mode, &Registry::new()));
    }
    confirm(args.yes, &loaded, mode)?;
    let journal = Arc::new(Journal::open(state_dir, Access::Executor)?);
    let record = crate::engine::new_run(&loaded.runbook, name, text, &args.params, mode, who());
    let id = record.id.clone();
    journal.create_run(&record)?;
    eprint(&format!(
        "run {id}: {} in {mode} mode (state in {})",
        loaded.runbook.name,
        state_dir.display()
    ));
    execute(
        journal,
        id,
        loaded,
        mode,
        args.concurrency,
        false,
        args.progress_every.map(crate::duration::HumanDuration::get),
    )
}

/// `--resume RUN` (an unfinished run) or, with `retry`, `--retry RUN` (an
/// ended run that did not fully succeed).
fn resume(state_dir: &Path, id: &str, args: &RunArgs, retry: bool) -> Result<(), CliError> {
    let flag = if retry { "--retry" } else { "--resume" };
    if args.file.is_some() {
        return Err(CliError::Usage(format!(
            "{flag} takes the runbook from the journal; give no FILE"
        )));
    }
    let journal = Arc::new(Journal::open(state_dir, Access::Executor)?);
    let record = journal.run(id)?;
    if retry {
        match record.state {
            RunState::Failed | RunState::Cancelled | RunState::SucceededWithFailures => {}
            RunState::Succeeded => {
                return Err(CliError::Usage(format!(
                    "run {id} succeeded; nothing to retry"
                )));
            }
            RunState::Running | RunState::Paused => {
                return Err(CliError::Usage(format!(
                    "run {id} has not ended ({}); continue it with --resume {id}",
                    record.state
                )));
            }
        }
        if record.run.mode == "drill" {
            return Err(CliError::Usage(format!(
                "run {id} is a drill, whose teardown removed what it made; start a new `lifeboat drill`"
            )));
        }
    } else if !record.state.unfinished() {
        let hint = if record.state == RunState::Succeeded {
            String::new()
        } else {
            format!("; re-run what did not succeed with --retry {id}")
        };
        return Err(CliError::Usage(format!(
            "run {id} already ended ({}); nothing to resume{hint}",
            record.state
        )));
    }
    let missing: Vec<&String> = record
        .run
        .secret_params
        .iter()
        .filter(|name| !args.params.iter().any(|(k, _)| k == *name))
        .collect();
    if !missing.is_empty() {
        let names: Vec<&str> = missing.iter().map(|s| s.as_str()).collect();
        return Err(CliError::Usage(format!(
            "run {id} was started with secret parameter(s) {}, which the journal does not keep; pass them again with --param",
            names.join(", ")
        )));
    }
    let mut params = record.run.params.clone();
    params.extend(
        args.params
            .iter()
            .filter(|(k, _)| record.run.secret_params.contains(k))
            .cloned(),
    );
    let loaded = load_or_report(&record.run.file, &record.run.runbook_text, &params)?;
    let mode = match record.run.mode.as_str() {
        "switchover" => Mode::Switchover,
        "drill" => Mode::Drill,
        "fence" => Mode::Fence,
        "reprotect" => Mode::Reprotect,
        _ => Mode::Failover,
    };
    if retry {
        confirm(args.yes, &loaded, mode)?;
        let again = crate::engine::prepare_retry(&journal, id, &loaded.runbook, mode, &who())?;
        eprint(&format!(
            "retrying run {id}: {} in {mode} mode; again: {}",
            loaded.runbook.name,
            again.join(", ")
        ));
    } else {
        eprint(&format!(
            "resuming run {id}: {} in {mode} mode",
            loaded.runbook.name
        ));
    }
    execute(
        journal,
        id.to_string(),
        loaded,
        mode,
        args.concurrency,
        false,
        args.progress_every.map(crate::duration::HumanDuration::get),
    )
}

fn execute(
    journal: Arc<Journal>,
    id: String,
    loaded: Loaded,
    mode: Mode,
    concurrency: usize,
    keep: bool,
    progress_every: Option<std::time::Duration>,
) -> Result<(), CliError> {
    let started = Instant::now();
    let heartbeat = Heartbeat::start(&loaded.runbook, started, progress_every);
    let beating = Arc::clone(&heartbeat);
    let observer = Arc::new(move |event: &StepEvent| {
        beating.saw(event);
        eprint(&progress_line(started.elapsed(), event));
    });
    let options = EngineOptions {
        concurrency: concurrency.max(1),
        ..EngineOptions::default()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)?;
    let registry = registry_for(&runtime, &loaded.runbook);
    let aws = registry.aws().cloned();
    let engine =
        Engine::new(Arc::clone(&journal), Arc::new(registry), options).with_observer(observer);
    let regions = crate::runbook::regions_of(&loaded.runbook);
    let roles = crate::runbook::roles_of(&loaded.runbook);
    let outcome = runtime.block_on(engine.execute(&id, Arc::new(loaded.runbook), mode));
    heartbeat.stop();
    let outcome = outcome.map_err(|e| match e {
        crate::engine::EngineError::Journal(cause) => CliError::RunStopped {
            run: id.clone(),
            cause,
        },
        other => CliError::Engine(other),
    })?;
    print(&render_run(
        &journal.run(&id)?,
        &step_rows(&journal.events(&id)?),
    ))?;
    if mode == Mode::Drill
        && let Some(aws) = &aws
    {
        if keep {
            eprint(&format!(
                "drill resources kept (--keep): tagged {}={id}; `lifeboat sweep` removes them",
                crate::iam::DRILL_TAG
            ));
        } else {
            let which = crate::actions::drill::Which::Run(id.clone());
            let teardown = runtime.block_on(crate::actions::drill::teardown_in_accounts(
                aws, &roles, &regions, &which,
            ));
            journal.mark(
                &id,
                &crate::journal::Mark {
                    kind: MarkKind::Teardown,
                    at: crate::engine::now(),
                    detail: serde_json::to_value(&teardown).ok(),
                },
            )?;
            eprint(&format!(
                "teardown: removed {} drill resource(s){}",
                teardown.removed.len(),
                if teardown.errors.is_empty() {
                    String::new()
                } else {
                    format!("; FAILED: {}", teardown.errors.join("; "))
                }
            ));
            if !teardown.errors.is_empty() {
                return Err(CliError::Teardown(teardown.errors.len()));
            }
        }
    }
    if let Some(aws) = aws {
        report_calls(&aws);
    }
    match outcome {
        RunOutcome::Succeeded => Ok(()),
        other => Err(CliError::RunFailed(other)),
    }
}

/// The steps still under way, said every so often: a 20-minute promotion
/// is not 20 minutes of silence.
struct Heartbeat {
    /// Each step's action, and its fallback's and rollback's, by phase.
    actions: std::collections::BTreeMap<(String, Phase), String>,
    /// Step → (state, what it awaits, since when).
    inflight: std::sync::Mutex<std::collections::BTreeMap<String, (String, String, Instant)>>,
    done: std::sync::atomic::AtomicBool,
}

impl Heartbeat {
    /// Every `every` (default 10 s on a terminal, 1 min otherwise), from
    /// the run's `started`.
    fn start(
        runbook: &crate::runbook::Runbook,
        started: Instant,
        every: Option<std::time::Duration>,
    ) -> Arc<Heartbeat> {
        let mut actions = std::collections::BTreeMap::new();
        for step in &runbook.steps {
            actions.insert(
                (step.id.clone(), Phase::Main),
                step.action.name().to_string(),
            );
            for (phase, call) in [
                (Phase::Fallback, &step.fallback),
                (Phase::Rollback, &step.rollback),
            ] {
                if let Some(call) = call {
                    actions.insert((step.id.clone(), phase), call.action.name().to_string());
                }
            }
        }
        let every = every.unwrap_or(if std::io::stderr().is_terminal() {
            std::time::Duration::from_secs(10)
        } else {
            std::time::Duration::from_secs(60)
        });
        let heartbeat = Arc::new(Heartbeat {
            actions,
            inflight: std::sync::Mutex::default(),
            done: std::sync::atomic::AtomicBool::new(false),
        });
        let beating = Arc::clone(&heartbeat);
        std::thread::spawn(move || {
            let mut next = Instant::now() + every;
            while !beating.done.load(std::sync::atomic::Ordering::SeqCst) {
                std::thread::sleep(std::time::Duration::from_millis(50));
                if Instant::now() < next {
                    continue;
                }
                next += every;
                let inflight = match beating.inflight.lock() {
                    Ok(inflight) => inflight.clone(),
                    Err(_) => return,
                };
                for (step, (state, what, since)) in inflight {
                    // A step that has only just started has nothing to say.
                    let so_far = since.elapsed().as_secs_f64().round() as u64;
                    if so_far == 0 {
                        continue;
                    }
                    eprint(&format!(
                        "[{:>7.1}s] {step:<24} still {state}: {what}, {} so far",
                        started.elapsed().as_secs_f64(),
                        crate::duration::HumanDuration::from_secs(so_far)
                    ));
                }
            }
        });
        heartbeat
    }

    /// Follow a step's transition.
    fn saw(&self, e: &StepEvent) {
        let Ok(mut inflight) = self.inflight.lock() else {
            return;
        };
        let key = match e.phase {
            Phase::Main => e.step.clone(),
            phase => format!("{} {phase}", e.step),
        };
        match e.state {
            StepState::Running
            | StepState::Waiting
            | StepState::Retrying
            | StepState::FallingBack => {
                let action = self.actions.get(&(e.step.clone(), e.phase)).cloned();
                let what = match (e.state, action) {
                    (StepState::Waiting, _) => format!(
                        "approval ({})",
                        e.message
                            .as_deref()
                            .unwrap_or("`lifeboat approve RUN STEP`")
                    ),
                    (_, Some(action)) => action,
                    (_, None) => e.state.to_string(),
                };
                let since = inflight
                    .get(&key)
                    .map_or_else(Instant::now, |(_, _, since)| *since);
                inflight.insert(key, (e.state.to_string(), what, since));
            }
            StepState::NeedsDecision => {
                inflight.insert(
                    key,
                    (
                        "waiting".into(),
                        "a decision (`lifeboat approve RUN STEP` or `lifeboat skip RUN STEP`)"
                            .into(),
                        Instant::now(),
                    ),
                );
            }
            StepState::Succeeded | StepState::Failed | StepState::Skipped | StepState::Queued => {
                inflight.remove(&key);
            }
        }
    }

    fn stop(&self) {
        self.done.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

fn progress_line(elapsed: std::time::Duration, e: &StepEvent) -> String {
    let mut line = format!(
        "[{:>7.1}s] {:<24} {}",
        elapsed.as_secs_f64(),
        e.step,
        e.state
    );
    if e.phase != Phase::Main {
        line = format!(
            "[{:>7.1}s] {:<24} {} {}",
            elapsed.as_secs_f64(),
            e.step,
            e.phase,
            e.state
        );
    }
    if e.attempt > 1 {
        let _ = write!(line, " (attempt {})", e.attempt);
    }
    if let Some(m) = &e.message {
        let _ = write!(line, ": {m}");
    }
    line
}

fn confirm(yes: bool, loaded: &Loaded, mode: Mode) -> Result<(), CliError> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(CliError::Usage(
            "refusing to run without confirmation: not a terminal; pass --yes".into(),
        ));
    }
    let steps = loaded
        .runbook
        .steps
        .iter()
        .filter(|s| s.runs_in(mode))
        .count();
    if crate::actions::uses_aws(&loaded.runbook) {
        let runtime = tokio::runtime::Runtime::new().map_err(CliError::Runtime)?;
        let registry = registry_for(&runtime, &loaded.runbook);
        let acting = runtime.block_on(registry.principals(&loaded.runbook, mode, "confirm"));
        eprint("It acts in AWS as:");
        for a in &acting {
            eprint(&format!("  {}", a.describe()));
        }
    }
    eprint!(
        "Run `{}` in {mode} mode ({steps} steps)? This changes real resources. [y/N] ",
        loaded.runbook.name
    );
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    if matches!(answer.trim(), "y" | "Y" | "yes") {
        Ok(())
    } else {
        Err(CliError::Usage("not confirmed; nothing was run".into()))
    }
}

fn dry_run(loaded: &Loaded, mode: Mode, registry: &Registry) -> String {
    let plan = Plan::new(&loaded.runbook, mode);
    let mut out = format!(
        "dry run of {} in {mode} mode: no call is made\n",
        loaded.runbook.name
    );
    for (n, wave) in plan.waves.iter().enumerate() {
        let _ = writeln!(out, "\nwave {}", n + 1);
        for &i in wave {
            let step = &loaded.runbook.steps[i];
            let ctx = StepContext {
                run_id: "dry-run".into(),
                step_id: step.id.clone(),
                mode,
                region: step.region.clone(),
                attempt: 1,
                resumed: false,
                deadline: tokio::time::Instant::now() + step.timeout,
                assume_role: step.assume_role.clone(),
                placement: loaded.runbook.drill.clone(),
                expected: None,
            };
            let region = step
                .region
                .as_deref()
                .map(|r| format!(" in {r}"))
                .unwrap_or_default();
            let _ = writeln!(out, "  {} ({}{region})", step.id, step.action);
            if let crate::catalogue::ActionInput::ManualApproval(a) = &step.input {
                let _ = writeln!(
                    out,
                    "    ask for approval: {} (timeout {})",
                    a.prompt, a.timeout
                );
                continue;
            }
            for call in crate::engine::Actions::describe(registry, &ctx, &step.input) {
                let _ = writeln!(out, "    {call}");
            }
        }
    }
    crate::redact::Redactor::new(loaded.runbook.secrets()).text(&out)
}

/// `lifeboat demo`: a two-region pilot-light failover on the local
/// emulator, on the embedded defaults, with nothing to configure.
pub fn demo() -> Result<(), CliError> {
    let demo_err = |message: String| CliError::Demo(message);
    let (name, text) = crate::shipped::RUNBOOKS
        .iter()
        .find(|(file, _)| *file == "pilot-light.yaml")
        .ok_or_else(|| demo_err("the pilot-light runbook is not embedded".into()))?;
    eprint("starting the AWS emulator (moto, installed on first use) on 127.0.0.1...");
    let emulator =
        crate::emulator::Emulator::install_and_start().map_err(|e| demo_err(e.to_string()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)?;
    let state_dir = std::env::temp_dir().join(format!("lifeboat-demo-{}", std::process::id()));
    let result = runtime.block_on(async {
        let aws = emulator.clients().await;
        eprint(&format!("emulator at {}; seeding two regions", emulator.endpoint()));
        let seeded = crate::demo::seed(&aws).await.map_err(demo_err)?;
        print(&format!(
            "seeded: {} primary app-db (RDS postgres), {} read replica app-db-replica,\n        {} app instances {} (stopped, Role=app) and batch instance {} (stopped, must stay so),\n        zone example.com: app.example.com -> 192.0.2.10 (the primary region)\n\n",
            crate::demo::PRIMARY,
            crate::demo::DR,
            crate::demo::DR,
            seeded.app_instances.join(", "),
            seeded.decoy_instance
        ))?;
        let health = crate::demo::health_endpoint().await.map_err(demo_err)?;
        let params = vec![("health_url".to_string(), health)];
        let loaded = load_or_report(&format!("runbooks/{name}"), text, &params)?;
        let journal = Arc::new(Journal::open(&state_dir, Access::Executor)?);
        let record = crate::engine::new_run(
            &loaded.runbook,
            format!("runbooks/{name}"),
            text.to_string(),
            &params,
            Mode::Failover,
            who(),
        );
        let id = record.id.clone();
        journal.create_run(&record)?;
        print(&format!("running {} (run {id}) in failover mode:\n", loaded.runbook.name))?;
        let started = Instant::now();
        let observer = Arc::new(move |event: &StepEvent| {
            let _ = print(&format!("{}\n", progress_line(started.elapsed(), event)));
        });
        let registry = Registry::with_aws(aws.clone());
        let engine = Engine::new(Arc::clone(&journal), Arc::new(registry), EngineOptions::default()).with_observer(observer);
        let runbook = Arc::new(loaded.runbook);
        let outcome = engine.execute(&id, Arc::clone(&runbook), Mode::Failover).await?;
        let record = journal.run(&id)?;
        let events = journal.events(&id)?;
        print(&format!("\n{}", render_run(&record, &step_rows(&events))))?;
        // The figures, and the HTML report kept outside the demo's
        // throw-away state directory.
        let figures =
            crate::measure::Figures::compute(&record, &runbook, &events, &journal.marks(&id)?);
        let report = std::env::temp_dir().join(format!("lifeboat-demo-report-{id}.html"));
        let kept = std::fs::write(&report, crate::report::html(&figures)).is_ok();
        let rpo = match figures.rpo.seconds {
            Some(_) => format!(
                "RPO {} (target {}, {})",
                crate::report::seconds(figures.rpo.seconds),
                crate::report::seconds(figures.rpo.target_s),
                figures.rpo.verdict
            ),
            None => format!("RPO {}", figures.rpo.verdict),
        };
        print(&format!(
            "\nRTO {} (target {}, {}); {rpo}: {}.{}\n",
            crate::report::seconds(figures.rto.seconds),
            crate::report::seconds(figures.rto.target_s),
            figures.rto.verdict,
            figures.rpo.how,
            if kept {
                format!(" Report: {}", report.display())
            } else {
                String::new()
            }
        ))?;
        let calls: u64 = aws.calls().snapshot().values().sum();
        let mutating: u64 = aws.calls().mutating().values().sum();
        print(&format!(
            "\n{calls} AWS API calls, {mutating} of them changes. The replica is now the primary in {}, the app tier runs there, and app.example.com points at it.\n",
            crate::demo::DR
        ))?;
        match outcome {
            RunOutcome::Succeeded => Ok(()),
            other => Err(CliError::RunFailed(other)),
        }
    });
    let _ = std::fs::remove_dir_all(&state_dir);
    result
}
