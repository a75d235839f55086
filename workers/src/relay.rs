//! The outbox relay: moves committed jobs from `control.outbox` to the Redis queue. Woken by
//! LISTEN/NOTIFY, polling as a fallback. A batch is deleted only after Redis took all of it, in
//! the same transaction that locked it (`FOR UPDATE SKIP LOCKED`, so several relays can run):
//! if Redis is down, the jobs simply wait. A crash between push and commit re-sends a batch;
//! the handlers' delivery log makes that harmless.

use std::time::Duration;

use apalis::prelude::TaskSink;
use chrono::{DateTime, Utc};
use portal_domain::clock::SharedClock;
use portal_domain::ids::JobId;
use portal_domain::jobs::JobEnvelope;
use portal_tenants::TenantId;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::watch;

use crate::Storage;

const BATCH: i64 = 500;

/// At most this many jobs handed to Redis and not yet taken by a worker (`queued` in the
/// delivery log); a larger backlog waits in the outbox, where it is durable anyway. Without
/// the bound a burst (100,000 reminders due at once) wedges every worker: apalis-redis moves
/// all due tasks to its active list with one Lua `unpack`, which fails past ~8,000 elements,
/// and keeps failing for as long as the set stays that large.
const MAX_QUEUED: i64 = 3000;

/// How soon a relay held back by [`MAX_QUEUED`] looks again (workers drain quickly).
const THROTTLE_WAIT: Duration = Duration::from_millis(50);

/// What one relay pass did.
enum Pass {
    /// Moved a full batch; there may be more.
    Full,
    /// Moved what was due (possibly nothing).
    Partial(usize),
    /// Redis already holds enough work; nothing moved.
    Throttled,
}

pub(crate) async fn run(
    pool: PgPool,
    clock: SharedClock,
    mut storage: Storage,
    poll: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut listener = match PgListener::connect_with(&pool).await {
        Ok(mut l) => match l.listen("portal_outbox").await {
            Ok(()) => Some(l),
            Err(e) => {
                tracing::warn!(error = %e, "outbox LISTEN failed; polling only");
                None
            }
        },
        Err(e) => {
            tracing::warn!(error = %e, "outbox listener connection failed; polling only");
            None
        }
    };
    let mut failures: u32 = 0;
    loop {
        if *stop.borrow() {
            return;
        }
        let wait = match relay_batch(&pool, &mut storage, clock.now()).await {
            Ok(Pass::Full) => {
                failures = 0;
                continue;
            }
            Ok(Pass::Throttled) => {
                failures = 0;
                Some(THROTTLE_WAIT)
            }
            Ok(Pass::Partial(n)) => {
                if n > 0 {
                    tracing::debug!(jobs = n, "relayed jobs to Redis");
                }
                failures = 0;
                None
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                tracing::warn!(error = %e, "outbox relay failed; jobs stay in the outbox");
                Some(Duration::from_millis(200 * 2u64.pow(failures.min(5))))
            }
        };
        let wait_for = wait.unwrap_or(poll);
        tokio::select! {
            _ = stop.changed() => return,
            () = async {
                match (&mut listener, wait) {
                    (Some(l), None) => {
                        let _ = tokio::time::timeout(wait_for, l.recv()).await;
                    }
                    _ => tokio::time::sleep(wait_for).await,
                }
            } => {}
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum RelayError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("redis: {0}")]
    Redis(String),
}

/// Relays up to one batch of jobs that are due at `now`: every job without a `not_before`, and
/// delayed ones whose time has come. Delayed jobs are found by polling, not by notification.
async fn relay_batch(
    pool: &PgPool,
    storage: &mut Storage,
    now: DateTime<Utc>,
) -> Result<Pass, RelayError> {
    let queued = sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM control.job_deliveries WHERE status = 'queued'"#
    )
    .fetch_one(pool)
    .await?;
    let room = (MAX_QUEUED - queued).min(BATCH);
    if room <= 0 {
        return Ok(Pass::Throttled);
    }
    let mut tx = pool.begin().await?;
    // Two index-ordered reads rather than one `not_before IS NULL OR not_before <= now`: the OR
    // cannot use either partial index, so with 100,000 reminders waiting every pass sorted all
    // of them (about a second each, found by the reminder benchmark). Jobs for now go first,
    // so a burst of reminders never holds up a confirmation; then delayed ones, earliest due
    // first.
    let mut envelopes: Vec<JobEnvelope> = sqlx::query!(
        "SELECT id, kind, version, tenant_id, payload FROM control.outbox
         WHERE not_before IS NULL
         ORDER BY created_at, id LIMIT $1 FOR UPDATE SKIP LOCKED",
        room
    )
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .map(|r| envelope(r.id, r.tenant_id, r.version, r.kind, r.payload))
    .collect();
    let left = room - envelopes.len() as i64;
    if left > 0 {
        let due = sqlx::query!(
            "SELECT id, kind, version, tenant_id, payload FROM control.outbox
             WHERE not_before IS NOT NULL AND not_before <= $2
             ORDER BY not_before, id LIMIT $1 FOR UPDATE SKIP LOCKED",
            left,
            now
        )
        .fetch_all(&mut *tx)
        .await?;
        envelopes.extend(
            due.into_iter()
                .map(|r| envelope(r.id, r.tenant_id, r.version, r.kind, r.payload)),
        );
    }
    if envelopes.is_empty() {
        return Ok(Pass::Partial(0));
    }
    let ids: Vec<uuid::Uuid> = envelopes.iter().map(|e| e.id.as_uuid()).collect();
    let n = envelopes.len();
    storage
        .push_bulk(envelopes)
        .await
        .map_err(|e| RelayError::Redis(e.to_string()))?;
    // The delivery log takes over from the outbox in the same transaction, so a job is always
    // visible somewhere: outbox → queued → running → done | dead.
    sqlx::query!(
        "WITH moved AS (DELETE FROM control.outbox WHERE id = ANY($1)
                        RETURNING id, kind, version, tenant_id, payload)
         INSERT INTO control.job_deliveries (job_id, kind, version, tenant_id, payload, status)
         SELECT id, kind, version, tenant_id, payload, 'queued' FROM moved
         ON CONFLICT (job_id) DO NOTHING",
        &ids
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    crate::wake::announce(storage).await;
    Ok(if n as i64 == room && room == BATCH {
        Pass::Full
    } else if n as i64 == room {
        // Filled the room Redis had: look again soon rather than after a full poll.
        Pass::Throttled
    } else {
        Pass::Partial(n)
    })
}

fn envelope(
    id: uuid::Uuid,
    tenant_id: uuid::Uuid,
    version: i32,
    kind: String,
    payload: serde_json::Value,
) -> JobEnvelope {
    JobEnvelope {
        id: JobId::from_uuid(id),
        tenant_id: TenantId::from_uuid(tenant_id),
        version,
        kind,
        payload,
    }
}
