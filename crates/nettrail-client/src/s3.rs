//! An S3 bucket, or one of an S3-compatible store, as an [`ObjectStore`], with the
//! credentials and region found the way the AWS CLI finds them: what the importer, the
//! flow agent's S3 destination and the server's `[store] lake` all read and write.

use std::sync::Arc;

use object_store::ObjectStore;

use crate::credentials::{resolve_profile, CredentialsError};

/// Why a bucket cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum BucketError {
    /// `BUCKET[/PREFIX]` names no bucket.
    #[error("s3://{0} names no bucket")]
    NoBucket(String),
    /// No credentials were found.
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    /// The client could not be built.
    #[error("cannot use the bucket {bucket}: {source}")]
    Client {
        /// The bucket.
        bucket: String,
        /// What the object store client said.
        source: object_store::Error,
    },
}

/// A bucket and the prefix in it.
#[derive(Debug, Clone)]
pub struct Bucket {
    /// The bucket.
    pub store: Arc<dyn ObjectStore>,
    /// Its name.
    pub name: String,
    /// The prefix, as given (without the `/` after the bucket).
    pub prefix: String,
}

/// The bucket of `BUCKET[/PREFIX]` (in S3, or in an S3-compatible store at
/// `endpoint_url`) with the credentials and region of the AWS environment or `profile`.
pub fn s3_bucket(
    bucket_and_prefix: &str,
    endpoint_url: Option<&str>,
    profile: Option<&str>,
) -> Result<Bucket, BucketError> {
    let (bucket, prefix) = bucket_and_prefix
        .split_once('/')
        .unwrap_or((bucket_and_prefix, ""));
    if bucket.is_empty() {
        return Err(BucketError::NoBucket(bucket_and_prefix.to_owned()));
    }
    let aws = resolve_profile(profile)?;
    let mut builder = object_store::aws::AmazonS3Builder::new()
        .with_bucket_name(bucket)
        .with_region(&aws.region)
        .with_access_key_id(&aws.credentials.access_key_id)
        .with_secret_access_key(&aws.credentials.secret_access_key);
    if let Some(token) = &aws.credentials.session_token {
        builder = builder.with_token(token);
    }
    if let Some(url) = endpoint_url {
        builder = builder
            .with_endpoint(url)
            .with_allow_http(url.starts_with("http://"));
    }
    let store = builder.build().map_err(|source| BucketError::Client {
        bucket: bucket.to_owned(),
        source,
    })?;
    Ok(Bucket {
        store: Arc::new(store),
        name: bucket.to_owned(),
        prefix: prefix.to_owned(),
    })
}
