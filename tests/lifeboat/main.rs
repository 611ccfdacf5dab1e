//! lifeboat's integration tests, one binary (linking the AWS SDK once).
//!
//! - `cli`: the `lifeboat` binary as a user runs it: exit codes, located
//!   problems, plans, schemas, completions, the man page, the demo.
//! - `schema`: the generated JSON Schema accepts the shipped runbooks and
//!   refuses broken ones, as an editor would.
//! - `no_panic`: arbitrary and mutated input never panics the parser or
//!   the validators.
//! - `run`: `lifeboat run`, `runs`, `show`, `approve`, `cancel` and resume
//!   as a user runs them, on generic actions.
//! - `corpus`: a corpus of broken runbooks and configs, refused with a
//!   location and exit 2 by every command, nothing run.
//! - `crash`: SIGKILL at every step boundary and mid-step, then resume:
//!   every side effect exactly once.
//! - `crash_aws`: the same with every shipped runbook's real actions on
//!   the emulator, changes counted by the emulator itself and per resource
//!   at the simulation proxy, the end state compared with an uninterrupted
//!   run's.
//! - `aws_smoke`: the client factory against the AWS emulator.
//! - `autoscaling`, `ec2`, `rds`, `rds_recovery`, `route53`, `s3`: the AWS
//!   actions on the emulator: do, already done (no mutating call), missing
//!   resource, and their preflights.
//! - `accounts`: a runbook's `assume_role` acts in the role's account
//!   only, and the journal names the principal.
//! - `cloudwatch`: the data-plane traffic switch: its preflight (the alarm
//!   watches the metric, fires on the value, holds when data stops, a
//!   health check tracks it), its confirmation, and a switch back.
//! - `pilot_light`, `strategies`: the five shipped runbooks end to end on
//!   the emulator through `lifeboat check` and `lifeboat run`.
//! - `daemon`: the daemon under a real notify socket: resume, metrics,
//!   exposure, signals, probes, the systemd unit's hardening.
//! - `trigger`: the daemon's judgement on the pilot-light runbook: one
//!   failover for a sustained outage (across a SIGKILL), none for flapping,
//!   approve / ack / pause, readiness, Route 53 probes, webhooks.
//! - `drill`: drills of the shipped runbooks leave production unchanged and
//!   nothing of theirs behind; killed drills are swept, by the CLI and by
//!   the daemon on start.
//! - `iam`: each shipped runbook's policy against a recorded one, linted by
//!   Parliament, `--resolve`, a dropped action refused by the emulator's
//!   IAM model, and the check the end-to-end runs make that every AWS call
//!   is declared.
//! - `notify`: webhooks in each format, checked by local receivers as
//!   Slack and PagerDuty document their bodies, and the generic body's
//!   signature checked with another HMAC.
//! - `package`: the Debian package: its contents, control fields and
//!   maintainer scripts, and its example config checked by its binary.
//! - `secrets`: a planted secret in no output, log line or journal byte.
//! - `tls`: HTTPS probes verify certificates unless told not to.
//! - `verify`: backup verification on the emulator (fresh, stale,
//!   unencrypted, uncopied, deep restore, every posture check) and a job on
//!   a schedule in the daemon.
//! - `reliability`: through the simulation proxy, a fifth of all calls
//!   failing still fails over (each change once, the faults in the journal
//!   and the daemon's metrics), answers past the attempt timeout are
//!   retried, a resource that never settles times the step out at its
//!   deadline and rolls back, waits last until in-between states end, and a
//!   full journal disk stops the run at a boundary, resumable.
//! - `throttling`: a mass failover through the proxy's copy of AWS's
//!   request buckets (EC2, RDS, Route 53) completes with each change
//!   once and next to no throttle, where the same run unpaced is refused
//!   a share of its requests.
//! - `layers`: the source's layering: top-level modules refer only down
//!   the layers of ARCHITECTURE.md and never in a cycle; the engine and
//!   the pure modules name no AWS service or runtime.
//! - `support` (`tests/support/`, shared with the HA binary): the binary
//!   runner, the emulator, the simulation proxy, seeding, inventories,
//!   stand-in endpoints, `eventually` (not tests).

mod accounts;
mod aurora;
mod autoscaling;
mod aws_smoke;
mod capacity;
mod cli;
mod cloudwatch;
mod corpus;
mod crash;
mod crash_aws;
mod daemon;
mod deploy;
mod drill;
mod ec2;
mod fence;
mod iam;
mod layers;
mod metrics;
mod multi_az;
mod no_panic;
mod notify;
mod package;
mod pilot_light;
mod rds;
mod rds_recovery;
mod reliability;
mod report;
mod route53;
mod run;
mod s3;
mod schema;
mod secrets;
mod services;
mod status_page;
mod strategies;
#[path = "../support/mod.rs"]
mod support;
mod throttling;
mod tls;
mod trigger;
mod verify;
