//! The emulator for the tests: the library's, failing the test if it
//! cannot start.

use lifeboat::emulator::Emulator;

/// Standard base64 (moto records request bodies so).
fn base64(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let (mut bits, mut count, mut out) = (0u32, 0, Vec::new());
    for c in text.trim_end_matches('=').bytes() {
        let Some(value) = ALPHABET.iter().position(|&a| a == c) else {
            continue;
        };
        bits = (bits << 6) | value as u32;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
        }
    }
    out
}

/// The access key lifeboat signs with in the tests (the harness signs
/// with another): the one whose requests [`Moto::enforce_policy`] checks.
pub const LIFEBOAT_KEY: &str = "lifeboat";

/// A running emulator, stopped when dropped.
pub struct Moto(Emulator);

impl Moto {
    /// Install (first time) and start the emulator.
    pub fn start() -> Moto {
        Moto(Emulator::install_and_start().expect("start the AWS emulator"))
    }

    /// The endpoint URL.
    pub fn endpoint(&self) -> String {
        self.0.endpoint()
    }

    /// Clients bound to the emulator.
    pub async fn clients(&self) -> lifeboat::aws::AwsClients {
        self.0.clients().await
    }

    /// The figures (`lifeboat report --format json`) of the newest run in
    /// `state`.
    pub fn newest_report(&self, state: &std::path::Path) -> serde_json::Value {
        let runs = self
            .lifeboat(state)
            .args(["runs", "--output", "json"])
            .output()
            .expect("runs");
        let runs: serde_json::Value = serde_json::from_slice(&runs.stdout).expect("runs JSON");
        let id = runs[0]["id"].as_str().expect("a run").to_string();
        let report = self
            .lifeboat(state)
            .args(["report", &id, "--format", "json"])
            .output()
            .expect("report");
        serde_json::from_slice(&report.stdout).expect("report JSON")
    }

    /// `lifeboat` with this state dir, pointed at the emulator with its
    /// dummy keys (never at AWS: no profile, no instance metadata).
    pub fn lifeboat(&self, state: &std::path::Path) -> std::process::Command {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_lifeboat"));
        command
            .env("LIFEBOAT_STATE_DIR", state)
            .env("AWS_ENDPOINT_URL", self.endpoint())
            .env("AWS_ACCESS_KEY_ID", LIFEBOAT_KEY)
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env_remove("AWS_PROFILE")
            .stdin(std::process::Stdio::null());
        command
    }

    /// `lifeboat daemon --config CONFIG` against the emulator, its output
    /// discarded, killed when dropped.
    pub fn daemon(
        &self,
        state: &std::path::Path,
        config: &std::path::Path,
    ) -> crate::support::KillOnDrop {
        self.lifeboat(state)
            .args(["daemon", "--config", config.to_str().expect("utf-8")])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map(crate::support::KillOnDrop)
            .expect("start the daemon")
    }

