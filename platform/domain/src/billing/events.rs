//! Stripe events for a clinic: kept once by their id (a second delivery is a no-op), so the
//! webhook answers as soon as they are stored, and applied in Stripe's order by the clinic's
//! drain job (`workers::stripe_inbox`), a batch at a time in a few lanes. A burst queues a
//! drain job only when none is waiting (`stripe_inbox.drain_queued`), not one per event.

use chrono::{DateTime, Utc};
use portal_stripe::PaymentState;
use portal_stripe::webhook::EventHead;
use portal_tenants::TenantTx;

use crate::ids::PaymentId;
use crate::jobs::{self, Job};

/// The name of a clinic's inbox lock (`hashtextextended('stripe_inbox ' || current_schema(), 0)`
/// is its key, as [`nothing_waiting`] computes it).
const INBOX_LOCK: &str = "stripe_inbox";

/// A clinic's transaction that holds its inbox lock shared (see [`receive`]).
pub struct Receiving(TenantTx);

impl Receiving {
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        self.0.commit().await
    }
}

/// The transaction a webhook keeps an event in: the clinic's, holding its inbox lock shared
/// from the start (see [`receive`]).
pub async fn begin_receiving(
    db: &portal_tenants::TenantDb,
    tenant: &portal_tenants::Tenant,
) -> Result<Receiving, sqlx::Error> {
    db.begin_holding_shared(tenant, INBOX_LOCK)
        .await
        .map(Receiving)
}

/// Keeps verified events (each with the PaymentIntent it carried, if any, and when it was
/// received), all in the one transaction, and queues the clinic's drain job unless one is
/// already waiting to start; the caller commits. One answer per event, in their order: `true`
/// when it was new, `false` for a second delivery (a no-op, though it too queues a drain if
/// none waits, so an event whose first delivery died before its commit's drain is applied).
/// The same event twice in `events` is new at most once, the first time. Many events in one
/// transaction share its round trips and its one durable commit: the webhook's group commit
/// (`web::stripe_group_commit`) passes every delivery that arrived while its last commit ran.
///
/// Why the lock: the drain job clears `drain_queued` before it looks for events, so a flag
/// found set means a drain that has not looked yet and will see these events — unless this
/// transaction commits only after that drain's last look. So every webhook holds the clinic's
/// inbox lock shared until it commits, taken *before* the statement that reads the flag (a
/// statement reads what was committed when it began): [`begin_receiving`] takes it in the same
/// round trip as `BEGIN`, and only its transaction can be passed here. The drain takes it
/// exclusively for its last look ([`nothing_waiting`]): it waits for every webhook that may
/// have seen the flag set, and any later one sees it cleared and queues the next drain.
pub async fn receive(
    receiving: &mut Receiving,
    events: &[(&EventHead, DateTime<Utc>)],
) -> Result<Vec<bool>, jobs::EnqueueError> {
    let tx = &mut receiving.0;
    // Inserted in id order: two batches sharing ids (another process's, Stripe sending again)
    // then wait for each other in one order only, never in a deadlock. Each id once (a stable
    // sort keeps the first delivery of it first).
    let mut unique: Vec<_> = events.iter().collect();
    unique.sort_by(|a, b| a.0.id.cmp(&b.0.id));
    unique.dedup_by(|a, b| a.0.id == b.0.id);
    let ids: Vec<&str> = unique.iter().map(|(h, _)| h.id.as_str()).collect();
    let kinds: Vec<&str> = unique.iter().map(|(h, _)| h.kind.as_str()).collect();
    let objects: Vec<&str> = unique.iter().map(|(h, _)| h.object_id.as_str()).collect();
    let types: Vec<&str> = unique.iter().map(|(h, _)| h.object_type.as_str()).collect();
    let created: Vec<i64> = unique.iter().map(|(h, _)| h.created).collect();
    let received: Vec<DateTime<Utc>> = unique.iter().map(|(_, at)| *at).collect();
    let snapshots: Vec<Option<serde_json::Value>> = unique
        .iter()
        .map(|(h, _)| h.intent.as_ref().and_then(|i| serde_json::to_value(i).ok()))
        .collect();
    let payments: Vec<Option<uuid::Uuid>> = unique
        .iter()
        .map(|(h, _)| {
            h.intent
                .as_ref()
                .and_then(|i| i.metadata.get("payment"))
                .and_then(|p| PaymentId::parse(p))
                .map(|p| p.as_uuid())
        })
        .collect();
    let r = sqlx::query!(
        r#"WITH kept AS (
               INSERT INTO stripe_events (id, kind, object_id, object_type, created,
                                          received_at, snapshot, payment_ref, account_ref)
               SELECT e.id, e.kind, e.object_id, e.object_type, e.created, e.received_at,
                      e.snapshot, e.payment_ref, coalesce(p.account_id, c.account_id)
               FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[],
                           $6::timestamptz[], $7::jsonb[], $8::uuid[])
                    WITH ORDINALITY AS e(id, kind, object_id, object_type, created,
                                         received_at, snapshot, payment_ref, n)
               LEFT JOIN payments p ON p.id = e.payment_ref
               LEFT JOIN payments c ON e.object_type = 'checkout.session'
                                   AND c.stripe_checkout_session = e.object_id
               ORDER BY e.n
               ON CONFLICT (id) DO NOTHING
               RETURNING id
           ), flipped AS (
               UPDATE stripe_inbox SET drain_queued = true WHERE NOT drain_queued RETURNING 1
           )
           SELECT ARRAY(SELECT id FROM kept) AS "kept!",
                  EXISTS (SELECT 1 FROM flipped) AS "flipped!""#,
        &ids as &[&str],
        &kinds as &[&str],
        &objects as &[&str],
        &types as &[&str],
        &created,
        &received,
        &snapshots as &[Option<serde_json::Value>],
        &payments as &[Option<uuid::Uuid>],
    )
    .fetch_one(tx.conn())
    .await?;
    if r.flipped {
        jobs::enqueue(tx, &Job::StripeInbox {}).await?;
    }
    // Answered in the callers' order; taking each new id out answers a repeat of it `false`.
    let mut new: std::collections::HashSet<String> = r.kept.into_iter().collect();
    Ok(events
        .iter()
        .map(|(head, _)| new.remove(&head.id))
        .collect())
}

