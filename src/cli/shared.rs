//! What the commands share: where the journal is and who is asking, how
//! runbooks and configs are read and loaded, how a run is shown, and
//! printing.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::error::CliError;
use crate::actions::Registry;
use crate::journal::{Phase, RunRecord, StepEvent, StepState};
use crate::runbook::{self, Loaded, MissingParams, Runbook};

/// Writes to stdout, treating a closed pipe (`lifeboat schema | head`) as done.
pub(crate) fn print(text: &str) -> Result<(), CliError> {
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(CliError::Output(e)),
        _ => Ok(()),
    }
}

/// Writes a line to stderr (diagnostics, warnings).
pub(crate) fn eprint(text: &str) {
    let _ = writeln!(io::stderr().lock(), "{text}");
}

/// Where a read command reads: the journal itself, or the daemon, which
/// reads its own for a caller who cannot.
pub enum Reader {
    /// The journal, opened.
    Journal(crate::journal::Journal),
    /// The daemon's control socket.
    Daemon(PathBuf),
}

impl Reader {
    fn ask<T: serde::de::DeserializeOwned>(
        socket: &Path,
        what: crate::control::Read,
    ) -> Result<T, CliError> {
        let request = crate::control::Request::Read { what };
        let response = crate::control::call(socket, &request).map_err(|e| CliError::NoDaemon {
            socket: socket.to_path_buf(),
            reason: e.to_string(),
        })?;
        if !response.ok {
            return Err(CliError::Refused(response.message));
        }
        let data = response.data.ok_or_else(|| CliError::NoDaemon {
            socket: socket.to_path_buf(),
            reason: "the daemon answered a read without data (an older daemon?)".into(),
        })?;
        serde_json::from_value(data).map_err(|e| CliError::NoDaemon {
            socket: socket.to_path_buf(),
            reason: format!("the daemon's answer does not decode: {e}"),
        })
    }

    /// Every run.
    pub fn runs(&self) -> Result<Vec<RunRecord>, CliError> {
        match self {
            Reader::Journal(j) => Ok(j.runs()?),
            Reader::Daemon(s) => Reader::ask(s, crate::control::Read::Runs),
        }
    }

    /// One run, with its runbook text.
    pub fn run(&self, id: &str) -> Result<RunRecord, CliError> {
        match self {
            Reader::Journal(j) => Ok(j.run(id)?),
            Reader::Daemon(s) => {
                let read: crate::control::RunRead =
                    Reader::ask(s, crate::control::Read::Run { id: id.into() })?;
                let mut record = read.record;
                record.run.runbook_text = read.runbook_text;
                Ok(record)
            }
        }
    }

    /// A run's step transitions.
    pub fn events(&self, run: &str) -> Result<Vec<StepEvent>, CliError> {
        match self {
            Reader::Journal(j) => Ok(j.events(run)?),
            Reader::Daemon(s) => Reader::ask(s, crate::control::Read::Events { run: run.into() }),
        }
    }

    /// Every request left on runs.
    pub fn all_requests(&self) -> Result<Vec<crate::journal::Request>, CliError> {
        match self {
            Reader::Journal(j) => Ok(j.all_requests()?),
            Reader::Daemon(s) => Reader::ask(s, crate::control::Read::Requests),
        }
    }

    /// Every decision and human request of the daemon.
    pub fn decisions(&self) -> Result<Vec<crate::journal::Decision>, CliError> {
        match self {
            Reader::Journal(j) => Ok(j.decisions(None)?),
            Reader::Daemon(s) => Reader::ask(s, crate::control::Read::Decisions),
        }
    }

    /// A run's figures (RTO, RPO, timeline).
    pub fn figures(&self, id: &str) -> Result<crate::measure::Figures, CliError> {
        let marks = match self {
            Reader::Journal(j) => j.marks(id)?,
            Reader::Daemon(s) => Reader::ask(s, crate::control::Read::Marks { run: id.into() })?,
        };
        crate::measure::Figures::of_record(&self.run(id)?, &self.events(id)?, &marks).map_err(|e| {
            match e {
                crate::measure::FiguresError::Journal(e) => CliError::Journal(e),
                e @ crate::measure::FiguresError::Runbook { .. } => CliError::Usage(e.to_string()),
            }
        })
    }
}

/// Where the journal and the daemon are, found the same way by every
/// command. The daemon's config (`--config`, `LIFEBOAT_CONFIG`, or
/// /etc/lifeboat/lifeboat.yaml when it exists and no state directory is
/// given) says where its journal is (`state_dir`, or `storage: etcd`) and
/// its control socket (`listen.control`). An explicit `--state-dir` is a
/// journal of one's own, over the config's `state_dir` (never over a
/// shared one). Without either, the personal state directory.
#[derive(Debug, Clone)]
pub struct JournalAt {
    /// `--state-dir`.
    pub state_dir: Option<PathBuf>,
    /// The daemon's config, given or found at the default place.
    pub config: Option<PathBuf>,
    /// `--socket`.
    pub socket: Option<PathBuf>,
}