    /// From now on, authorize every request lifeboat makes as IAM would,
    /// against the policies `lifeboat iam-policy ARGS...` prints (the
    /// caller's, and each assumed role's); the harness's own requests are
    /// not checked.
    pub fn enforce_policy(&self, args: &[&str]) {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = self
            .lifeboat(dir.path())
            .arg("iam-policy")
            .args(args)
            .output()
            .expect("run lifeboat iam-policy");
        assert_eq!(
            out.status.code(),
            Some(0),
            "iam-policy {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let printed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
        self.enforce_printed(&printed);
    }

    /// Enforce what `iam-policy` printed: one policy, or per principal a
    /// policy and (when printed) the trust policy of each role.
    pub fn enforce_printed(&self, printed: &serde_json::Value) {
        let mut policies = serde_json::Map::new();
        let mut trust = serde_json::Map::new();
        match printed.get("policies").and_then(|p| p.as_array()) {
            Some(all) => {
                for entry in all {
                    let who = entry["principal"].as_str().expect("principal").to_string();
                    if let Some(doc) = entry.get("trust_policy") {
                        trust.insert(who.clone(), doc.clone());
                    }
                    policies.insert(who, entry["policy"].clone());
                }
            }
            None => {
                policies.insert("caller".into(), printed.clone());
            }
        }
        self.0
            .enforce_iam(
                LIFEBOAT_KEY,
                &serde_json::Value::Object(policies),
                &serde_json::Value::Object(trust),
            )
            .expect("install the policies");
    }

    /// Every request lifeboat made since [`Moto::enforce_policy`] was
    /// allowed, and some were checked.
    pub fn assert_authorized(&self) {
        let decisions = self.0.iam_decisions().expect("IAM decisions");
        let denied = decisions["denied"].as_array().cloned().unwrap_or_default();
        assert!(
            denied.is_empty(),
            "requests the printed policy does not allow:\n{}",
            denied
                .iter()
                .map(|d| format!(
                    "{} {} on {}: {}",
                    d["principal"], d["action"], d["resource"], d["reason"]
                ))
                .collect::<Vec<_>>()
                .join("\n")
        );
        assert!(
            decisions["checked"].as_u64().unwrap_or(0) > 0,
            "no request of lifeboat's was checked: nothing was proven"
        );
    }

    /// The authorization log since [`Moto::enforce_policy`].
    pub fn iam_decisions(&self) -> serde_json::Value {
        self.0.iam_decisions().expect("IAM decisions")
    }

    /// Record the requests reaching the emulator from now on.
    pub fn start_recording(&self) {
        self.0.start_recording().expect("start recording");
    }

    /// How many changing requests reached the emulator since recording
    /// started, by operation (`PromoteReadReplica`, `StartInstances`,
    /// `ChangeResourceRecordSets`, ...), whichever process sent them.
    pub fn changes(&self) -> std::collections::BTreeMap<String, u64> {
        let mut counts = std::collections::BTreeMap::new();
        for op in self.changes_in_order() {
            *counts.entry(op).or_default() += 1;
        }
        counts
    }

    /// The changing requests since recording started, in arrival order.
    pub fn changes_in_order(&self) -> Vec<String> {
        let mut ops = Vec::new();
        for line in self.0.recorded().expect("recording").lines() {
            let entry: serde_json::Value = serde_json::from_str(line).expect("recorded request");
            let body = entry["body"].as_str().unwrap_or_default();
            let body = if entry["body_encoded"] == true {
                String::from_utf8_lossy(&base64(body)).into_owned()
            } else {
                body.to_string()
            };
            let url = entry["url"].as_str().unwrap_or_default();
            // Query protocols (RDS, EC2, Auto Scaling) name the action in
            // the form body; Route 53's REST API in the method and path.
            let operation = body
                .split('&')
                .find_map(|kv| kv.strip_prefix("Action="))
                .map(str::to_string)
                .or_else(|| {
                    (entry["method"] == "POST" && url.contains("/rrset"))
                        .then(|| "ChangeResourceRecordSets".to_string())
                });
            if let Some(op) = operation.filter(|op| {
                !["Describe", "Get", "List"]
                    .iter()
                    .any(|read| op.starts_with(read))
            }) {
                ops.push(op);
            }
        }
        ops
    }

    /// What a Lambda function's code returns from now on (see
    /// `Emulator::play_function`).
    pub fn play_function(
        &self,
        region: &str,
        function: &str,
        result: serde_json::Value,
        function_error: Option<&str>,
        log: &str,
    ) {
        self.0
            .play_function(region, function, &result, function_error, log)
            .expect("play the function");
    }

    /// The Lambda invocations the emulator saw.
    pub fn invocations(&self) -> serde_json::Value {
        self.0.invocations().expect("the invocations")
    }

    /// The `ReplicaLag` the emulator publishes for a read replica from
    /// now on, as RDS would (0 s unless set); `None` stops its datapoints.
    pub fn set_replica_lag(&self, region: &str, db_instance: &str, lag_seconds: Option<f64>) {
        self.0
            .set_replica_lag(None, region, db_instance, lag_seconds)
            .expect("set the replica's lag");
    }

    /// The same, for one account's replica of that name only.
    pub fn set_account_replica_lag(
        &self,
        account: &str,
        region: &str,
        db_instance: &str,
        lag_seconds: Option<f64>,
    ) {
        self.0
            .set_replica_lag(Some(account), region, db_instance, lag_seconds)
            .expect("set the replica's lag");
    }

    /// Forget every resource.
    pub fn reset(&self) {
        self.0.reset().expect("reset the emulator");
    }
}
