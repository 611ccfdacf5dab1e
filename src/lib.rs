//! lifeboat: a disaster-recovery orchestrator for AWS.
//!
//! One binary that is an always-on daemon watching region health and failing
//! over by declarative runbooks, the CLI operators use for drills, and the
//! scheduler that proves backups restore, all measuring the RTO and RPO they
//! really achieve.
//!
//! # Layout
//!
//! Pure data at the bottom, I/O at the top; a module uses only its own
//! layer and those below (ARCHITECTURE.md, checked by the test suite):
//!
//! - foundations: [`yaml`] (YAML as a tree of located nodes, and the serde
//!   bridge that decodes typed values from it while gathering every
//!   problem), [`duration`] (human durations: `15m`, `1h30m`), [`diag`]
//!   (located problems, printed as `file:line:col: level: message`),
//!   [`redact`], [`suggest`], [`detect`] (the outage detector, a pure
//!   state machine), [`shipped`] (the strategy runbooks of `runbooks/`,
//!   embedded), [`input`] (input files read with a size cap).
//! - [`catalogue`]: every action a step can take, as data: its typed `with`
//!   block, the service and control plane it calls, its IAM actions, its
//!   drill behaviour.
//! - [`runbook`]: the runbook language: spec types, parameter substitution,
//!   validation, plans, JSON Schema. Knows nothing of tokio or AWS.
//! - [`config`]: the daemon's config file and the spec types it holds,
//!   validated like runbooks.
//! - [`ha`], [`journal`]: the etcd connection, lease and health reports;
//!   the journal (SQLite, or shared in etcd with fenced writes).
//! - [`engine`]: runs a runbook as a DAG, journaling every transition.
//! - [`aws`]: the one place AWS SDK clients are built.
//! - [`iam`], [`actions`]: least-privilege policies; the action
//!   implementations the engine drives.
//! - [`measure`], [`report`], [`metrics`], [`exposure`], [`verify`],
//!   [`probe`], [`trigger`], [`notify`], [`logging`]: RTO and RPO as
//!   achieved, reports, Prometheus metrics, RPO exposure, backup
//!   verification, region probes, what a declared outage leads to,
//!   webhooks, logs.
//! - [`daemon`], [`control`], [`web`], [`emulator`], [`demo`], [`cli`]:
//!   the always-on process, its control socket and its HTTP listener
//!   (metrics, status page), the local AWS emulator and the demo's
//!   environment, and the command line (the only module that prints or
//!   picks exit codes).

#![forbid(unsafe_code)]
// Tests may unwrap: a panic is how they fail.
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod actions;
pub mod archive;
pub mod aws;
pub mod catalogue;
pub mod cli;
pub mod config;
pub mod control;
pub mod daemon;
pub mod demo;
pub mod detect;
pub mod diag;
pub mod duration;
pub mod emulator;
pub mod engine;
pub mod exposure;
pub mod ha;
pub mod iam;
pub mod input;
pub mod journal;
pub mod logging;
pub mod measure;
pub mod metrics;
pub mod notify;
pub mod pacing;
pub mod probe;
pub mod redact;
pub mod report;
pub mod runbook;
pub mod shipped;
pub mod suggest;
pub mod trigger;
pub mod verify;
pub mod web;
pub mod yaml;

/// What is printed in place of a secret.
pub const REDACTED: &str = "<redacted>";