/// Where a journal was found, for messages.
#[derive(Debug, Clone)]
struct Place {
    dir: PathBuf,
    shared: Option<(crate::config::EtcdSettings, crate::config::AwsSettings)>,
    socket: PathBuf,
}

impl JournalAt {
    /// From the command line: the default config counts only when it
    /// exists and no state directory was given.
    pub fn new(
        state_dir: Option<PathBuf>,
        config: Option<PathBuf>,
        socket: Option<PathBuf>,
    ) -> JournalAt {
        let config = config.or_else(|| {
            let default = Path::new(crate::config::DEFAULT_CONFIG);
            (state_dir.is_none() && default.exists()).then(|| default.to_path_buf())
        });
        JournalAt {
            state_dir,
            config,
            socket,
        }
    }

    fn place(&self) -> Result<Place, CliError> {
        let config = self.config.as_deref().map(load_config).transpose()?;
        let dir = match (&self.state_dir, &config) {
            (Some(dir), _) => dir.clone(),
            (None, Some(c)) => c.state_dir.clone(),
            (None, None) => state_dir(None),
        };
        // A journal shared in etcd is the cluster's: no state directory
        // stands in for it.
        let shared = match config.as_ref().map(|c| &c.storage) {
            Some(crate::config::Storage::Etcd(settings)) => config
                .as_ref()
                .map(|c| ((**settings).clone(), c.aws.clone())),
            _ => None,
        };
        let socket = match (&self.socket, &config) {
            (Some(socket), _) => socket.clone(),
            (None, Some(c)) => c.control_socket.clone(),
            (None, None) => PathBuf::from(crate::config::DEFAULT_CONTROL_SOCKET),
        };
        Ok(Place {
            dir,
            shared,
            socket,
        })
    }

    /// The daemon's control socket.
    pub fn socket(&self) -> Result<PathBuf, CliError> {
        Ok(self.place()?.socket)
    }

    /// The daemon's config, for the commands that run with one.
    pub fn required_config(&self) -> Result<&Path, CliError> {
        self.config.as_deref().ok_or_else(|| {
            CliError::Usage(format!(
                "no daemon config: give --config FILE (or set LIFEBOAT_CONFIG); {} does not exist",
                crate::config::DEFAULT_CONFIG
            ))
        })
    }

    fn open(&self, place: &Place) -> Result<crate::journal::Journal, CliError> {
        use crate::journal::{Access, Journal, JournalError};
        match &place.shared {
            Some((settings, aws)) => {
                let etcd = crate::ha::etcd::Etcd::connect(settings).map_err(JournalError::from)?;
                Ok(Journal::etcd(crate::archive::store(
                    std::sync::Arc::new(etcd),
                    settings,
                    aws,
                    crate::aws::Credentials::Chain,
                )?))
            }
            None => Ok(Journal::open(&place.dir, Access::Client)?),
        }
    }

    /// Open it to read.
    pub fn open_client(&self) -> Result<crate::journal::Journal, CliError> {
        self.open(&self.place()?)
    }

    /// Where the read commands (`runs`, `show`, `report`, `audit`) read:
    /// with a daemon's config, through the daemon when it answers (its
    /// state directory is the service user's alone; the `lifeboat` group
    /// can use the socket), else the journal itself, which a read never
    /// creates in the daemon's place; with `--state-dir` or no config,
    /// that journal.
    pub fn reader(&self) -> Result<Reader, CliError> {
        let place = self.place()?;
        if self.state_dir.is_some() || self.config.is_none() {
            return Ok(Reader::Journal(self.open(&place)?));
        }
        if std::os::unix::net::UnixStream::connect(&place.socket).is_ok() {
            return Ok(Reader::Daemon(place.socket));
        }
        let no_daemon = format!("no daemon answers on {}", place.socket.display());
        let denied = || {
            place.shared.is_none()
                && [place.dir.clone(), place.dir.join("journal.sqlite")]
                    .iter()
                    .any(|p| {
                        std::fs::File::open(p)
                            .is_err_and(|e| e.kind() == io::ErrorKind::PermissionDenied)
                    })
        };
        let unreadable = || CliError::Unreadable {
            dir: place.dir.clone(),
            why: no_daemon.clone(),
        };
        if denied() {
            return Err(unreadable());
        }
        if place.shared.is_none() && !crate::journal::Journal::exists(&place.dir) {
            // A read never creates the daemon's journal: one made by another
            // user would be one the daemon cannot write.
            return Err(CliError::Refused(format!(
                "{} holds no journal yet and {no_daemon}: no run has been recorded there",
                place.dir.display()
            )));
        }
        match self.open(&place) {
            Ok(journal) => Ok(Reader::Journal(journal)),
            Err(_) if denied() => Err(unreadable()),
            Err(e) => Err(e),
        }
    }

