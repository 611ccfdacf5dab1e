//! The one place AWS clients are built.
//!
//! Configuration comes from the standard chain (environment, shared config
//! and credentials files, profiles, SSO, instance and task roles), so
//! `AWS_PROFILE`, `AWS_ENDPOINT_URL` and friends work as users expect. The
//! config file's `aws.endpoint_url` overrides the endpoint of every service,
//! which is how the tests and the demo reach the local emulator; S3 then
//! uses path-style addressing, since an emulator has no per-bucket hosts.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::timeout::TimeoutConfig;
use aws_types::SdkConfig;
use aws_types::region::Region;

/// Region of the Route 53 control plane (a global service).
pub const ROUTE53_REGION: &str = "us-east-1";

pub use crate::config::AwsSettings;

/// How long one AWS request attempt may take before it is retried.
pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(60);

/// The application name every request carries in its user agent
/// (`app/lifeboat`), so CloudTrail tells lifeboat's calls from others'.
pub const APP_NAME: &str = "lifeboat";

/// HTTP attempts of one SDK call, the first included.
pub const SDK_MAX_ATTEMPTS: u32 = 3;

/// How the SDK retries one call, chosen with the engine's retries in mind.
/// The SDK absorbs what is brief (a throttle, a 5xx, a dropped
/// connection) within one engine attempt: at most [`SDK_MAX_ATTEMPTS`]
/// HTTP attempts, backing off from 1 s with jitter and never more than
/// 5 s at a time, so a failing call gives up within seconds. What lasts
/// longer is the engine's: the step's `retry` (attempts and backoff in the
/// runbook) tries the action again, observing first. Standard mode, not
/// adaptive: adaptive's client-side rate limit is one bucket per client,
/// and lifeboat's concurrency is bounded by the engine already.
pub fn retry_config() -> aws_config::retry::RetryConfig {
    aws_config::retry::RetryConfig::standard()
        .with_max_attempts(SDK_MAX_ATTEMPTS)
        .with_initial_backoff(Duration::from_secs(1))
        .with_max_backoff(Duration::from_secs(5))
}

/// Credentials accepted by the local emulator; never used against AWS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credentials {
    /// The standard credential chain.
    Chain,
    /// Fixed dummy keys for the local emulator (tests and the demo).
    Emulator,
}

/// Counts the AWS requests lifeboat sends, by `Service.Operation` (each
/// attempt of an SDK call counts once): what benchmarks report and what
/// tests use to prove an action made no mutating call.
#[derive(Default)]
pub struct ApiCalls {
    counts: Mutex<BTreeMap<String, u64>>,
    errors: Mutex<BTreeMap<(String, String), u64>>,
    /// Told each attempt's `Service.Operation` and duration in seconds.
    timed: std::sync::OnceLock<AttemptObserver>,
}

/// What is told each attempt's `Service.Operation` and its duration in
/// seconds (the metrics' request-duration histogram).
pub type AttemptObserver = Box<dyn Fn(&str, f64) + Send + Sync>;

impl std::fmt::Debug for ApiCalls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiCalls")
            .field("counts", &self.counts)
            .field("errors", &self.errors)
            .finish_non_exhaustive()
    }
}

impl ApiCalls {
    /// Tell `observer` every attempt's operation and duration from now on
    /// (once: a second observer is refused and returned).
    pub fn time_attempts(&self, observer: AttemptObserver) -> Result<(), AttemptObserver> {
        self.timed.set(observer)
    }

    /// Failed attempts so far, by `Service.Operation` and what came back
    /// (`HTTP 503`, or `no response` for timeouts and connection errors).
    pub fn errors(&self) -> BTreeMap<(String, String), u64> {
        self.errors.lock().map(|e| e.clone()).unwrap_or_default()
    }

    /// The counts so far.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.counts.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// Requests to operations whose name does not start with a read-only
    /// verb (`Describe`, `Get`, `List`).
    pub fn mutating(&self) -> BTreeMap<String, u64> {
        self.snapshot()
            .into_iter()
            .filter(|(name, _)| {
                let op = name.rsplit('.').next().unwrap_or(name);
                !["Describe", "Get", "List", "Head"]
                    .iter()
                    .any(|verb| op.starts_with(verb))
            })
            .collect()
    }
}

#[derive(Debug)]
struct CountCalls {
    calls: Arc<ApiCalls>,
    /// Told of the throttles that come back despite the pacing.
    pacing: Option<(Arc<crate::pacing::Pacer>, String)>,
}

