//! The durable journal: an SQLite database in the state directory (WAL,
//! `synchronous=FULL`), holding every run and every step transition.
//!
//! The engine writes a step's `running` event, and has it synced, before
//! the step's side effect starts, and its outcome after the effect is done;
//! a restarted run reads the events back to know what finished. Only one
//! executor may use a state directory at a time (an exclusive lock on
//! `executor.lock`); short-lived commands (`runs`, `show`, `approve`,
//! `cancel`) open the database without that lock and leave requests the
//! executor picks up.

pub mod archive;
pub mod etcd;
mod kinds;

pub use kinds::{DecisionKind, MarkKind, Phase, RequestKind, RunState, StepState, UnknownWord};

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

/// Version of the journal schema this build writes.
pub const SCHEMA_VERSION: i64 = 6;

/// Why the journal could not be used.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The state directory could not be created or opened.
    #[error("state directory {path}: {source}")]
    StateDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Another executor holds the state directory.
    #[error(
        "another lifeboat ({holder}) is running with state directory {path}; only one may execute at a time"
    )]
    Locked {
        /// The directory.
        path: PathBuf,
        /// Who holds it, as recorded in the lock file.
        holder: String,
    },
    /// The database failed.
    #[error("journal {path}: {source}")]
    Database {
        /// The database file.
        path: PathBuf,
        /// Why.
        source: rusqlite::Error,
    },
    /// The database was written by a newer lifeboat.
    #[error(
        "journal {path} has schema version {found}; this lifeboat understands up to {SCHEMA_VERSION}"
    )]
    TooNew {
        /// The database file.
        path: PathBuf,
        /// Its version.
        found: i64,
    },
    /// A run id that is not in the journal.
    #[error("no run `{0}` in the journal")]
    UnknownRun(String),
    /// The shared journal in etcd could not be reached or answered badly.
    #[error(transparent)]
    Etcd(#[from] crate::ha::etcd::EtcdError),
    /// A write of a daemon that is no longer the leader, refused.
    #[error("{holder} is no longer the leader ({why}): its journal write was refused")]
    Fenced {
        /// The daemon.
        holder: String,
        /// How it was found out.
        why: String,
    },
    /// A record that must be new exists already (or changed under a
    /// compare-and-swap).
    #[error("journal record {0} was written by someone else first")]
    Conflict(String),
    /// The archive of the journal's history could not be read or written.
    #[error("journal archive {archive}: {message}")]
    Archive {
        /// Where it is.
        archive: String,
        /// What failed.
        message: String,
    },
    /// Stored JSON could not be read back.
    #[error("journal {path}: corrupt record: {message}")]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// Whether the opener will execute runs (and so needs the executor lock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Runs steps: takes the exclusive executor lock.
    Executor,
    /// Reads, or leaves requests for the executor.
    Client,
}

/// A run as started.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct NewRun {
    /// Run id.
    pub id: String,
    /// Runbook name.
    pub runbook: String,
    /// The file it came from, as given.
    pub file: String,
    /// SHA-256 of the runbook text, hex.
    pub runbook_sha256: String,
    /// The runbook text itself, so the run can be resumed exactly (left
    /// out of its JSON; a read over the control socket carries it beside).
    #[serde(skip)]
    pub runbook_text: String,
    /// Parameter values given on the command line (secret ones redacted).
    pub params: Vec<(String, String)>,
    /// Names of the secret parameters that were given (values not stored).
    pub secret_params: Vec<String>,
    /// Mode.
    pub mode: String,
    /// Who started it.
    pub started_by: String,
    /// When (RFC 3339, UTC).
    pub started_at: String,
}

/// A run as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct RunRecord {
    /// What was recorded when it started.
    #[serde(flatten)]
    pub run: NewRun,
    /// Its state.
    pub state: RunState,
    /// When it finished, if it did.
    pub finished_at: Option<String>,
    /// Why it failed or paused.
    pub error: Option<String>,
}

/// One transition of one step.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct StepEvent {
    /// Order of the event in the journal.
    pub seq: i64,
    /// Step id.
    pub step: String,
    /// Which part of the step.
    pub phase: Phase,
    /// Attempt number, from 1.
    pub attempt: u32,
    /// The state entered.
    pub state: StepState,
    /// When (RFC 3339, UTC).
    pub at: String,
    /// Outputs, on success.
    pub outputs: Option<serde_json::Value>,
    /// Error or note.
    pub message: Option<String>,
}

/// A moment of a run's timeline that is not a step transition: the
/// incident's start, the outage's declaration, a recovery point read.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Mark {
    /// What it marks.
    pub kind: MarkKind,
    /// When (RFC 3339, UTC).
    pub at: String,
    /// What was read or why, as JSON.
    pub detail: Option<serde_json::Value>,
}

/// A request left for the executor by another command.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Request {
    /// Order.
    pub seq: i64,
    /// Run id.
    pub run: String,
    /// Step id, for approvals, rejections and skips.
    pub step: Option<String>,
    /// What it asks.
    pub kind: RequestKind,
    /// Who asked.
    pub who: String,
    /// When.
    pub at: String,
}

/// A decision of the daemon (to start a run, to wait for approval, not to
/// act and why) or a request of a human (approve, ack, pause, ...), with who
/// made it and the evidence it was made on.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Decision {
    /// Order.
    pub seq: i64,
    /// When (RFC 3339, UTC).
    pub at: String,
    /// The binding it concerns; none for the kill switch.
    pub binding: Option<String>,
    /// What was decided or asked.
    pub kind: DecisionKind,
    /// The run it started or concerns.
    pub run: Option<String>,
    /// Who: the daemon, or a local user with uid and pid.
    pub who: String,
    /// Evidence and reasons, as JSON.
    pub detail: Option<serde_json::Value>,
}

/// What one pass of retention took out of the journal: moved to the
/// archive (etcd), or deleted (SQLite).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retired {
    /// Runs, with their events, marks and calls.
    pub runs: usize,
    /// Decisions.
    pub decisions: usize,
    /// Requests.
    pub requests: usize,
    /// Verification results.
    pub verifications: usize,
}

impl Retired {
    /// Whether nothing was retired.
    pub fn nothing(&self) -> bool {
        *self == Retired::default()
    }
}

