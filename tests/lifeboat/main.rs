//! lifeboat's integration tests, one binary (linking the AWS SDK once).
//!
//! - `cli`: the `lifeboat` binary as a user runs it: exit codes, located
//!   problems, plans, schemas, completions, the man page, the demo.
//! - `schema`: the generated JSON Schema accepts the shipped runbooks and
//!   refuses broken ones, as an editor would.
//! - `no_panic`: arbitrary and mutated input never panics the parser or
//!   the validators.
//! - `aws_smoke`: the client factory against the AWS emulator.
//! - `moto`: the emulator harness (not tests).

mod aws_smoke;
mod cli;
mod moto;
mod no_panic;
mod schema;
