//! The reconciler: puts back into Redis every job the delivery log says is still owed but that
//! Redis may have lost — `queued` and untouched for `stale_after`, or `running` with no sign of
//! life for the lease (its worker died mid-job). Re-pushing is safe: a handler claims a job in
//! the delivery log first, so a job that is in fact still in Redis, or finished meanwhile, runs
//! at most once more as a no-op. Jobs `held` while their clinic was suspended go back the same
//! way once it is open again. Jobs not yet due never left PostgreSQL, so Redis losing its
//! data loses nothing that the outbox and this log cannot restore.

use std::time::Duration;

use apalis::prelude::TaskSink;
use portal_domain::ids::JobId;
use portal_domain::jobs::JobEnvelope;
use portal_tenants::TenantId;
use sqlx::PgPool;
use tokio::sync::watch;

use crate::Storage;

const BATCH: i64 = 1000;

pub(crate) async fn run(
    pool: PgPool,
    mut storage: Storage,
    stale_after: Duration,
    lease: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let tick =
        (stale_after.min(lease) / 2).clamp(Duration::from_millis(100), Duration::from_secs(60));
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            () = tokio::time::sleep(tick) => {}
        }
        if *stop.borrow() {
            return;
        }
        match reconcile(&pool, &mut storage, stale_after, lease).await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(
                jobs = n,
                "re-queued jobs that Redis had lost or whose worker died"
            ),
            Err(e) => tracing::warn!(error = %e, "reconciler pass failed"),
        }
    }
}

async fn reconcile(
    pool: &PgPool,
    storage: &mut Storage,
    stale_after: Duration,
    lease: Duration,
) -> Result<usize, String> {
    let mut tx = pool.begin().await.map_err(|e| e.to_string())?;
    let rows = sqlx::query!(
        "SELECT d.job_id, d.kind, d.version, d.tenant_id, d.payload FROM control.job_deliveries d
         WHERE (d.status = 'queued' AND d.updated_at < now() - make_interval(secs => $1))
            OR (d.status = 'running' AND d.updated_at < now() - make_interval(secs => $2))
            OR (d.status = 'held' AND EXISTS (SELECT 1 FROM control.tenants t
                                             WHERE t.id = d.tenant_id AND t.status = 'active'))
         ORDER BY d.updated_at LIMIT $3 FOR UPDATE OF d SKIP LOCKED",
        stale_after.as_secs_f64(),
        lease.as_secs_f64(),
        BATCH
    )
    .fetch_all(&mut *tx)
    .await
    .map_err(|e| e.to_string())?;
    if rows.is_empty() {
        return Ok(0);
    }
    let ids: Vec<uuid::Uuid> = rows.iter().map(|r| r.job_id).collect();
    let envelopes: Vec<JobEnvelope> = rows
        .into_iter()
        .map(|r| JobEnvelope {
            id: JobId::from_uuid(r.job_id),
            tenant_id: TenantId::from_uuid(r.tenant_id),
            version: r.version,
            kind: r.kind,
            payload: r.payload,
        })
        .collect();
    let n = envelopes.len();
    storage
        .push_bulk(envelopes)
        .await
        .map_err(|e| format!("redis: {e}"))?;
    // Back to `queued`, freshly stamped: the next pass leaves them alone for `stale_after`.
    sqlx::query!(
        "UPDATE control.job_deliveries SET status = 'queued', updated_at = now()
         WHERE job_id = ANY($1)",
        &ids
    )
    .execute(&mut *tx)
    .await
    .map_err(|e| e.to_string())?;
    tx.commit().await.map_err(|e| e.to_string())?;
    crate::wake::announce(storage).await;
    Ok(n)
}
