//! A simulation proxy between lifeboat and the emulator, on 127.0.0.1:
//! per AWS operation it adds latency (fixed or uniformly spread), injects
//! faults at a rate (HTTP 500, 503, throttling in the service's own error
//! format, connection resets, answers held past the client's timeout) and
//! holds resources in an in-between state after a mutating call (a
//! promoted replica reads `modifying`, a started instance `pending`, a
//! Route 53 change `PENDING`) until a set time has passed, so waits wait
//! and retries retry. Every decision derives from a seed and the
//! operation's own call count, so a run is reproducible; every injection
//! and every request (with the resources it names) is logged for the test
//! to assert on. Used by the integration tests and, as the `simproxy`
//! example (`bench/simproxy.rs`), by the benchmarks. Not a test module.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A fault to inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// HTTP 500 InternalFailure.
    Internal,
    /// HTTP 503 ServiceUnavailable.
    Unavailable,
    /// HTTP 400 Throttling (S3: 503 SlowDown).
    Throttle,
    /// The connection is closed without an answer.
    Reset,
    /// The answer comes only after this long: past a client's attempt
    /// timeout, the client gives up and retries.
    Stall(Duration),
}

/// Latency added to a call: uniform between `min` and `max` (fixed when
/// they are equal), drawn from the seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Latency {
    /// The least added.
    pub min: Duration,
    /// The most added.
    pub max: Duration,
}

impl Latency {
    /// Always `d`.
    pub fn fixed(d: Duration) -> Latency {
        Latency { min: d, max: d }
    }
}

/// A capacity pool AWS has nothing left in, as in the crunch a regional
/// failover causes: instances (EC2) or DB instances (RDS) of this type or
/// class (any, if `None`) in this zone (any, if `None`), which is a subnet
/// id or an Availability Zone as the request names it. EC2 answers a launch
/// or a start from it with `InsufficientInstanceCapacity` (HTTP 500, so the
/// SDK retries it first), RDS a restore or a replica with
/// `InsufficientDBInstanceCapacity` (HTTP 400).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pool {
    /// Instance type or DB instance class.
    pub instance_type: Option<String>,
    /// Subnet id or Availability Zone.
    pub zone: Option<String>,
}

/// What the proxy does.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    /// The seed of every random decision.
    pub seed: u64,
    /// Share of calls (0..1) answered with a fault, by operation (`*` for
    /// every operation).
    pub fault_rate: BTreeMap<String, f64>,
    /// Faults to choose from (in turn, by the call's count).
    pub faults: Vec<Fault>,
    /// Latency added to every call of an operation (`*` for all).
    pub latency: BTreeMap<String, Latency>,
    /// After a call of the operation (key), every answer naming a resource
    /// it changed (a DB instance, cluster or snapshot, an EC2 instance, a Route 53
    /// change) shows this status for this long.
    pub transitions: BTreeMap<String, (String, Duration)>,
    /// Pools with no capacity: launches, starts, restores and replicas
    /// that would draw from them are refused, never forwarded.
    pub no_capacity: Vec<Pool>,
    /// Throttle as AWS does: EC2's, RDS's and Route 53's documented token
    /// buckets per account (access key), region and bucket (those of
    /// `lifeboat::pacing::charges`), a request that finds its bucket short
    /// refused with the service's own throttling error (EC2 HTTP 503
    /// `RequestLimitExceeded`, RDS 400 `ThrottlingException`, Route 53 400
    /// `Throttling`), never forwarded.
    pub aws_throttling: bool,
    /// Upstreams by the service a request is signed for (its SigV4 scope:
    /// `ec2`, `rds`, ...), `http://127.0.0.1:PORT`; every other request
    /// goes to the proxy's upstream. AWS's services answer independently of
    /// each other, where one emulator process answers a slow request of
    /// one service and another service's request with one Python
    /// interpreter: emulators split by service play AWS's part.
    pub routes: BTreeMap<String, String>,
    /// Also append every request, with what was done to it, to this file
    /// as a JSON line (`t`: seconds since the proxy started, and `unix`,
    /// both when the answer was sent; `received`: seconds since the proxy
    /// started when the request had been read; `charges`: what it took
    /// from AWS's buckets).
    pub log: Option<PathBuf>,
}

/// One thing the proxy did to a call.
#[derive(Debug, Clone, PartialEq)]
pub struct Injection {
    /// The operation.
    pub operation: String,
    /// What was done: a fault's name, `transition <status>`.
    pub what: String,
}

