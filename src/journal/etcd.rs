//! The journal kept in etcd, for daemons that share it.
//!
//! The same records as the embedded journal, as JSON values under the
//! configured prefix:
//!
//! ```text
//! PREFIX/runs/RUN                  the run (with its runbook's text)
//! PREFIX/events/RUN/ID             step transitions
//! PREFIX/marks/RUN/ID              moments of the run's timeline
//! PREFIX/calls/RUN/ID              the AWS requests of each attempt
//! PREFIX/decisions/ID              decisions and humans' requests
//! PREFIX/force/switch              the kill switch's last word
//! PREFIX/force/b/BINDING/SLOT      a binding's decisions still in force
//! PREFIX/force/built               the slots hold every decision's
//! PREFIX/requests/ID               requests left for the executor
//! PREFIX/verifications/JOB/ID      backup verification results
//! ```
//!
//! A record's sequence number is the etcd revision that created it, so
//! order is the cluster's commit order. Every write is one transaction.
//! A decision is written with the slots it fills (`journal::Slot`: the
//! last `started`, `ack`, word on an approval, and the kill switch), in
//! the same transaction, so a trigger evaluation reads five keys whatever
//! the history. A journal written before the slots existed has them built
//! once, from every decision, by the first read that misses them.
//! Prefixes are read in pages (`PAGE` keys, fewer when a page would pass
//! gRPC's message limit), all at the revision of the first page.
//! A journal opened by the leader carries a fence: each of its writes
//! compares the leader's election key with the revision it was created at
//! (it exists only while the leader's lease lives, and a new leader is
//! elected only after it is gone), and refuses to send at all once the
//! lease has run out by the local clock. So a deposed leader's late write
//! is rejected by the cluster, and two executors can never both advance a
//! step. Leader writes are stamped with the fencing token (`epoch`, the
//! election key's revision) and the leader's name.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use etcd_client::{
    Compare, CompareOp, DeleteOptions, GetOptions, KeyValue, PutOptions, Txn, TxnOp, TxnOpResponse,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::archive::{self, Archive, ArchivedRun, Batch, Kept};
use super::{
    Decision, InForce, JournalError, Mark, NewRun, Request, RequestKind, Retired, RunRecord,
    RunState, Slot, StepCalls, StepEvent, in_force_slots,
};
use crate::ha::etcd::Etcd;
use crate::ha::lease::LeaseClock;

/// A leader's right to write: its election key and the revision that
/// created it (the fencing token), and its lease's local clock.
#[derive(Debug, Clone)]
pub struct Fence {
    /// The election key.
    pub key: String,
    /// Its create revision: the epoch.
    pub epoch: i64,
    /// The leader's name.
    pub holder: String,
    /// Whether the lease is still valid by the local clock.
    pub lease: Arc<LeaseClock>,
}

/// The etcd journal: a connection, the fence of the leader using it, and
/// the archive its history moves to.
#[derive(Debug, Clone)]
pub struct Store {
    etcd: Arc<Etcd>,
    fence: Option<Fence>,
    archive: Option<Arc<dyn Archive>>,
    // Batches read from the archive (immutable once written), by key.
    batches: Arc<Mutex<BTreeMap<String, Arc<Batch>>>>,
}

/// A run as stored (with its runbook's text, which `NewRun` does not
/// serialise).
#[derive(Debug, serde::Deserialize, Serialize)]
struct StoredRun {
    id: String,
    runbook: String,
    file: String,
    runbook_sha256: String,
    runbook_text: String,
    params: Vec<(String, String)>,
    secret_params: Vec<String>,
    mode: String,
    started_by: String,
    started_at: String,
    state: RunState,
    finished_at: Option<String>,
    error: Option<String>,
}

impl StoredRun {
    fn new(run: &NewRun) -> StoredRun {
        StoredRun {
            id: run.id.clone(),
            runbook: run.runbook.clone(),
            file: run.file.clone(),
            runbook_sha256: run.runbook_sha256.clone(),
            runbook_text: run.runbook_text.clone(),
            params: run.params.clone(),
            secret_params: run.secret_params.clone(),
            mode: run.mode.clone(),
            started_by: run.started_by.clone(),
            started_at: run.started_at.clone(),
            state: RunState::Running,
            finished_at: None,
            error: None,
        }
    }

    fn record(self) -> RunRecord {
        RunRecord {
            run: NewRun {
                id: self.id,
                runbook: self.runbook,
                file: self.file,
                runbook_sha256: self.runbook_sha256,
                runbook_text: self.runbook_text,
                params: self.params,
                secret_params: self.secret_params,
                mode: self.mode,
                started_by: self.started_by,
                started_at: self.started_at,
            },
            state: self.state,
            finished_at: self.finished_at,
            error: self.error,
        }
    }
}

