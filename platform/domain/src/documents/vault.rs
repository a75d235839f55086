//! A clinic's documents at rest: its data key (made on first use, stored wrapped by the
//! master key in its own schema) and sealing or opening one blob with it. Blobs are stored
//! under the clinic's id (`<tenant id>/<name>`), so one clinic's names can never replace
//! another's, and the clinic and the name are bound into the seal, so a stored blob opens
//! only as itself, in its own clinic.

use portal_tenants::{Tenant, TenantDb, TenantId};
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
    #[error("a blob name under a clinic's id is too long")]
    Name,
}

const VERSION: i32 = 1;

/// The clinic's data key, read (or made and stored) in a short transaction of its own that
/// is committed before the caller writes any blob with it: a key that a later rollback took
/// away would leave blobs nobody can open. Two first uses at once both try to store theirs;
/// one row wins and both use it. A web handler calls it before `tx::begin` (after
/// `tx::release`), so the request never holds two connections.
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

async fn stored(tx: &mut portal_tenants::TenantTx) -> Result<Option<Vec<u8>>, sqlx::Error> {
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