/// One request the proxy received.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The operation.
    pub operation: String,
    /// The resources it names (DB instance and snapshot ids, instance
    /// ids, ARNs, group names, record names, change ids).
    pub resources: Vec<String>,
    /// Whether it reached the emulator (no fault was injected).
    pub forwarded: bool,
    /// The emulator's HTTP status (0 when not forwarded).
    pub status: u16,
    /// The client's `User-Agent` header.
    pub user_agent: String,
    /// The region it is signed for (its SigV4 scope), when signed.
    pub region: String,
    /// What it took from AWS's buckets, when the proxy throttles as AWS
    /// does (bucket key, tokens).
    pub charges: Vec<(String, lifeboat::pacing::Charge)>,
    /// When the proxy had read it.
    pub received: Instant,
}

impl Request {
    /// Whether the operation changes something (not a describe, get or
    /// list).
    pub fn mutating(&self) -> bool {
        !["Describe", "Get", "List", "GET ", "HEAD "]
            .iter()
            .any(|read| self.operation.starts_with(read))
    }

    /// Whether it changed something in the emulator: a mutating call
    /// that reached it and succeeded.
    pub fn changed(&self) -> bool {
        self.forwarded && self.mutating() && (200..300).contains(&self.status)
    }
}

#[derive(Debug)]
struct State {
    started: Instant,
    counts: BTreeMap<String, u64>,
    /// Resource id -> (status shown, until).
    held: BTreeMap<String, (String, Instant)>,
    /// EC2 instance id -> (type, subnet), as answers and requests said.
    placement: BTreeMap<String, (String, String)>,
    log: Vec<Injection>,
    requests: Vec<Request>,
    file: Option<std::fs::File>,
    /// AWS's buckets: key -> (tokens, when counted).
    buckets: BTreeMap<String, (f64, Instant)>,
}

impl State {
    /// AWS's side of its buckets: take this request's tokens if every
    /// bucket it draws from holds them, else refuse it (taking nothing).
    fn admit(
        &mut self,
        head: &str,
        body: &[u8],
        now: Instant,
    ) -> Result<Vec<(String, lifeboat::pacing::Charge)>, &'static str> {
        let Some(authorization) = head.lines().find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("authorization")
                .then(|| value.trim().to_string())
        }) else {
            return Ok(Vec::new());
        };
        let Some((region, charges)) = lifeboat::pacing::signed_charges(&authorization, body) else {
            return Ok(Vec::new());
        };
        let region = region.as_str();
        let service = lifeboat::pacing::signed_scope(&authorization).map_or("", |(_, s)| s);
        let account = authorization
            .split("Credential=")
            .nth(1)
            .and_then(|c| c.split('/').next())
            .unwrap_or_default();
        let mut levels = Vec::new();
        for c in &charges {
            let key = lifeboat::pacing::key(account, region, &c.bucket);
            let (tokens, at) = self
                .buckets
                .get(&key)
                .copied()
                .unwrap_or((c.limits.capacity, now));
            let tokens = (tokens + now.duration_since(at).as_secs_f64() * c.limits.refill)
                .min(c.limits.capacity);
            if tokens < c.cost.min(c.limits.capacity) {
                return Err(match service {
                    "ec2" => "RequestLimitExceeded",
                    "rds" => "ThrottlingException",
                    _ => "Throttling",
                });
            }
            levels.push((key, tokens - c.cost.min(c.limits.capacity)));
        }
        for (key, tokens) in levels {
            self.buckets.insert(key, (tokens, now));
        }
        Ok(charges
            .into_iter()
            .map(|c| (lifeboat::pacing::key(account, region, &c.bucket), c))
            .collect())
    }
}

impl State {
    /// A call answered by the proxy itself (`what` it injected), never
    /// forwarded.
    fn refused(
        &mut self,
        op: &str,
        resources: Vec<String>,
        user_agent: String,
        what: &str,
        received: Instant,
    ) {
        self.log.push(Injection {
            operation: op.to_string(),
            what: what.to_string(),
        });
        self.record(
            Request {
                operation: op.to_string(),
                resources,
                forwarded: false,
                status: 0,
                user_agent,
                region: String::new(),
                charges: Vec::new(),
                received,
            },
            Some(what),
        );
    }

