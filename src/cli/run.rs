//! `run`, `runs`, `show`, and the requests other commands leave for a run
//! (`approve`, `reject`, `skip`, `cancel`).

use std::fmt::Write as _;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use super::{CliError, Output, RunMode, eprint, print};
use crate::actions::Registry;
use crate::engine::journal::{Access, Journal, RunRecord, StepEvent};
use crate::engine::{Engine, EngineOptions, RunOutcome, StepContext};
use crate::runbook::plan::Plan;
use crate::runbook::{self, Loaded, MissingParams, Mode, Runbook};

/// The state directory: `--state-dir`, `LIFEBOAT_STATE_DIR`, or a per-user default.
pub fn state_dir(given: Option<PathBuf>) -> PathBuf {
    given.unwrap_or_else(|| {
        user_state_dir(
            std::env::var_os("XDG_STATE_HOME").map(PathBuf::from),
            std::env::var_os("HOME").map(PathBuf::from),
        )
    })
}

/// `$XDG_STATE_HOME/lifeboat`, as the XDG base directory specification
/// reads it: an empty or relative value is ignored (never a `lifeboat/`
/// in the working directory), then `$HOME/.local/state`, then the
/// temporary directory.
fn user_state_dir(xdg_state_home: Option<PathBuf>, home: Option<PathBuf>) -> PathBuf {
    xdg_state_home
        .filter(|d| d.is_absolute())
        .or_else(|| {
            home.filter(|h| h.is_absolute())
                .map(|h| h.join(".local/state"))
        })
        .unwrap_or_else(std::env::temp_dir)
        .join("lifeboat")
}

#[cfg(test)]
mod state_dir_tests {
    use std::path::PathBuf;

    use super::user_state_dir;

    #[test]
    fn an_empty_or_relative_xdg_state_home_is_ignored() {
        let home = Some(PathBuf::from("/home/ops"));
        assert_eq!(
            user_state_dir(Some(PathBuf::from("/var/state")), home.clone()),
            PathBuf::from("/var/state/lifeboat")
        );
        for ignored in ["", "relative/state"] {
            assert_eq!(
                user_state_dir(Some(PathBuf::from(ignored)), home.clone()),
                PathBuf::from("/home/ops/.local/state/lifeboat"),
                "XDG_STATE_HOME={ignored:?}"
            );
        }
        assert_eq!(
            user_state_dir(None, Some(PathBuf::from(""))),
            std::env::temp_dir().join("lifeboat")
        );
    }
}

/// Who is asking: this process's real uid, named by the system's user
/// database (never `$USER`, which anyone can set).
pub fn who() -> String {
    crate::control::describe_peer(nix::unistd::getuid().as_raw(), None)
}

pub(super) fn load_or_report(
    name: &str,
    text: &str,
    params: &[(String, String)],
) -> Result<Loaded, CliError> {
    match runbook::load(name, text, params, MissingParams::Refuse) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                eprint(&w.to_string());
            }
            Ok(loaded)
        }
        Err(problems) => {
            for p in &problems {
                eprint(&p.to_string());
            }
            Err(CliError::Invalid { count: 1 })
        }
    }
}

/// Arguments of `lifeboat run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Runbook file.
    #[arg(required_unless_present = "resume")]
    pub file: Option<PathBuf>,
    /// Resume an interrupted run from the journal (completed steps are not repeated).
    #[arg(long, value_name = "RUN")]
    pub resume: Option<String>,
    /// Parameter value, NAME=VALUE (repeatable); with --resume, the secret ones again.
    #[arg(long = "param", short = 'p', value_parser = super::parse_param)]
    pub params: Vec<(String, String)>,
    /// Mode.
    #[arg(long, value_enum, default_value_t)]
    pub mode: RunMode,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub yes: bool,
    /// Print each call the run would make, and make none.
    #[arg(long)]
    pub dry_run: bool,
    /// Most steps running at once.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
}

/// Arguments of `lifeboat drill`.
#[derive(Debug, clap::Args)]
pub struct DrillArgs {
    /// Runbook file.
    pub file: PathBuf,
    /// Parameter value, NAME=VALUE (repeatable).
    #[arg(long = "param", short = 'p', value_parser = super::parse_param)]
    pub params: Vec<(String, String)>,
    /// Leave the drill's resources for inspection (`lifeboat sweep` removes them later).
    #[arg(long)]
    pub keep: bool,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub yes: bool,
    /// Most steps running at once.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
}

/// `lifeboat drill`: the runbook in drill mode, then its teardown.
pub fn drill(state_dir: &Path, args: DrillArgs) -> Result<(), CliError> {
    let name = args.file.display().to_string();
    let text = super::commands::read(&args.file)?;
    let loaded = load_or_report(&name, &text, &args.params)?;
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
    )
}

