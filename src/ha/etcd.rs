//! A connection to an etcd cluster, usable from blocking code.
//!
//! The journal's methods are synchronous (SQLite's are), and they are called
//! from inside the daemon's async tasks. The etcd client is async and binds
//! its connections to the runtime that created them, so it lives on a small
//! runtime of its own, on its own thread: a blocking call hands the request
//! to that runtime and waits for its answer, bounded by the request
//! timeout; async callers await the same requests without blocking.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use etcd_client::{Certificate, Client, ConnectOptions, Identity, TlsOptions};

use crate::config::EtcdSettings;

/// Interval of HTTP/2 pings on the connection.
const KEEP_ALIVE: Duration = Duration::from_secs(10);

/// Why etcd could not be used.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EtcdError {
    /// The request failed (the cluster answered with an error, or the
    /// connection broke).
    #[error("etcd ({endpoints}): {message}")]
    Request {
        /// The endpoints asked.
        endpoints: String,
        /// Why.
        message: String,
    },
    /// No answer within the request timeout.
    #[error("etcd ({endpoints}): no answer within {timeout:?}")]
    Timeout {
        /// The endpoints asked.
        endpoints: String,
        /// The bound.
        timeout: Duration,
    },
    /// An answer larger than gRPC's message limit (a page of a read with
    /// too many large values).
    #[error("etcd ({endpoints}): the answer is over gRPC's message limit: {message}")]
    TooLarge {
        /// The endpoints asked.
        endpoints: String,
        /// The limit's message.
        message: String,
    },
    /// A TLS file could not be read.
    #[error("etcd TLS: cannot read {path}: {message}")]
    Tls {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
}

impl EtcdError {
    /// Whether the answer was refused as over gRPC's message limit.
    pub fn too_large(&self) -> bool {
        matches!(self, EtcdError::TooLarge { .. })
    }
}

/// A connection to the cluster, with its own runtime thread.
pub struct Etcd {
    client: Client,
    side: super::side::Side,
    endpoints: String,
    count: usize,
    timeout: Duration,
    prefix: String,
    counts: Arc<Counts>,
}

/// What happened to this member's leases and fenced writes, counted for
/// the metrics.
#[derive(Debug, Default)]
pub struct Counts {
    /// Lease keep-alives the cluster answered.
    pub renewed: std::sync::atomic::AtomicU64,
    /// Lease keep-alives that failed (no answer in time, or an error).
    pub renew_failed: std::sync::atomic::AtomicU64,
    /// Writes refused because this daemon no longer held the leadership
    /// they were fenced by.
    pub fenced: std::sync::atomic::AtomicU64,
}