    fn record(&mut self, request: Request, injected: Option<&str>) {
        if let Some(file) = &mut self.file {
            let unix = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64());
            let line = serde_json::json!({
                "t": self.started.elapsed().as_secs_f64(),
                "received": request.received.saturating_duration_since(self.started).as_secs_f64(),
                "unix": unix,
                "op": request.operation,
                "resources": request.resources,
                "forwarded": request.forwarded,
                "status": request.status,
                "injected": injected,
                "charges": request.charges.iter().map(|(key, c)| serde_json::json!({
                    "bucket": key,
                    "cost": c.cost,
                    "capacity": c.limits.capacity,
                    "refill": c.limits.refill,
                })).collect::<Vec<_>>(),
            });
            let _ = writeln!(file, "{line}");
        }
        self.requests.push(request);
    }
}

/// A running proxy.
pub struct Proxy {
    /// Its endpoint, `http://127.0.0.1:PORT`.
    pub endpoint: String,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Proxy {
    /// Clients whose every request goes through this proxy.
    pub async fn clients(&self) -> lifeboat::aws::AwsClients {
        lifeboat::aws::AwsClients::load(
            &lifeboat::aws::AwsSettings {
                profile: None,
                endpoint_url: Some(self.endpoint.clone()),
                ..Default::default()
            },
            lifeboat::aws::Credentials::Emulator,
        )
        .await
    }

    /// Start a proxy to `upstream` (`http://127.0.0.1:PORT`) on a free port.
    pub async fn start(upstream: &str, rules: Rules) -> Proxy {
        Proxy::start_on(upstream, rules, 0)
            .await
            .expect("start the proxy")
    }

    /// Start a proxy to `upstream` on 127.0.0.1:`port` (0: any free one).
    pub async fn start_on(upstream: &str, rules: Rules, port: u16) -> std::io::Result<Proxy> {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        let endpoint = format!("http://{}", listener.local_addr()?);
        let bare = |to: &str| {
            to.trim_start_matches("http://")
                .trim_end_matches('/')
                .to_string()
        };
        let upstream = bare(upstream);
        let mut rules = rules;
        rules.routes = rules
            .routes
            .iter()
            .map(|(s, to)| (s.clone(), bare(to)))
            .collect();
        let file = match &rules.log {
            Some(path) => Some(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?,
            ),
            None => None,
        };
        let state = Arc::new(Mutex::new(State {
            started: Instant::now(),
            counts: BTreeMap::new(),
            held: BTreeMap::new(),
            placement: BTreeMap::new(),
            log: Vec::new(),
            requests: Vec::new(),
            buckets: BTreeMap::new(),
            file,
        }));
        let rules = Arc::new(rules);
        let shared = Arc::clone(&state);
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (state, rules, upstream) =
                    (Arc::clone(&shared), Arc::clone(&rules), upstream.clone());
                tokio::spawn(async move {
                    let _ = serve(client, &upstream, &rules, &state).await;
                });
            }
        });
        Ok(Proxy {
            endpoint,
            state,
            task,
        })
    }

    /// Everything injected so far.
    pub fn injections(&self) -> Vec<Injection> {
        self.state.lock().expect("state").log.clone()
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        self.state.lock().expect("state").requests.clone()
    }

    /// How many times each resource was changed (named by a mutating call
    /// that reached the emulator and succeeded; a name with its region), by
    /// operation:
    pub fn changes(&self) -> BTreeMap<(String, String), u64> {
        let mut counts = BTreeMap::new();
        for request in self.requests() {
            if request.changed() {
                for resource in &request.resources {
                    // Names are a region's own: app-asg in two regions is
                    // two groups.
                    let named = if request.region.is_empty() || resource.starts_with("arn:") {
                        resource.clone()
                    } else {
                        format!("{resource} ({})", request.region)
                    };
                    *counts
                        .entry((request.operation.clone(), named))
                        .or_default() += 1;
                }
            }
        }
        counts
    }
}

