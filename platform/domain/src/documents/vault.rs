//! A clinic's documents at rest: its data key (made on first use, stored wrapped by the
//! master key in its own schema) and sealing or opening one blob with it. Blobs are stored
//! under the clinic's id (`<tenant id>/<name>`), so one clinic's names can never replace
//! another's, and the clinic and the name are bound into the seal, so a stored blob opens
//! only as itself, in its own clinic.
//!
//! Writing a blob and committing the row that names it cannot be one atomic step, so a write
//! goes: (1) [`Vault::prepare`] records the blob's name in `blob_intents` and queues a sweep
//! job for later, committed in a transaction of its own; (2) the blob is written;
//! (3) the caller's transaction commits the row and [`claim`]s the intent. A crash after (2)
//! leaves an intent the sweep ([`sweep`]) finds without a row: it deletes the blob. A row is
//! never committed before its blob exists.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use portal_tenants::{Tenant, TenantDb, TenantId, TenantTx};
use portal_vault::{BlobKey, BlobStore, DataKey, KeyError, MasterKey, SealError, StoreError};

use crate::jobs::{self, Job};

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Seal(#[from] SealError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("a blob name under a clinic's id is too long")]
    Name,
    #[error("the blob's sweep could not be queued")]
    Queue(#[from] jobs::EnqueueError),
    /// The intent was swept before the row committed (the write took longer than the sweep's
    /// grace): the blob is gone, so the row must not commit.
    #[error("the stored file was cleaned away before it was recorded")]
    Swept,
}

const VERSION: i32 = 1;

/// How long a blob may wait for its row before the sweep deletes it.
pub const SWEEP_AFTER: chrono::Duration = chrono::Duration::hours(1);

/// The document store as the web and the workers hold it: where blobs live, the master key,
/// and the clinics' data keys already opened (each is read from its clinic's schema once per
/// process, not once per document).
#[derive(Clone)]
pub struct Vault {
    store: Arc<dyn BlobStore>,
    master: MasterKey,
    keys: Arc<Mutex<HashMap<TenantId, DataKey>>>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault").field("store", &self.store).finish()
    }
}

/// Opened keys kept per process; past this many clinics the cache starts again.
const KEY_CACHE: usize = 4096;

impl Vault {
    pub fn new(store: Arc<dyn BlobStore>, master: MasterKey) -> Self {
        Self {
            store,
            master,
            keys: Arc::default(),
        }
    }

    pub fn store(&self) -> &dyn BlobStore {
        self.store.as_ref()
    }

    fn cached(&self, tenant: TenantId) -> Option<DataKey> {
        self.keys.lock().ok()?.get(&tenant).cloned()
    }

    fn remember(&self, tenant: TenantId, key: &DataKey) {
        if let Ok(mut keys) = self.keys.lock() {
            if keys.len() >= KEY_CACHE {
                keys.clear();
            }
            keys.insert(tenant, key.clone());
        }
    }

    /// The clinic's data key (see [`data_key`]), from this process's cache when it has it.
    pub async fn key(&self, db: &TenantDb, tenant: &Tenant) -> Result<DataKey, VaultError> {
        if let Some(k) = self.cached(tenant.id()) {
            return Ok(k);
        }
        let key = data_key(db, tenant, &self.master).await?;
        self.remember(tenant.id(), &key);
        Ok(key)
    }

    /// Step (1) of a write: records `name` as about to be written and queues its sweep, in a
    /// committed transaction of its own (a web handler calls it outside its request's
    /// transaction). Returns the clinic's key to seal with.
    pub async fn prepare(
        &self,
        db: &TenantDb,
        tenant: &Tenant,
        name: &BlobKey,
        now: DateTime<Utc>,
    ) -> Result<DataKey, VaultError> {
        let key = self.key(db, tenant).await?;
        let mut tx = db.begin(tenant).await?;
        sqlx::query!(
            "INSERT INTO blob_intents (blob, created_at) VALUES ($1, $2)",
            name.as_str(),
            now
        )
        .execute(tx.conn())
        .await?;
        jobs::enqueue_many(
            &mut tx,
            &[(
                Job::BlobSweep {
                    blob: name.as_str().to_owned(),
                },
                Some(now + SWEEP_AFTER),
            )],
        )
        .await?;
        tx.commit().await?;
        Ok(key)
    }

    /// Step (2): seals `plain` with the clinic's key and stores it under the clinic's `name`.
    pub async fn put(
        &self,
        key: &DataKey,
        tenant: TenantId,
        name: &BlobKey,
        plain: &[u8],
    ) -> Result<(), VaultError> {
        put(key, tenant, self.store(), name, plain).await
    }

    /// The plaintext of the clinic's blob `name`.
    pub async fn get(
        &self,
        db: &TenantDb,
        tenant: &Tenant,
        name: &BlobKey,
    ) -> Result<Vec<u8>, VaultError> {
        let key = self.key(db, tenant).await?;
        get(&key, tenant.id(), self.store(), name).await
    }
}

