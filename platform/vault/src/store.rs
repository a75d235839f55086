//! Where sealed blobs live: one trait, so the local directory (the default) and an
//! S3-compatible object store are interchangeable. A store sees only sealed bytes.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;

use aes_gcm::aead::OsRng;
use aes_gcm::aead::rand_core::RngCore;
use tokio::io::AsyncWriteExt;

pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no blob is stored under that name")]
    NotFound,
    /// The store could not be reached or refused the operation; the caller decides whether
    /// to retry (a render does) or to tell the person (an upload does).
    #[error("the document store is unavailable: {0}")]
    Unavailable(String),
}

/// A blob's name: slash-separated segments of `[a-z0-9_-]`, so it is safe as a file path
/// and an object key alike (no `..`, no absolute path, nothing a person typed).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BlobKey(String);

impl BlobKey {
    pub fn new(name: &str) -> Option<Self> {
        let ok = !name.is_empty()
            && name.len() <= 200
            && name.split('/').all(|seg| {
                !seg.is_empty()
                    && seg.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_'
                    })
            });
        ok.then(|| Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A place for sealed blobs. `put` replaces whole or not at all; `delete` of a missing blob
/// succeeds (a retried clean-up must not fail).
pub trait BlobStore: Send + Sync + std::fmt::Debug {
    fn put<'a>(&'a self, key: &'a BlobKey, bytes: Vec<u8>) -> StoreFuture<'a, ()>;
    fn get<'a>(&'a self, key: &'a BlobKey) -> StoreFuture<'a, Vec<u8>>;
    fn delete<'a>(&'a self, key: &'a BlobKey) -> StoreFuture<'a, ()>;
}

/// Blobs as files under one directory (`PORTAL_BLOB_DIR`). A blob is written to a temporary
/// file, flushed to disk, then renamed into place: a crash leaves the old blob or the new
/// one, never half of one.
#[derive(Debug, Clone)]
pub struct LocalDir {
    root: PathBuf,
}

impl LocalDir {
    /// Creates the directory if needed.
    pub async fn open(root: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let root = root.into();
        tokio::fs::create_dir_all(root.join(".incoming"))
            .await
            .map_err(unavailable)?;
        Ok(Self { root })
    }

    fn path(&self, key: &BlobKey) -> PathBuf {
        self.root.join(key.as_str())
    }
}

fn unavailable(e: std::io::Error) -> StoreError {
    StoreError::Unavailable(e.kind().to_string())
}

async fn write_whole(tmp: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(tmp)
        .await?;
    f.write_all(bytes).await?;
    f.sync_all().await
}

impl BlobStore for LocalDir {
    fn put<'a>(&'a self, key: &'a BlobKey, bytes: Vec<u8>) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let target = self.path(key);
            if let Some(dir) = target.parent() {
                tokio::fs::create_dir_all(dir).await.map_err(unavailable)?;
            }
            // A random name, created only if new: writers in other processes or containers
            // sharing the directory never truncate each other's file.
            let tmp = self.root.join(".incoming").join(format!(
                "{}-{:016x}",
                key.as_str().replace('/', "_"),
                OsRng.next_u64()
            ));
            let placed = match write_whole(&tmp, &bytes).await {
                Ok(()) => tokio::fs::rename(&tmp, &target).await,
                Err(e) => Err(e),
            };
            if let Err(e) = placed {
                let _ = tokio::fs::remove_file(&tmp).await;
                return Err(unavailable(e));
            }
            // The rename itself reaches the disk only when its directory is flushed.
            if let Some(dir) = target.parent() {
                let d = tokio::fs::File::open(dir).await.map_err(unavailable)?;
                d.sync_all().await.map_err(unavailable)?;
            }
            Ok(())
        })
    }

    fn get<'a>(&'a self, key: &'a BlobKey) -> StoreFuture<'a, Vec<u8>> {
        Box::pin(async move {
            match tokio::fs::read(self.path(key)).await {
                Ok(b) => Ok(b),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(StoreError::NotFound),
                Err(e) => Err(unavailable(e)),
            }
        })
    }

    fn delete<'a>(&'a self, key: &'a BlobKey) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            match tokio::fs::remove_file(self.path(key)).await {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(unavailable(e)),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_safe_as_paths_and_keys() {
        for good in ["a", "ten_1/doc-2", "x/y/z_9"] {
            assert!(BlobKey::new(good).is_some(), "{good}");
        }
        for bad in [
            "", "/abs", "a//b", "../up", "a/../b", "a/.", "Caps", "sp ace", "a/b/", "é",
        ] {
            assert!(BlobKey::new(bad).is_none(), "{bad}");
        }
    }

    #[tokio::test]
    async fn local_dir_keeps_replaces_and_forgets_whole_blobs() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalDir::open(dir.path().join("blobs")).await.unwrap();
        let key = BlobKey::new("ten_a/doc-1").unwrap();
        assert!(matches!(store.get(&key).await, Err(StoreError::NotFound)));
        store.put(&key, b"first".to_vec()).await.unwrap();
        assert_eq!(store.get(&key).await.unwrap(), b"first");
        store.put(&key, b"second".to_vec()).await.unwrap();
        assert_eq!(store.get(&key).await.unwrap(), b"second");
        // Nothing is left half-way in the incoming directory.
        let left = std::fs::read_dir(dir.path().join("blobs/.incoming"))
            .unwrap()
            .count();
        assert_eq!(left, 0);
        store.delete(&key).await.unwrap();
        store.delete(&key).await.unwrap();
        assert!(matches!(store.get(&key).await, Err(StoreError::NotFound)));
    }

    #[tokio::test]
    async fn an_unwritable_directory_is_unavailable_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-dir");
        std::fs::write(&file, b"x").unwrap();
        assert!(matches!(
            LocalDir::open(&file).await,
            Err(StoreError::Unavailable(_))
        ));
    }
}