/// The decisions still in force for one binding: what a trigger
/// evaluation reads, a bounded number of records whatever the history.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InForce {
    /// The kill switch's last `pause` or `resume` (no binding).
    pub switch: Option<Decision>,
    /// The binding's last `started` run.
    pub started: Option<Decision>,
    /// The binding's last `ack`.
    pub ack: Option<Decision>,
    /// The binding's last decision about an approval: `awaiting-approval`,
    /// `approved`, `rejected`, `withdrawn` or `started`.
    pub approval: Option<Decision>,
}

impl InForce {
    /// The decisions in force for `binding` found by reading every
    /// decision (`all`, oldest first): what an evaluation read before the
    /// slots kept them, and the reference the slots are checked against.
    pub fn scan(all: &[Decision], binding: &str) -> InForce {
        let last = |global: bool, kinds: &[DecisionKind]| {
            all.iter()
                .rfind(|d| {
                    (if global {
                        d.binding.is_none()
                    } else {
                        d.binding.as_deref() == Some(binding)
                    }) && kinds.contains(&d.kind)
                })
                .cloned()
        };
        InForce {
            switch: last(true, &[DecisionKind::Pause, DecisionKind::Resume]),
            started: last(false, &[DecisionKind::Started]),
            ack: last(false, &[DecisionKind::Ack]),
            approval: last(
                false,
                &[
                    DecisionKind::AwaitingApproval,
                    DecisionKind::Approved,
                    DecisionKind::Rejected,
                    DecisionKind::Withdrawn,
                    DecisionKind::Started,
                ],
            ),
        }
    }
}

/// Which of `InForce`'s slots a decision of `kind` fills (the kill switch
/// has no binding, the others one).
pub fn in_force_slots(kind: DecisionKind, global: bool) -> &'static [Slot] {
    match (kind, global) {
        (DecisionKind::Pause | DecisionKind::Resume, true) => &[Slot::Switch],
        (DecisionKind::Started, false) => &[Slot::Started, Slot::Approval],
        (DecisionKind::Ack, false) => &[Slot::Ack],
        (
            DecisionKind::AwaitingApproval
            | DecisionKind::Approved
            | DecisionKind::Rejected
            | DecisionKind::Withdrawn,
            false,
        ) => &[Slot::Approval],
        _ => &[],
    }
}

/// One of `InForce`'s slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// The kill switch.
    Switch,
    /// The last run started.
    Started,
    /// The last acknowledgement.
    Ack,
    /// The last word on an approval.
    Approval,
}

impl Slot {
    /// Every slot.
    pub const ALL: [Slot; 4] = [Slot::Switch, Slot::Started, Slot::Ack, Slot::Approval];

    /// The decision kinds that fill it.
    pub fn kinds(self) -> &'static [DecisionKind] {
        match self {
            Slot::Switch => &[DecisionKind::Pause, DecisionKind::Resume],
            Slot::Started => &[DecisionKind::Started],
            Slot::Ack => &[DecisionKind::Ack],
            Slot::Approval => &[
                DecisionKind::AwaitingApproval,
                DecisionKind::Approved,
                DecisionKind::Rejected,
                DecisionKind::Withdrawn,
                DecisionKind::Started,
            ],
        }
    }

    /// Its name in keys.
    pub fn name(self) -> &'static str {
        match self {
            Slot::Switch => "switch",
            Slot::Started => "started",
            Slot::Ack => "ack",
            Slot::Approval => "approval",
        }
    }

    /// Its place in `f`.
    pub fn of(self, f: &mut InForce) -> &mut Option<Decision> {
        match self {
            Slot::Switch => &mut f.switch,
            Slot::Started => &mut f.started,
            Slot::Ack => &mut f.ack,
            Slot::Approval => &mut f.approval,
        }
    }
}

/// The AWS requests one attempt of one step made.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct StepCalls {
    /// Step id.
    pub step: String,
    /// Which part of the step, or the recovery-point reading the engine
    /// takes before it.
    pub phase: Phase,
    /// Attempt number.
    pub attempt: u32,
    /// Requests by `Service.Operation`.
    pub calls: BTreeMap<String, u64>,
}

/// The journal: of one state directory (SQLite), or shared in etcd.
#[derive(Debug)]
pub struct Journal {
    backend: Backend,
    path: PathBuf,
}

#[derive(Debug)]
enum Backend {
    Sqlite {
        conn: Mutex<Connection>,
        // Held for the journal's life: the executor lock.
        _lock: Option<File>,
    },
    Etcd(crate::journal::etcd::Store),
}

const MIGRATIONS: &[&str] = &[
    // 1: runs, step events, requests.
    "CREATE TABLE runs (
        id TEXT PRIMARY KEY,
        runbook TEXT NOT NULL,
        file TEXT NOT NULL,
        runbook_sha256 TEXT NOT NULL,
        runbook_text TEXT NOT NULL,
        params TEXT NOT NULL,
        secret_params TEXT NOT NULL,
        mode TEXT NOT NULL,
        started_by TEXT NOT NULL,
        started_at TEXT NOT NULL,
        state TEXT NOT NULL,
        finished_at TEXT,
        error TEXT
    );
    CREATE TABLE step_events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id TEXT NOT NULL REFERENCES runs(id),
        step TEXT NOT NULL,
        phase TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        state TEXT NOT NULL,
        at TEXT NOT NULL,
        outputs TEXT,
        message TEXT
    );
    CREATE INDEX step_events_by_run ON step_events(run_id, seq);
    CREATE TABLE requests (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id TEXT NOT NULL,
        step TEXT,
        kind TEXT NOT NULL,
        who TEXT NOT NULL,
        at TEXT NOT NULL,
        consumed_at TEXT
    );",
    // 2: moments and readings of a run's timeline.
    "CREATE TABLE marks (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id TEXT NOT NULL REFERENCES runs(id),
        kind TEXT NOT NULL,
        at TEXT NOT NULL,
        detail TEXT
    );
    CREATE INDEX marks_by_run ON marks(run_id, seq);",
    // 3: the daemon's decisions and the requests of humans, append-only.
    "CREATE TABLE decisions (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        at TEXT NOT NULL,
        binding TEXT,
        kind TEXT NOT NULL,
        run_id TEXT,
        who TEXT NOT NULL,
        detail TEXT
    );
    CREATE INDEX decisions_by_binding ON decisions(binding, seq);",
    // 4: the AWS requests each attempt of each step made.
    "CREATE TABLE step_calls (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id TEXT NOT NULL REFERENCES runs(id),
        step TEXT NOT NULL,
        phase TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        calls TEXT NOT NULL
    );
    CREATE INDEX step_calls_by_run ON step_calls(run_id, seq);",
    // 5: backup verification results.
    "CREATE TABLE verifications (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        job TEXT NOT NULL,
        started_at TEXT NOT NULL,
        ok INTEGER NOT NULL,
        result TEXT NOT NULL
    );
    CREATE INDEX verifications_by_job ON verifications(job, seq);",
    // 6: a binding's last decision of a kind, in one index lookup (what a
    // trigger evaluation reads, whatever the history).
    "CREATE INDEX decisions_by_kind ON decisions(binding, kind, seq);",
];

