//! A simulation proxy between lifeboat and the emulator, on 127.0.0.1:
//! per AWS operation it adds latency, injects faults at a rate (HTTP 500,
//! 503, throttling in the service's own error format, connection resets)
//! and holds resources in an in-between state after a mutating call (a
//! promoted replica reads `modifying` until a set time has passed), so
//! waits wait and retries retry. Every decision derives from a seed and
//! the operation's own call count, so a run is reproducible; every
//! injection is logged for the test to assert on. Not a test module.

use std::collections::BTreeMap;
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
    pub latency: BTreeMap<String, Duration>,
    /// After a call of the operation (key), describe answers show the
    /// resource it names with this status for this long.
    pub transitions: BTreeMap<String, (String, Duration)>,
}

/// One thing the proxy did to a call.
#[derive(Debug, Clone, PartialEq)]
pub struct Injection {
    /// The operation.
    pub operation: String,
    /// What was done: a fault's name, `latency`, `transition <status>`.
    pub what: String,
}

#[derive(Debug, Default)]
struct State {
    counts: BTreeMap<String, u64>,
    /// Resource id -> (status shown, until).
    held: BTreeMap<String, (String, Instant)>,
    log: Vec<Injection>,
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
    /// Start a proxy to `upstream` (`http://127.0.0.1:PORT`).
    pub async fn start(upstream: &str, rules: Rules) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let endpoint = format!("http://{}", listener.local_addr().expect("address"));
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let state = Arc::new(Mutex::new(State::default()));
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
        Proxy {
            endpoint,
            state,
            task,
        }
    }

    /// Everything injected so far.
    pub fn injections(&self) -> Vec<Injection> {
        self.state.lock().expect("state").log.clone()
    }
}

/// Read one HTTP/1.1 request (head and Content-Length body) or `None` at EOF.
async fn read_request(stream: &mut TcpStream) -> std::io::Result<Option<(String, Vec<u8>)>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Ok(Some((head, body)))
}

/// Read one response: head, then its Content-Length body (chunked bodies
/// de-chunked; without either, until the server closes). Never waits for
/// a close the server may not make.
async fn read_response(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(buf);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let header = |name: &str| {
        head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == name).then(|| v.trim().to_string())
        })
    };
    let mut body = buf[head_end..].to_vec();
    if let Some(length) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        while body.len() < length {
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
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

/// The AWS operation a request is: `Action=` of query protocols, or
/// Route 53's and S3's method and path.
fn operation(head: &str, body: &[u8]) -> String {
    let body = String::from_utf8_lossy(body);
    if let Some(action) = body.split('&').find_map(|kv| kv.strip_prefix("Action=")) {
        return action.to_string();
    }
    let line = head.lines().next().unwrap_or_default();
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = path.split('?').next().unwrap_or(path);
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

/// The resource a mutating query-protocol call names.
fn resource_of(body: &[u8]) -> Option<String> {
    let body = String::from_utf8_lossy(body);
    body.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        matches!(k, "DBInstanceIdentifier" | "InstanceId.1").then(|| v.to_string())
    })
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

/// Show held resources in their in-between status.
fn hold(body: &str, held: &BTreeMap<String, (String, Instant)>) -> String {
    let now = Instant::now();
    let mut out = body.to_string();
    for (id, (status, until)) in held {
        if *until <= now {
            continue;
        }
        for (open, close, id_tag, status_tag) in [
            (
                "<DBInstance>",
                "</DBInstance>",
                "DBInstanceIdentifier",
                "DBInstanceStatus",
            ),
            ("<item>", "</item>", "instanceId", "name"),
        ] {
            let mut rebuilt = String::new();
            let mut rest = out.as_str();
            while let Some(start) = rest.find(open) {
                let Some(end) = rest[start..].find(close).map(|e| start + e + close.len()) else {
                    break;
                };
                let mut block = rest[start..end].to_string();
                if block.contains(&format!("<{id_tag}>{id}</{id_tag}>")) {
                    let (a, b) = (format!("<{status_tag}>"), format!("</{status_tag}>"));
                    if let Some(s) = block.find(&a)
                        && let Some(e) = block[s..].find(&b)
                    {
                        block.replace_range(s + a.len()..s + e, status);
                    }
                }
                rebuilt.push_str(&rest[..start]);
                rebuilt.push_str(&block);
                rest = &rest[end..];
            }
            rebuilt.push_str(rest);
            out = rebuilt;
        }
    }
    out
}

async fn serve(
    mut client: TcpStream,
    upstream: &str,
    rules: &Rules,
    state: &Mutex<State>,
) -> std::io::Result<()> {
    // One request per connection: every answer says `Connection: close`.
    if let Some((head, body)) = read_request(&mut client).await? {
        let op = operation(&head, &body);
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
        let latency = rules
            .latency
            .get(&op)
            .or_else(|| rules.latency.get("*"))
            .copied();
        if let Some(d) = latency {
            tokio::time::sleep(d).await;
        }
        if rate > 0.0 && !rules.faults.is_empty() && chance(rules.seed, &op, n) < rate {
            let fault = rules.faults[(n as usize) % rules.faults.len()];
            state.lock().expect("state").log.push(Injection {
                operation: op.clone(),
                what: format!("{fault:?}"),
            });
            if let Fault::Stall(delay) = fault {
                // Hold the connection, then answer 503: by then the client
                // has given up on this attempt.
                tokio::time::sleep(delay).await;
                if let Some(response) = fault_response(Fault::Unavailable, &op, s3) {
                    let _ = client.write_all(response.as_bytes()).await;
                }
                return Ok(());
            }
            match fault_response(fault, &op, s3) {
                Some(response) => {
                    client.write_all(response.as_bytes()).await?;
                }
                None => {
                    // A reset: drop the connection unanswered.
                    return Ok(());
                }
            }
            return Ok(());
        }
        // Forward, one upstream connection per request.
        let mut up = TcpStream::connect(upstream).await?;
        let head = head
            .lines()
            .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
            .take_while(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("\r\n");
        up.write_all(format!("{head}\r\nConnection: close\r\n\r\n").as_bytes())
            .await?;
        up.write_all(&body).await?;
        let response = read_response(&mut up).await?;
        if let Some((status, hold_for)) = rules.transitions.get(&op)
            && let Some(id) = resource_of(&body)
        {
            let mut st = state.lock().expect("state");
            st.held
                .insert(id, (status.clone(), Instant::now() + *hold_for));
            st.log.push(Injection {
                operation: op.clone(),
                what: format!("transition {status}"),
            });
        }
        let held = state.lock().expect("state").held.clone();
        let split = response
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map_or(response.len(), |i| i + 4);
        let mut body = response[split..].to_vec();
        if !held.is_empty() && op.starts_with("Describe") {
            body = hold(&String::from_utf8_lossy(&body), &held).into_bytes();
        }
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
        // The upstream answer said `Connection: close`: so does this one.
        return Ok(());
    }
    Ok(())
}
