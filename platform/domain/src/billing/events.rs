//! Stripe events for a clinic: kept once by their id (a second delivery is a no-op), so the
//! webhook answers at once, and applied in Stripe's order by the clinic's drain job
//! (`workers::payments::drain`), a batch at a time. A burst queues one drain job, not one job
//! per event: the webhook queues it only when none is waiting (`stripe_inbox.drain_queued`).

use chrono::{DateTime, Utc};
use portal_stripe::PaymentState;
use portal_stripe::webhook::EventHead;
use portal_tenants::TenantTx;

use crate::jobs::{self, Job};

/// Keeps a verified event (with the PaymentIntent it carried, if any). `false`: it was
/// already kept. The caller commits, then calls [`ensure_drain`].
pub async fn receive(
    tx: &mut TenantTx,
    head: &EventHead,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let snapshot = head
        .intent
        .as_ref()
        .and_then(|i| serde_json::to_value(i).ok());
    let kept = sqlx::query!(
        "INSERT INTO stripe_events (id, kind, object_id, object_type, created, received_at,
                                    snapshot)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (id) DO NOTHING",
        head.id,
        head.kind,
        head.object_id,
        head.object_type,
        head.created,
        now,
        snapshot,
    )
    .execute(tx.conn())
    .await?
    .rows_affected()
        == 1;
    Ok(kept)
}

/// Queues the clinic's drain job unless one is already waiting to start. Called in its own
/// transaction *after* the event's has committed: the drain job clears the flag before it
/// looks for events, so a flag found set means a drain that has not yet looked, and will see
/// the committed event. (Checked inside the event's transaction, a drain finishing between
/// the check and the commit would miss the event.) Also called for a second delivery, so an
/// event whose first delivery died before this step is still applied.
pub async fn ensure_drain(tx: &mut TenantTx) -> Result<bool, jobs::EnqueueError> {
    let flipped =
        sqlx::query!("UPDATE stripe_inbox SET drain_queued = true WHERE NOT drain_queued")
            .execute(tx.conn())
            .await?
            .rows_affected()
            == 1;
    if flipped {
        jobs::enqueue(tx, &Job::StripeInbox {}).await?;
    }
    Ok(flipped)
}

/// The drain job starting: events kept from now on queue another drain.
pub async fn drain_started(tx: &mut TenantTx) -> Result<(), sqlx::Error> {
    sqlx::query!("UPDATE stripe_inbox SET drain_queued = false WHERE drain_queued")
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// An event waiting to be applied.
#[derive(Debug, Clone)]
pub struct Pending {
    pub id: String,
    pub kind: String,
    pub object_id: String,
    pub object_type: String,
    /// The PaymentIntent as the event carried it, when it did.
    pub intent: Option<PaymentState>,
}

/// Up to `limit` events not yet applied (nor given up on), oldest first, without locking
/// them: the drain reads what it needs from Stripe before it opens the transaction that
/// applies them ([`lock`]).
pub async fn pending(tx: &mut TenantTx, limit: i64) -> Result<Vec<Pending>, sqlx::Error> {
    let rows = sqlx::query!(
        "SELECT id, kind, object_id, object_type, snapshot FROM stripe_events
         WHERE applied_at IS NULL AND failure IS NULL
         ORDER BY created, id LIMIT $1",
        limit
    )
    .fetch_all(tx.conn())
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Pending {
            id: r.id,
            kind: r.kind,
            object_id: r.object_id,
            object_type: r.object_type,
            intent: r.snapshot.and_then(|s| serde_json::from_value(s).ok()),
        })
        .collect())
}

/// Locks those of `ids` still waiting (another drain may have taken or applied some) and
/// returns them.
pub async fn lock(tx: &mut TenantTx, ids: &[String]) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar!(
        "SELECT id FROM stripe_events
         WHERE id = ANY($1) AND applied_at IS NULL AND failure IS NULL
         FOR UPDATE SKIP LOCKED",
        ids
    )
    .fetch_all(tx.conn())
    .await
}

pub async fn mark_applied(
    tx: &mut TenantTx,
    ids: &[String],
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE stripe_events SET applied_at = $2 WHERE id = ANY($1)",
        ids,
        now
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Gives up on an event: `failure` is a code (`stripe refused: 404 resource_missing`), never
/// a message text.
pub async fn mark_failed(tx: &mut TenantTx, id: &str, failure: &str) -> Result<(), sqlx::Error> {
    let failure: String = failure.chars().take(200).collect();
    sqlx::query!(
        "UPDATE stripe_events SET failure = $2 WHERE id = $1 AND applied_at IS NULL",
        id,
        failure
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}