/// A step event with the fence it was written under.
#[derive(Debug, Clone, PartialEq)]
pub struct Stamped {
    /// The event.
    pub event: StepEvent,
    /// The writer's epoch, when a leader wrote it.
    pub epoch: Option<i64>,
    /// The writer's name, when a leader wrote it.
    pub leader: Option<String>,
}

/// A request left for the executor, with when it was acted on.
#[derive(Debug, serde::Deserialize, Serialize)]
struct StoredRequest {
    #[serde(flatten)]
    request: Request,
    consumed_at: Option<String>,
}

/// A fresh, unique key suffix (creation order comes from revisions).
fn unique() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{nanos:032x}-{:08x}", fastrand::u32(..))
}

impl Store {
    /// The journal on `etcd`, unfenced (a follower's, or a command's).
    pub fn new(etcd: Arc<Etcd>) -> Store {
        Store {
            etcd,
            fence: None,
            archive: None,
            batches: Arc::default(),
        }
    }

    /// The same journal, its history in `archive` too.
    pub fn with_archive(mut self, archive: Arc<dyn Archive>) -> Store {
        self.archive = Some(archive);
        self
    }

    /// The same journal, every write fenced by `fence`.
    pub fn fenced(&self, fence: Fence) -> Store {
        Store {
            fence: Some(fence),
            ..self.clone()
        }
    }

    /// Where it lives, for messages.
    pub fn label(&self) -> String {
        format!("etcd {} {}", self.etcd.endpoints(), self.etcd.prefix())
    }

    fn corrupt(&self, key: &str, e: impl std::fmt::Display) -> JournalError {
        JournalError::Corrupt {
            path: self.label().into(),
            message: format!("{key}: {e}"),
        }
    }

    /// A record's JSON, stamped with the fence when there is one.
    fn encode(&self, value: &impl Serialize) -> Result<Vec<u8>, JournalError> {
        let mut json = serde_json::to_value(value).map_err(|e| self.corrupt("encode", e))?;
        if let (Some(f), Some(map)) = (&self.fence, json.as_object_mut()) {
            map.insert("epoch".into(), f.epoch.into());
            map.insert("leader".into(), f.holder.clone().into());
        }
        serde_json::to_vec(&json).map_err(|e| self.corrupt("encode", e))
    }

    fn decode<T: DeserializeOwned>(&self, kv: &KeyValue) -> Result<T, JournalError> {
        serde_json::from_slice(kv.value())
            .map_err(|e| self.corrupt(&String::from_utf8_lossy(kv.key()), e))
    }

    /// Commit `ops` if `compares` hold (and the fence, if any); the
    /// revision of the commit.
    fn write(&self, mut compares: Vec<Compare>, ops: Vec<TxnOp>) -> Result<Write, JournalError> {
        let mut fallback = Vec::new();
        if let Some(f) = &self.fence {
            if !f.lease.valid() {
                crate::ha::etcd::Counts::add(&self.etcd.counts().fenced);
                return Err(JournalError::Fenced {
                    holder: f.holder.clone(),
                    why: "its lease ran out (by the local clock) before the write".into(),
                });
            }
            compares.push(Compare::create_revision(
                f.key.clone(),
                CompareOp::Equal,
                f.epoch,
            ));
            fallback.push(TxnOp::get(f.key.clone(), None));
        }
        let txn = Txn::new().when(compares).and_then(ops).or_else(fallback);
        let mut client = self.etcd.client();
        let answer = self.etcd.block(async move { client.txn(txn).await })?;
        let revision = answer
            .header()
            .map_or(0, etcd_client::ResponseHeader::revision);
        if answer.succeeded() {
            return Ok(Write::Done(revision));
        }
        if let Some(f) = &self.fence {
            let still_leader = answer.op_responses().iter().any(|r| match r {
                TxnOpResponse::Get(g) => g.kvs().iter().any(|kv| kv.create_revision() == f.epoch),
                _ => false,
            });
            if !still_leader {
                crate::ha::etcd::Counts::add(&self.etcd.counts().fenced);
                return Err(JournalError::Fenced {
                    holder: f.holder.clone(),
                    why: format!(
                        "its election key (epoch {}) is gone: another daemon leads now",
                        f.epoch
                    ),
                });
            }
        }
        Ok(Write::Refused)
    }

    /// Create `key` (which must not exist yet) with `value`, and `more`.
    fn create(&self, key: String, value: Vec<u8>, more: Vec<TxnOp>) -> Result<i64, JournalError> {
        let mut ops = vec![TxnOp::put(key.clone(), value, None)];
        ops.extend(more);
        match self.write(
            vec![Compare::create_revision(key.clone(), CompareOp::Equal, 0)],
            ops,
        )? {
            Write::Done(revision) => Ok(revision),
            Write::Refused => Err(JournalError::Conflict(key)),
        }
    }