/// When the attempt in progress was handed to the transport.
#[derive(Debug, Clone, Copy)]
struct SentAt(std::time::Instant);

impl aws_smithy_types::config_bag::Storable for SentAt {
    type Storer = aws_smithy_types::config_bag::StoreReplace<Self>;
}

impl aws_smithy_runtime_api::client::interceptors::Intercept for CountCalls {
    fn name(&self) -> &'static str {
        "lifeboat::CountCalls"
    }

    fn read_before_transmit(
        &self,
        _: &aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef<'_>,
        _: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
        cfg: &mut aws_smithy_types::config_bag::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        if let Some(meta) = cfg.load::<aws_smithy_runtime_api::client::orchestrator::Metadata>() {
            let key = format!("{}.{}", meta.service(), meta.name());
            crate::engine::calls::count(&key);
            if let Ok(mut counts) = self.calls.counts.lock() {
                *counts.entry(key).or_default() += 1;
            }
        }
        cfg.interceptor_state()
            .store_put(SentAt(std::time::Instant::now()));
        Ok(())
    }

    fn read_after_attempt(
        &self,
        context: &aws_smithy_runtime_api::client::interceptors::context::FinalizerInterceptorContextRef<'_>,
        _: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
        cfg: &mut aws_smithy_types::config_bag::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        if let (Some(observer), Some(sent), Some(meta)) = (
            self.calls.timed.get(),
            cfg.load::<SentAt>(),
            cfg.load::<aws_smithy_runtime_api::client::orchestrator::Metadata>(),
        ) {
            observer(
                &format!("{}.{}", meta.service(), meta.name()),
                sent.0.elapsed().as_secs_f64(),
            );
        }
        // An attempt that fails before it is sent is not timed from this one.
        cfg.interceptor_state().unset::<SentAt>();
        let code = match context.response() {
            Some(response) if response.status().as_u16() < 400 => return Ok(()),
            Some(response) => error_code(response),
            None => "no response".to_string(),
        };
        if let Some((pacer, scope)) = &self.pacing
            && crate::pacing::is_throttle(&code)
            && let Some((region, charges)) =
                context.request().and_then(crate::pacing::request_charges)
        {
            let now = tokio::time::Instant::now();
            for c in &charges {
                pacer.throttled(&crate::pacing::key(scope, &region, &c.bucket), now);
            }
        }
        if let Some(meta) = cfg.load::<aws_smithy_runtime_api::client::orchestrator::Metadata>() {
            let key = (format!("{}.{}", meta.service(), meta.name()), code);
            if let Ok(mut errors) = self.calls.errors.lock() {
                *errors.entry(key).or_default() += 1;
            }
        }
        Ok(())
    }
}

/// The AWS error code of a failed attempt's answer, in its protocol's
/// place: the `x-amzn-ErrorType` header (JSON protocols), `<Code>` in an
/// XML body (query, REST-XML), `__type` in a JSON body; else its HTTP
/// status (`HTTP 503`), for an answer that is no AWS error at all.
fn error_code(response: &aws_smithy_runtime_api::http::Response) -> String {
    if let Some(kind) = response.headers().get("x-amzn-errortype") {
        let kind = kind.split(':').next().unwrap_or(kind);
        return kind.rsplit('#').next().unwrap_or(kind).to_string();
    }
    let body = response
        .body()
        .bytes()
        .map(String::from_utf8_lossy)
        .unwrap_or_default();
    if let Some(start) = body.find("<Code>")
        && let Some(len) = body[start + 6..].find("</Code>")
    {
        return body[start + 6..start + 6 + len].trim().to_string();
    }
    if let Ok(serde_json::Value::Object(json)) = serde_json::from_str(&body)
        && let Some(kind) = json.get("__type").and_then(serde_json::Value::as_str)
    {
        return kind.rsplit('#').next().unwrap_or(kind).to_string();
    }
    format!("HTTP {}", response.status().as_u16())
}

/// Builds service clients for any region from one loaded configuration.
#[derive(Debug, Clone)]
pub struct AwsClients {
    base: Arc<Base>,
    calls: Arc<ApiCalls>,
    /// The client-side copies of AWS's request buckets (none when pacing
    /// is off), shared by every client built here, and the HTTP client
    /// they pace.
    pacer: Option<(
        Arc<crate::pacing::Pacer>,
        aws_smithy_runtime_api::client::http::SharedHttpClient,
    )>,
    /// Whose buckets: `caller`, or the account of an assumed role.
    scope: String,
}

