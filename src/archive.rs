//! The etcd journal's archive on S3 (`storage.etcd.archive`): the history
//! the leader moves out of etcd (`journal::archive` says what and how),
//! one JSON object per run and per move, under the configured prefix.
//!
//! The journal is synchronous, so the client runs on a runtime thread of
//! its own (`ha::side`), each call bounded. `PutObject` answers once the
//! object is stored durably; a key the bucket does not hold reads as
//! `NoSuchKey`, which is "not archived"; listings page through
//! `ListObjectsV2` (1,000 keys a page, its maximum).

use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use aws_smithy_types::error::display::DisplayErrorContext;

use crate::aws::{AwsClients, Credentials};
use crate::config::{ArchiveSettings, AwsSettings};
use crate::ha::side::Side;
use crate::journal::archive::Archive;

/// Bound of one archive request.
const TIMEOUT: Duration = Duration::from_secs(30);

/// An S3 bucket and prefix holding the journal's history.
#[derive(Debug)]
pub struct S3Archive {
    side: Side,
    client: aws_sdk_s3::Client,
    bucket: String,
    prefix: String,
}

impl S3Archive {
    /// The archive `settings` name, through the credentials and endpoint
    /// of `aws` (the emulator's keys where `credentials` says so).
    pub fn open(
        settings: &ArchiveSettings,
        aws: &AwsSettings,
        credentials: Credentials,
    ) -> Result<S3Archive, String> {
        let side = Side::start("lifeboat-archive")
            .map_err(|e| format!("cannot start the archive's runtime: {e}"))?;
        let (aws, region) = (aws.clone(), settings.region.clone());
        let client = side
            .block(
                async move { AwsClients::load(&aws, credentials).await.s3(&region) },
                TIMEOUT,
            )
            .map_err(|e| format!("cannot load the AWS configuration: {e:?}"))?;
        Ok(S3Archive {
            side,
            client,
            bucket: settings.bucket.clone(),
            prefix: settings.prefix.clone(),
        })
    }

    fn wait<T: Send + 'static>(
        &self,
        request: impl Future<Output = Result<T, String>> + Send + 'static,
    ) -> Result<T, String> {
        match self.side.block(request, TIMEOUT) {
            Ok(answer) => answer,
            Err(e) => Err(format!("no answer within {TIMEOUT:?} ({e:?})")),
        }
    }
}

impl Archive for S3Archive {
    fn put(&self, key: &str, body: Vec<u8>) -> Result<(), String> {
        let request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(format!("{}{key}", self.prefix))
            .content_type("application/json")
            .body(ByteStream::from(body));
        self.wait(async move {
            request
                .send()
                .await
                .map(|_| ())
                .map_err(|e| format!("PutObject: {}", DisplayErrorContext(&e)))
        })
    }

    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        let request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(format!("{}{key}", self.prefix));
        self.wait(async move {
            match request.send().await {
                Ok(object) => object
                    .body
                    .collect()
                    .await
                    .map(|b| Some(b.into_bytes().to_vec()))
                    .map_err(|e| format!("reading the object: {e}")),
                Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => Ok(None),
                Err(e) => Err(format!("GetObject: {}", DisplayErrorContext(&e))),
            }
        })
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>, String> {
        let (client, bucket, root) = (
            self.client.clone(),
            self.bucket.clone(),
            self.prefix.clone(),
        );
        let under = format!("{root}{prefix}");
        self.wait(async move {
            let mut keys = Vec::new();
            let mut pages = client
                .list_objects_v2()
                .bucket(bucket)
                .prefix(under)
                .max_keys(1000)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page =
                    page.map_err(|e| format!("ListObjectsV2: {}", DisplayErrorContext(&e)))?;
                keys.extend(
                    page.contents()
                        .iter()
                        .filter_map(|o| o.key()?.strip_prefix(&root).map(str::to_string)),
                );
            }
            keys.sort();
            Ok(keys)
        })
    }

    fn label(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }
}

/// The etcd journal on `etcd` as `settings` describe it: with its archive,
/// when one is configured (reached through `aws`'s endpoint with
/// `credentials`).
pub fn store(
    etcd: std::sync::Arc<crate::ha::etcd::Etcd>,
    settings: &crate::config::EtcdSettings,
    aws: &AwsSettings,
    credentials: Credentials,
) -> Result<crate::journal::etcd::Store, crate::journal::JournalError> {
    let store = crate::journal::etcd::Store::new(etcd);
    let Some(archive) = &settings.archive else {
        return Ok(store);
    };
    let opened = S3Archive::open(archive, aws, credentials).map_err(|message| {
        crate::journal::JournalError::Archive {
            archive: format!("s3://{}/{}", archive.bucket, archive.prefix),
            message,
        }
    })?;
    Ok(store.with_archive(std::sync::Arc::new(opened)))
}