    /// The value at `key`, or every value under the prefix `key`, sorted
    /// by creation.
    fn get(&self, key: String, prefix: bool) -> Result<Vec<KeyValue>, JournalError> {
        Ok(self.get_at(key, prefix)?.0)
    }

    /// The same, and the revision they were read at. A prefix is read in
    /// pages of up to `PAGE` keys, each at the first page's revision (one
    /// consistent view); a page gRPC refuses as too large is asked again
    /// with half as many keys.
    fn get_at(&self, key: String, prefix: bool) -> Result<(Vec<KeyValue>, i64), JournalError> {
        let end = prefix.then(|| prefix_end(key.as_bytes()));
        let (mut from, mut kvs, mut revision, mut page) = (key.into_bytes(), Vec::new(), 0, PAGE);
        loop {
            let mut options = GetOptions::new().with_revision(revision);
            if let Some(end) = &end {
                options = options.with_range(end.clone()).with_limit(page);
            }
            let mut answer = match self.read(from.clone(), options) {
                Ok(a) => a,
                Err(JournalError::Etcd(e)) if e.too_large() && page > 1 => {
                    page /= 2;
                    continue;
                }
                Err(e) => return Err(e),
            };
            if revision == 0 {
                revision = answer
                    .header()
                    .map_or(0, etcd_client::ResponseHeader::revision);
            }
            let more = answer.more();
            let got = answer.take_kvs();
            let next = got.last().map(|kv| {
                let mut k = kv.key().to_vec();
                k.push(0);
                k
            });
            kvs.extend(got);
            match next {
                Some(next) if more && end.is_some() => from = next,
                _ => break,
            }
        }
        kvs.sort_by_key(KeyValue::create_revision);
        Ok((kvs, revision))
    }

    /// One range read. A read is safe to repeat: with several endpoints,
    /// one frozen member must not fail it while the others answer (one try
    /// per endpoint, up to three).
    fn read(
        &self,
        key: Vec<u8>,
        options: GetOptions,
    ) -> Result<etcd_client::GetResponse, JournalError> {
        let attempts = self.etcd.endpoint_count().clamp(1, 3);
        let mut attempt = 1;
        loop {
            let mut client = self.etcd.client();
            let (key, options) = (key.clone(), options.clone());
            match self
                .etcd
                .block(async move { client.get(key, Some(options)).await })
            {
                Ok(a) => return Ok(a),
                Err(e) if attempt == attempts || e.too_large() => return Err(e.into()),
                Err(e) => tracing::debug!("etcd read, attempt {attempt}: {e}"),
            }
            attempt += 1;
        }
    }

    /// Every record under `rest/` in creation order, with its revision,
    /// and the revision they were read at.
    fn list_at<T: DeserializeOwned>(
        &self,
        rest: &str,
    ) -> Result<(Vec<(i64, T)>, i64), JournalError> {
        let (kvs, revision) = self.get_at(self.etcd.key(&format!("{rest}/")), true)?;
        let records = kvs
            .iter()
            .map(|kv| Ok((kv.create_revision(), self.decode(kv)?)))
            .collect::<Result<_, JournalError>>()?;
        Ok((records, revision))
    }

    /// Every record under `rest/` as stored, in creation order.
    fn kept(&self, rest: &str) -> Result<Vec<Kept>, JournalError> {
        self.get(self.etcd.key(&format!("{rest}/")), true)?
            .iter()
            .map(|kv| {
                Ok(Kept {
                    seq: kv.create_revision(),
                    value: self.decode(kv)?,
                })
            })
            .collect()
    }

    /// A stored record read as `T`.
    fn value<T: DeserializeOwned>(&self, k: &Kept) -> Result<T, JournalError> {
        T::deserialize(&k.value).map_err(|e| self.corrupt(&format!("record {}", k.seq), e))
    }

    fn archive_error(&self, archive: &dyn Archive, message: String) -> JournalError {
        JournalError::Archive {
            archive: archive.label(),
            message,
        }
    }

    /// What `pick` takes from every batch in the archive, oldest first
    /// (nothing without one). Batches are read once and kept.
    fn archived(&self, pick: impl Fn(&Batch) -> Vec<Kept>) -> Result<Vec<Kept>, JournalError> {
        let Some(archive) = &self.archive else {
            return Ok(Vec::new());
        };
        let keys = archive
            .list("batches/")
            .map_err(|e| self.archive_error(archive.as_ref(), e))?;
        let mut picked = Vec::new();
        for key in keys {
            let cached = self
                .batches
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .get(&key)
                .cloned();
            let batch = match cached {
                Some(b) => b,
                None => {
                    let body = archive
                        .get(&key)
                        .map_err(|e| self.archive_error(archive.as_ref(), e))?
                        .unwrap_or_default();
                    let batch: Arc<Batch> =
                        Arc::new(serde_json::from_slice(&body).map_err(|e| {
                            self.archive_error(archive.as_ref(), format!("{key}: {e}"))
                        })?);
                    self.batches
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .insert(key, Arc::clone(&batch));
                    batch
                }
            };
            picked.extend(pick(&batch));
        }
        Ok(picked)
    }

