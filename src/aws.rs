//! The one place AWS clients are built.
//!
//! Configuration comes from the standard chain (environment, shared config
//! and credentials files, profiles, SSO, instance and task roles), so
//! `AWS_PROFILE`, `AWS_ENDPOINT_URL` and friends work as users expect. The
//! config file's `aws.endpoint_url` overrides the endpoint of every service,
//! which is how the tests and the demo reach the local emulator; S3 then
//! uses path-style addressing, since an emulator has no per-bucket hosts.

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::timeout::TimeoutConfig;
use aws_types::SdkConfig;
use aws_types::region::Region;

/// Region of the Route 53 control plane (a global service).
pub const ROUTE53_REGION: &str = "us-east-1";

/// How lifeboat reaches AWS (derived from the config file and the CLI).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AwsSettings {
    /// Named profile.
    pub profile: Option<String>,
    /// Endpoint for every service (emulators, proxies).
    pub endpoint_url: Option<String>,
}

/// Credentials accepted by the local emulator; never used against AWS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credentials {
    /// The standard credential chain.
    Chain,
    /// Fixed dummy keys for the local emulator (tests and the demo).
    Emulator,
}

/// Builds service clients for any region from one loaded configuration.
#[derive(Debug, Clone)]
pub struct AwsClients {
    base: SdkConfig,
    path_style: bool,
}

impl AwsClients {
    /// Load the shared configuration once (reads files and the environment).
    pub async fn load(settings: &AwsSettings, credentials: Credentials) -> AwsClients {
        let mut loader = aws_config::defaults(BehaviorVersion::latest()).timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_attempt_timeout(Duration::from_secs(60))
                .build(),
        );
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
        let base = loader.load().await;
        let path_style = base.endpoint_url().is_some();
        AwsClients { base, path_style }
    }

    /// The endpoint every call goes to, when overridden.
    pub fn endpoint_url(&self) -> Option<&str> {
        self.base.endpoint_url()
    }

    /// The shared configuration bound to `region`.
    pub fn config(&self, region: &str) -> SdkConfig {
        self.base
            .to_builder()
            .region(Region::new(region.to_string()))
            .build()
    }

    /// An RDS client in `region`.
    pub fn rds(&self, region: &str) -> aws_sdk_rds::Client {
        aws_sdk_rds::Client::new(&self.config(region))
    }

    /// An EC2 client in `region`.
    pub fn ec2(&self, region: &str) -> aws_sdk_ec2::Client {
        aws_sdk_ec2::Client::new(&self.config(region))
    }

    /// An Auto Scaling client in `region`.
    pub fn autoscaling(&self, region: &str) -> aws_sdk_autoscaling::Client {
        aws_sdk_autoscaling::Client::new(&self.config(region))
    }

    /// A CloudWatch client in `region`.
    pub fn cloudwatch(&self, region: &str) -> aws_sdk_cloudwatch::Client {
        aws_sdk_cloudwatch::Client::new(&self.config(region))
    }

    /// The Route 53 client (its control plane is in us-east-1).
    pub fn route53(&self) -> aws_sdk_route53::Client {
        aws_sdk_route53::Client::new(&self.config(ROUTE53_REGION))
    }

    /// An S3 client in `region`; path-style when the endpoint is overridden.
    pub fn s3(&self, region: &str) -> aws_sdk_s3::Client {
        let config = aws_sdk_s3::config::Builder::from(&self.config(region))
            .force_path_style(self.path_style)
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }

    /// An STS client in `region` (assume-role, caller identity).
    pub fn sts(&self, region: &str) -> aws_sdk_sts::Client {
        aws_sdk_sts::Client::new(&self.config(region))
    }
}