impl Journal {
    /// Whether `dir` holds a journal: something was ever recorded there.
    pub fn exists(dir: &Path) -> bool {
        dir.join("journal.sqlite").is_file()
    }

    /// Open (creating if needed) the journal in `dir`.
    pub fn open(dir: &Path, access: Access) -> Result<Journal, JournalError> {
        let state_dir = |source| JournalError::StateDir {
            path: dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(state_dir)?;
        let lock = match access {
            Access::Client => None,
            Access::Executor => Some(take_lock(dir)?),
        };
        let path = dir.join("journal.sqlite");
        let db = |source| JournalError::Database {
            path: path.clone(),
            source,
        };
        let conn = Connection::open(&path).map_err(db)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(db)?;
        set_wal(&conn).map_err(db)?;

        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(db)?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(db)?;
        let journal = Journal {
            backend: Backend::Sqlite {
                conn: Mutex::new(conn),
                _lock: lock,
            },
            path,
        };
        journal.migrate()?;
        Ok(journal)
    }

    /// The journal shared in etcd (see `etcd`).
    pub fn etcd(store: crate::journal::etcd::Store) -> Journal {
        Journal {
            path: PathBuf::from(store.label()),
            backend: Backend::Etcd(store),
        }
    }

    /// The etcd store, when the journal is shared.
    pub fn store(&self) -> Option<&crate::journal::etcd::Store> {
        match &self.backend {
            Backend::Etcd(store) => Some(store),
            Backend::Sqlite { .. } => None,
        }
    }

    /// The database file (or, in etcd, the endpoints and prefix).
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        let Backend::Sqlite { conn, .. } = &self.backend else {
            unreachable!("the etcd journal answers before any SQL is reached")
        };
        // A panic while holding the lock leaves the connection usable:
        // every write is its own transaction.
        conn.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn db(&self, source: rusqlite::Error) -> JournalError {
        JournalError::Database {
            path: self.path.clone(),
            source,
        }
    }

    fn migrate(&self) -> Result<(), JournalError> {
        let mut conn = self.conn();
        // An immediate transaction takes the write lock before reading the
        // version, so two processes opening a new journal at once (the
        // daemon and a CLI command) cannot both run the same migration.
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| self.db(e))?;
        let version: i64 = tx
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(|e| self.db(e))?;
        if version > SCHEMA_VERSION {
            return Err(JournalError::TooNew {
                path: self.path.clone(),
                found: version,
            });
        }
        let done = usize::try_from(version).unwrap_or(0);
        if done == MIGRATIONS.len() {
            return Ok(());
        }
        for sql in &MIGRATIONS[done..] {
            tx.execute_batch(sql).map_err(|e| self.db(e))?;
        }
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)
            .map_err(|e| self.db(e))?;
        tx.commit().map_err(|e| self.db(e))
    }

    /// Record a new run.
    pub fn create_run(&self, run: &NewRun) -> Result<(), JournalError> {
        self.start_run(run, &[], None)
    }

    /// Record a new run with the marks of its timeline known at its start
    /// and the decision that started it, all or nothing: a crash can never
    /// leave a run its binding does not know about.
    pub fn start_run(
        &self,
        run: &NewRun,
        marks: &[Mark],
        decision: Option<&Decision>,
    ) -> Result<(), JournalError> {
        if let Backend::Etcd(store) = &self.backend {
            return store.start_run(run, marks, decision);
        }
        let params = serde_json::to_string(&run.params).map_err(|e| self.corrupt(e))?;
        let secrets = serde_json::to_string(&run.secret_params).map_err(|e| self.corrupt(e))?;
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.db(e))?;
        tx.execute(
                "INSERT INTO runs (id, runbook, file, runbook_sha256, runbook_text, params, secret_params, mode, started_by, started_at, state)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'running')",
                params![
                    run.id,
                    run.runbook,
                    run.file,
                    run.runbook_sha256,
                    run.runbook_text,
                    params,
                    secrets,
                    run.mode,
                    run.started_by,
                    run.started_at
                ],
            )
            .map_err(|e| self.db(e))?;
        for mark in marks {
            insert_mark(&tx, &run.id, mark).map_err(|e| self.db(e))?;
        }
        if let Some(decision) = decision {
            let detail = self.detail(decision.detail.as_ref())?;
            insert_decision(&tx, decision, detail.as_deref()).map_err(|e| self.db(e))?;
        }
        tx.commit().map_err(|e| self.db(e))
    }

    fn detail(&self, detail: Option<&serde_json::Value>) -> Result<Option<String>, JournalError> {
        detail
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| self.corrupt(e))
    }

    /// Record a decision or a human's request; returns its sequence number.
    pub fn decide(&self, decision: &Decision) -> Result<i64, JournalError> {
        if let Backend::Etcd(store) = &self.backend {
            return store.decide(decision);
        }
        let detail = self.detail(decision.detail.as_ref())?;
        let conn = self.conn();
        insert_decision(&conn, decision, detail.as_deref()).map_err(|e| self.db(e))?;
        Ok(conn.last_insert_rowid())
    }

    /// Every decision, oldest first; only those of `binding` if given.
    pub fn decisions(&self, binding: Option<&str>) -> Result<Vec<Decision>, JournalError> {
        if let Backend::Etcd(store) = &self.backend {
            return store.decisions(binding);
        }
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT seq, at, binding, kind, run_id, who, detail FROM decisions
                 WHERE ?1 IS NULL OR binding = ?1 ORDER BY seq",
            )
            .map_err(|e| self.db(e))?;
        let rows = stmt
            .query_map(params![binding], decision_row)
            .map_err(|e| self.db(e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.db(e))?;
        drop(stmt);
        drop(conn);
        rows.into_iter()
            .map(|(d, detail)| {
                Ok(Decision {
                    detail: self.json(detail)?,
                    ..d
                })
            })
            .collect()
    }

    /// The decisions still in force for `binding` (and the kill switch):
    /// one lookup per slot and kind, whatever the history.
    pub fn in_force(&self, binding: &str) -> Result<InForce, JournalError> {
        if let Backend::Etcd(store) = &self.backend {
            return store.in_force(binding);
        }
        let mut force = InForce::default();
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT seq, at, binding, kind, run_id, who, detail FROM decisions
                 WHERE binding IS ?1 AND kind = ?2 ORDER BY seq DESC LIMIT 1",
            )
            .map_err(|e| self.db(e))?;
        for slot in Slot::ALL {
            let of = (slot != Slot::Switch).then_some(binding);
            for kind in slot.kinds() {
                let row = stmt
                    .query_row(params![of, kind], decision_row)
                    .optional()
                    .map_err(|e| self.db(e))?;
                let Some((d, detail)) = row else { continue };
                let held = slot.of(&mut force);
                if held.as_ref().is_none_or(|h| h.seq < d.seq) {
                    *held = Some(Decision {
                        detail: self.json(detail)?,
                        ..d
                    });
                }
            }
        }
        Ok(force)
    }

    fn corrupt(&self, e: impl std::fmt::Display) -> JournalError {
        JournalError::Corrupt {
            path: self.path.clone(),
            message: e.to_string(),
        }
    }

    /// Set a run's state (and its end time and error when it ends).
    pub fn set_run_state(
        &self,
        id: &str,
        state: RunState,
        finished_at: Option<&str>,
        error: Option<&str>,
    ) -> Result<(), JournalError> {
        if let Backend::Etcd(store) = &self.backend {
            return store.set_run_state(id, state, finished_at, error);
        }
        let changed = self
            .conn()
            .execute(
                "UPDATE runs SET state = ?2, finished_at = ?3, error = ?4 WHERE id = ?1",
                params![id, state, finished_at, error],
            )
            .map_err(|e| self.db(e))?;
        if changed == 0 {
            return Err(JournalError::UnknownRun(id.to_string()));
        }
        Ok(())
    }

    /// Append a step event; returns once it is durable.
    pub fn record(&self, run: &str, event: &StepEvent) -> Result<i64, JournalError> {
        if let Backend::Etcd(store) = &self.backend {
            return store.record(run, event);
        }
        let outputs = event
            .outputs
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| self.corrupt(e))?;
        let conn = self.conn();
        conn.execute(
            "INSERT INTO step_events (run_id, step, phase, attempt, state, at, outputs, message)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                run,
                event.step,
                event.phase,
                event.attempt,
                event.state,
                event.at,
                outputs,
                event.message
            ],
        )
        .map_err(|e| self.db(e))?;
        Ok(conn.last_insert_rowid())
    }

    /// One run.
    pub fn run(&self, id: &str) -> Result<RunRecord, JournalError> {
        if let Backend::Etcd(store) = &self.backend {
            return store.run(id);
        }
        let conn = self.conn();
        let row = conn
            .query_row(
                "SELECT id, runbook, file, runbook_sha256, runbook_text, params, secret_params, mode, started_by, started_at, state, finished_at, error
                 FROM runs WHERE id = ?1",
                params![id],
                raw_run,
            )
            .optional()
            .map_err(|e| self.db(e))?;
        drop(conn);
        match row {
            None => Err(JournalError::UnknownRun(id.to_string())),
            Some(raw) => self.decode_run(raw),
        }
    }

    /// Every run, newest first.
    pub fn runs(&self) -> Result<Vec<RunRecord>, JournalError> {
        if let Backend::Etcd(store) = &self.backend {
            return store.runs();
        }
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT id, runbook, file, runbook_sha256, '', params, secret_params, mode, started_by, started_at, state, finished_at, error
                 FROM runs ORDER BY started_at DESC, id DESC",
            )
            .map_err(|e| self.db(e))?;
        let raws = stmt
            .query_map([], raw_run)
            .map_err(|e| self.db(e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.db(e))?;
        drop(stmt);
        drop(conn);
        raws.into_iter().map(|r| self.decode_run(r)).collect()
    }

    /// How long each step of `runbook` took when it last went through
    /// cleanly: from its first attempt's `running` (not a re-entry) to that
    /// attempt's success, in the newest of the runbook's last
    /// [`RECENT_RUNS`] ended runs that has one (drills included; the
    /// archive is not read). What a wait expects of the same change the
    /// next time.
    pub fn step_times(
        &self,
        runbook: &str,
    ) -> Result<BTreeMap<String, std::time::Duration>, JournalError> {
        let runs = match &self.backend {
            Backend::Etcd(store) => store.recent_runs(runbook, RECENT_RUNS)?,
            Backend::Sqlite { .. } => {
                let conn = self.conn();
                let mut stmt = conn
                    .prepare(
                        "SELECT id FROM runs WHERE runbook = ?1 AND finished_at IS NOT NULL
                         ORDER BY started_at DESC, id DESC LIMIT ?2",
                    )
                    .map_err(|e| self.db(e))?;
                stmt.query_map(params![runbook, RECENT_RUNS as i64], |r| r.get(0))
                    .map_err(|e| self.db(e))?
                    .collect::<Result<Vec<String>, _>>()
                    .map_err(|e| self.db(e))?
            }
        };
        let mut times = BTreeMap::new();
        for run in runs {
            for (step, took) in clean_steps(&self.events(&run)?) {
                times.entry(step).or_insert(took);
            }
        }
        Ok(times)
    }

    /// Runs that have not ended (to resume).
    pub fn unfinished_runs(&self) -> Result<Vec<RunRecord>, JournalError> {
        Ok(self
            .runs()?
            .into_iter()
            .filter(|r| r.state.unfinished())
            .collect())
    }

    fn decode_run(&self, raw: RawRun) -> Result<RunRecord, JournalError> {
        Ok(RunRecord {
            run: NewRun {
                id: raw.0,
                runbook: raw.1,
                file: raw.2,
                runbook_sha256: raw.3,
                runbook_text: raw.4,
                params: serde_json::from_str(&raw.5).map_err(|e| self.corrupt(e))?,
                secret_params: serde_json::from_str(&raw.6).map_err(|e| self.corrupt(e))?,
                mode: raw.7,
                started_by: raw.8,
                started_at: raw.9,
            },
            state: raw.10,
            finished_at: raw.11,
            error: raw.12,
        })
    }

    /// Record a moment of the run's timeline.
    pub fn mark(&self, run: &str, mark: &Mark) -> Result<(), JournalError> {
        if let Backend::Etcd(store) = &self.backend {
            return store.mark(run, mark);
        }
        insert_mark(&self.conn(), run, mark).map_err(|e| self.db(e))
    }

    /// Record the AWS requests an attempt made (nothing if it made none).
    pub fn record_calls(&self, run: &str, calls: &StepCalls) -> Result<(), JournalError> {
        if let Backend::Etcd(store) = &self.backend {
            return store.record_calls(run, calls);
        }
        if calls.calls.is_empty() {
            return Ok(());
        }
        let text = serde_json::to_string(&calls.calls).map_err(|e| self.corrupt(e))?;
        self.conn()
            .execute(
                "INSERT INTO step_calls (run_id, step, phase, attempt, calls) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![run, calls.step, calls.phase, calls.attempt, text],
            )
            .map(|_| ())
            .map_err(|e| self.db(e))
    }

    /// Every attempt's AWS requests in a run, in order.
    pub fn calls(&self, run: &str) -> Result<Vec<StepCalls>, JournalError> {
        if let Backend::Etcd(store) = &self.backend {
            return store.calls(run);
        }
        let rows = self.rows_of(
            "SELECT step, phase, attempt, calls FROM step_calls WHERE run_id = ?1 ORDER BY seq",
            run,
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get::<_, String>(3)?)),
        )?;
        rows.into_iter()
            .map(|(step, phase, attempt, calls)| {
                Ok(StepCalls {
                    step,
                    phase,
                    attempt,
                    calls: serde_json::from_str(&calls).map_err(|e| self.corrupt(e))?,
                })
            })
            .collect()
    }

    /// Record a verification job's result (JSON).
    pub fn record_verification(
        &self,
        job: &str,
        started_at: &str,
        ok: bool,
        result: &serde_json::Value,
    ) -> Result<(), JournalError> {
        if let Backend::Etcd(store) = &self.backend {
            return store.record_verification(job, started_at, ok, result);
        }
        self.conn()
            .execute(
                "INSERT INTO verifications (job, started_at, ok, result) VALUES (?1, ?2, ?3, ?4)",
                params![job, started_at, ok, result.to_string()],
            )
            .map(|_| ())
            .map_err(|e| self.db(e))
    }

    /// Retire what ended before `before`: in etcd, moved to the archive
    /// (`etcd::Store::move_history`); in SQLite, deleted in one
    /// transaction: runs that ended (with their events, marks, calls and
    /// requests), decisions whose run has ended, and verification results.
    /// Never a binding's last decision of each kind (the decisions in
    /// force are among them), nor a job's last result.
    pub fn retire(&self, before: jiff::Timestamp) -> Result<Retired, JournalError> {
        if let Backend::Etcd(store) = &self.backend {
            return store.move_history(before);
        }
        let old = |at: Option<&str>| {
            at.and_then(|t| t.parse::<jiff::Timestamp>().ok())
                .is_some_and(|t| t < before)
        };
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.db(e))?;
        let mut retired = Retired::default();
        {
            let runs: Vec<(String, RunState, Option<String>)> = tx
                .prepare("SELECT id, state, finished_at FROM runs")
                .and_then(|mut s| {
                    s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                        .collect()
                })
                .map_err(|e| self.db(e))?;
            let staying: std::collections::BTreeSet<&str> = runs
                .iter()
                .filter(|(_, state, end)| state.unfinished() || !old(end.as_deref()))
                .map(|(id, ..)| id.as_str())
                .collect();
            for (id, ..) in runs
                .iter()
                .filter(|(id, ..)| !staying.contains(id.as_str()))
            {
                for sql in [
                    "DELETE FROM step_events WHERE run_id = ?1",
                    "DELETE FROM marks WHERE run_id = ?1",
                    "DELETE FROM step_calls WHERE run_id = ?1",
                    "DELETE FROM requests WHERE run_id = ?1",
                    "DELETE FROM runs WHERE id = ?1",
                ] {
                    tx.execute(sql, params![id]).map_err(|e| self.db(e))?;
                }
                retired.runs += 1;
            }
            let decisions: Vec<(i64, String, Option<String>)> = tx
                .prepare(
                    "SELECT seq, at, run_id FROM decisions
                     WHERE seq NOT IN (SELECT MAX(seq) FROM decisions GROUP BY binding, kind)",
                )
                .and_then(|mut s| {
                    s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                        .collect()
                })
                .map_err(|e| self.db(e))?;
            for (seq, at, run) in decisions {
                let run_ended = run.as_deref().is_none_or(|r| !staying.contains(r));
                if run_ended && old(Some(&at)) {
                    tx.execute("DELETE FROM decisions WHERE seq = ?1", params![seq])
                        .map_err(|e| self.db(e))?;
                    retired.decisions += 1;
                }
            }
            let results: Vec<(i64, String)> = tx
                .prepare(
                    "SELECT seq, started_at FROM verifications
                     WHERE seq NOT IN (SELECT MAX(seq) FROM verifications GROUP BY job)",
                )
                .and_then(|mut s| s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
                .map_err(|e| self.db(e))?;
            for (seq, at) in results {
                if old(Some(&at)) {
                    tx.execute("DELETE FROM verifications WHERE seq = ?1", params![seq])
                        .map_err(|e| self.db(e))?;
                    retired.verifications += 1;
                }
            }
        }
        tx.commit().map_err(|e| self.db(e))?;
        Ok(retired)
    }

    /// A job's recorded results, oldest first.
    pub fn verifications(&self, job: &str) -> Result<Vec<serde_json::Value>, JournalError> {
        if let Backend::Etcd(store) = &self.backend {
            return store.verifications(job);
        }
        let rows = self.rows_of(
            "SELECT result FROM verifications WHERE job = ?1 ORDER BY seq",
            job,
            |r| r.get::<_, String>(0),
        )?;
        rows.into_iter()
            .map(|r| serde_json::from_str(&r).map_err(|e| self.corrupt(e)))
            .collect()
    }

    /// Every mark of a run, in order.
    pub fn marks(&self, run: &str) -> Result<Vec<Mark>, JournalError> {
        if let Backend::Etcd(store) = &self.backend {
            return store.marks(run);
        }
        let rows = self.rows_of(
            "SELECT kind, at, detail FROM marks WHERE run_id = ?1 ORDER BY seq",
            run,
            |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, Option<String>>(2)?)),
        )?;
        rows.into_iter()
            .map(|(kind, at, detail)| {
                Ok(Mark {
                    kind,
                    at,
                    detail: self.json(detail)?,
                })
            })
            .collect()
    }

    /// Every step event of a run, in order.
    pub fn events(&self, run: &str) -> Result<Vec<StepEvent>, JournalError> {
        if let Backend::Etcd(store) = &self.backend {
            return store.events(run);
        }
        let rows = self.rows_of(
            "SELECT seq, step, phase, attempt, state, at, outputs, message FROM step_events WHERE run_id = ?1 ORDER BY seq",
            run,
            |r| {
                Ok((
                    StepEvent {
                        seq: r.get(0)?,
                        step: r.get(1)?,
                        phase: r.get(2)?,
                        attempt: r.get(3)?,
                        state: r.get(4)?,
                        at: r.get(5)?,
                        outputs: None,
                        message: r.get(7)?,
                    },
                    r.get::<_, Option<String>>(6)?,
                ))
            },
        )?;
        rows.into_iter()
            .map(|(event, outputs)| {
                Ok(StepEvent {
                    outputs: self.json(outputs)?,
                    ..event
                })
            })
            .collect()
    }

    /// The rows `sql` selects for one run (its `?1`), read by `row`.
    fn rows_of<T>(
        &self,
        sql: &str,
        run: &str,
        row: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>, JournalError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(sql).map_err(|e| self.db(e))?;
        stmt.query_map(params![run], row)
            .map_err(|e| self.db(e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.db(e))
    }

    /// A JSON column's value.
    fn json(&self, text: Option<String>) -> Result<Option<serde_json::Value>, JournalError> {
        text.map(|t| serde_json::from_str(&t))
            .transpose()
            .map_err(|e| self.corrupt(e))
    }

    /// Leave a request for the executor of `run`.
    pub fn request(
        &self,
        run: &str,
        step: Option<&str>,
        kind: RequestKind,
        who: &str,
        at: &str,
    ) -> Result<(), JournalError> {
        if let Backend::Etcd(store) = &self.backend {
            return store.request(run, step, kind, who, at);
        }
        self.run(run)?;
        self.conn()
            .execute(
                "INSERT INTO requests (run_id, step, kind, who, at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![run, step, kind, who, at],
            )
            .map_err(|e| self.db(e))?;
        Ok(())
    }

    /// Requests for `run` not yet acted on, oldest first.
    pub fn pending_requests(&self, run: &str) -> Result<Vec<Request>, JournalError> {
        if let Backend::Etcd(store) = &self.backend {
            return store.pending_requests(run);
        }
        self.requests_where("run_id = ?1 AND consumed_at IS NULL", Some(run))
    }

    /// Every request ever left, oldest first (the audit trail's part).
    pub fn all_requests(&self) -> Result<Vec<Request>, JournalError> {
        if let Backend::Etcd(store) = &self.backend {
            return store.all_requests();
        }
        self.requests_where("?1 IS NULL", None)
    }

    /// The requests matching `filter` (with `run` as `?1`), oldest first.
    fn requests_where(
        &self,
        filter: &str,
        run: Option<&str>,
    ) -> Result<Vec<Request>, JournalError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(&format!(
                "SELECT seq, run_id, step, kind, who, at FROM requests WHERE {filter} ORDER BY seq"
            ))
            .map_err(|e| self.db(e))?;
        let rows = stmt
            .query_map(params![run], |r| {
                Ok(Request {
                    seq: r.get(0)?,
                    run: r.get(1)?,
                    step: r.get(2)?,
                    kind: r.get(3)?,
                    who: r.get(4)?,
                    at: r.get(5)?,
                })
            })
            .map_err(|e| self.db(e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.db(e))?;
        Ok(rows)
    }

    /// Mark a request acted on.
    pub fn consume(&self, seq: i64, at: &str) -> Result<(), JournalError> {
        if let Backend::Etcd(store) = &self.backend {
            return store.consume(seq, at);
        }
        self.conn()
            .execute(
                "UPDATE requests SET consumed_at = ?2 WHERE seq = ?1",
                params![seq, at],
            )
            .map_err(|e| self.db(e))?;
        Ok(())
    }
}