    /// `etcd`'s records after what `pick` takes from the archive, each
    /// once (etcd's copy of one moved but not yet deleted).
    fn with_archived(
        &self,
        etcd: Vec<Kept>,
        pick: impl Fn(&Batch) -> Vec<Kept>,
    ) -> Result<Vec<Kept>, JournalError> {
        if self.archive.is_none() {
            return Ok(etcd);
        }
        Ok(archive::merge(self.archived(pick)?.into_iter().chain(etcd)))
    }

    /// A run as the archive holds it, if it moved there.
    fn archived_run(&self, run: &str) -> Result<Option<ArchivedRun>, JournalError> {
        let Some(archive) = &self.archive else {
            return Ok(None);
        };
        let key = archive::run_key(run);
        let Some(body) = archive
            .get(&key)
            .map_err(|e| self.archive_error(archive.as_ref(), e))?
        else {
            return Ok(None);
        };
        serde_json::from_slice(&body)
            .map(Some)
            .map_err(|e| self.archive_error(archive.as_ref(), format!("{key}: {e}")))
    }

    /// A run's records under `what/RUN/`: etcd's, or once the run moved,
    /// the archive's.
    fn of_run(
        &self,
        run: &str,
        what: &str,
        pick: impl FnOnce(ArchivedRun) -> Vec<Kept>,
    ) -> Result<Vec<Kept>, JournalError> {
        let kept = self.kept(&format!("{what}/{run}"))?;
        if !kept.is_empty()
            || self.archive.is_none()
            || !self
                .get(self.etcd.key(&format!("runs/{run}")), false)?
                .is_empty()
        {
            return Ok(kept);
        }
        Ok(self.archived_run(run)?.map(pick).unwrap_or_default())
    }

    /// Move what ended before `before` to the archive: runs (whole; not
    /// one a binding's decisions in force name), decisions whose run has
    /// ended, requests of runs no longer in etcd,
    /// verification results. Objects are stored first, then the keys are
    /// deleted in transactions of at most `DELETES` operations (etcd's
    /// default limit is 128), each only if its records are unchanged.
    /// Nothing without an archive.
    pub fn move_history(&self, before: jiff::Timestamp) -> Result<Retired, JournalError> {
        let Some(archive) = self.archive.clone() else {
            return Ok(Retired::default());
        };
        let put = |key: &str, body: serde_json::Result<Vec<u8>>| -> Result<(), JournalError> {
            let body = body.map_err(|e| self.corrupt(key, e))?;
            archive
                .put(key, body)
                .map_err(|e| self.archive_error(archive.as_ref(), format!("{key}: {e}")))
        };
        // The slots must hold what is in force before decisions leave.
        self.in_force("")?;
        let ended_before = |at: Option<&str>| {
            at.and_then(|t| t.parse::<jiff::Timestamp>().ok())
                .is_some_and(|t| t < before)
        };
        // A run a slot names (a binding's last) stays, as its decisions in
        // force do: an evaluation reads it, from etcd.
        let mut in_force = BTreeSet::new();
        for kv in self.get(self.etcd.key("force/b/"), true)? {
            let d: Decision = self.decode(&kv)?;
            in_force.extend(d.run);
        }
        let (runs, revision) = self.get_at(self.etcd.key("runs/"), true)?;
        let mut batch = Batch::default();
        let mut deletes: Vec<(Compare, Vec<TxnOp>)> = Vec::new();
        let mut staying = BTreeSet::new();
        let mut moving = BTreeSet::new();
        for kv in &runs {
            let run: StoredRun = self.decode(kv)?;
            if run.state.unfinished()
                || !ended_before(run.finished_at.as_deref())
                || in_force.contains(&run.id)
            {
                staying.insert(run.id.clone());
                continue;
            }
            let whole = ArchivedRun {
                run: Some(Kept {
                    seq: kv.create_revision(),
                    value: self.decode(kv)?,
                }),
                events: self.kept(&format!("events/{}", run.id))?,
                marks: self.kept(&format!("marks/{}", run.id))?,
                calls: self.kept(&format!("calls/{}", run.id))?,
            };
            put(&archive::run_key(&run.id), serde_json::to_vec(&whole))?;
            let mut record: serde_json::Value = self.decode(kv)?;
            record["runbook_text"] = "".into();
            batch.runs.push(Kept {
                seq: kv.create_revision(),
                value: record,
            });
            let mut ops = vec![TxnOp::delete(kv.key().to_vec(), None)];
            for what in ["events", "marks", "calls"] {
                ops.push(TxnOp::delete(
                    self.etcd.key(&format!("{what}/{}/", run.id)),
                    Some(DeleteOptions::new().with_prefix()),
                ));
            }
            deletes.push((unchanged(kv), ops));
            moving.insert(run.id);
        }
        for kv in self.get(self.etcd.key("decisions/"), true)? {
            let d: Decision = self.decode(&kv)?;
            let run_ended = d.run.as_ref().is_none_or(|r| !staying.contains(r));
            if run_ended && ended_before(Some(&d.at)) {
                batch.decisions.push(Kept {
                    seq: kv.create_revision(),
                    value: self.decode(&kv)?,
                });
                deletes.push((unchanged(&kv), vec![TxnOp::delete(kv.key().to_vec(), None)]));
            }
        }
        for kv in self.get(self.etcd.key("requests/"), true)? {
            let r: StoredRequest = self.decode(&kv)?;
            if !staying.contains(&r.request.run) && ended_before(Some(&r.request.at)) {
                batch.requests.push(Kept {
                    seq: kv.create_revision(),
                    value: self.decode(&kv)?,
                });
                deletes.push((unchanged(&kv), vec![TxnOp::delete(kv.key().to_vec(), None)]));
            }
        }
        let results = self.etcd.key("verifications/");
        for kv in self.get(results.clone(), true)? {
            let v: serde_json::Value = self.decode(&kv)?;
            if !ended_before(v["started_at"].as_str()) {
                continue;
            }
            let key = String::from_utf8_lossy(kv.key()).into_owned();
            let job = key
                .strip_prefix(&results)
                .and_then(|rest| rest.rsplit_once('/'))
                .map_or_else(String::new, |(job, _)| job.to_string());
            batch.verifications.entry(job).or_default().push(Kept {
                seq: kv.create_revision(),
                value: v,
            });
            deletes.push((unchanged(&kv), vec![TxnOp::delete(kv.key().to_vec(), None)]));
        }
        let moved = Retired {
            runs: moving.len(),
            decisions: batch.decisions.len(),
            requests: batch.requests.len(),
            verifications: batch.verifications.values().map(Vec::len).sum(),
        };
        if moved.nothing() {
            return Ok(moved);
        }
        put(&archive::batch_key(revision), serde_json::to_vec(&batch))?;
        // Stored: now out of etcd, a few records a transaction.
        let mut chunk: (Vec<Compare>, Vec<TxnOp>) = (Vec::new(), Vec::new());
        for (compare, ops) in deletes {
            if chunk.1.len() + ops.len() > DELETES {
                let (compares, ops) = std::mem::take(&mut chunk);
                // Refused: a record changed since it was read; it stays,
                // and the next move takes it (its archived copy reads once).
                let _ = self.write(compares, ops)?;
            }
            chunk.0.push(compare);
            chunk.1.extend(ops);
        }
        if !chunk.1.is_empty() {
            let _ = self.write(chunk.0, chunk.1)?;
        }
        Ok(moved)
    }

