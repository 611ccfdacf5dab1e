//! SIGKILL at every step boundary and in the middle of every step, then
//! resume: every side effect happens exactly once and the run succeeds.
//!
//! The test re-executes this test binary as the child (`crash_child`, which
//! does nothing unless `LIFEBOAT_CRASH_CHILD` is set). The child's fake
//! actions record their side effect as a line in a file, observing first
//! whether it is already there, as real actions observe AWS; at the
//! failpoint named by `LIFEBOAT_FAILPOINT` the child SIGKILLs itself.

use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use lifeboat::catalogue::{ActionInput, ActionKind};
use lifeboat::engine::{
    ActionError, Actions, BoxFuture, Engine, EngineOptions, Outputs, RunOutcome, StepContext, now,
};
use lifeboat::journal::{Access, Journal, NewRun, StepEvent};
use lifeboat::runbook::{MissingParams, Mode, load};

const RUNBOOK: &str = "name: crash
strategy: pilot-light
regions: { from: us-east-1, to: us-west-2 }
steps:
  - { id: a, action: wait, with: { duration: 1s } }
  - { id: b, action: wait, needs: [a], with: { duration: 1s } }
  - { id: c, action: wait, needs: [a], with: { duration: 1s } }
  - { id: d, action: wait, needs: [b, c], with: { duration: 1s }, restores_service: true }
";
const STEPS: [&str; 4] = ["a", "b", "c", "d"];
const RUN: &str = "crash-run";

fn die() -> ! {
    let _ = Command::new("kill")
        .args(["-KILL", &std::process::id().to_string()])
        .status();
    loop {
        std::thread::park();
    }
}

struct FileEffects {
    file: PathBuf,
    failpoint: String,
}

impl FileEffects {
    fn done(&self, step: &str) -> bool {
        std::fs::read_to_string(&self.file).is_ok_and(|t| t.lines().any(|l| l == step))
    }
}

impl Actions for FileEffects {
    fn supports(&self, _: ActionKind) -> bool {
        true
    }

    fn run<'a>(
        &'a self,
        ctx: &'a StepContext,
        _: &'a ActionInput,
    ) -> BoxFuture<'a, Result<Outputs, ActionError>> {
        Box::pin(async move {
            let step = ctx.step_id.as_str();
            if self.done(step) {
                return Ok(Outputs::from([(
                    "already".to_string(),
                    serde_json::json!(true),
                )]));
            }
            if self.failpoint == format!("before:{step}") {
                die();
            }
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.file)
                .expect("open effects");
            // One write per line: `writeln!` may split the step and its
            // newline into two, which parallel steps then interleave.
            f.write_all(format!("{step}\n").as_bytes())
                .expect("write effect");
            f.sync_all().expect("sync effect");
            if self.failpoint == format!("mid:{step}") {
                die();
            }
            Ok(Outputs::new())
        })
    }

    fn describe(&self, _: &StepContext, _: &ActionInput) -> Vec<String> {
        Vec::new()
    }
}

#[test]
fn crash_child() {
    let Some(dir) = std::env::var_os("LIFEBOAT_CRASH_CHILD") else {
        return;
    };
    let dir = PathBuf::from(dir);
    let failpoint = std::env::var("LIFEBOAT_FAILPOINT").unwrap_or_default();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let journal =
            Arc::new(Journal::open(&dir.join("state"), Access::Executor).expect("journal"));
        if journal.run(RUN).is_err() {
            journal
                .create_run(&NewRun {
                    id: RUN.into(),
                    runbook: "crash".into(),
                    file: "crash.yaml".into(),
                    runbook_sha256: String::new(),
                    runbook_text: RUNBOOK.into(),
                    params: Vec::new(),
                    secret_params: Vec::new(),
                    mode: "failover".into(),
                    started_by: "crash test".into(),
                    started_at: now(),
                })
                .expect("create run");
        }
        let effects = Arc::new(FileEffects {
            file: dir.join("effects"),
            failpoint: failpoint.clone(),
        });
        let after = failpoint.strip_prefix("after:").map(str::to_string);
        let engine = Engine::new(journal, effects, EngineOptions::default()).with_observer(
            Arc::new(move |e: &StepEvent| {
                if e.state == "succeeded" && after.as_deref() == Some(e.step.as_str()) {
                    die();
                }
            }),
        );
        let runbook = Arc::new(
            load("crash.yaml", RUNBOOK, &[], MissingParams::Refuse)
                .expect("runbook")
                .runbook,
        );
        let outcome = engine
            .execute(RUN, runbook, Mode::Failover)
            .await
            .expect("execute");
        assert_eq!(outcome, RunOutcome::Succeeded);
    });
}

fn child(dir: &Path, failpoint: Option<&str>) -> std::process::ExitStatus {
    let mut cmd = Command::new(std::env::current_exe().expect("test binary"));
    cmd.args([
        "--exact",
        "crash::crash_child",
        "--test-threads=1",
        "--quiet",
    ])
    .env("LIFEBOAT_CRASH_CHILD", dir)
    .env_remove("LIFEBOAT_FAILPOINT")
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null());
    if let Some(fp) = failpoint {
        cmd.env("LIFEBOAT_FAILPOINT", fp);
    }
    cmd.status().expect("run the child")
}

#[test]
fn killed_at_every_boundary_and_mid_step_resumes_with_every_effect_once() {
    for step in STEPS {
        for place in ["before", "mid", "after"] {
            let failpoint = format!("{place}:{step}");
            let dir = tempfile::tempdir().expect("tempdir");
            let killed = child(dir.path(), Some(&failpoint));
            assert_eq!(
                killed.signal(),
                Some(9),
                "{failpoint}: the child was to be killed, it exited {killed}"
            );

            let resumed = child(dir.path(), None);
            assert!(resumed.success(), "{failpoint}: resume failed: {resumed}");

            let effects = std::fs::read_to_string(dir.path().join("effects")).expect("effects");
            let mut lines: Vec<&str> = effects.lines().collect();
            lines.sort_unstable();
            assert_eq!(
                lines,
                STEPS.to_vec(),
                "{failpoint}: each effect exactly once"
            );
            let journal =
                Journal::open(&dir.path().join("state"), Access::Client).expect("journal");
            assert_eq!(
                journal.run(RUN).expect("run").state,
                "succeeded",
                "{failpoint}"
            );
        }
    }
}