    /// Open it to leave a request no daemon answered (`why`), and say
    /// where; never create one: a request left in a journal nobody reads
    /// is lost.
    pub fn open_for_request(
        &self,
        why: &str,
    ) -> Result<(crate::journal::Journal, String), CliError> {
        let place = self.place()?;
        let socket = place.socket.display();
        if place.shared.is_some() {
            let journal = self.open(&place)?;
            return Ok((
                journal,
                format!(
                    "no daemon answers on {socket} ({why}): recorded in the journal shared in etcd"
                ),
            ));
        }
        if !crate::journal::Journal::exists(&place.dir) {
            return Err(CliError::NoJournal {
                socket: place.socket.clone(),
                why: why.to_string(),
                dir: place.dir.clone(),
            });
        }
        let journal = self.open(&place)?;
        Ok((
            journal,
            format!(
                "no daemon answers on {socket} ({why}): recorded in the journal in {}, which the daemon reads when it starts",
                place.dir.display()
            ),
        ))
    }

    /// The daemon's decisions, through it or from its journal; none when
    /// it has no journal yet (so nothing was decided).
    pub fn decisions_if_any(&self) -> Result<Vec<crate::journal::Decision>, CliError> {
        match self.reader() {
            // No daemon answers and its state directory holds no journal.
            Err(CliError::Refused(_)) => Ok(Vec::new()),
            reader => reader?.decisions(),
        }
    }

    /// The state directory for a command that executes runs itself, which
    /// a shared journal does not allow (only the elected daemon executes).
    pub fn executor_dir(&self) -> Result<PathBuf, CliError> {
        let place = self.place()?;
        if place.shared.is_some() {
            return Err(CliError::Usage(
                "the journal is shared in etcd, where only the elected daemon executes: start runs with `lifeboat trigger BINDING` (or give --state-dir to run against a local state directory)".into(),
            ));
        }
        Ok(place.dir)
    }
}

pub(crate) fn read(path: &Path) -> Result<String, CliError> {
    crate::input::read_text(path).map_err(|source| CliError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Read a runbook file, with the child runbooks it runs carried in its text.
pub(crate) fn read_runbook(path: &Path) -> Result<String, CliError> {
    crate::runbook::children::read(path).map_err(|source| CliError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Read and check a config file, printing every problem.
pub(super) fn load_config(file: &Path) -> Result<crate::config::Config, CliError> {
    let text = read(file)?;
    crate::config::load(&file.display().to_string(), &text).map_err(|problems| {
        for p in &problems {
            super::eprint(&p.to_string());
        }
        CliError::Invalid {
            count: problems.len(),
        }
    })
}

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

/// Read and load the runbook `file` with `params`, printing its warnings
/// or every problem: its name, its text and what loaded.
pub(super) fn load_file(
    file: &Path,
    params: &[(String, String)],
) -> Result<(String, String, Loaded), CliError> {
    let name = file.display().to_string();
    let text = read_runbook(file)?;
    let loaded = load_or_report(&name, &text, params)?;
    Ok((name, text, loaded))
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
    let paced = match aws.pacing_cost() {
        Some((held, waited, throttled)) if held > 0 || throttled > 0 => format!(
            "; {held} held back to AWS's request rates ({:.1} s in all), {throttled} throttled all the same",
            waited.as_secs_f64()
        ),
        _ => String::new(),
    };
    eprint(&format!(
        "AWS API calls: {calls} ({changes} of them changes){paced}"
    ));
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
        if e.phase == Phase::Rollback {
            row.rollback = Some(e.state.to_string());
            continue;
        }
        if e.phase != Phase::Main {
            continue;
        }
        row.state = e.state.to_string();
        row.attempts = row.attempts.max(e.attempt);
        if matches!(e.state, StepState::Running | StepState::Waiting) && row.started_at.is_none() {
            row.started_at = Some(e.at.clone());
        }
        row.message = e.message.clone();
        if matches!(
            e.state,
            StepState::Succeeded | StepState::Failed | StepState::Skipped
        ) {
            row.ended_at = Some(e.at.clone());
            row.duration_ms = row
                .started_at
                .as_deref()
                .and_then(|s| millis_between(s, &e.at));
            if e.state == StepState::Succeeded {
                row.outputs = e.outputs.clone();
            }
        }
    }
    rows
}

pub(super) fn render_run(record: &RunRecord, rows: &[StepRow]) -> String {
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
