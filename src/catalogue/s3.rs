//! `with` blocks of the S3 actions.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::duration::HumanDuration;

/// `s3.check_replication`: replication is configured on the bucket and
/// sampled objects under the prefix report `COMPLETED`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckReplication {
    /// Source bucket.
    pub bucket: String,
    /// Key prefix to sample.
    #[serde(default)]
    pub prefix: String,
    /// How many of the newest objects to sample.
    #[serde(default = "ten")]
    pub sample: u32,
}

/// `s3.newest_object_age`: the newest object under a prefix is younger than `max_age`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewestObjectAge {
    /// Bucket.
    pub bucket: String,
    /// Key prefix.
    #[serde(default)]
    pub prefix: String,
    /// Oldest acceptable age of the newest object.
    pub max_age: HumanDuration,
}

/// `s3.copy_objects`: copy objects under a prefix between buckets.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CopyObjects {
    /// Source bucket.
    pub source_bucket: String,
    /// Destination bucket.
    pub dest_bucket: String,
    /// Key prefix to copy.
    #[serde(default)]
    pub prefix: String,
    /// Overwrite objects that already exist with different content.
    #[serde(default)]
    pub overwrite: bool,
}

/// `s3.verify_checksum`: read an object back and verify its checksum.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyChecksum {
    /// Bucket.
    pub bucket: String,
    /// Object key.
    pub key: String,
    /// Expected SHA-256 (hex); default: the checksum stored with the object.
    pub sha256: Option<String>,
}

fn ten() -> u32 {
    10
}