/// `lifeboat sweep`: remove drill resources whose drill is over or whose
/// process died.
pub fn sweep(state_dir: &Path, regions: &[String]) -> Result<(), CliError> {
    // Holding the executor lock proves no process is running a drill here:
    // every unfinished drill in the journal is then an orphan.
    let (journal, orphaned) = match Journal::open(state_dir, Access::Executor) {
        Ok(j) => (j, true),
        Err(crate::engine::journal::JournalError::Locked { .. }) => {
            (Journal::open(state_dir, Access::Client)?, false)
        }
        Err(e) => return Err(e.into()),
    };
    let mut all_regions: std::collections::BTreeSet<String> = regions.iter().cloned().collect();
    let mut all_roles: Vec<runbook::AssumeRole> = Vec::new();
    let mut live = std::collections::BTreeSet::new();
    let mut dead = Vec::new();
    for listed in journal.runs()? {
        if listed.run.mode != "drill" {
            continue;
        }
        let record = journal.run(&listed.run.id)?;
        if let Ok(loaded) = runbook::load(
            &record.run.file,
            &record.run.runbook_text,
            &record.run.params,
            MissingParams::Placeholder,
        ) {
            all_regions.extend(runbook::regions_of(&loaded.runbook));
            for role in runbook::roles_of(&loaded.runbook) {
                if !all_roles.contains(&role) {
                    all_roles.push(role);
                }
            }
        }
        if matches!(record.state.as_str(), "running" | "paused") {
            if orphaned {
                dead.push(record.run.id.clone());
            } else {
                live.insert(record.run.id.clone());
            }
        }
    }
    if all_regions.is_empty() {
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
        &all_roles,
        &all_regions,
        &which,
    ));
    for id in &dead {
        journal.set_run_state(
            id,
            "failed",
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
        all_regions.iter().cloned().collect::<Vec<_>>().join(", "),
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
        return resume(state_dir, id, &args);
    }
    let Some(file) = &args.file else {
        return Err(CliError::Usage(
            "give a runbook FILE, or --resume RUN".into(),
        ));
    };
    let name = file.display().to_string();
    let text = super::commands::read(file)?;
    let loaded = load_or_report(&name, &text, &args.params)?;
    let mode = args.mode.into();
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
    execute(journal, id, loaded, mode, args.concurrency, false)
}