/// The shared configuration: loaded at once, or when a client is first
/// asked for (a daemon that only probes HTTP and TCP never loads it).
#[derive(Debug)]
struct Base {
    /// What the load reads besides the environment and the shared files.
    settings: AwsSettings,
    credentials: Credentials,
    /// The configuration, paced when pacing is on, and whether S3 goes
    /// path-style.
    loaded: std::sync::OnceLock<(SdkConfig, bool)>,
}

/// Run `work` to its end on this thread. Only for the shared
/// configuration's load, which reads the environment and the shared config
/// files (with `std::fs`) and sends no request, so it does not wait on a
/// runtime's timers or sockets.
fn run_here<F: std::future::Future>(work: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = std::task::Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut context = std::task::Context::from_waker(&waker);
    let mut work = std::pin::pin!(work);
    loop {
        if let std::task::Poll::Ready(done) = work.as_mut().poll(&mut context) {
            return done;
        }
        std::thread::park();
    }
}

/// The HTTPS client the SDK would choose itself (hyper 1 with rustls on
/// aws-lc, the proxy from the environment, the SDK's sleep), built here so
/// that pacing can wrap it.
fn default_https_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    use aws_smithy_http_client::{Builder, ConnectorBuilder, proxy::ProxyConfig, tls};
    Builder::new().build_with_connector_fn(|settings, components| {
        let mut connector = ConnectorBuilder::default().tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::AwsLc,
        ));
        connector.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            connector.set_sleep_impl(components.sleep_impl());
        }
        connector.set_proxy_config(Some(ProxyConfig::from_env()));
        connector.build()
    })
}

/// Load the shared configuration from the standard chain and `settings`.
async fn shared_config(settings: &AwsSettings, credentials: Credentials) -> SdkConfig {
    // Every client gets its own region; a base region keeps the loader
    // from probing the instance metadata service for one.
    // One attempt may take this long before it is abandoned and retried;
    // LIFEBOAT_AWS_ATTEMPT_TIMEOUT (e.g. `20s`) overrides the default.
    let attempt = std::env::var("LIFEBOAT_AWS_ATTEMPT_TIMEOUT")
        .ok()
        .and_then(|t| t.parse::<crate::duration::HumanDuration>().ok())
        .map_or(DEFAULT_ATTEMPT_TIMEOUT, crate::duration::HumanDuration::get);
    // A dated behaviour version: an SDK update cannot change retry and
    // timeout defaults under us; moving it is a decision, made here.
    let mut loader = aws_config::defaults(BehaviorVersion::v2026_01_12())
        .region(Region::new(ROUTE53_REGION))
        .retry_config(retry_config())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_attempt_timeout(attempt)
                .build(),
        );
    if let Ok(name) = aws_config::AppName::new(APP_NAME) {
        loader = loader.app_name(name);
    }
    if let Some(profile) = &settings.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(url) = &settings.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    if credentials == Credentials::Emulator {
        loader = loader.credentials_provider(aws_credential_types::Credentials::from_keys(
            "test", "test", None,
        ));
    }
    loader.load().await
}

/// Pace `config`'s HTTP client through `pacer` as `scope`.
fn paced(
    config: SdkConfig,
    pacer: &(
        Arc<crate::pacing::Pacer>,
        aws_smithy_runtime_api::client::http::SharedHttpClient,
    ),
    scope: &str,
) -> SdkConfig {
    config
        .to_builder()
        .http_client(crate::pacing::PacedClient::new(
            pacer.1.clone(),
            Arc::clone(&pacer.0),
            scope,
        ))
        .build()
}

impl AwsClients {
    /// Load the shared configuration once (reads files and the environment).
    pub async fn load(settings: &AwsSettings, credentials: Credentials) -> AwsClients {
        let clients = AwsClients::deferred(settings, credentials);
        let loaded = clients.paced(shared_config(settings, credentials).await);
        let _ = clients.base.loaded.set(loaded);
        clients
    }

    /// Clients whose shared configuration is loaded when the first client
    /// is asked for, not before: what the daemon holds, so that nothing of
    /// the SDK runs until a probe, binding or job needs it.
    pub fn deferred(settings: &AwsSettings, credentials: Credentials) -> AwsClients {
        let scope = "caller".to_string();
        let pacer = crate::pacing::enabled(settings.pacing).then(|| {
            (
                Arc::new(crate::pacing::Pacer::default()),
                default_https_client(),
            )
        });
        AwsClients {
            base: Arc::new(Base {
                settings: settings.clone(),
                credentials,
                loaded: std::sync::OnceLock::new(),
            }),
            calls: Arc::new(ApiCalls::default()),
            pacer,
            scope,
        }
    }