/// Read into `buf` until it holds a whole HTTP head; its length, or `None`
/// when the peer closes first.
async fn read_head(stream: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<Option<usize>> {
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            return Ok(Some(i + 4));
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Read into `body` until it holds `length` bytes or the peer closes.
async fn read_body(
    stream: &mut TcpStream,
    body: &mut Vec<u8>,
    length: usize,
) -> std::io::Result<()> {
    let mut chunk = [0u8; 8192];
    while body.len() < length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Ok(())
}

/// Read one HTTP/1.1 request (head and Content-Length body) or `None` at
/// EOF: also what the tests' stand-in webhook receivers read.
pub async fn read_request(stream: &mut TcpStream) -> std::io::Result<Option<(String, Vec<u8>)>> {
    let mut buf = Vec::new();
    let Some(head_end) = read_head(stream, &mut buf).await? else {
        return Ok(None);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let length = content_length(&head).unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    read_body(stream, &mut body, length).await?;
    Ok(Some((head, body)))
}

/// Read one response: head, then its Content-Length body (chunked bodies
/// de-chunked; without either, until the server closes). Never waits for
/// a close the server may not make.
async fn read_response(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    let Some(head_end) = read_head(stream, &mut buf).await? else {
        return Ok(buf);
    };
    let mut chunk = [0u8; 8192];
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let header = |name: &str| {
        head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == name).then(|| v.trim().to_string())
        })
    };
    let mut body = buf[head_end..].to_vec();
    if let Some(length) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        read_body(stream, &mut body, length).await?;
    } else if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        while !body.windows(5).any(|w| w == b"0\r\n\r\n") {
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
        let mut plain = Vec::new();
        let mut rest = body.as_slice();
        while let Some(i) = rest.windows(2).position(|w| w == b"\r\n") {
            let size =
                usize::from_str_radix(String::from_utf8_lossy(&rest[..i]).trim(), 16).unwrap_or(0);
            if size == 0 {
                break;
            }
            let start = i + 2;
            plain.extend_from_slice(&rest[start..(start + size).min(rest.len())]);
            rest = &rest[(start + size + 2).min(rest.len())..];
        }
        body = plain;
        let head: String = String::from_utf8_lossy(&buf[..head_end])
            .lines()
            .filter(|l| !l.to_ascii_lowercase().starts_with("transfer-encoding:"))
            .map(|l| format!("{l}\r\n"))
            .collect();
        let mut out = head.trim_end().as_bytes().to_vec();
        out.extend_from_slice(b"\r\n\r\n");
        out.extend_from_slice(&body);
        return Ok(out);
    } else {
        stream.read_to_end(&mut body).await?;
    }
    let mut out = buf[..head_end].to_vec();
    out.extend_from_slice(&body);
    Ok(out)
}

/// The AWS operation a request is: `Action=` of query protocols, the
/// last segment of an RPC v2 path, or Route 53's and S3's method and path.
fn operation(head: &str, body: &[u8]) -> String {
    let body = String::from_utf8_lossy(body);
    if let Some(action) = body.split('&').find_map(|kv| kv.strip_prefix("Action=")) {
        return action.to_string();
    }
    let line = head.lines().next().unwrap_or_default();
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = path.split('?').next().unwrap_or(path);
    // Smithy RPC v2 (CloudWatch): `/service/NAME/operation/OPERATION`.
    if let Some((_, op)) = path.split_once("/operation/") {
        return op.to_string();
    }
    let route53 = [
        ("/rrset", "POST", "ChangeResourceRecordSets"),
        ("/rrset", "GET", "ListResourceRecordSets"),
        ("/change/", "GET", "GetChange"),
        ("/hostedzonesbyname", "GET", "ListHostedZonesByName"),
        ("/status", "GET", "GetHealthCheckStatus"),
        ("/healthcheck/", "POST", "UpdateHealthCheck"),
        ("/healthcheck/", "GET", "GetHealthCheck"),
        ("/hostedzone", "GET", "ListHostedZones"),
    ];
    route53
        .iter()
        .find(|(part, m, _)| path.starts_with("/2013-04-01") && path.contains(part) && method == *m)
        .map_or_else(
            || format!("{method} {path}"),
            |(_, _, op)| (*op).to_string(),
        )
}

/// `%XX` escapes and `+` of a form value decoded.
fn form_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| value.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match (bytes[i], escaped) {
            (_, Some(b)) => {
                out.push(b);
                i += 3;
                continue;
            }
            (b'+', None) => out.push(b' '),
            (b, None) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The texts of every `<tag>...</tag>` in `body`.
fn texts<'a>(body: &'a str, tag: &str) -> Vec<&'a str> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut found = Vec::new();
    let mut rest = body;
    while let Some(start) = rest.find(&open) {
        rest = &rest[start + open.len()..];
        let Some(end) = rest.find(&close) else { break };
        found.push(&rest[..end]);
        rest = &rest[end + close.len()..];
    }
    found
}

