//! What every test binary shares (mounted by each as `support`), never a
//! test itself:
//!
//! - `process`: the `lifeboat` binary run or started on a state directory,
//!   children killed on drop, signals, a loopback port and `GET`;
//! - `moto`: the AWS emulator (with its guard, which plays IAM) on a free
//!   loopback port;
//! - `proxy`: the simulation proxy in front of it;
//! - `seed`: resources the AWS tests start from;
//! - `inventory`: what the emulator holds, for before/after comparisons;
//! - `endpoints`: local HTTP servers standing in for a region's endpoints;
//! - `iam`: the check that each run's calls are covered by its declared
//!   permissions;
//! - here: `eventually`, the one polling loop, and `step_context`, the
//!   context an action is called with.
//!
//! No test module imports another; what two need lives here.

#![allow(dead_code, unused_imports)]

pub mod endpoints;
pub mod iam;
pub mod inventory;
pub mod moto;
pub mod process;
pub mod proxy;
pub mod seed;
pub mod webdriver;

use std::future::Future;
use std::time::{Duration, Instant};

use lifeboat::engine::StepContext;
use lifeboat::runbook::Mode;

pub use process::{
    KillOnDrop, command, free_port, get, lifeboat, signal, spawn, started_run_id, text, wait_for,
};

/// The pause before the next look, growing from 20 ms to 250 ms.
fn next_pause(pause: Duration) -> Duration {
    (pause * 2).min(Duration::from_millis(250))
}

/// The value `check` gives, looking again (20 ms apart, then up to
/// 250 ms) until it gives one; fails with `what()` after `within`.
pub fn eventually<T>(
    within: Duration,
    what: impl FnOnce() -> String,
    mut check: impl FnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + within;
    let mut pause = Duration::from_millis(20);
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "{}", what());
        std::thread::sleep(pause);
        pause = next_pause(pause);
    }
}

/// [`eventually`], for a check that awaits.
pub async fn eventually_async<T, F: Future<Output = Option<T>>>(
    within: Duration,
    what: impl FnOnce() -> String,
    mut check: impl FnMut() -> F,
) -> T {
    let deadline = Instant::now() + within;
    let mut pause = Duration::from_millis(20);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "{}", what());
        tokio::time::sleep(pause).await;
        pause = next_pause(pause);
    }
}

/// The first attempt of step `step` of run `run` in a failover, in
/// `region`, with a minute to its deadline.
pub fn step_context(run: &str, step: &str, region: &str) -> StepContext {
    StepContext {
        run_id: run.into(),
        step_id: step.into(),
        mode: Mode::Failover,
        region: Some(region.into()),
        attempt: 1,
        resumed: false,
        deadline: tokio::time::Instant::now() + Duration::from_secs(60),
        assume_role: None,
        placement: Default::default(),
        expected: None,
    }
}