fn insert_mark(conn: &Connection, run: &str, mark: &Mark) -> rusqlite::Result<()> {
    let detail = mark.detail.as_ref().map(ToString::to_string);
    conn.execute(
        "INSERT INTO marks (run_id, kind, at, detail) VALUES (?1, ?2, ?3, ?4)",
        params![run, mark.kind, mark.at, detail],
    )
    .map(|_| ())
}

/// A decision's row (`seq, at, binding, kind, run_id, who, detail`), its
/// detail still text.
fn decision_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(Decision, Option<String>)> {
    Ok((
        Decision {
            seq: r.get(0)?,
            at: r.get(1)?,
            binding: r.get(2)?,
            kind: r.get(3)?,
            run: r.get(4)?,
            who: r.get(5)?,
            detail: None,
        },
        r.get(6)?,
    ))
}

fn insert_decision(
    conn: &Connection,
    decision: &Decision,
    detail: Option<&str>,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO decisions (at, binding, kind, run_id, who, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            decision.at,
            decision.binding,
            decision.kind,
            decision.run,
            decision.who,
            detail
        ],
    )
    .map(|_| ())
}

type RawRun = (
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    RunState,
    Option<String>,
    Option<String>,
);

/// How many of a runbook's ended runs [`Journal::step_times`] looks at.
pub const RECENT_RUNS: usize = 3;