/// The resources a request names: the identifiers of query protocols'
/// forms (not the sources a copy reads), Route 53's record names and the
/// change or health check in its path, S3's bucket and key.
fn resources_of(op: &str, head: &str, body: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(body);
    if text.contains("Action=") {
        return text
            .split('&')
            .filter_map(|kv| {
                let (k, v) = kv.split_once('=')?;
                let named = matches!(
                    k,
                    "DBInstanceIdentifier"
                        | "TargetDBInstanceIdentifier"
                        | "DBClusterIdentifier"
                        | "GlobalClusterIdentifier"
                        | "TargetDbClusterIdentifier"
                        | "DBSnapshotIdentifier"
                        | "TargetDBSnapshotIdentifier"
                        | "ResourceName"
                        | "AutoScalingGroupName"
                ) || k.starts_with("InstanceId.")
                    || k.starts_with("ResourceId.");
                named.then(|| form_decode(v))
            })
            .collect();
    }
    if op == "ChangeResourceRecordSets" {
        return texts(&text, "Name")
            .into_iter()
            .map(|n| n.trim_end_matches('.').to_string())
            .collect();
    }
    let path = head
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or_default();
    let path = path.split('?').next().unwrap_or(path);
    match op {
        "GetChange" | "UpdateHealthCheck" | "GetHealthCheck" | "GetHealthCheckStatus" => path
            .rsplit('/')
            .find(|p| !p.is_empty() && *p != "status")
            .map(|id| vec![id.to_string()])
            .unwrap_or_default(),
        _ if op.contains(' ') => vec![path.trim_start_matches('/').to_string()],
        _ => Vec::new(),
    }
}

/// The resources a mutating call's answer names that its request could
/// not: the instances RunInstances launched, the change a Route 53 batch
/// became.
fn created_by(op: &str, answer: &str) -> Vec<String> {
    match op {
        "RunInstances" => texts(answer, "instanceId")
            .into_iter()
            .map(str::to_string)
            .collect(),
        "ChangeResourceRecordSets" => texts(answer, "Id")
            .into_iter()
            .map(|id| id.trim_start_matches("/change/").to_string())
            .collect(),
        _ => Vec::new(),
    }
}

/// The parameters of a query-protocol form, decoded.
fn form(body: &[u8]) -> BTreeMap<String, String> {
    String::from_utf8_lossy(body)
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (form_decode(k), form_decode(v)))
        .collect()
}

/// Remember each EC2 instance's type and subnet from what went by: the
/// answers of DescribeInstances and RunInstances, and a successful
/// ModifyInstanceAttribute of the type.
fn learn_placement(
    placement: &mut BTreeMap<String, (String, String)>,
    op: &str,
    body: &[u8],
    answer: &str,
    status: u16,
) {
    match op {
        "DescribeInstances" | "RunInstances" => {
            for chunk in answer.split("<instanceId>").skip(1) {
                let Some((id, rest)) = chunk.split_once("</instanceId>") else {
                    continue;
                };
                let (Some(kind), subnet) = (
                    texts(rest, "instanceType").first().copied(),
                    texts(rest, "subnetId").first().copied(),
                ) else {
                    continue;
                };
                placement.insert(
                    id.to_string(),
                    (kind.to_string(), subnet.unwrap_or_default().to_string()),
                );
            }
        }
        "ModifyInstanceAttribute" if (200..300).contains(&status) => {
            let params = form(body);
            if let (Some(id), Some(kind)) =
                (params.get("InstanceId"), params.get("InstanceType.Value"))
            {
                let entry = placement.entry(id.clone()).or_default();
                entry.0 = kind.clone();
            }
        }
        _ => {}
    }
}

