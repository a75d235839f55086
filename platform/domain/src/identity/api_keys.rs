//! API keys for machine clients of one clinic (the FHIR import): made by a clinic
//! administrator in the console or by the operator's `portal api-keys create`, shown once,
//! kept only as SHA-256, revocable. A key is looked up in the current clinic's schema, so
//! another clinic's key finds nothing here.

use base64::Engine as _;
use chrono::{DateTime, Utc};
use portal_tenants::TenantTx;
use sha2::{Digest, Sha256};

use crate::audit::{self, Action, AuditContext, AuditEvent};
use crate::identity::scope::AdminScope;

/// What a key's holder may do: import records into this clinic. Only [`authenticate`] makes
/// one.
#[derive(Debug, Clone)]
pub struct ImportScope {
    key_id: uuid::Uuid,
}

impl ImportScope {
    pub fn key_id(&self) -> uuid::Uuid {
        self.key_id
    }
}

/// A key as the console lists it (never the key itself).
#[derive(Debug, Clone, serde::Serialize)]
pub struct ApiKey {
    pub id: uuid::Uuid,
    pub name: String,
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiKeyError {
    #[error("Give the key a name of 1 to 100 characters, such as the system that will use it.")]
    BadName,
    #[error("database error")]
    Database(#[from] sqlx::Error),
}

fn hash(raw: &str) -> Vec<u8> {
    Sha256::digest(raw.as_bytes()).to_vec()
}

/// Makes a key for this clinic and returns it with its id; the key is not kept anywhere.
/// `admin` is `None` when the operator makes it from the command line.
pub async fn create(
    tx: &mut TenantTx,
    admin: Option<&AdminScope>,
    ctx: &AuditContext,
    name: &str,
    now: DateTime<Utc>,
) -> Result<(uuid::Uuid, String), ApiKeyError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiKeyError::BadName);
    }
    let secret: [u8; 32] = rand::random();
    let raw = format!(
        "pk_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret)
    );
    let id = uuid::Uuid::now_v7();
    sqlx::query!(
        "INSERT INTO api_keys (id, name, key_hash, prefix, created_by, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
        id,
        name,
        hash(&raw),
        &raw[..10],
        admin.map(|a| a.staff().user_id().as_uuid()),
        now
    )
    .execute(tx.conn())
    .await?;
    audit::record(
        tx,
        ctx,
        now,
        AuditEvent::new(Action::ApiKeyCreate, "api_key").resource(id),
    )
    .await?;
    Ok((id, raw))
}

/// Every key of the clinic, newest first.
pub async fn list(tx: &mut TenantTx, _admin: &AdminScope) -> Result<Vec<ApiKey>, sqlx::Error> {
    list_all(tx).await
}

/// Every key of the clinic, for the operator's command line.
pub async fn list_all(tx: &mut TenantTx) -> Result<Vec<ApiKey>, sqlx::Error> {
    sqlx::query_as!(
        ApiKey,
        "SELECT id, name, prefix, created_at, last_used_at, revoked_at
         FROM api_keys ORDER BY created_at DESC"
    )
    .fetch_all(tx.conn())
    .await
}

/// Revokes a key at once; `false` when there is no such (unrevoked) key.
pub async fn revoke(
    tx: &mut TenantTx,
    _admin: Option<&AdminScope>,
    ctx: &AuditContext,
    id: uuid::Uuid,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query!(
        "UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
        id,
        now
    )
    .execute(tx.conn())
    .await?
    .rows_affected()
        == 1;
    if done {
        audit::record(
            tx,
            ctx,
            now,
            AuditEvent::new(Action::ApiKeyRevoke, "api_key").resource(id),
        )
        .await?;
    }
    Ok(done)
}

/// The scope a presented key grants in this clinic, if it is one of its unrevoked keys.
/// Notes when it was last used (at most once a minute, so a busy client does not write on
/// every request).
pub async fn authenticate(
    tx: &mut TenantTx,
    raw: &str,
    now: DateTime<Utc>,
) -> Result<Option<ImportScope>, sqlx::Error> {
    if !raw.starts_with("pk_") || raw.len() > 100 {
        return Ok(None);
    }
    let id = sqlx::query_scalar!(
        r#"WITH k AS (SELECT id, last_used_at FROM api_keys
                      WHERE key_hash = $1 AND revoked_at IS NULL),
                u AS (UPDATE api_keys SET last_used_at = $2
                      WHERE id IN (SELECT id FROM k WHERE last_used_at IS NULL
                                   OR last_used_at < $2::timestamptz - interval '1 minute'))
           SELECT id AS "id!" FROM k"#,
        hash(raw),
        now
    )
    .fetch_optional(tx.conn())
    .await?;
    Ok(id.map(|key_id| ImportScope { key_id }))
}
