//! A clinic's documents at rest: its data key (made on first use, stored wrapped by the
//! master key in its own schema) and sealing or opening one blob with it. The blob's name is
//! bound into the seal, so a stored blob opens only as itself, in its own clinic.

use portal_tenants::TenantTx;
use portal_vault::{BlobKey, BlobStore, DataKey, KeyError, MasterKey, SealError, StoreError};

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
}

const VERSION: i32 = 1;

/// The clinic's data key: unwrapped from its row, or made and stored on first use. Two
/// first uses at once both try to store theirs; one row wins and both use it.
pub async fn data_key(tx: &mut TenantTx, master: &MasterKey) -> Result<DataKey, VaultError> {
    let owner = tx.tenant_id().to_string();
    if let Some(wrapped) = stored(tx).await? {
        return Ok(master.unwrap(&wrapped, &owner)?);
    }
    let fresh = DataKey::generate();
    sqlx::query!(
        "INSERT INTO data_keys (version, wrapped) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        VERSION,
        master.wrap(&fresh, &owner)?
    )
    .execute(tx.conn())
    .await?;
    let wrapped = stored(tx).await?.ok_or(sqlx::Error::RowNotFound)?;
    Ok(master.unwrap(&wrapped, &owner)?)
}

async fn stored(tx: &mut TenantTx) -> Result<Option<Vec<u8>>, sqlx::Error> {
    sqlx::query_scalar!("SELECT wrapped FROM data_keys WHERE version = $1", VERSION)
        .fetch_optional(tx.conn())
        .await
}

/// Seals `plain` with the clinic's key and stores it under `name`.
pub async fn put(
    tx: &mut TenantTx,
    master: &MasterKey,
    store: &dyn BlobStore,
    name: &BlobKey,
    plain: &[u8],
) -> Result<(), VaultError> {
    let key = data_key(tx, master).await?;
    let sealed = portal_vault::seal(&key, &tx.tenant_id().to_string(), name.as_str(), plain)?;
    store.put(name, sealed).await?;
    Ok(())
}

/// The plaintext stored under `name` for this clinic.
pub async fn get(
    tx: &mut TenantTx,
    master: &MasterKey,
    store: &dyn BlobStore,
    name: &BlobKey,
) -> Result<Vec<u8>, VaultError> {
    let key = data_key(tx, master).await?;
    let sealed = store.get(name).await?;
    Ok(portal_vault::open(
        &key,
        &tx.tenant_id().to_string(),
        name.as_str(),
        &sealed,
    )?)
}