/// Each step of a run that went through cleanly, with how long it took: its
/// first attempt entered fresh and succeeded, nothing marked done by hand.
fn clean_steps(events: &[StepEvent]) -> Vec<(String, std::time::Duration)> {
    let at = |e: &StepEvent| e.at.parse::<jiff::Timestamp>().ok();
    let mut started = BTreeMap::new();
    let mut clean = Vec::new();
    for e in events
        .iter()
        .filter(|e| e.phase == Phase::Main && e.attempt == 1)
    {
        match e.state {
            StepState::Running if e.message.is_none() => {
                started.insert(e.step.as_str(), at(e));
            }
            StepState::Succeeded if e.message.is_none() => {
                if let (Some(Some(from)), Some(to)) = (started.remove(e.step.as_str()), at(e))
                    && let Ok(took) = std::time::Duration::try_from(to.duration_since(from))
                {
                    clean.push((e.step.clone(), took));
                }
            }
            _ => {
                started.remove(e.step.as_str());
            }
        }
    }
    clean
}

fn raw_run(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawRun> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
        r.get(10)?,
        r.get(11)?,
        r.get(12)?,
    ))
}

/// Switch to write-ahead logging. Another connection switching at the same
/// moment makes SQLite answer "busy" without waiting, so retry for a while.
fn set_wal(conn: &Connection) -> rusqlite::Result<()> {
    let mut tries = 0;
    loop {
        let mode: rusqlite::Result<String> =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0));
        match mode {
            Ok(_) => return Ok(()),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy && tries < 200 =>
            {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Take the executor lock of `dir`, recording who holds it.
fn take_lock(dir: &Path) -> Result<File, JournalError> {
    let path = dir.join("executor.lock");
    let io = |source| JournalError::StateDir {
        path: path.clone(),
        source,
    };
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            return Err(JournalError::Locked {
                path: dir.to_path_buf(),
                holder: holder.trim().to_string(),
            });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
    }
    file.set_len(0).map_err(io)?;
    file.rewind().map_err(io)?;
    writeln!(file, "pid {}", std::process::id()).map_err(io)?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(id: &str) -> NewRun {
        NewRun {
            id: id.into(),
            runbook: "rb".into(),
            file: "rb.yaml".into(),
            runbook_sha256: "00".into(),
            runbook_text: "name: rb".into(),
            params: vec![("a".into(), "1".into())],
            secret_params: vec!["token".into()],
            mode: "failover".into(),
            started_by: "uid 0".into(),
            started_at: "2026-01-01T00:00:00Z".into(),
        }
    }

    #[test]
    fn step_times_are_the_last_clean_pass_of_each_step_in_the_runbooks_recent_ended_runs() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(dir.path(), Access::Executor).unwrap();
        let ev = |step: &str, attempt, state, second: u32, message: Option<&str>| StepEvent {
            seq: 0,
            step: step.into(),
            phase: Phase::Main,
            attempt,
            state,
            at: format!("2026-01-01T00:00:{second:02}Z"),
            outputs: None,
            message: message.map(String::from),
        };
        use StepState::{Failed, Running, Succeeded};
        let runs: [(&str, &str, &str, bool, Vec<StepEvent>); 6] = [
            // Older than the last three ended runs of `rb`: not read.
            (
                "r0",
                "rb",
                "2026-01-01T00:00:00Z",
                true,
                vec![ev("e", 1, Running, 0, None), ev("e", 1, Succeeded, 7, None)],
            ),
            (
                "r1",
                "rb",
                "2026-01-01T01:00:00Z",
                true,
                vec![
                    ev("a", 1, Running, 0, None),
                    ev("a", 1, Succeeded, 6, None),
                    // Through on a retry: not a clean pass.
                    ev("b", 1, Running, 0, None),
                    ev("b", 1, Failed, 1, Some("throttled")),
                    ev("b", 2, Running, 2, None),
                    ev("b", 2, Succeeded, 3, None),
                    // Re-entered after a crash.
                    ev(
                        "c",
                        1,
                        Running,
                        0,
                        Some("re-entering an interrupted attempt"),
                    ),
                    ev("c", 1, Succeeded, 4, None),
                    ev("d", 1, Running, 0, None),
                    ev("d", 1, Succeeded, 3, None),
                ],
            ),
            (
                "r2",
                "rb",
                "2026-01-01T02:00:00Z",
                true,
                vec![
                    ev("a", 1, Running, 1, None),
                    ev("a", 1, Succeeded, 6, None),
                    ev("c", 1, Running, 0, None),
                    ev("c", 1, Succeeded, 2, None),
                    // Marked done by hand.
                    ev("d", 1, Running, 0, None),
                    ev(
                        "d",
                        1,
                        Succeeded,
                        0,
                        Some("marked done by uid 0 without re-running"),
                    ),
                ],
            ),
            // Still running: not read.
            (
                "r3",
                "rb",
                "2026-01-01T03:00:00Z",
                false,
                vec![ev("a", 1, Running, 0, None), ev("a", 1, Succeeded, 1, None)],
            ),
            // Another runbook.
            (
                "r4",
                "other",
                "2026-01-01T04:00:00Z",
                true,
                vec![ev("a", 1, Running, 0, None), ev("a", 1, Succeeded, 9, None)],
            ),
            ("r5", "rb", "2026-01-01T05:00:00Z", true, Vec::new()),
        ];
        for (id, runbook, started_at, ended, events) in runs {
            j.create_run(&NewRun {
                runbook: runbook.into(),
                started_at: started_at.into(),
                ..run(id)
            })
            .unwrap();
            for e in &events {
                j.record(id, e).unwrap();
            }
            if ended {
                j.set_run_state(id, RunState::Succeeded, Some(started_at), None)
                    .unwrap();
            }
        }
        let secs = std::time::Duration::from_secs;
        assert_eq!(
            j.step_times("rb").unwrap(),
            BTreeMap::from([
                ("a".to_string(), secs(5)),
                ("c".to_string(), secs(2)),
                ("d".to_string(), secs(3)),
            ])
        );
        assert!(j.step_times("nothing").unwrap().is_empty());
    }

    #[test]
    fn a_second_executor_is_refused_but_clients_may_open() {
        let dir = tempfile::tempdir().unwrap();
        let first = Journal::open(dir.path(), Access::Executor).unwrap();
        let err = Journal::open(dir.path(), Access::Executor).unwrap_err();
        assert!(
            matches!(&err, JournalError::Locked { holder, .. } if holder == &format!("pid {}", std::process::id())),
            "{err}"
        );
        let client = Journal::open(dir.path(), Access::Client).unwrap();
        first.create_run(&run("r1")).unwrap();
        assert_eq!(client.run("r1").unwrap().state, "running");
        drop(first);
        assert!(Journal::open(dir.path(), Access::Executor).is_ok());
    }

    #[test]
    fn runs_and_events_round_trip_through_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let j = Journal::open(dir.path(), Access::Executor).unwrap();
            j.create_run(&run("r1")).unwrap();
            let event = StepEvent {
                seq: 0,
                step: "a".into(),
                phase: Phase::Main,
                attempt: 1,
                state: StepState::Succeeded,
                at: "2026-01-01T00:00:01Z".into(),
                outputs: Some(serde_json::json!({"id": "db-1"})),
                message: None,
            };
            j.record("r1", &event).unwrap();
            j.request(
                "r1",
                Some("a"),
                RequestKind::Approve,
                "uid 0",
                "2026-01-01T00:00:02Z",
            )
            .unwrap();
        }
        let j = Journal::open(dir.path(), Access::Executor).unwrap();
        let record = j.run("r1").unwrap();
        assert_eq!(record.run, run("r1"));
        let events = j.events("r1").unwrap();
        assert_eq!(events[0].outputs, Some(serde_json::json!({"id": "db-1"})));
        let requests = j.pending_requests("r1").unwrap();
        assert_eq!(requests.len(), 1);
        j.consume(requests[0].seq, "2026-01-01T00:00:03Z").unwrap();
        assert!(j.pending_requests("r1").unwrap().is_empty());
        assert!(matches!(
            j.request("nope", None, RequestKind::Cancel, "x", "t"),
            Err(JournalError::UnknownRun(_))
        ));
    }

    #[test]
    fn processes_opening_a_new_journal_at_once_migrate_it_once() {
        for _ in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().to_path_buf();
            let openers: Vec<_> = (0..4)
                .map(|_| {
                    let path = path.clone();
                    std::thread::spawn(move || Journal::open(&path, Access::Client).map(|_| ()))
                })
                .collect();
            for opener in openers {
                opener.join().unwrap().unwrap();
            }
        }
    }

    #[test]
    fn a_journal_from_a_newer_lifeboat_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        drop(Journal::open(dir.path(), Access::Client).unwrap());
        let conn = Connection::open(dir.path().join("journal.sqlite")).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        assert!(matches!(
            Journal::open(dir.path(), Access::Client),
            Err(JournalError::TooNew { found: 99, .. })
        ));
    }
}