    /// Record a new run, the marks known at its start and the decision
    /// that started it, in one transaction.
    pub fn start_run(
        &self,
        run: &NewRun,
        marks: &[Mark],
        decision: Option<&Decision>,
    ) -> Result<(), JournalError> {
        let mut more = Vec::new();
        for mark in marks {
            more.push(TxnOp::put(
                self.etcd.key(&format!("marks/{}/{}", run.id, unique())),
                self.encode(mark)?,
                None,
            ));
        }
        if let Some(d) = decision {
            more.push(TxnOp::put(
                self.etcd.key(&format!("decisions/{}", unique())),
                self.encode(d)?,
                None,
            ));
            more.extend(self.slot_ops(d)?);
        }
        self.create(
            self.etcd.key(&format!("runs/{}", run.id)),
            self.encode(&StoredRun::new(run))?,
            more,
        )
        .map(|_| ())
    }

    /// Record a decision; its sequence number.
    pub fn decide(&self, decision: &Decision) -> Result<i64, JournalError> {
        self.create(
            self.etcd.key(&format!("decisions/{}", unique())),
            self.encode(decision)?,
            self.slot_ops(decision)?,
        )
    }

    /// The writes that put a decision in the slots it fills (its `seq` is
    /// the transaction's revision: 0 in the value, the key's `mod_revision`).
    fn slot_ops(&self, d: &Decision) -> Result<Vec<TxnOp>, JournalError> {
        let value = self.encode(&Decision {
            seq: 0,
            ..d.clone()
        })?;
        Ok(in_force_slots(d.kind, d.binding.is_none())
            .iter()
            .map(|slot| {
                TxnOp::put(
                    self.slot_key(d.binding.as_deref(), *slot),
                    value.clone(),
                    None,
                )
            })
            .collect())
    }

    fn slot_key(&self, binding: Option<&str>, slot: Slot) -> String {
        match binding {
            None => self.etcd.key("force/switch"),
            Some(b) => self.etcd.key(&format!("force/b/{b}/{}", slot.name())),
        }
    }

