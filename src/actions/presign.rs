//! Pre-signed URLs for cross-region RDS calls on encrypted resources.
//!
//! Copying an encrypted snapshot (or creating an encrypted replica) from
//! another region needs a `PreSignedUrl`: the same request, signed for the
//! source region, which RDS in the destination region replays to the
//! source. Other SDKs build it from a `SourceRegion` parameter; the Rust
//! SDK leaves it to the caller, so it is built here with SigV4 query
//! signing.

use std::time::{Duration, SystemTime};

use aws_credential_types::provider::ProvideCredentials;
use aws_sigv4::http_request::{
    SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
};
use aws_sigv4::sign::v4;

use crate::aws::AwsClients;
use crate::catalogue::rds::CopySnapshot;
use crate::engine::ActionError;

/// How long the destination region may take to use the URL.
const VALID_FOR: Duration = Duration::from_secs(3600);

/// The pre-signed `CopyDBSnapshot` request for copying `source_arn` from
/// `source_region` into `destination_region`.
pub(super) async fn copy_db_snapshot(
    aws: &AwsClients,
    source_region: &str,
    destination_region: &str,
    source_arn: &str,
    w: &CopySnapshot,
) -> Result<String, ActionError> {
    let mut params = vec![
        ("Action", "CopyDBSnapshot"),
        ("Version", "2014-10-31"),
        ("SourceDBSnapshotIdentifier", source_arn),
        ("DestinationRegion", destination_region),
    ];
    if let Some(key) = &w.kms_key_id {
        params.push(("KmsKeyId", key));
    }
    presigned_url(aws, source_region, &params, SystemTime::now()).await
}

/// A GET of the RDS query API in `region` with `params`, signed in the query.
async fn presigned_url(
    aws: &AwsClients,
    region: &str,
    params: &[(&str, &str)],
    at: SystemTime,
) -> Result<String, ActionError> {
    let provider = aws.credentials_provider().ok_or_else(|| {
        ActionError::permanent("no AWS credentials to sign the cross-region request with")
    })?;
    let credentials = provider.provide_credentials().await.map_err(|e| {
        ActionError::retryable(format!("loading credentials to pre-sign a request: {e}"))
    })?;
    let identity = credentials.into();
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(VALID_FOR);
    let signing = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("rds")
        .time(at)
        .settings(settings)
        .build()
        .map_err(|e| ActionError::permanent(format!("pre-signing: {e}")))?
        .into();
    let query = params
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let url = format!("https://rds.{region}.amazonaws.com/?{query}");
    let request = SignableRequest::new("GET", &url, std::iter::empty(), SignableBody::Bytes(&[]))
        .map_err(|e| ActionError::permanent(format!("pre-signing: {e}")))?;
    let (instructions, _) = sign(request, &signing)
        .map_err(|e| ActionError::permanent(format!("pre-signing: {e}")))?
        .into_parts();
    let signature: String = instructions
        .params()
        .iter()
        .map(|(k, v)| format!("&{}={}", encode(k), encode(v)))
        .collect();
    Ok(url + &signature)
}

/// RFC 3986 percent-encoding of everything but the unreserved characters,
/// as SigV4 canonical queries require.
fn encode(text: &str) -> String {
    text.bytes()
        .fold(String::with_capacity(text.len()), |mut out, b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                out.push(char::from(b));
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
            out
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::{AwsSettings, Credentials};

    #[test]
    fn encoding_keeps_only_unreserved_characters() {
        assert_eq!(
            encode("arn:aws:rds:us-east-1:1:snapshot:a b/c~d"),
            "arn%3Aaws%3Ards%3Aus-east-1%3A1%3Asnapshot%3Aa%20b%2Fc~d"
        );
    }

    #[tokio::test]
    async fn the_url_is_signed_for_the_source_region_and_carries_the_request() {
        let aws = AwsClients::load(&AwsSettings::default(), Credentials::Emulator).await;
        let url = presigned_url(
            &aws,
            "us-east-1",
            &[
                ("Action", "CopyDBSnapshot"),
                (
                    "SourceDBSnapshotIdentifier",
                    "arn:aws:rds:us-east-1:1:snapshot:s",
                ),
            ],
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
        )
        .await
        .unwrap();
        assert!(url.starts_with("https://rds.us-east-1.amazonaws.com/?Action=CopyDBSnapshot&SourceDBSnapshotIdentifier=arn%3Aaws%3Ards%3Aus-east-1%3A1%3Asnapshot%3As&"), "{url}");
        assert!(url.contains("X-Amz-Algorithm=AWS4-HMAC-SHA256"), "{url}");
        assert!(
            url.contains("X-Amz-Credential=test%2F20270115%2Fus-east-1%2Frds%2Faws4_request"),
            "{url}"
        );
        assert!(url.contains("X-Amz-Expires=3600"), "{url}");
        let signature = url.split("X-Amz-Signature=").nth(1).unwrap();
        assert_eq!(signature.len(), 64, "{url}");
    }
}