#[cfg(test)]
mod in_force_tests {
    use super::*;

    #[test]
    fn the_decisions_in_force_are_those_a_full_scan_finds() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(dir.path(), Access::Executor).unwrap();
        let empty = j.in_force("a").unwrap();
        assert_eq!(empty, InForce::default());
        fastrand::seed(7);
        for i in 0..600 {
            let kind = DecisionKind::ALL[fastrand::usize(..DecisionKind::ALL.len())];
            let binding = match fastrand::u8(..3) {
                0 => None,
                1 => Some("a".to_string()),
                _ => Some("b".to_string()),
            };
            j.decide(&Decision {
                seq: 0,
                at: format!("2026-01-01T00:00:{:02}Z", i % 60),
                binding,
                kind,
                run: Some(format!("r{i}")),
                who: "test".into(),
                detail: Some(serde_json::json!({ "i": i })),
            })
            .unwrap();
            if i % 50 == 0 || i == 599 {
                let all = j.decisions(None).unwrap();
                for b in ["a", "b", "c"] {
                    assert_eq!(
                        j.in_force(b).unwrap(),
                        InForce::scan(&all, b),
                        "after {i}, {b}"
                    );
                }
            }
        }
        let force = j.in_force("a").unwrap();
        assert!(force.started.is_some() && force.ack.is_some() && force.switch.is_some());
    }
}