    /// The decisions still in force for `binding`: five keys, read in one
    /// transaction (built from every decision once, if they never were).
    pub fn in_force(&self, binding: &str) -> Result<InForce, JournalError> {
        let built = self.etcd.key("force/built");
        let mut keys: Vec<(Option<Slot>, String)> = vec![(None, built)];
        for slot in Slot::ALL {
            let of = (slot != Slot::Switch).then_some(binding);
            keys.push((Some(slot), self.slot_key(of, slot)));
        }
        let txn = Txn::new().and_then(
            keys.iter()
                .map(|(_, k)| TxnOp::get(k.clone(), None))
                .collect::<Vec<_>>(),
        );
        let mut client = self.etcd.client();
        let answer = self.etcd.block(async move { client.txn(txn).await })?;
        let mut force = InForce::default();
        let mut marked = false;
        for ((slot, _), response) in keys.iter().zip(answer.op_responses()) {
            let TxnOpResponse::Get(got) = response else {
                continue;
            };
            let Some(kv) = got.kvs().first() else {
                continue;
            };
            match slot {
                None => marked = true,
                Some(slot) => {
                    let d: Decision = self.decode(kv)?;
                    // Built ones keep the decision's own sequence number.
                    let seq = if d.seq > 0 { d.seq } else { kv.mod_revision() };
                    *slot.of(&mut force) = Some(Decision { seq, ..d });
                }
            }
        }
        if marked {
            return Ok(force);
        }
        self.build_in_force(binding)
    }

    /// Fill every binding's slots from every decision (a journal written
    /// before they existed), unless a decision lands meanwhile; `binding`'s.
    fn build_in_force(&self, binding: &str) -> Result<InForce, JournalError> {
        let (decisions, revision) = self.list_at::<Decision>("decisions")?;
        let mut last: std::collections::BTreeMap<String, Vec<u8>> = Default::default();
        let mut force = InForce::default();
        for (seq, d) in decisions {
            let d = Decision { seq, ..d };
            for slot in in_force_slots(d.kind, d.binding.is_none()) {
                let key = self.slot_key(d.binding.as_deref(), *slot);
                last.insert(key, self.encode(&d)?);
                if d.binding.is_none() || d.binding.as_deref() == Some(binding) {
                    *slot.of(&mut force) = Some(d.clone());
                }
            }
        }
        let built = self.etcd.key("force/built");
        let mut ops: Vec<TxnOp> = last
            .into_iter()
            .map(|(k, v)| TxnOp::put(k, v, None))
            .collect();
        ops.push(TxnOp::put(built.clone(), b"1".to_vec(), None));
        let compares = vec![
            Compare::create_revision(built, CompareOp::Equal, 0),
            Compare::mod_revision(self.etcd.key("decisions/"), CompareOp::Less, revision + 1)
                .with_prefix(),
        ];
        // Refused: another reader built them, or a decision landed (the
        // next read builds again); either way this answer stands.
        let _ = self.write(compares, ops)?;
        Ok(force)
    }

    /// Every decision, oldest first (the archive's, then etcd's); only
    /// `binding`'s if given.
    pub fn decisions(&self, binding: Option<&str>) -> Result<Vec<Decision>, JournalError> {
        let etcd = self.kept("decisions")?;
        let all = self.with_archived(etcd, |b| b.decisions.clone())?;
        all.iter()
            .map(|k| {
                Ok(Decision {
                    seq: k.seq,
                    ..self.value::<Decision>(k)?
                })
            })
            .filter(|d| {
                d.as_ref().map_or(true, |d| {
                    binding.is_none() || d.binding.as_deref() == binding
                })
            })
            .collect()
    }

    /// Set a run's state, compare-and-swap on the run's revision.
    pub fn set_run_state(
        &self,
        id: &str,
        state: RunState,
        finished_at: Option<&str>,
        error: Option<&str>,
    ) -> Result<(), JournalError> {
        let key = self.etcd.key(&format!("runs/{id}"));
        for _ in 0..CAS_ATTEMPTS {
            let Some(kv) = self.get(key.clone(), false)?.into_iter().next() else {
                return Err(JournalError::UnknownRun(id.to_string()));
            };
            let mut run: StoredRun = self.decode(&kv)?;
            run.state = state;
            run.finished_at = finished_at.map(str::to_string);
            run.error = error.map(str::to_string);
            let put = TxnOp::put(key.clone(), self.encode(&run)?, None);
            let unchanged = Compare::mod_revision(key.clone(), CompareOp::Equal, kv.mod_revision());
            if let Write::Done(_) = self.write(vec![unchanged], vec![put])? {
                return Ok(());
            }
            // Changed since it was read (the same executor's other write):
            // read it again.
        }
        Err(JournalError::Conflict(key))
    }