/// The refusal of a call that would draw from a pool with no capacity:
/// what to log, and the answer AWS gives.
fn no_capacity(
    pools: &[Pool],
    placement: &BTreeMap<String, (String, String)>,
    op: &str,
    body: &[u8],
) -> Option<(String, String)> {
    if pools.is_empty() {
        return None;
    }
    let params = form(body);
    // (type or class, zones the request names) of each thing it asks for.
    let asks: Vec<(Option<String>, Vec<String>)> = match op {
        "RunInstances" => vec![(
            params.get("InstanceType").cloned(),
            ["SubnetId", "Placement.AvailabilityZone"]
                .iter()
                .filter_map(|k| params.get(*k).cloned())
                .collect(),
        )],
        "StartInstances" => params
            .iter()
            .filter(|(k, _)| k.starts_with("InstanceId."))
            .map(|(_, id)| match placement.get(id) {
                Some((kind, subnet)) => (Some(kind.clone()), vec![subnet.clone()]),
                None => (None, Vec::new()),
            })
            .collect(),
        "RestoreDBInstanceFromDBSnapshot"
        | "RestoreDBInstanceToPointInTime"
        | "CreateDBInstanceReadReplica" => vec![(
            params.get("DBInstanceClass").cloned(),
            params
                .get("AvailabilityZone")
                .cloned()
                .into_iter()
                .collect(),
        )],
        _ => return None,
    };
    let (kind, zones) = asks.into_iter().find(|(kind, zones)| {
        pools.iter().any(|pool| {
            pool.instance_type
                .as_ref()
                .is_none_or(|t| kind.as_ref() == Some(t))
                && pool.zone.as_ref().is_none_or(|z| zones.contains(z))
        })
    })?;
    let kind = kind.unwrap_or_else(|| "the requested".to_string());
    let zone = zones
        .first()
        .cloned()
        .unwrap_or_else(|| "any zone".to_string());
    let ec2 = !op.contains("DB");
    let (status, code, message) = if ec2 {
        (
            "500 Internal Server Error",
            "InsufficientInstanceCapacity",
            format!(
                "We currently do not have sufficient {kind} capacity in the Availability Zone you requested ({zone}). Our system will be working on provisioning additional capacity."
            ),
        )
    } else {
        (
            "400 Bad Request",
            "InsufficientDBInstanceCapacity",
            format!(
                "Cannot create a database instance because there is no availability of {kind} instances in {zone}."
            ),
        )
    };
    let body = if ec2 {
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors><RequestID>proxy</RequestID></Response>"
        )
    } else {
        format!(
            "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>proxy</RequestId></ErrorResponse>"
        )
    };
    Some((
        format!("no capacity: {kind} in {zone}"),
        format!(
            "HTTP/1.1 {status}\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    ))
}

/// A number in 0..1 from the seed, the operation and its call count.
fn chance(seed: u64, operation: &str, n: u64) -> f64 {
    let mut h = seed ^ 0x9e37_79b9_7f4a_7c15;
    for b in operation.bytes().chain(n.to_le_bytes()) {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    fastrand::Rng::with_seed(h).f64()
}

fn fault_response(fault: Fault, operation: &str, s3: bool) -> Option<String> {
    let (status, code) = match (fault, s3) {
        (Fault::Internal, _) => ("500 Internal Server Error", "InternalFailure"),
        (Fault::Unavailable, _) => ("503 Service Unavailable", "ServiceUnavailable"),
        (Fault::Throttle, true) => ("503 Slow Down", "SlowDown"),
        (Fault::Throttle, false) => ("400 Bad Request", "Throttling"),
        (Fault::Reset | Fault::Stall(_), _) => return None,
    };
    let body = if s3 {
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>injected by the test proxy ({operation})</Message></Error>"
        )
    } else {
        format!(
            "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>injected by the test proxy ({operation})</Message></Error><RequestId>proxy</RequestId></ErrorResponse>"
        )
    };
    Some(format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    ))
}

/// A throttle in the service's own format: EC2's query errors
/// (`Response/Errors/Error`, HTTP 503), RDS's (`ErrorResponse/Error`, 400),
/// Route 53's REST-XML (400).
fn throttle_response(code: &str, operation: &str) -> String {
    let (status, body) = match code {
        "RequestLimitExceeded" => (
            "503 Service Unavailable",
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Errors><Error><Code>{code}</Code><Message>Request limit exceeded.</Message></Error></Errors><RequestID>proxy-{operation}</RequestID></Response>"
            ),
        ),
        "Throttling" => (
            "400 Bad Request",
            format!(
                "<?xml version=\"1.0\"?><ErrorResponse xmlns=\"https://route53.amazonaws.com/doc/2013-04-01/\"><Error><Type>Sender</Type><Code>{code}</Code><Message>Rate exceeded</Message></Error><RequestId>proxy-{operation}</RequestId></ErrorResponse>"
            ),
        ),
        _ => (
            "400 Bad Request",
            format!(
                "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>Rate exceeded</Message></Error><RequestId>proxy-{operation}</RequestId></ErrorResponse>"
            ),
        ),
    };
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// Rewrite each `open`..`close` block of `body` with `edit` (which
/// answers `None` to leave the block as it is).
fn rewrite_blocks(
    body: &str,
    open: &str,
    close: &str,
    edit: impl Fn(&str) -> Option<String>,
) -> String {
    let mut out = String::with_capacity(body.len());
    let mut rest = body;
    while let Some(start) = rest.find(open) {
        let Some(end) = rest[start..].find(close).map(|e| start + e + close.len()) else {
            break;
        };
        out.push_str(&rest[..start]);
        let block = &rest[start..end];
        out.push_str(&edit(block).unwrap_or_else(|| block.to_string()));
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// `block` with the text of its first `<tag>` set to `value`.
fn set_text(block: &str, tag: &str, value: &str) -> String {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut out = block.to_string();
    if let Some(s) = out.find(&open)
        && let Some(e) = out[s..].find(&close)
    {
        out.replace_range(s + open.len()..s + e, value);
    }
    out
}

/// An EC2 instance state's code.
fn state_code(name: &str) -> &'static str {
    match name {
        "pending" => "0",
        "running" => "16",
        "shutting-down" => "32",
        "terminated" => "48",
        "stopping" => "64",
        _ => "80",
    }
}

/// Show held resources in their in-between status: RDS instances and
/// snapshots in the block that names them; EC2 instances in the state
/// that follows their id (`instanceState`, or `currentState` in a start's
/// own answer); Route 53 changes in the status that follows their id.
fn hold(body: &str, held: &BTreeMap<String, (String, Instant)>) -> String {
    let now = Instant::now();
    let active: BTreeMap<&str, &str> = held
        .iter()
        .filter(|(_, (_, until))| *until > now)
        .map(|(id, (status, _))| (id.as_str(), status.as_str()))
        .collect();
    if active.is_empty() {
        return body.to_string();
    }
    let mut out = body.to_string();
    for (block, id_tag, status_tag) in [
        ("DBInstance", "DBInstanceIdentifier", "DBInstanceStatus"),
        ("DBSnapshot", "DBSnapshotIdentifier", "Status"),
        ("DBCluster", "DBClusterIdentifier", "Status"),
    ] {
        out = rewrite_blocks(&out, &format!("<{block}>"), &format!("</{block}>"), |b| {
            let id = texts(b, id_tag).first().copied()?;
            Some(set_text(b, status_tag, active.get(id)?))
        });
    }
    // A describe's `instanceState`, a start's own answer's `currentState`.
    for state in ["instanceState", "currentState"] {
        if !out.contains("<instanceId>") {
            break;
        }
        out = rewrite_blocks(&out, "<instanceId>", &format!("</{state}>"), |b| {
            let id = texts(b, "instanceId").first().copied()?;
            let status = active.get(id)?;
            // Only an id followed by its own state, no other id between.
            (b.matches("<instanceId>").count() == 1).then_some(())?;
            let at = b.find(&format!("<{state}>"))?;
            let named = set_text(&b[at..], "name", status);
            Some(format!(
                "{}{}",
                &b[..at],
                set_text(&named, "code", state_code(status))
            ))
        });
    }
    if out.contains("<ChangeInfo>") {
        out = rewrite_blocks(&out, "<ChangeInfo>", "</ChangeInfo>", |b| {
            let id = texts(b, "Id").first().copied()?;
            Some(set_text(
                b,
                "Status",
                active.get(id.trim_start_matches("/change/"))?,
            ))
        });
    }
    out
}

/// The upstream a request goes to: its signed service's route, else the
/// proxy's own upstream.
fn route<'a>(head: &str, upstream: &'a str, rules: &'a Rules) -> &'a str {
    head.lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("authorization")
                .then(|| lifeboat::pacing::signed_scope(value.trim()))
                .flatten()
        })
        .and_then(|(_, service)| rules.routes.get(service))
        .map_or(upstream, |to| to.as_str())
}

