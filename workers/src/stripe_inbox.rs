//! The clinic's Stripe events, applied: the webhook kept them and queued this drain, which
//! takes the waiting events a batch at a time in Stripe's order, reads from Stripe what each
//! needs (a PaymentIntent's event carries the intent, signed, and is applied as it came; any
//! other object is read again for its current state, so duplicates and out-of-order events
//! cannot move it backwards), then applies the whole batch in one transaction. Four lanes run
//! side by side, each with the events of its own billing accounts (`events::pending`).
//! Settling is idempotent (`billing::card`), so an event applied twice is harmless.
//!
//! Faults: Stripe unreachable (or the database) stops the drain after what it applied, and
//! the job is retried with backoff. An event that cannot be applied (Stripe refuses to show
//! its object, a payment event before the clinic has an account, a billing rule refuses it)
//! is marked failed with a code and the drain goes past it; the hourly comparison with Stripe
//! settles any payment such an event left behind. One failing event in a batch rolls the
//! batch back, which is then applied an event at a time, so the others are not held up.

use std::collections::HashSet;

use futures::StreamExt;
use portal_domain::audit::AuditContext;
use portal_domain::billing::events::{self, Pending};
use portal_domain::billing::{card, disputes, payouts, reconcile, refunds, settle_many, setup};
use portal_stripe::{
    AccountState, BalanceLine, CheckoutState, DisputeState, PaymentState, PayoutState, RefundState,
    Stripe, StripeError,
};
use portal_tenants::Tenant;

use crate::Deps;
use crate::handlers::JobError;

/// Events applied in one transaction: large enough that a burst is a few transactions, small
/// enough that a transaction holds its locks for tens of milliseconds.
const BATCH: i64 = 100;

/// Lanes drained side by side (each its own billing accounts, so they do not wait on each
/// other's locks): a batch's statements are round trips, and one lane alone leaves the
/// database and the cores idle between them.
const LANES: i64 = 4;

/// Stripe reads in flight at once (in each lane) while a batch is prepared (events that are not a
/// PaymentIntent's: account, refund, payout, dispute, Checkout).
const READS_AT_ONCE: usize = 8;

/// What applying one event needs, read from Stripe before the applying transaction opens
/// (no transaction waits on Stripe).
enum Fetched {
    Account(AccountState),
    Payment {
        session: Option<Box<CheckoutState>>,
        intent: Option<Box<PaymentState>>,
    },
    Refund(RefundState),
    Payout(PayoutState, Vec<BalanceLine>),
    Dispute(DisputeState),
    /// Kept for the record only.
    Nothing,
}

pub(crate) async fn drain(deps: &Deps, tenant: &Tenant) -> Result<(), JobError> {
    let Some(stripe) = &deps.stripe else {
        return Err(JobError::Permanent("no Stripe configuration".into()));
    };
    // Held (a transaction left open) until this drain ends; dropped on any error, which
    // rolls it back and lets the next drain start.
    let mut running = deps.tenant_db.begin(tenant).await?;
    if !events::one_drain_at_a_time(&mut running).await? {
        // The running drain queues the next when it ends (`events::drain_again`).
        running.commit().await?;
        return Ok(());
    }
    let mut tx = deps.tenant_db.begin(tenant).await?;
    events::drain_started(&mut tx).await?;
    let account = setup::read(&mut tx).await?.account;
    tx.commit().await?;
    loop {
        let lanes: Vec<futures::future::BoxFuture<'_, Result<(), JobError>>> = (0..LANES)
            .map(|k| Box::pin(lane(deps, tenant, stripe, account.as_deref(), k)) as _)
            .collect();
        for done in futures::future::join_all(lanes).await {
            done?;
        }
        // The last look, under the inbox lock: an event kept meanwhile is applied now, or
        // its webhook queues the next drain (`events::receive`).
        let mut tx = deps.tenant_db.begin(tenant).await?;
        let finished = events::nothing_waiting(&mut tx).await?;
        tx.commit().await?;
        if finished {
            running.commit().await?;
            // A drain queued meanwhile found this one running and ended: the next starts now.
            let mut tx = deps.tenant_db.begin(tenant).await?;
            events::drain_again(&mut tx)
                .await
                .map_err(|_| JobError::Retry("queue".into()))?;
            tx.commit().await?;
            return Ok(());
        }
    }
}