fn resume(state_dir: &Path, id: &str, args: &RunArgs) -> Result<(), CliError> {
    if args.file.is_some() {
        return Err(CliError::Usage(
            "--resume takes the runbook from the journal; give no FILE".into(),
        ));
    }
    let journal = Arc::new(Journal::open(state_dir, Access::Executor)?);
    let record = journal.run(id)?;
    if !matches!(record.state.as_str(), "running" | "paused") {
        return Err(CliError::Usage(format!(
            "run {id} already ended ({}); nothing to resume",
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
        _ => Mode::Failover,
    };
    eprint(&format!(
        "resuming run {id}: {} in {mode} mode",
        loaded.runbook.name
    ));
    execute(
        journal,
        id.to_string(),
        loaded,
        mode,
        args.concurrency,
        false,
    )
}

/// The actions, with AWS clients when the runbook calls AWS. AWS
/// configuration (credential chain, profile, `AWS_ENDPOINT_URL`) is loaded
/// only then.
pub(super) fn registry_for(runtime: &tokio::runtime::Runtime, runbook: &Runbook) -> Registry {
    if crate::actions::uses_aws(runbook) {
        let settings = crate::aws::AwsSettings::default();
        let clients = runtime.block_on(crate::aws::AwsClients::load(
            &settings,
            crate::aws::Credentials::Chain,
        ));
        Registry::with_aws(clients)
    } else {
        Registry::new()
    }
}

/// How many AWS requests were made, and how many of them change things.
pub(super) fn report_calls(aws: &crate::aws::AwsClients) {
    let calls: u64 = aws.calls().snapshot().values().sum();
    let changes: u64 = aws.calls().mutating().values().sum();
    eprint(&format!(
        "AWS API calls: {calls} ({changes} of them changes)"
    ));
}

fn execute(
    journal: Arc<Journal>,
    id: String,
    loaded: Loaded,
    mode: Mode,
    concurrency: usize,
    keep: bool,
) -> Result<(), CliError> {
    let started = Instant::now();
    let observer =
        Arc::new(move |event: &StepEvent| eprint(&progress_line(started.elapsed(), event)));
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
    let outcome = runtime
        .block_on(engine.execute(&id, Arc::new(loaded.runbook), mode))
        .map_err(|e| match e {
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
                &crate::engine::journal::Mark {
                    kind: "teardown".into(),
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

fn progress_line(elapsed: std::time::Duration, e: &StepEvent) -> String {
    let mut line = format!(
        "[{:>7.1}s] {:<24} {}",
        elapsed.as_secs_f64(),
        e.step,
        e.state
    );
    if e.phase != "main" {
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

/// One step of a run, summarised from its events.
#[derive(Debug, Clone, Serialize)]
pub struct StepRow {
    /// Step id.
    pub step: String,
    /// Last state.
    pub state: String,
    /// Attempts made.
    pub attempts: u32,
    /// First start.
    pub started_at: Option<String>,
    /// Last transition.
    pub ended_at: Option<String>,
    /// Milliseconds from first start to the end, when it ended.
    pub duration_ms: Option<i64>,
    /// Outputs, when it succeeded.
    pub outputs: Option<serde_json::Value>,
    /// Error or note of the last transition.
    pub message: Option<String>,
    /// Rollback state, if a rollback ran.
    pub rollback: Option<String>,
}

fn millis_between(a: &str, b: &str) -> Option<i64> {
    let a: jiff::Timestamp = a.parse().ok()?;
    let b: jiff::Timestamp = b.parse().ok()?;
    Some(b.duration_since(a).as_millis() as i64)
}

/// Summarise events per step, in order of first appearance.
pub fn step_rows(events: &[StepEvent]) -> Vec<StepRow> {
    let mut rows: Vec<StepRow> = Vec::new();
    for e in events {
        let pos = match rows.iter().position(|r| r.step == e.step) {
            Some(p) => p,
            None => {
                rows.push(StepRow {
                    step: e.step.clone(),
                    state: String::new(),
                    attempts: 0,
                    started_at: None,
                    ended_at: None,
                    duration_ms: None,
                    outputs: None,
                    message: None,
                    rollback: None,
                });
                rows.len() - 1
            }
        };
        let row = &mut rows[pos];
        if e.phase == "rollback" {
            row.rollback = Some(e.state.clone());
            continue;
        }
        if e.phase != "main" {
            continue;
        }
        row.state = e.state.clone();
        row.attempts = row.attempts.max(e.attempt);
        if matches!(e.state.as_str(), "running" | "waiting") && row.started_at.is_none() {
            row.started_at = Some(e.at.clone());
        }
        row.message = e.message.clone();
        if matches!(e.state.as_str(), "succeeded" | "failed" | "skipped") {
            row.ended_at = Some(e.at.clone());
            row.duration_ms = row
                .started_at
                .as_deref()
                .and_then(|s| millis_between(s, &e.at));
            if e.state == "succeeded" {
                row.outputs = e.outputs.clone();
            }
        }
    }
    rows
}

fn render_run(record: &RunRecord, rows: &[StepRow]) -> String {
    let r = &record.run;
    let mut out = format!(
        "run {}: {} ({}), {} mode, {}\nstarted {} by {}{}\n",
        r.id,
        r.runbook,
        r.file,
        r.mode,
        record.state,
        r.started_at,
        r.started_by,
        record
            .finished_at
            .as_deref()
            .map(|f| format!(", finished {f}"))
            .unwrap_or_default()
    );
    if let Some(e) = &record.error {
        let _ = writeln!(out, "error: {e}");
    }
    let width = rows.iter().map(|r| r.step.len()).max().unwrap_or(4).max(4);
    let _ = writeln!(
        out,
        "\n{:width$}  {:14}  {:>8}  {:>10}  detail",
        "step", "state", "attempts", "duration"
    );
    for row in rows {
        let duration = row
            .duration_ms
            .map(|ms| format!("{:.1}s", ms as f64 / 1000.0))
            .unwrap_or_default();
        let mut detail = row.message.clone().unwrap_or_default();
        if let Some(rb) = &row.rollback {
            detail = format!("{detail} [rollback {rb}]").trim().to_string();
        }
        let _ = writeln!(
            out,
            "{:width$}  {:14}  {:>8}  {:>10}  {detail}",
            row.step, row.state, row.attempts, duration
        );
    }
    out
}

/// `lifeboat runs`.
pub fn runs(at: &super::JournalAt, output: Output) -> Result<(), CliError> {
    let journal = at.open_client()?;
    let runs = journal.runs()?;
    match output {
        Output::Json => print(&format!("{}\n", serde_json::to_string_pretty(&runs)?)),
        Output::Text => {
            let mut out = String::new();
            for r in &runs {
                let _ = writeln!(
                    out,
                    "{}  {:10}  {:10}  {}  {}",
                    r.run.id, r.state, r.run.mode, r.run.runbook, r.run.started_at
                );
            }
            if runs.is_empty() {
                out.push_str("no runs\n");
            }
            print(&out)
        }
    }
}

#[derive(Serialize)]
struct ShowJson<'a> {
    #[serde(flatten)]
    run: &'a RunRecord,
    steps: &'a [StepRow],
}

/// `lifeboat show RUN`.
pub fn show(at: &super::JournalAt, id: &str, output: Output) -> Result<(), CliError> {
    let journal = at.open_client()?;
    let record = journal.run(id)?;
    let rows = step_rows(&journal.events(id)?);
    match output {
        Output::Json => print(&format!(
            "{}\n",
            serde_json::to_string_pretty(&ShowJson {
                run: &record,
                steps: &rows
            })?
        )),
        Output::Text => print(&render_run(&record, &rows)),
    }
}
