//! The delivery log (`control.job_deliveries`): one row per job id. A job already `done` or
//! `dead` is a no-op when it arrives again, which makes every handler idempotent under the
//! pipeline's at-least-once delivery.

use portal_domain::jobs::JobEnvelope;
use sqlx::PgPool;

/// Claims the job for this worker. `None` when it already finished (done or dead), or when
/// another worker is running it and still within its `lease` (a duplicate delivery).
pub(crate) async fn claim(
    pool: &PgPool,
    job: &JobEnvelope,
    worker: &str,
    lease: std::time::Duration,
) -> Result<Option<i32>, sqlx::Error> {
    sqlx::query_scalar!(
        "INSERT INTO control.job_deliveries (job_id, kind, version, tenant_id, payload, status, worker)
         VALUES ($1, $2, $3, $4, $5, 'running', $6)
         ON CONFLICT (job_id) DO UPDATE
             SET status = 'running', worker = EXCLUDED.worker, updated_at = now()
             WHERE job_deliveries.status IN ('queued', 'held')
                OR (job_deliveries.status = 'running'
                    AND job_deliveries.updated_at < now() - make_interval(secs => $7))
         RETURNING attempts",
        job.id.as_uuid(),
        job.kind,
        job.version,
        job.tenant_id.as_uuid(),
        job.payload,
        worker,
        lease.as_secs_f64()
    )
    .fetch_optional(pool)
    .await
}

pub(crate) async fn done(pool: &PgPool, job: &JobEnvelope) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE control.job_deliveries SET status = 'done', attempts = attempts + 1,
                last_error = NULL, updated_at = now()
         WHERE job_id = $1",
        job.id.as_uuid()
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Holds a job of a suspended clinic: not sent, not failed, waiting in the log until the
/// clinic is open again (the reconciler then re-queues it).
pub(crate) async fn hold(pool: &PgPool, job: &JobEnvelope) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE control.job_deliveries SET status = 'held', updated_at = now() WHERE job_id = $1",
        job.id.as_uuid()
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Records a failed attempt; `dead` when no retry follows. Returns the attempts so far.
pub(crate) async fn failed(
    pool: &PgPool,
    job: &JobEnvelope,
    error: &str,
    dead: bool,
) -> Result<i32, sqlx::Error> {
    sqlx::query_scalar!(
        "UPDATE control.job_deliveries
         SET attempts = attempts + 1, last_error = $2, updated_at = now(),
             status = CASE WHEN $3 THEN 'dead' ELSE status END
         WHERE job_id = $1 RETURNING attempts",
        job.id.as_uuid(),
        error,
        dead
    )
    .fetch_one(pool)
    .await
}

/// Renews this worker's lease on a running job every `every`, for as long as it is polled (it
/// never returns; the handler drops it when the job ends).
pub(crate) async fn heartbeat(
    pool: &PgPool,
    job: &JobEnvelope,
    worker: &str,
    every: std::time::Duration,
) {
    loop {
        tokio::time::sleep(every).await;
        if let Err(e) = sqlx::query!(
            "UPDATE control.job_deliveries SET updated_at = now()
             WHERE job_id = $1 AND status = 'running' AND worker = $2",
            job.id.as_uuid(),
            worker
        )
        .execute(pool)
        .await
        {
            tracing::warn!(job = %job.id, error = %e, "could not renew the job's lease");
        }
    }
}
