//! Stripe events for a clinic: kept once by their id (a second delivery is a no-op) and applied
//! by a worker job queued in the same transaction, so the webhook answers at once.

use chrono::{DateTime, Utc};
use portal_stripe::webhook::EventHead;
use portal_tenants::TenantTx;

use crate::jobs::{self, Job};

/// Keeps a verified event and queues its application. `false`: it was already kept.
pub async fn receive(
    tx: &mut TenantTx,
    head: &EventHead,
    now: DateTime<Utc>,
) -> Result<bool, jobs::EnqueueError> {
    let kept = sqlx::query!(
        "INSERT INTO stripe_events (id, kind, object_id, object_type, created, received_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (id) DO NOTHING",
        head.id,
        head.kind,
        head.object_id,
        head.object_type,
        head.created,
        now,
    )
    .execute(tx.conn())
    .await?
    .rows_affected()
        == 1;
    if kept {
        jobs::enqueue(
            tx,
            &Job::StripeEvent {
                event_id: head.id.clone(),
            },
        )
        .await?;
    }
    Ok(kept)
}

/// An event as kept.
#[derive(Debug, Clone)]
pub struct Stored {
    pub kind: String,
    pub object_id: String,
    pub object_type: String,
    pub applied: bool,
}

pub async fn stored(tx: &mut TenantTx, id: &str) -> Result<Option<Stored>, sqlx::Error> {
    let r = sqlx::query!(
        "SELECT kind, object_id, object_type, applied_at IS NOT NULL AS \"applied!\"
         FROM stripe_events WHERE id = $1",
        id
    )
    .fetch_optional(tx.conn())
    .await?;
    Ok(r.map(|r| Stored {
        kind: r.kind,
        object_id: r.object_id,
        object_type: r.object_type,
        applied: r.applied,
    }))
}

pub async fn mark_applied(
    tx: &mut TenantTx,
    id: &str,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE stripe_events SET applied_at = $2 WHERE id = $1",
        id,
        now
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}