async fn serve(
    mut client: TcpStream,
    upstream: &str,
    rules: &Rules,
    state: &Mutex<State>,
) -> std::io::Result<()> {
    // One request per connection: every answer says `Connection: close`.
    let Some((head, body)) = read_request(&mut client).await? else {
        return Ok(());
    };
    let received = Instant::now();
    let op = operation(&head, &body);
    let resources = resources_of(&op, &head, &body);
    let header = |wanted: &str| {
        head.lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case(wanted)
                    .then(|| value.trim().to_string())
            })
            .unwrap_or_default()
    };
    let user_agent = header("user-agent");
    let region = lifeboat::pacing::signed_scope(&header("authorization"))
        .map_or(String::new(), |(r, _)| r.to_string());
    // S3's requests are the ones named by method and path.
    let s3 = op.contains(' ');
    let n = {
        let mut st = state.lock().expect("state");
        let n = st.counts.entry(op.clone()).or_default();
        *n += 1;
        *n
    };
    let rate = rules
        .fault_rate
        .get(&op)
        .or_else(|| rules.fault_rate.get("*"))
        .copied()
        .unwrap_or(0.0);
    if let Some(latency) = rules.latency.get(&op).or_else(|| rules.latency.get("*")) {
        let spread = latency.max.saturating_sub(latency.min);
        let extra = spread.mul_f64(chance(rules.seed ^ 0x1a7e, &op, n));
        tokio::time::sleep(latency.min + extra).await;
    }
    let mut charges = Vec::new();
    if rules.aws_throttling {
        let admitted = state
            .lock()
            .expect("state")
            .admit(&head, &body, Instant::now());
        match admitted {
            Ok(taken) => charges = taken,
            Err(code) => {
                state.lock().expect("state").refused(
                    &op,
                    resources,
                    user_agent.clone(),
                    code,
                    received,
                );
                client
                    .write_all(throttle_response(code, &op).as_bytes())
                    .await?;
                return Ok(());
            }
        }
    }
    let refusal = {
        let st = state.lock().expect("state");
        no_capacity(&rules.no_capacity, &st.placement, &op, &body)
    };
    if let Some((what, response)) = refusal {
        state
            .lock()
            .expect("state")
            .refused(&op, resources, user_agent.clone(), &what, received);
        client.write_all(response.as_bytes()).await?;
        return Ok(());
    }
    if rate > 0.0 && !rules.faults.is_empty() && chance(rules.seed, &op, n) < rate {
        let fault = rules.faults[(n as usize) % rules.faults.len()];
        let what = format!("{fault:?}");
        state
            .lock()
            .expect("state")
            .refused(&op, resources, user_agent.clone(), &what, received);
        if let Fault::Stall(delay) = fault {
            // Hold the connection, then answer 503: by then the client has
            // given up on this attempt.
            tokio::time::sleep(delay).await;
            if let Some(response) = fault_response(Fault::Unavailable, &op, s3) {
                let _ = client.write_all(response.as_bytes()).await;
            }
            return Ok(());
        }
        // A reset drops the connection unanswered.
        if let Some(response) = fault_response(fault, &op, s3) {
            client.write_all(response.as_bytes()).await?;
        }
        return Ok(());
    }
    // Forward, one upstream connection per request.
    let mut up = TcpStream::connect(route(head.as_str(), upstream, rules)).await?;
    let forwarded_head = head
        .lines()
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
        .take_while(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\r\n");
    up.write_all(format!("{forwarded_head}\r\nConnection: close\r\n\r\n").as_bytes())
        .await?;
    up.write_all(&body).await?;
    let response = read_response(&mut up).await?;
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(response.len(), |i| i + 4);
    let answer = String::from_utf8_lossy(&response[split..]).into_owned();
    let status = String::from_utf8_lossy(&response[..split])
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let held = {
        let mut st = state.lock().expect("state");
        learn_placement(&mut st.placement, &op, &body, &answer, status);
        let mut injected = None;
        if let Some((status, hold_for)) = rules.transitions.get(&op) {
            let until = Instant::now() + *hold_for;
            for id in resources.iter().cloned().chain(created_by(&op, &answer)) {
                st.held.insert(id, (status.clone(), until));
            }
            let what = format!("transition {status}");
            st.log.push(Injection {
                operation: op.clone(),
                what: what.clone(),
            });
            injected = Some(what);
        }
        let mut named = resources;
        named.extend(created_by(&op, &answer));
        named.dedup();
        st.record(
            Request {
                operation: op.clone(),
                resources: named,
                forwarded: true,
                status,
                user_agent,
                region,
                charges,
                received,
            },
            injected.as_deref(),
        );
        st.held.clone()
    };
    let body = if held.is_empty() {
        response[split..].to_vec()
    } else {
        hold(&answer, &held).into_bytes()
    };
    // The client must not reuse this connection: this proxy closes it.
    let head: Vec<String> = String::from_utf8_lossy(&response[..split])
        .lines()
        .filter(|l| !l.is_empty())
        .filter(|l| {
            let l = l.to_ascii_lowercase();
            !l.starts_with("connection:") && !l.starts_with("content-length:")
        })
        .map(str::to_string)
        .collect();
    client
        .write_all(
            format!(
                "{}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                head.join("\r\n"),
                body.len()
            )
            .as_bytes(),
        )
        .await?;
    client.write_all(&body).await?;
    Ok(())
}

/// The `Content-Length` an HTTP head declares.
pub fn content_length(head: &str) -> Option<usize> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse().ok())?
    })
}
