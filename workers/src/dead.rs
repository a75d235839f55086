//! Operators' view of jobs that ran out of attempts (and a way to send them again), and of
//! jobs held while their clinic is suspended.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

#[derive(Debug, Clone, serde::Serialize)]
pub struct DeadJob {
    pub job_id: String,
    pub kind: String,
    pub tenant: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub failed_at: DateTime<Utc>,
}

pub async fn list(pool: &PgPool) -> Result<Vec<DeadJob>, sqlx::Error> {
    list_with(pool, "dead").await
}

/// Jobs held because their clinic is suspended (sent when it reopens).
pub async fn held(pool: &PgPool) -> Result<Vec<DeadJob>, sqlx::Error> {
    list_with(pool, "held").await
}

async fn list_with(pool: &PgPool, status: &str) -> Result<Vec<DeadJob>, sqlx::Error> {
    let rows = sqlx::query!(
        "SELECT d.job_id, d.kind, t.slug, d.attempts, d.last_error, d.updated_at
         FROM control.job_deliveries d JOIN control.tenants t ON t.id = d.tenant_id
         WHERE d.status = $1 ORDER BY d.updated_at",
        status
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| DeadJob {
            job_id: portal_domain::ids::JobId::from_uuid(r.job_id).to_string(),
            kind: r.kind,
            tenant: r.slug,
            attempts: r.attempts,
            last_error: r.last_error,
            failed_at: r.updated_at,
        })
        .collect())
}

/// Puts dead jobs back into the outbox (all of them, or the one with `job_id`), with fresh
/// attempts. Returns how many were re-queued.
pub async fn retry(pool: &PgPool, job_id: Option<uuid::Uuid>) -> Result<u64, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let revived = sqlx::query!(
        "UPDATE control.job_deliveries SET status = 'queued', attempts = 0, updated_at = now()
         WHERE status = 'dead' AND ($1::uuid IS NULL OR job_id = $1)
         RETURNING job_id, kind, version, tenant_id, payload",
        job_id
    )
    .fetch_all(&mut *tx)
    .await?;
    for r in &revived {
        sqlx::query!(
            "INSERT INTO control.outbox (id, kind, version, tenant_id, payload)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING",
            r.job_id,
            r.kind,
            r.version,
            r.tenant_id,
            r.payload
        )
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(revived.len() as u64)
}