/// Step (3), in the transaction that commits the row naming the blob: the intent is done.
/// Fails with [`VaultError::Swept`] when the sweep already deleted the blob.
pub async fn claim(tx: &mut TenantTx, name: &BlobKey) -> Result<(), VaultError> {
    let done = sqlx::query!(
        "DELETE FROM blob_intents WHERE blob = $1 AND NOT swept",
        name.as_str()
    )
    .execute(tx.conn())
    .await?;
    if done.rows_affected() == 1 {
        Ok(())
    } else {
        Err(VaultError::Swept)
    }
}

/// What a sweep found.
#[derive(Debug, PartialEq, Eq)]
pub enum Swept {
    /// The row was committed (or the blob swept before): nothing to do.
    Kept,
    /// No row named the blob: it was deleted.
    Deleted,
}

/// The sweep job: deletes the blob `name` if its intent is still there, i.e. no row ever
/// claimed it. First the intent is marked swept and committed (a claim waiting on it then
/// fails, and none can succeed later); then the blob is deleted, then the intent. A sweep
/// that fails after the mark is redone by the job's retry.
pub async fn sweep(
    db: &TenantDb,
    tenant: &Tenant,
    store: &dyn BlobStore,
    name: &str,
) -> Result<Swept, VaultError> {
    let Some(key) = BlobKey::new(name) else {
        return Ok(Swept::Kept);
    };
    let mut tx = db.begin(tenant).await?;
    let marked = sqlx::query!(
        "UPDATE blob_intents SET swept = true WHERE blob = $1",
        key.as_str()
    )
    .execute(tx.conn())
    .await?;
    tx.commit().await?;
    if marked.rows_affected() == 0 {
        return Ok(Swept::Kept);
    }
    store.delete(&under(tenant.id(), &key)?).await?;
    let mut tx = db.begin(tenant).await?;
    sqlx::query!("DELETE FROM blob_intents WHERE blob = $1", key.as_str())
        .execute(tx.conn())
        .await?;
    tx.commit().await?;
    Ok(Swept::Deleted)
}

/// Deletes a blob its writer could not record (its intent was swept first): nothing names
/// it, and its name is unique, so no one else can be using it. Best effort: the caller is
/// already failing.
pub async fn discard(store: &dyn BlobStore, tenant: TenantId, name: &BlobKey) {
    if let Ok(full) = under(tenant, name)
        && let Err(e) = store.delete(&full).await
    {
        tracing::warn!(error = %e, "an unrecorded blob could not be deleted");
    }
}

/// The clinic's data key, read (or made and stored) in a short transaction of its own that
/// is committed before the caller writes any blob with it: a key that a later rollback took
/// away would leave blobs nobody can open. Two first uses at once both try to store theirs;
/// one row wins and both use it. A web handler calls it outside its request's transaction
/// (after `tx::release`), so the request never holds two connections.
pub async fn data_key(
    db: &TenantDb,
    tenant: &Tenant,
    master: &MasterKey,
) -> Result<DataKey, VaultError> {
    let owner = tenant.id().to_string();
    let mut tx = db.begin(tenant).await?;
    let wrapped = match stored(&mut tx).await? {
        Some(w) => w,
        None => {
            sqlx::query!(
                "INSERT INTO data_keys (version, wrapped) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                VERSION,
                master.wrap(&DataKey::generate(), &owner)?
            )
            .execute(tx.conn())
            .await?;
            stored(&mut tx).await?.ok_or(sqlx::Error::RowNotFound)?
        }
    };
    tx.commit().await?;
    Ok(master.unwrap(&wrapped, &owner)?)
}

async fn stored(tx: &mut TenantTx) -> Result<Option<Vec<u8>>, sqlx::Error> {
    sqlx::query_scalar!("SELECT wrapped FROM data_keys WHERE version = $1", VERSION)
        .fetch_optional(tx.conn())
        .await
}

fn under(tenant: TenantId, name: &BlobKey) -> Result<BlobKey, VaultError> {
    BlobKey::new(&format!("{tenant}/{}", name.as_str())).ok_or(VaultError::Name)
}

/// Seals `plain` with the clinic's key and stores it under the clinic's `name`.
pub async fn put(
    key: &DataKey,
    tenant: TenantId,
    store: &dyn BlobStore,
    name: &BlobKey,
    plain: &[u8],
) -> Result<(), VaultError> {
    let sealed = portal_vault::seal(key, &tenant.to_string(), name.as_str(), plain)?;
    store.put(&under(tenant, name)?, sealed).await?;
    Ok(())
}

/// The plaintext of the clinic's blob `name`.
pub async fn get(
    key: &DataKey,
    tenant: TenantId,
    store: &dyn BlobStore,
    name: &BlobKey,
) -> Result<Vec<u8>, VaultError> {
    let sealed = store.get(&under(tenant, name)?).await?;
    Ok(portal_vault::open(
        key,
        &tenant.to_string(),
        name.as_str(),
        &sealed,
    )?)
}
