//! Group commit for Stripe's deliveries. A webhook may answer 2xx only once its event is
//! durably stored, and one transaction per delivery costs a durable commit (a WAL flush) and
//! three round trips each: in a burst that is what the webhook waits for (BENCHMARKS, issue
//! 13). So each clinic has one committer task: a delivery hands it the verified event and
//! waits; the committer keeps every event that arrived while its last transaction ran, in one
//! transaction (`events::receive`), and answers each once it commits. A lone delivery is
//! committed at once, as before: nothing waits for company.
//!
//! Nothing is lost or half-written: a delivery is answered 2xx only after the commit that
//! kept its event. When the database refuses a value of a batch, each of its events is tried
//! again in a transaction of its own, so one event it refuses fails only its own delivery
//! (Stripe sends it again later); any other failure answers the whole batch 500. A delivery whose client hangs up leaves its event in the batch: keeping it is
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

/// The event could not be kept (the cause is logged).
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
        let (answer, answered) = oneshot::channel();
        let mut arrival = Arrival {
            head,
            received_at,
            answer,
        };
        // Twice at most: a committer found gone (only a panic ends one early, or an idle one
        // evicted as this delivery took it) is replaced once.
        for _ in 0..2 {
            let committer = self
                .committers
                .get_with(tenant.id(), async {
                    let (hand, queue) = mpsc::channel(WAITING);
                    tokio::spawn(commit_arrivals(self.db.clone(), tenant.clone(), queue));
                    hand
                })
                .await;
            match committer.send(arrival).await {
                Ok(()) => {
                    // Handed over: from here only the committer can answer (it died if it
                    // did not, and Stripe sends the event again).
                    return answered.await.unwrap_or_else(|_| {
                        tracing::error!(clinic = %tenant.slug(),
                            "the clinic's Stripe event committer stopped");
                        Err(NotKept)
                    });
                }
                Err(mpsc::error::SendError(back)) => {
                    arrival = back;
                    let current = self.committers.get(&tenant.id()).await;
                    if current.is_some_and(|c| c.same_channel(&committer)) {
                        self.committers.invalidate(&tenant.id()).await;
                    }
                }
            }
        }
        tracing::error!(clinic = %tenant.slug(), "no Stripe event committer took the event");
        Err(NotKept)
    }
}

/// A clinic's committer: one transaction at a time, each keeping every event that waits.
async fn commit_arrivals(db: TenantDb, tenant: Arc<Tenant>, mut queue: mpsc::Receiver<Arrival>) {
    loop {
        // A batch's room is taken per batch, so an idle committer holds none.
        let mut batch = Vec::new();
        if queue.recv_many(&mut batch, BATCH).await == 0 {
            return;
        }
        let refused = match keep_together(&db, &tenant, &batch).await {
            Ok(new) => {
                for (arrival, new) in batch.into_iter().zip(new) {
                    // A caller that hung up no longer waits for its answer.
                    let _ = arrival.answer.send(Ok(new));
                }
                continue;
            }
            Err(failure) => {
                tracing::error!(clinic = %tenant.slug(), events = batch.len(),
                    "keeping Stripe events failed: {failure}");
                matches!(failure, Failure::Refused(_))
            }
        };
        for arrival in batch {
            // The database refused a value: each event alone, so that one event it refuses
            // does not fail the others. Anything else (the database unreachable or too slow)
            // would fail each of them again: all are answered 500 and sent again by Stripe.
            let kept = if refused {
                match keep_together(&db, &tenant, std::slice::from_ref(&arrival)).await {
                    Ok(new) => new.first().copied().ok_or(NotKept),
                    Err(failure) => {
                        tracing::error!(clinic = %tenant.slug(), event = %arrival.head.id,
                            "keeping a Stripe event failed: {failure}");
                        Err(NotKept)
                    }
                }
            } else {
                Err(NotKept)
            };
            let _ = arrival.answer.send(kept);
        }
    }
}

/// Why a transaction kept nothing (shown without row data: `crate::internal`).
#[derive(Debug, thiserror::Error)]
enum Failure {
    /// PostgreSQL refused a value (SQLSTATE class 22, data exception, or 23, constraint).
    #[error("{0}")]
    Refused(poem::Error),
    #[error("{0}")]
    Other(poem::Error),
    #[error("no commit within {} s", LIMIT.as_secs())]
    TooSlow,
}

/// The longest one transaction may take (waiting for the inbox lock or a connection
/// included): a clinic's deliveries wait behind it, and Stripe gives up on an answer after a
/// few seconds more.
const LIMIT: Duration = Duration::from_secs(10);

/// One transaction keeping `batch`. Given up after [`LIMIT`]: a transaction dropped midway
/// is rolled back before its connection is lent again.
async fn keep_together(
    db: &TenantDb,
    tenant: &Tenant,
    batch: &[Arrival],
) -> Result<Vec<bool>, Failure> {
    let events: Vec<_> = batch.iter().map(|a| (&a.head, a.received_at)).collect();
    let kept = async {
        let mut receiving = events::begin_receiving(db, tenant).await?;
        let new = events::receive(&mut receiving, &events).await?;
        receiving.commit().await?;
        Ok::<_, portal_domain::jobs::EnqueueError>(new)
    };
    match tokio::time::timeout(LIMIT, kept).await {
        Ok(Ok(new)) => Ok(new),
        Ok(Err(e)) => {
            let refused = match &e {
                portal_domain::jobs::EnqueueError::Database(sqlx::Error::Database(d)) => d
                    .code()
                    .is_some_and(|c| c.starts_with("22") || c.starts_with("23")),
                _ => false,
            };
            let shown = crate::internal(e);
            Err(if refused {
                Failure::Refused(shown)
            } else {
                Failure::Other(shown)
            })
        }
        Err(_) => Err(Failure::TooSlow),
    }
}
