//! Blobs in S3-compatible object storage (`object_store`), for deployments that outgrow one
//! machine's disk. A PUT replaces an object whole, so a crash leaves the old blob or the new.
//! Timeouts and retries are short: a store that is down makes an upload fail in seconds
//! (a render job retries later), not after the library's default three minutes.

use std::sync::Arc;
use std::time::Duration;

use object_store::aws::AmazonS3Builder;
use object_store::path::Path;
use object_store::{BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, RetryConfig};

use crate::store::{BlobKey, BlobStore, StoreError, StoreFuture};

/// Where the bucket is and how to sign in to it. Its `Debug` leaves the secret out.
#[derive(Clone)]
pub struct S3Settings {
    /// `https://s3.eu-west-1.amazonaws.com`, or a compatible server's address.
    pub endpoint: String,
    pub bucket: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl std::fmt::Debug for S3Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Settings")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"…")
            .finish()
    }
}

#[derive(Debug, Clone)]
pub struct S3Blobs {
    inner: Arc<dyn ObjectStore>,
}

impl S3Blobs {
    pub fn new(s: &S3Settings) -> Result<Self, StoreError> {
        let client = ClientOptions::new()
            .with_connect_timeout(Duration::from_secs(2))
            .with_timeout(Duration::from_secs(20));
        let store = AmazonS3Builder::new()
            // Client options first: setting them replaces any set before (allow_http included).
            .with_client_options(client)
            .with_endpoint(&s.endpoint)
            .with_allow_http(s.endpoint.starts_with("http://"))
            .with_bucket_name(&s.bucket)
            .with_region(&s.region)
            .with_access_key_id(&s.access_key_id)
            .with_secret_access_key(&s.secret_access_key)
            .with_virtual_hosted_style_request(false)
            .with_retry(RetryConfig {
                max_retries: 2,
                retry_timeout: Duration::from_secs(5),
                backoff: BackoffConfig {
                    init_backoff: Duration::from_millis(100),
                    max_backoff: Duration::from_secs(1),
                    base: 2.0,
                },
            })
            .build()
            .map_err(|e| StoreError::Unavailable(kind(&e)))?;
        Ok(Self {
            inner: Arc::new(store),
        })
    }
}

/// What went wrong, without the request's details (paths carry no PHI, but keep logs plain).
fn kind(e: &object_store::Error) -> String {
    match e {
        object_store::Error::NotFound { .. } => "not found".into(),
        object_store::Error::Generic { store, .. } => format!("{store} request failed"),
        _ => "object store error".into(),
    }
}

fn path(key: &BlobKey) -> Path {
    Path::from(key.as_str())
}

impl BlobStore for S3Blobs {
    fn put<'a>(&'a self, key: &'a BlobKey, bytes: Vec<u8>) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.inner
                .put(&path(key), bytes.into())
                .await
                .map(|_| ())
                .map_err(|e| StoreError::Unavailable(kind(&e)))
        })
    }

    fn get<'a>(&'a self, key: &'a BlobKey) -> StoreFuture<'a, Vec<u8>> {
        Box::pin(async move {
            let found = match self.inner.get(&path(key)).await {
                Ok(r) => r,
                Err(object_store::Error::NotFound { .. }) => return Err(StoreError::NotFound),
                Err(e) => return Err(StoreError::Unavailable(kind(&e))),
            };
            found
                .bytes()
                .await
                .map(|b| b.to_vec())
                .map_err(|e| StoreError::Unavailable(kind(&e)))
        })
    }

    fn delete<'a>(&'a self, key: &'a BlobKey) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            match self.inner.delete(&path(key)).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(StoreError::Unavailable(kind(&e))),
            }
        })
    }
}