impl Counts {
    /// Count one more of `counter`.
    pub fn add(counter: &std::sync::atomic::AtomicU64) {
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

impl std::fmt::Debug for Etcd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Etcd")
            .field("endpoints", &self.endpoints)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl Etcd {
    /// Connect to the cluster `settings` names. Blocks until connected (or
    /// until the request timeout passes).
    pub fn connect(settings: &EtcdSettings) -> Result<Etcd, EtcdError> {
        let endpoints = settings.endpoints.join(",");
        let side = super::side::Side::start("lifeboat-etcd").map_err(|e| EtcdError::Request {
            endpoints: endpoints.clone(),
            message: format!("cannot start the client's runtime: {e}"),
        })?;
        // Every request is bounded by the caller (`block`, `call`), not by
        // the client: a campaign waits its turn for as long as it takes.
        // HTTP/2 pings find a dead connection under a long campaign; etcd
        // closes connections that ping more often than every 5 s (its
        // `--grpc-keepalive-min-time`), which broke campaigns, so every 10.
        let mut options = ConnectOptions::new()
            .with_connect_timeout(settings.request_timeout)
            .with_keep_alive(KEEP_ALIVE, settings.request_timeout);
        let https = settings.endpoints.iter().any(|e| e.starts_with("https://"));
        match &settings.tls {
            Some(tls) => options = options.with_tls(tls_options(tls)?),
            // https:// without a `tls` section: the system's CA roots.
            None if https => options = options.with_tls(TlsOptions::new().with_native_roots()),
            None => {}
        }
        let list = settings.endpoints.clone();
        let timeout = settings.request_timeout;
        let client = wait_for(
            &side,
            async move { Client::connect(list, Some(options)).await },
            timeout,
            &endpoints,
        )?;
        Ok(Etcd {
            counts: Arc::default(),
            client,
            side,
            count: settings.endpoints.len(),
            endpoints,
            timeout,
            prefix: settings.prefix.trim_end_matches('/').to_string(),
        })
    }

    /// This member's lease and fencing counts.
    pub fn counts(&self) -> Arc<Counts> {
        Arc::clone(&self.counts)
    }

    /// The key prefix everything lives under, without a trailing slash.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `prefix/rest`.
    pub fn key(&self, rest: &str) -> String {
        format!("{}/{rest}", self.prefix)
    }

    /// The endpoints, comma-separated (for messages).
    pub fn endpoints(&self) -> &str {
        &self.endpoints
    }

    /// How many endpoints it was given.
    pub fn endpoint_count(&self) -> usize {
        self.count
    }

    /// The request timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// A client for one request (clones share the connection).
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// Run `request` on the connection's runtime and wait for it: for
    /// synchronous callers (the journal).
    pub fn block<T, F>(&self, request: F) -> Result<T, EtcdError>
    where
        F: Future<Output = Result<T, etcd_client::Error>> + Send + 'static,
        T: Send + 'static,
    {
        wait_for(&self.side, request, self.timeout, &self.endpoints)
    }

    /// Run `request` on the connection's runtime and await it, bounded by
    /// `timeout` (none: unbounded, for a campaign that waits its turn).
    pub async fn call<T, F>(&self, request: F, timeout: Option<Duration>) -> Result<T, EtcdError>
    where
        F: Future<Output = Result<T, etcd_client::Error>> + Send + 'static,
        T: Send + 'static,
    {
        let joined = self.side.handle().spawn(request);
        let abort = joined.abort_handle();
        let answer = match timeout {
            Some(t) => match tokio::time::timeout(t, joined).await {
                Ok(a) => a,
                Err(_) => {
                    abort.abort();
                    return Err(EtcdError::Timeout {
                        endpoints: self.endpoints.clone(),
                        timeout: t,
                    });
                }
            },
            None => joined.await,
        };
        self.answer(answer)
    }

    fn answer<T>(
        &self,
        answer: Result<Result<T, etcd_client::Error>, tokio::task::JoinError>,
    ) -> Result<T, EtcdError> {
        flatten(answer, &self.endpoints)
    }
}

fn flatten<T>(
    answer: Result<Result<T, etcd_client::Error>, tokio::task::JoinError>,
    endpoints: &str,
) -> Result<T, EtcdError> {
    match answer {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) if e.to_string().contains("message length too large") => {
            Err(EtcdError::TooLarge {
                endpoints: endpoints.to_string(),
                message: e.to_string(),
            })
        }
        Ok(Err(e)) => Err(EtcdError::Request {
            endpoints: endpoints.to_string(),
            message: e.to_string(),
        }),
        Err(e) => Err(EtcdError::Request {
            endpoints: endpoints.to_string(),
            message: format!("the request's task ended: {e}"),
        }),
    }
}

/// Run `request` on the connection's runtime and wait for it, blocking
/// this thread (unanswered in time: a write may still have landed; the
/// journal treats it as unknown and stops the run).
fn wait_for<T, F>(
    side: &super::side::Side,
    request: F,
    timeout: Duration,
    endpoints: &str,
) -> Result<T, EtcdError>
where
    F: Future<Output = Result<T, etcd_client::Error>> + Send + 'static,
    T: Send + 'static,
{
    match side.block(request, timeout) {
        Ok(answer) => flatten(Ok(answer), endpoints),
        Err(super::side::Unanswered::Timeout) => Err(EtcdError::Timeout {
            endpoints: endpoints.to_string(),
            timeout,
        }),
        Err(super::side::Unanswered::Stopped) => Err(EtcdError::Request {
            endpoints: endpoints.to_string(),
            message: "the client's runtime stopped".into(),
        }),
    }
}

fn tls_options(tls: &crate::config::EtcdTls) -> Result<TlsOptions, EtcdError> {
    let read = |path: &std::path::Path| {
        crate::input::read_bytes(path).map_err(|e| EtcdError::Tls {
            path: path.display().to_string(),
            message: e.to_string(),
        })
    };
    // A private CA when named, the system's roots otherwise.
    let mut options = match &tls.ca_file {
        Some(ca) => TlsOptions::new().ca_certificate(Certificate::from_pem(read(ca)?)),
        None => TlsOptions::new().with_native_roots(),
    };
    if let (Some(cert), Some(key)) = (&tls.cert_file, &tls.key_file) {
        options = options.identity(Identity::from_pem(read(cert)?, read(key)?));
    }
    if let Some(name) = &tls.server_name {
        options = options.domain_name(name.clone());
    }
    Ok(options)
}