/// A `stripe.event` job queued (one per event) before drains: a drain, unless its event was
/// applied meanwhile — many such jobs at an upgrade would otherwise each queue another drain.
pub(crate) async fn legacy_event(deps: &Deps, tenant: &Tenant, id: &str) -> Result<(), JobError> {
    let mut tx = deps.tenant_db.begin(tenant).await?;
    let waiting = events::is_waiting(&mut tx, id).await?;
    tx.commit().await?;
    if waiting {
        drain(deps, tenant).await?;
    }
    Ok(())
}

/// Drains lane `k`: its events a batch at a time until none waits.
async fn lane(
    deps: &Deps,
    tenant: &Tenant,
    stripe: &Stripe,
    account: Option<&str>,
    k: i64,
) -> Result<(), JobError> {
    loop {
        let mut tx = deps.tenant_db.begin(tenant).await?;
        let batch = events::pending(&mut tx, BATCH, k, LANES).await?;
        tx.commit().await?;
        if batch.is_empty() {
            return Ok(());
        }
        // Collected first and boxed: a stream over a borrowing closure trips the compiler's
        // `Send` check of the job's future, and the Stripe client's futures are deep types
        // whose `Send` check overflows in the crates that spawn the workers.
        let reads: Vec<futures::future::BoxFuture<'_, Result<Fetched, JobError>>> = batch
            .iter()
            .map(|e| Box::pin(fetch(stripe, account, e)) as _)
            .collect();
        let reads: Vec<Result<Fetched, JobError>> = futures::stream::iter(reads)
            .buffered(READS_AT_ONCE)
            .collect()
            .await;
        // Applied in order up to the first event Stripe could not be asked about for now;
        // the rest wait for the job's next attempt.
        let mut ready = Vec::new();
        let mut stopped = None;
        for (event, read) in batch.iter().zip(reads) {
            match read {
                Ok(f) => ready.push((event, Ok(f))),
                Err(JobError::Permanent(why)) => ready.push((event, Err(why))),
                Err(other) => {
                    stopped = Some(other);
                    break;
                }
            }
        }
        // A batch that fails (an event a rule refuses, a deadlock with lane 0's refunds and
        // disputes, which touch any account) is applied again one event at a time, so one
        // event cannot hold up the others; an event that fails alone for good is set aside.
        let taken = match apply(deps, tenant, &ready).await {
            Ok(taken) => taken,
            Err(first) => {
                if ready.len() == 1 {
                    set_aside_or(deps, tenant, ready[0].0, first).await?
                } else {
                    let mut taken = 0;
                    for one in &ready {
                        taken += match apply(deps, tenant, std::slice::from_ref(one)).await {
                            Ok(n) => n,
                            Err(e) => set_aside_or(deps, tenant, one.0, e).await?,
                        };
                    }
                    taken
                }
            }
        };
        if let Some(e) = stopped {
            return Err(e);
        }
        // Every event of the batch was taken by another drain running beside this one: it
        // goes on with them.
        if taken == 0 {
            return Ok(());
        }
    }
}

/// How a Stripe read failed, for the drain: an object Stripe says it does not have (404) sets
/// the event aside; anything else (a refused or revoked key, a bad configuration, Stripe out
/// of reach) stops the drain, to be tried again — fixing the key must not find the backlog
/// given up on.
fn read_error(e: StripeError) -> JobError {
    match e {
        StripeError::Refused {
            status: 404, code, ..
        } => JobError::Permanent(format!("stripe refused: 404 {code}")),
        StripeError::Refused { status, code, .. } => {
            JobError::Retry(format!("stripe refused: {status} {code}"))
        }
        StripeError::Declined { code, .. } => JobError::Retry(format!("stripe declined: {code}")),
        StripeError::Config(_) => JobError::Retry("stripe configuration".into()),
        StripeError::Unavailable(m) => JobError::Retry(format!("stripe: {m}")),
    }
}