    /// Append a step event; its sequence number, once committed.
    pub fn record(&self, run: &str, event: &StepEvent) -> Result<i64, JournalError> {
        self.create(
            self.etcd.key(&format!("events/{run}/{}", unique())),
            self.encode(event)?,
            Vec::new(),
        )
    }

    /// One run (from the archive once it moved there).
    pub fn run(&self, id: &str) -> Result<RunRecord, JournalError> {
        if let Some(kv) = self
            .get(self.etcd.key(&format!("runs/{id}")), false)?
            .first()
        {
            return Ok(self.decode::<StoredRun>(kv)?.record());
        }
        match self.archived_run(id)?.and_then(|a| a.run) {
            Some(k) => Ok(self.value::<StoredRun>(&k)?.record()),
            None => Err(JournalError::UnknownRun(id.to_string())),
        }
    }

    /// Every run, newest first (without runbook texts): etcd's, and the
    /// archive's.
    pub fn runs(&self) -> Result<Vec<RunRecord>, JournalError> {
        let etcd = self.kept("runs")?;
        let mut seen = BTreeSet::new();
        let mut runs = Vec::new();
        // etcd's copy first: a run moved but not yet deleted reads once.
        let archived = self.archived(|b| b.runs.clone())?;
        for k in etcd.iter().chain(archived.iter().rev()) {
            let mut record = self.value::<StoredRun>(k)?.record();
            if seen.insert(record.run.id.clone()) {
                record.run.runbook_text.clear();
                runs.push(record);
            }
        }
        runs.sort_by(|a, b| (&b.run.started_at, &b.run.id).cmp(&(&a.run.started_at, &a.run.id)));
        Ok(runs)
    }

    /// The ids of `runbook`'s last `n` ended runs still in etcd, newest
    /// first (the archive is not read).
    pub fn recent_runs(&self, runbook: &str, n: usize) -> Result<Vec<String>, JournalError> {
        let mut runs = Vec::new();
        for k in self.kept("runs")? {
            let record = self.value::<StoredRun>(&k)?.record();
            if record.run.runbook == runbook && record.finished_at.is_some() {
                runs.push((record.run.started_at, record.run.id));
            }
        }
        runs.sort_by(|a, b| b.cmp(a));
        Ok(runs.into_iter().take(n).map(|(_, id)| id).collect())
    }

    /// Record a moment of a run's timeline.
    pub fn mark(&self, run: &str, mark: &Mark) -> Result<(), JournalError> {
        self.create(
            self.etcd.key(&format!("marks/{run}/{}", unique())),
            self.encode(mark)?,
            Vec::new(),
        )
        .map(|_| ())
    }

    /// Record an attempt's AWS requests (nothing if none).
    pub fn record_calls(&self, run: &str, calls: &StepCalls) -> Result<(), JournalError> {
        if calls.calls.is_empty() {
            return Ok(());
        }
        self.create(
            self.etcd.key(&format!("calls/{run}/{}", unique())),
            self.encode(calls)?,
            Vec::new(),
        )
        .map(|_| ())
    }

    /// Every attempt's requests in a run, in order.
    pub fn calls(&self, run: &str) -> Result<Vec<StepCalls>, JournalError> {
        self.of_run(run, "calls", |a| a.calls)?
            .iter()
            .map(|k| self.value(k))
            .collect()
    }

    /// Record a verification job's result.
    pub fn record_verification(
        &self,
        job: &str,
        started_at: &str,
        ok: bool,
        result: &serde_json::Value,
    ) -> Result<(), JournalError> {
        let value = serde_json::json!({ "started_at": started_at, "ok": ok, "result": result });
        self.create(
            self.etcd.key(&format!("verifications/{job}/{}", unique())),
            self.encode(&value)?,
            Vec::new(),
        )
        .map(|_| ())
    }

    /// A job's results, oldest first (the archive's, then etcd's).
    pub fn verifications(&self, job: &str) -> Result<Vec<serde_json::Value>, JournalError> {
        let etcd = self.kept(&format!("verifications/{job}"))?;
        let all = self.with_archived(etcd, |b| {
            b.verifications.get(job).cloned().unwrap_or_default()
        })?;
        Ok(all
            .into_iter()
            .map(|mut k| k.value["result"].take())
            .collect())
    }

    /// Every mark of a run, in order.
    pub fn marks(&self, run: &str) -> Result<Vec<Mark>, JournalError> {
        self.of_run(run, "marks", |a| a.marks)?
            .iter()
            .map(|k| self.value(k))
            .collect()
    }

    /// Every step event of a run, in order.
    pub fn events(&self, run: &str) -> Result<Vec<StepEvent>, JournalError> {
        Ok(self
            .stamped_events(run)?
            .into_iter()
            .map(|s| s.event)
            .collect())
    }