    /// The shared configuration (paced when pacing is on), and whether S3
    /// is addressed path-style; loaded here on first use when deferred.
    fn shared(&self) -> &(SdkConfig, bool) {
        self.base.loaded.get_or_init(|| {
            let Base {
                settings,
                credentials,
                ..
            } = &*self.base;
            self.paced(run_here(shared_config(settings, *credentials)))
        })
    }

    /// `config` paced when pacing is on, and whether S3 goes path-style
    /// (an overridden endpoint: an emulator has no per-bucket hosts).
    fn paced(&self, config: SdkConfig) -> (SdkConfig, bool) {
        let path_style = config.endpoint_url().is_some();
        let config = match &self.pacer {
            Some(p) => paced(config, p, &self.scope),
            None => config,
        };
        (config, path_style)
    }

    /// Whether the shared configuration has been loaded (deferred clients'
    /// is not until a client is asked for).
    pub fn is_loaded(&self) -> bool {
        self.base.loaded.get().is_some()
    }

    fn base(&self) -> &SdkConfig {
        let (config, _) = self.shared();
        config
    }

    /// Clients acting as `role_arn` (assumed through STS with these
    /// clients' own credentials, endpoint and counter): the SDK's
    /// assume-role provider, whose credentials are cached and refreshed
    /// before they expire. Nothing is called until a client is used.
    pub async fn assuming(
        &self,
        role_arn: &str,
        external_id: Option<&str>,
        session_name: &str,
    ) -> AwsClients {
        let mut provider = aws_config::sts::AssumeRoleProvider::builder(role_arn)
            .session_name(session_name)
            .configure(self.base());
        if let Some(id) = external_id {
            provider = provider.external_id(id);
        }
        let provider = provider.build().await;
        let base = self
            .base()
            .to_builder()
            .credentials_provider(
                aws_credential_types::provider::SharedCredentialsProvider::new(provider),
            )
            .build();
        // AWS's buckets are the role's account's (the ARN's fifth field).
        let scope = role_arn.split(':').nth(4).unwrap_or(role_arn).to_string();
        let base = match &self.pacer {
            Some(p) => paced(base, p, &scope),
            None => base,
        };
        AwsClients {
            base: Arc::new(Base {
                settings: self.base.settings.clone(),
                credentials: self.base.credentials,
                loaded: std::sync::OnceLock::from((base, self.shared().1)),
            }),
            calls: Arc::clone(&self.calls),
            pacer: self.pacer.clone(),
            scope,
        }
    }

    /// The requests sent so far through these clients.
    pub fn calls(&self) -> &ApiCalls {
        &self.calls
    }

    /// The same counter, shared (for a reader that outlives this value).
    pub fn shared_calls(&self) -> Arc<ApiCalls> {
        Arc::clone(&self.calls)
    }

    fn counter(&self) -> CountCalls {
        CountCalls {
            calls: Arc::clone(&self.calls),
            pacing: self
                .pacer
                .as_ref()
                .map(|(p, _)| (Arc::clone(p), self.scope.clone())),
        }
    }

    /// What pacing has cost so far: requests held back, their total wait,
    /// and the throttles AWS answered all the same (none when off).
    pub fn pacing_cost(&self) -> Option<(u64, Duration, u64)> {
        self.pacer.as_ref().map(|(p, _)| p.cost())
    }

    /// The configured credentials provider (for signing outside a client:
    /// the pre-signed URLs of cross-region RDS copies).
    pub fn credentials_provider(
        &self,
    ) -> Option<aws_credential_types::provider::SharedCredentialsProvider> {
        self.base().credentials_provider()
    }

    /// The endpoint every call goes to, when overridden.
    pub fn endpoint_url(&self) -> Option<&str> {
        self.base().endpoint_url()
    }

    /// The shared configuration bound to `region`.
    pub fn config(&self, region: &str) -> SdkConfig {
        self.base()
            .to_builder()
            .region(Region::new(region.to_string()))
            .build()
    }

    /// An RDS client in `region`.
    pub fn rds(&self, region: &str) -> aws_sdk_rds::Client {
        let config = aws_sdk_rds::config::Builder::from(&self.config(region))
            .interceptor(self.counter())
            .build();
        aws_sdk_rds::Client::from_conf(config)
    }