/// Reads what `event` needs from Stripe. `Permanent`: the event cannot be applied.
async fn fetch(
    stripe: &Stripe,
    account: Option<&str>,
    event: &Pending,
) -> Result<Fetched, JobError> {
    read(stripe, account, event).await.map_err(|e| match e {
        Read::Stripe(e) => read_error(e),
        Read::NoAccount(kind) => JobError::Permanent(format!("{kind} event before any account")),
    })
}

enum Read {
    Stripe(StripeError),
    NoAccount(String),
}

impl From<StripeError> for Read {
    fn from(e: StripeError) -> Self {
        Read::Stripe(e)
    }
}

async fn read(stripe: &Stripe, account: Option<&str>, event: &Pending) -> Result<Fetched, Read> {
    let connected = || account.ok_or_else(|| Read::NoAccount(event.object_type.clone()));
    Ok(match event.object_type.as_str() {
        "account" => Fetched::Account(stripe.account(&event.object_id).await?),
        "payment_intent" => match &event.intent {
            Some(intent) => Fetched::Payment {
                session: None,
                intent: Some(Box::new(intent.clone())),
            },
            None => Fetched::Payment {
                session: None,
                intent: Some(Box::new(
                    stripe
                        .payment_intent(connected()?, &event.object_id)
                        .await?,
                )),
            },
        },
        // Settled from the session (what the payer did) and mirrored from its intent (what
        // Stripe holds, with its charge for matching payouts later).
        "checkout.session" => {
            let account = connected()?;
            let session = stripe.checkout(account, &event.object_id).await?;
            let intent = match &session.payment_intent {
                Some(id) => Some(Box::new(stripe.payment_intent(account, id).await?)),
                None => None,
            };
            Fetched::Payment {
                session: Some(Box::new(session)),
                intent,
            }
        }
        "refund" => Fetched::Refund(stripe.refund_state(connected()?, &event.object_id).await?),
        "payout" => {
            let account = connected()?;
            let payout = stripe.payout(account, &event.object_id).await?;
            let mut lines = Vec::new();
            let mut after: Option<String> = None;
            loop {
                let page = stripe
                    .payout_lines(account, &payout.id, after.as_deref())
                    .await?;
                after = page.items.last().map(|l| l.id.clone());
                lines.extend(page.items);
                if !page.has_more || after.is_none() {
                    break;
                }
            }
            Fetched::Payout(payout, lines)
        }
        "dispute" => Fetched::Dispute(stripe.dispute(connected()?, &event.object_id).await?),
        _ => Fetched::Nothing,
    })
}

