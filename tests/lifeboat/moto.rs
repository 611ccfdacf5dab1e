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

    /// `lifeboat` with this state dir, pointed at the emulator with its
    /// dummy keys (never at AWS: no profile, no instance metadata).
    pub fn lifeboat(&self, state: &std::path::Path) -> std::process::Command {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_lifeboat"));
        command
            .env("LIFEBOAT_STATE_DIR", state)
            .env("AWS_ENDPOINT_URL", self.endpoint())
            .env("AWS_ACCESS_KEY_ID", "test")
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
    ) -> crate::run::KillOnDrop {
        self.lifeboat(state)
            .args(["daemon", "--config", config.to_str().expect("utf-8")])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map(crate::run::KillOnDrop)
            .expect("start the daemon")
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
