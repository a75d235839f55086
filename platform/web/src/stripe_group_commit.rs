//! Group commit for Stripe's deliveries. A webhook may answer 2xx only once its event is
//! durably stored, and one transaction per delivery costs a durable commit (a WAL flush) and
//! three round trips each: in a burst that is what the webhook waits for (BENCHMARKS, issue
//! 13). So each clinic has one committer task: a delivery hands it the verified event and
//! waits; the committer keeps every event that arrived while its last transaction ran, in one
//! transaction (`events::receive`), and answers each once it commits. A lone delivery is
//! committed at once, as before: nothing waits for company.
//!
//! Nothing is lost or half-written: a delivery is answered 2xx only after the commit that
//! kept its event. When a batch fails, each of its events is tried again in a transaction of
//! its own, so one event the database refuses fails only its own delivery (Stripe sends it
//! again later). A delivery whose client hangs up leaves its event in the batch: keeping it is
//! idempotent. The committer runs on its own task, so a caller that gives up can never leave a
//! pooled connection inside a transaction.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use portal_domain::billing::events;
use portal_stripe::webhook::EventHead;
use portal_tenants::{Tenant, TenantDb, TenantId};
use tokio::sync::{mpsc, oneshot};

/// The most events one transaction keeps (a burst's waiting deliveries beyond it go in the
/// next one).
const BATCH: usize = 128;

/// Deliveries that may wait for one clinic's committer before the next waits to hand its
/// event over.
const WAITING: usize = 1024;

/// A committer with no delivery for this long ends (its clinic's next delivery starts one).
const IDLE: Duration = Duration::from_secs(600);

/// The event could not be kept (the cause is logged once for its whole batch).
#[derive(Debug, thiserror::Error)]
#[error("the event could not be kept; the cause is logged")]
pub struct NotKept;

struct Arrival {
    head: EventHead,
    received_at: DateTime<Utc>,
    answer: oneshot::Sender<Result<bool, NotKept>>,
}

/// Each clinic's committer, started on its first delivery.
#[derive(Clone)]
pub struct GroupCommit {
    db: TenantDb,
    committers: moka::future::Cache<TenantId, mpsc::Sender<Arrival>>,
}

impl GroupCommit {
    pub fn new(db: TenantDb) -> Self {
        Self {
            db,
            committers: moka::future::Cache::builder()
                .max_capacity(100_000)
                // Dropping the last sender ends the task once it has answered what it holds.
                .time_to_idle(IDLE)
                .build(),
        }
    }

    /// Keeps a verified event in `tenant`'s inbox (queueing its drain if none waits), with
    /// every other event that arrived for the clinic meanwhile; `true` when it was new.
    /// Returns once the transaction that kept it has committed.
    pub async fn keep(
        &self,
        tenant: &Arc<Tenant>,
        head: EventHead,
        received_at: DateTime<Utc>,
    ) -> Result<bool, NotKept> {
        let committer = self
            .committers
            .get_with(tenant.id(), async {
                let (hand, queue) = mpsc::channel(WAITING);
                tokio::spawn(commit_arrivals(self.db.clone(), tenant.clone(), queue));
                hand
            })
            .await;
        let (answer, answered) = oneshot::channel();
        let arrival = Arrival {
            head,
            received_at,
            answer,
        };
        if committer.send(arrival).await.is_ok()
            && let Ok(kept) = answered.await
        {
            return kept;
        }
        // The committer is gone, which only a panic does: the next delivery starts another,
        // and Stripe sends this one again.
        tracing::error!(clinic = %tenant.slug(), "the clinic's Stripe event committer stopped");
        self.committers.invalidate(&tenant.id()).await;
        Err(NotKept)
    }
}

/// A clinic's committer: one transaction at a time, each keeping every event that waits.
async fn commit_arrivals(db: TenantDb, tenant: Arc<Tenant>, mut queue: mpsc::Receiver<Arrival>) {
    let mut batch = Vec::with_capacity(BATCH);
    while queue.recv_many(&mut batch, BATCH).await > 0 {
        match keep_together(&db, &tenant, &batch).await {
            Ok(new) => {
                for (arrival, new) in batch.drain(..).zip(new) {
                    // A caller that hung up no longer waits for its answer.
                    let _ = arrival.answer.send(Ok(new));
                }
            }
            Err(e) => {
                let shown = crate::internal(e);
                tracing::error!(clinic = %tenant.slug(), events = batch.len(),
                    "keeping Stripe events failed: {shown}");
                let retry_alone = batch.len() > 1;
                for arrival in batch.drain(..) {
                    let kept = if retry_alone {
                        // One event the database refuses must not fail the others.
                        keep_together(&db, &tenant, std::slice::from_ref(&arrival))
                            .await
                            .map_err(|e| {
                                let shown = crate::internal(e);
                                tracing::error!(clinic = %tenant.slug(), event = %arrival.head.id,
                                    "keeping a Stripe event failed: {shown}");
                            })
                            .ok()
                            .and_then(|new| new.first().copied())
                            .ok_or(NotKept)
                    } else {
                        Err(NotKept)
                    };
                    let _ = arrival.answer.send(kept);
                }
            }
        }
    }
}

async fn keep_together(
    db: &TenantDb,
    tenant: &Tenant,
    batch: &[Arrival],
) -> Result<Vec<bool>, portal_domain::jobs::EnqueueError> {
    let events: Vec<_> = batch.iter().map(|a| (&a.head, a.received_at)).collect();
    let mut receiving = events::begin_receiving(db, tenant).await?;
    let new = events::receive(&mut receiving, &events).await?;
    receiving.commit().await?;
    Ok(new)
}