/// Applies `events` in one transaction (those another drain has not taken meanwhile); an
/// event whose read was refused is marked failed in the same transaction. How many were
/// taken.
async fn apply(
    deps: &Deps,
    tenant: &Tenant,
    events: &[(&Pending, Result<Fetched, String>)],
) -> Result<usize, JobError> {
    let now = deps.clock.now();
    let ctx = AuditContext::default();
    let ids: Vec<String> = events.iter().map(|(e, _)| e.id.clone()).collect();
    let mut tx = deps.tenant_db.begin(tenant).await?;
    let mine: HashSet<String> = events::lock(&mut tx, &ids).await?.into_iter().collect();
    let mut applied = Vec::with_capacity(mine.len());
    let mut intents = Vec::new();
    // Succeeded payments first, together (`settle_many`); what that path leaves goes one at a
    // time below, in Stripe's order.
    let quick: Vec<(usize, &PaymentState)> = events
        .iter()
        .enumerate()
        .filter(|(_, (e, _))| mine.contains(&e.id))
        .filter_map(|(n, (_, f))| match f {
            Ok(Fetched::Payment {
                session: None,
                intent: Some(i),
            }) => Some((n, &**i)),
            _ => None,
        })
        .collect();
    let states: Vec<&PaymentState> = quick.iter().map(|(_, i)| *i).collect();
    let taken = settle_many::succeeded(&mut tx, &ctx, &states, now).await?;
    let settled: HashSet<usize> = quick
        .iter()
        .zip(taken)
        .filter(|(_, t)| *t)
        .map(|((n, _), _)| *n)
        .collect();
    for (n, (event, fetched)) in events.iter().enumerate() {
        if !mine.contains(&event.id) {
            continue;
        }
        if settled.contains(&n) {
            if let Ok(Fetched::Payment {
                intent: Some(i), ..
            }) = fetched
            {
                intents.push(PaymentState::clone(i));
            }
            applied.push(event.id.clone());
            continue;
        }
        match fetched {
            Err(why) => {
                tracing::warn!(event = %event.id, kind = %event.kind, failure = %why, "a Stripe event could not be applied");
                events::mark_failed(&mut tx, &event.id, why).await?;
                continue;
            }
            Ok(Fetched::Account(state)) => setup::refresh(&mut tx, state, now).await?,
            Ok(Fetched::Payment { session, intent }) => {
                if let Some(s) = session {
                    card::apply_checkout(&mut tx, &ctx, s, now).await?;
                }
                if let Some(i) = intent {
                    card::apply_payment_intent(&mut tx, &ctx, i, now).await?;
                    intents.push(PaymentState::clone(i));
                }
            }
            Ok(Fetched::Refund(state)) => {
                if let Some(ours) = refunds::find(&mut tx, state).await? {
                    refunds::finish(&mut tx, &ctx, ours, state, now).await?;
                }
            }
            Ok(Fetched::Payout(payout, lines)) => {
                payouts::record(&mut tx, payout, lines, now).await?;
            }
            Ok(Fetched::Dispute(state)) => {
                disputes::apply(&mut tx, &ctx, state, None, now).await?;
            }
            Ok(Fetched::Nothing) => {}
        }
        applied.push(event.id.clone());
    }
    reconcile::mirror(&mut tx, &intents, now).await?;
    events::mark_applied(&mut tx, &applied, now).await?;
    tx.commit().await?;
    Ok(mine.len())
}

/// An event that failed alone: set aside when it would fail the same way again (a billing
/// rule, or data the database refuses: SQLSTATE classes 22 and 23, a trigger's exception);
/// otherwise the error stops the drain and the job is retried.
async fn set_aside_or(
    deps: &Deps,
    tenant: &Tenant,
    event: &Pending,
    e: JobError,
) -> Result<usize, JobError> {
    let for_good = match &e {
        JobError::Permanent(_) => true,
        // `JobError::from(sqlx::Error)` keeps the SQLSTATE: "database: 23505".
        JobError::Retry(why) => ["database: 22", "database: 23", "database: P0001"]
            .iter()
            .any(|p| why.starts_with(p)),
        JobError::Held => false,
    };
    if !for_good {
        return Err(e);
    }
    let why = match e {
        JobError::Permanent(w) | JobError::Retry(w) => w,
        JobError::Held => String::new(),
    };
    give_up(deps, tenant, event, &why).await?;
    Ok(1)
}

async fn give_up(deps: &Deps, tenant: &Tenant, event: &Pending, why: &str) -> Result<(), JobError> {
    tracing::warn!(event = %event.id, kind = %event.kind, failure = %why, "a Stripe event could not be applied");
    let mut tx = deps.tenant_db.begin(tenant).await?;
    events::mark_failed(&mut tx, &event.id, why).await?;
    tx.commit().await?;
    Ok(())
}