    /// An EC2 client in `region`.
    pub fn ec2(&self, region: &str) -> aws_sdk_ec2::Client {
        let config = aws_sdk_ec2::config::Builder::from(&self.config(region))
            .interceptor(self.counter())
            .build();
        aws_sdk_ec2::Client::from_conf(config)
    }

    /// An Auto Scaling client in `region`.
    pub fn autoscaling(&self, region: &str) -> aws_sdk_autoscaling::Client {
        let config = aws_sdk_autoscaling::config::Builder::from(&self.config(region))
            .interceptor(self.counter())
            .build();
        aws_sdk_autoscaling::Client::from_conf(config)
    }

    /// A CloudWatch client in `region`.
    pub fn cloudwatch(&self, region: &str) -> aws_sdk_cloudwatch::Client {
        let config = aws_sdk_cloudwatch::config::Builder::from(&self.config(region))
            .interceptor(self.counter())
            .build();
        aws_sdk_cloudwatch::Client::from_conf(config)
    }

    /// An ECS client in `region`.
    pub fn ecs(&self, region: &str) -> aws_sdk_ecs::Client {
        let config = aws_sdk_ecs::config::Builder::from(&self.config(region))
            .interceptor(self.counter())
            .build();
        aws_sdk_ecs::Client::from_conf(config)
    }

    /// A Lambda client in `region` for invocations that may take up to
    /// `wait`: an attempt lasts that long, and is never retried by the
    /// SDK (an invocation retried blindly could run the function twice).
    pub fn lambda(&self, region: &str, wait: Duration) -> aws_sdk_lambda::Client {
        let config = aws_sdk_lambda::config::Builder::from(&self.config(region))
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(5))
                    .operation_attempt_timeout(wait)
                    .build(),
            )
            .interceptor(self.counter())
            .build();
        aws_sdk_lambda::Client::from_conf(config)
    }

    /// An ARC zonal shift client in `region`.
    pub fn arc_zonal_shift(&self, region: &str) -> aws_sdk_arczonalshift::Client {
        let config = aws_sdk_arczonalshift::config::Builder::from(&self.config(region))
            .interceptor(self.counter())
            .build();
        aws_sdk_arczonalshift::Client::from_conf(config)
    }

    /// The Route 53 client (its control plane is in us-east-1).
    pub fn route53(&self) -> aws_sdk_route53::Client {
        let config = aws_sdk_route53::config::Builder::from(&self.config(ROUTE53_REGION))
            .interceptor(self.counter())
            .build();
        aws_sdk_route53::Client::from_conf(config)
    }

    /// An S3 client in `region`; path-style when the endpoint is overridden.
    pub fn s3(&self, region: &str) -> aws_sdk_s3::Client {
        let config = aws_sdk_s3::config::Builder::from(&self.config(region))
            .force_path_style(self.shared().1)
            .interceptor(self.counter())
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }

    /// An STS client in `region` (assume-role, caller identity).
    pub fn sts(&self, region: &str) -> aws_sdk_sts::Client {
        let config = aws_sdk_sts::config::Builder::from(&self.config(region))
            .interceptor(self.counter())
            .build();
        aws_sdk_sts::Client::from_conf(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deferred clients read nothing until a client is asked for, then
    /// load once, inside a runtime as outside one, with what the settings
    /// say (here the endpoint, which also makes S3 path-style).
    #[tokio::test]
    async fn deferred_clients_load_on_first_use_and_once() {
        let settings = AwsSettings {
            endpoint_url: Some("http://127.0.0.1:9".into()),
            ..AwsSettings::default()
        };
        let clients = AwsClients::deferred(&settings, Credentials::Emulator);
        assert!(!clients.is_loaded());
        let copy = clients.clone();
        let ec2 = clients.ec2("eu-west-1");
        assert_eq!(ec2.config().region().map(|r| r.as_ref()), Some("eu-west-1"));
        let (loaded, path_style) = copy.base.loaded.get().expect("loaded for every copy");
        assert_eq!(loaded.endpoint_url(), Some("http://127.0.0.1:9"));
        assert!(*path_style);
        // Outside any runtime.
        let other = AwsClients::deferred(&settings, Credentials::Emulator);
        let again = std::thread::spawn(move || other.endpoint_url().map(str::to_string))
            .join()
            .expect("thread");
        assert_eq!(again.as_deref(), Some("http://127.0.0.1:9"));
    }
}