    /// Each step event of a run with the fencing token (`epoch`) and the
    /// leader it was written under, in order: which leader wrote what.
    pub fn stamped_events(&self, run: &str) -> Result<Vec<Stamped>, JournalError> {
        self.of_run(run, "events", |a| a.events)?
            .iter()
            .map(|k| {
                let event: StepEvent = self.value(k)?;
                Ok(Stamped {
                    event: StepEvent {
                        seq: k.seq,
                        ..event
                    },
                    epoch: k.value["epoch"].as_i64(),
                    leader: k.value["leader"].as_str().map(str::to_string),
                })
            })
            .collect()
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
        self.run(run)?;
        let request = StoredRequest {
            request: Request {
                seq: 0,
                run: run.to_string(),
                step: step.map(str::to_string),
                kind,
                who: who.to_string(),
                at: at.to_string(),
            },
            consumed_at: None,
        };
        self.create(
            self.etcd.key(&format!("requests/{}", unique())),
            self.encode(&request)?,
            Vec::new(),
        )
        .map(|_| ())
    }

    fn stored_requests(&self) -> Result<Vec<(KeyValue, StoredRequest)>, JournalError> {
        self.get(self.etcd.key("requests/"), true)?
            .into_iter()
            .map(|kv| {
                let mut r: StoredRequest = self.decode(&kv)?;
                r.request.seq = kv.create_revision();
                Ok((kv, r))
            })
            .collect()
    }

    /// Requests for `run` not yet acted on, oldest first.
    pub fn pending_requests(&self, run: &str) -> Result<Vec<Request>, JournalError> {
        Ok(self
            .stored_requests()?
            .into_iter()
            .filter(|(_, r)| r.request.run == run && r.consumed_at.is_none())
            .map(|(_, r)| r.request)
            .collect())
    }

    /// Every request ever left, oldest first (the archive's, then etcd's).
    pub fn all_requests(&self) -> Result<Vec<Request>, JournalError> {
        let etcd = self.kept("requests")?;
        self.with_archived(etcd, |b| b.requests.clone())?
            .iter()
            .map(|k| {
                let r: StoredRequest = self.value(k)?;
                Ok(Request {
                    seq: k.seq,
                    ..r.request
                })
            })
            .collect()
    }

    /// Mark a request acted on (once: compare-and-swap on its revision).
    pub fn consume(&self, seq: i64, at: &str) -> Result<(), JournalError> {
        let Some((kv, mut r)) = self
            .stored_requests()?
            .into_iter()
            .find(|(_, r)| r.request.seq == seq)
        else {
            return Ok(());
        };
        if r.consumed_at.is_some() {
            return Ok(());
        }
        r.consumed_at = Some(at.to_string());
        let key = kv.key().to_vec();
        let unchanged = Compare::mod_revision(key.clone(), CompareOp::Equal, kv.mod_revision());
        match self.write(
            vec![unchanged],
            vec![TxnOp::put(key, self.encode(&r)?, None)],
        )? {
            Write::Done(_) => Ok(()),
            Write::Refused => Err(JournalError::Conflict(
                String::from_utf8_lossy(kv.key()).into(),
            )),
        }
    }

    /// Put `value` at `prefix/rest` attached to `lease` (gone when the
    /// lease is): a daemon's health report.
    pub async fn put_leased(
        &self,
        rest: &str,
        value: Vec<u8>,
        lease: i64,
    ) -> Result<(), JournalError> {
        let mut client = self.etcd.client();
        let key = self.etcd.key(rest);
        self.etcd
            .call(
                async move {
                    client
                        .put(key, value, Some(PutOptions::new().with_lease(lease)))
                        .await
                },
                Some(self.etcd.timeout()),
            )
            .await?;
        Ok(())
    }

    /// The values under `prefix/rest/`, now.
    pub async fn read_prefix(&self, rest: &str) -> Result<Vec<serde_json::Value>, JournalError> {
        let mut client = self.etcd.client();
        let key = self.etcd.key(&format!("{rest}/"));
        let answer = self
            .etcd
            .call(
                async move { client.get(key, Some(GetOptions::new().with_prefix())).await },
                Some(self.etcd.timeout()),
            )
            .await?;
        answer.kvs().iter().map(|kv| self.decode(kv)).collect()
    }
}

/// Operations per transaction when history leaves etcd.
const DELETES: usize = 100;

/// A compare that `kv` is as it was read.
fn unchanged(kv: &KeyValue) -> Compare {
    Compare::mod_revision(kv.key().to_vec(), CompareOp::Equal, kv.mod_revision())
}

/// Keys per page of a prefix read.
const PAGE: i64 = 256;

/// The end of the range of keys starting with `prefix`.
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    // All 0xff (never one of ours): to the end of the key space.
    vec![0]
}

/// How many times a compare-and-swap is tried against concurrent writes.
const CAS_ATTEMPTS: u32 = 16;

/// What a conditional write did.
enum Write {
    /// Committed at this revision.
    Done(i64),
    /// A compare other than the fence failed.
    Refused,
}