#[cfg(test)]
mod retention_tests {
    use super::*;

    fn run(id: &str) -> NewRun {
        NewRun {
            id: id.into(),
            runbook: "rb".into(),
            file: "rb.yaml".into(),
            runbook_sha256: String::new(),
            runbook_text: "name: rb".into(),
            params: Vec::new(),
            secret_params: Vec::new(),
            mode: "failover".into(),
            started_by: "test".into(),
            started_at: "2026-01-01T00:00:00Z".into(),
        }
    }

    fn decision(run: &str, kind: DecisionKind, at: &str) -> Decision {
        Decision {
            seq: 0,
            at: at.into(),
            binding: Some("app".into()),
            kind,
            run: Some(run.into()),
            who: "test".into(),
            detail: None,
        }
    }

    #[test]
    fn the_embedded_journal_forgets_what_ended_before_its_keep_but_never_what_is_in_force() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(dir.path(), Access::Executor).unwrap();
        let old = "2026-01-02T00:00:00Z";
        for id in ["old-1", "old-2", "live"] {
            let started = decision(id, DecisionKind::Started, old);
            j.start_run(&run(id), &[], Some(&started)).unwrap();
            j.record_verification("nightly", old, true, &serde_json::json!({ "run": id }))
                .unwrap();
        }
        j.set_run_state("old-1", RunState::Failed, Some(old), None)
            .unwrap();
        j.set_run_state("old-2", RunState::Succeeded, Some(old), None)
            .unwrap();
        let force = j.in_force("app").unwrap();
        let retired = j.retire("2026-06-01T00:00:00Z".parse().unwrap()).unwrap();
        // The runs that ended and their `started` decisions (live's stays:
        // its run goes on, and it is the last of its kind); two of three
        // results (the job's last stays).
        assert_eq!(
            (retired.runs, retired.decisions, retired.verifications),
            (2, 2, 2),
            "{retired:?}"
        );
        let ids: Vec<String> = j.runs().unwrap().into_iter().map(|r| r.run.id).collect();
        assert_eq!(ids, ["live"]);
        assert!(matches!(j.run("old-1"), Err(JournalError::UnknownRun(_))));
        assert_eq!(j.in_force("app").unwrap(), force);
        assert_eq!(j.verifications("nightly").unwrap().len(), 1);
        assert!(
            j.retire("2026-06-01T00:00:00Z".parse().unwrap())
                .unwrap()
                .nothing()
        );
    }
}