/// The drain's last look, under the clinic's inbox lock held exclusively until the caller
/// commits (see [`receive`]): `true` when no event waits.
pub async fn nothing_waiting(tx: &mut TenantTx) -> Result<bool, sqlx::Error> {
    sqlx::query!(
        "SELECT pg_advisory_xact_lock(hashtextextended('stripe_inbox ' || current_schema(), 0))"
    )
    .execute(tx.conn())
    .await?;
    let waiting = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM stripe_events
                          WHERE applied_at IS NULL AND failure IS NULL) AS "waiting!""#
    )
    .fetch_one(tx.conn())
    .await?;
    Ok(!waiting)
}

/// One drain at a time per clinic: `true` when no other drain runs, and then the clinic's
/// drain lock is held until the caller's transaction ends (however it ends: a crash releases
/// it). Two drains side by side would take batches of the same billing accounts and wait on
/// each other's locks. A drain that finds another running does not wait for it (a waiting
/// job would hold a connection and a worker), nor queue itself again: it ends, leaving
/// `drain_queued` as it was, and the running drain queues the next when it ends if the flag is
/// set ([`drain_again`]); if that drain fails instead, its job's retry is the next drain.
pub async fn one_drain_at_a_time(tx: &mut TenantTx) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT pg_try_advisory_xact_lock(
                      hashtextextended('stripe_drain ' || current_schema(), 0)) AS "held!""#
    )
    .fetch_one(tx.conn())
    .await
}

/// A drain that has ended (its drain lock released): when `drain_queued` is set, a webhook
/// queued a drain while this one ran, which found this one running and ended
/// ([`one_drain_at_a_time`]), or has yet to start; one is queued to start now. At most one
/// job for each time a webhook set the flag: a drain clears it as it starts.
pub async fn drain_again(tx: &mut TenantTx) -> Result<(), jobs::EnqueueError> {
    let wanted = sqlx::query_scalar!(r#"SELECT drain_queued AS "wanted!" FROM stripe_inbox"#)
        .fetch_optional(tx.conn())
        .await?
        .unwrap_or(false);
    if wanted {
        jobs::enqueue(tx, &Job::StripeInbox {}).await?;
    }
    Ok(())
}

/// Whether the event is still waiting to be applied (neither applied nor set aside).
pub async fn is_waiting(tx: &mut TenantTx, id: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM stripe_events
                          WHERE id = $1 AND applied_at IS NULL AND failure IS NULL) AS "waiting!""#,
        id
    )
    .fetch_one(tx.conn())
    .await
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

/// Up to `limit` events of lane `lane` of `lanes` not yet applied (nor given up on), oldest
/// first, without locking them: the drain reads what it needs from Stripe before it opens
/// the transaction that applies them ([`lock`]). An event's lane follows the billing account
/// of the payment it names (its intent's metadata, or its Checkout Session; found when the
/// event was kept: `account_ref`), so lanes run side by side without waiting on each other's
/// accounts; an event naming none (refunds, payouts, disputes, the account) is in lane 0.
pub async fn pending(
    tx: &mut TenantTx,
    limit: i64,
    lane: i64,
    lanes: i64,
) -> Result<Vec<Pending>, sqlx::Error> {
    let rows = sqlx::query!(
        "SELECT e.id, e.kind, e.object_id, e.object_type, e.snapshot
         FROM stripe_events e
         WHERE e.applied_at IS NULL AND e.failure IS NULL
           AND coalesce(mod(hashtext(e.account_ref::text)::bigint + 2147483648, $2), 0) = $3
         ORDER BY e.created, e.id LIMIT $1",
        limit,
        lanes,
        lane,
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
