//! Where the shared journal's history goes once coordination no longer
//! needs it: an object store (`crate::archive` implements it on S3).
//!
//! The leader moves runs that ended before `storage.etcd.history` ago,
//! with their events, marks and calls, and the decisions, requests and
//! verification results of that age, out of etcd. Each run becomes one
//! object (`runs/RUN.json`); each move also writes one batch
//! (`batches/REVISION.json`: the runs' records without runbook texts, the
//! decisions, requests and results moved), and only once both are stored
//! are the keys deleted from etcd. A move cut short leaves its records in
//! etcd, moved again (and read once) by the next; objects are immutable,
//! so a reader caches them.
//!
//! Every record keeps its sequence number (the etcd revision that created
//! it) and its JSON exactly as stored in etcd, fencing stamps included.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// An object store for the journal's history. Synchronous, like the
/// journal: an implementation blocks on its own runtime.
pub trait Archive: Send + Sync + std::fmt::Debug {
    /// Store `body` at `key`, durably, before returning.
    fn put(&self, key: &str, body: Vec<u8>) -> Result<(), String>;
    /// The object at `key`, if there is one.
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String>;
    /// Every key under `prefix`, in key order.
    fn list(&self, prefix: &str) -> Result<Vec<String>, String>;
    /// Where it is, for messages.
    fn label(&self) -> String;
}

/// A record as etcd held it: its sequence number and its JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Kept {
    /// The etcd revision that created it.
    pub seq: i64,
    /// Its value.
    pub value: serde_json::Value,
}

/// One run, whole.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ArchivedRun {
    /// The run's record, with its runbook's text.
    pub run: Option<Kept>,
    /// Its step events, in order.
    pub events: Vec<Kept>,
    /// Its marks, in order.
    pub marks: Vec<Kept>,
    /// Its attempts' AWS requests, in order.
    pub calls: Vec<Kept>,
}

/// What one move took out of etcd (runs by their records only).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    /// The runs' records, without runbook texts.
    pub runs: Vec<Kept>,
    /// Decisions.
    pub decisions: Vec<Kept>,
    /// Requests left for executors.
    pub requests: Vec<Kept>,
    /// Verification results, by job.
    pub verifications: BTreeMap<String, Vec<Kept>>,
}

/// The key of a run's object.
pub fn run_key(run: &str) -> String {
    format!("runs/{run}.json")
}

/// The key of the batch of a move made at `revision` (zero-padded, so key
/// order is move order).
pub fn batch_key(revision: i64) -> String {
    format!("batches/{revision:020}.json")
}

/// Records of several batches and etcd, each once: the newest copy of
/// each sequence number (etcd's, then the latest batch's), in order.
pub fn merge(older_first: impl IntoIterator<Item = Kept>) -> Vec<Kept> {
    let mut by_seq: BTreeMap<i64, Kept> = BTreeMap::new();
    for k in older_first {
        by_seq.insert(k.seq, k);
    }
    by_seq.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_moved_twice_reads_once_in_its_newest_copy() {
        let k = |seq, v: &str| Kept {
            seq,
            value: serde_json::json!(v),
        };
        let merged = merge([k(3, "old"), k(1, "a"), k(3, "new"), k(2, "b")]);
        assert_eq!(merged, vec![k(1, "a"), k(2, "b"), k(3, "new")]);
        assert!(batch_key(9) < batch_key(10));
    }
}
