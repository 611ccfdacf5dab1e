//! lifeboat: a disaster-recovery orchestrator for AWS.
//!
//! One binary that is an always-on daemon watching region health and failing
//! over by declarative runbooks, the CLI operators use for drills, and the
//! scheduler that proves backups restore, all measuring the RTO and RPO they
//! really achieve.
//!
//! # Layout
//!
//! Pure data at the bottom, I/O at the top:
//!
//! - [`yaml`]: YAML as a tree of located nodes, and the serde bridge that
//!   decodes typed values from it while gathering every problem.
//! - [`duration`]: human durations (`15m`, `1h30m`).
//! - [`diag`]: located problems, printed as `file:line:col: level: message`.
//! - [`catalogue`]: every action a step can take, as data: its typed `with`
//!   block, the service and control plane it calls, its IAM actions, its
//!   drill behaviour.
//! - [`runbook`]: the runbook language: spec types, parameter substitution,
//!   validation, plans, JSON Schema. Knows nothing of tokio or AWS.
//! - [`config`]: the daemon's config file, validated like runbooks.
//! - [`aws`]: the one place AWS SDK clients are built.
//! - [`engine`]: runs a runbook as a DAG, journaling every transition.
//! - [`actions`]: the action implementations the engine drives.
//! - [`emulator`]: the local AWS emulator for the demo and the tests.
//! - [`demo`]: the demo's two-region environment, seeded into the emulator.
//! - [`shipped`]: the strategy runbooks shipped in `runbooks/`, embedded.
//! - [`measure`], [`report`], [`metrics`], [`exposure`]: RTO and RPO as
//!   achieved, reports, Prometheus metrics, RPO exposure.
//! - [`probe`], [`detect`], [`trigger`]: region probes, the outage
//!   detector (a pure state machine), what a declared outage leads to.
//! - [`daemon`], [`control`], [`notify`], [`logging`]: the always-on
//!   process, its control socket, its webhooks, its logs.
//! - [`ha`]: several daemons on one etcd cluster: the shared journal,
//!   fenced writes, the lease and the election.
//! - [`cli`]: the command line; the only module that prints or picks exit codes.

#![forbid(unsafe_code)]
// Tests may unwrap: a panic is how they fail.
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod actions;
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
pub mod logging;
pub mod measure;
pub mod metrics;
pub mod notify;
pub mod probe;
pub mod redact;
pub mod report;
pub mod runbook;
pub mod shipped;
pub mod suggest;
pub mod trigger;
pub mod verify;
pub mod yaml;

/// What is printed in place of a secret.
pub const REDACTED: &str = "<redacted>";
