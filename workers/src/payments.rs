//! Stripe events, applied: the webhook kept the event and queued this job; here the object it
//! names is read again from Stripe (its current state, so duplicates and out-of-order events
//! cannot move a payment backwards) and the clinic's payments — or its payments set-up — are
//! brought up to date. Settling is idempotent (`billing::card`), so a job run twice is
//! harmless.

use portal_domain::audit::AuditContext;
use portal_domain::billing::{BillingError, card, events, refunds, setup};
use portal_domain::ids::RefundId;
use portal_stripe::StripeError;
use portal_tenants::Tenant;

use crate::Deps;
use crate::handlers::JobError;

impl From<StripeError> for JobError {
    fn from(e: StripeError) -> Self {
        match e {
            StripeError::Unavailable(m) => JobError::Retry(format!("stripe: {m}")),
            StripeError::Declined { code, .. } => {
                JobError::Permanent(format!("stripe declined: {code}"))
            }
            StripeError::Refused { status, code, .. } => {
                JobError::Permanent(format!("stripe refused: {status} {code}"))
            }
            StripeError::Config(m) => JobError::Permanent(format!("stripe config: {m}")),
        }
    }
}

impl From<BillingError> for JobError {
    fn from(e: BillingError) -> Self {
        match e {
            BillingError::Database(d) => d.into(),
            BillingError::Queue(_) => JobError::Retry("queue".into()),
            other => JobError::Permanent(format!("billing: {other:?}")),
        }
    }
}

pub(crate) async fn apply_event(
    deps: &Deps,
    tenant: &Tenant,
    event_id: &str,
) -> Result<(), JobError> {
    let Some(stripe) = &deps.stripe else {
        return Err(JobError::Permanent("no Stripe configuration".into()));
    };
    let mut tx = deps.tenant_db.begin(tenant).await?;
    let event = events::stored(&mut tx, event_id).await?;
    let account = setup::read(&mut tx).await?.account;
    tx.commit().await?;
    let Some(event) = event.filter(|e| !e.applied) else {
        return Ok(());
    };
    let now = deps.clock.now();
    let ctx = AuditContext::default();
    match event.object_type.as_str() {
        "account" => {
            let state = stripe.account(&event.object_id).await?;
            let mut tx = deps.tenant_db.begin(tenant).await?;
            setup::refresh(&mut tx, &state, now).await?;
            events::mark_applied(&mut tx, event_id, now).await?;
            tx.commit().await?;
        }
        "checkout.session" | "payment_intent" => {
            let Some(account) = account else {
                return Err(JobError::Permanent(
                    "payment event before any account".into(),
                ));
            };
            let mut tx;
            if event.object_type == "checkout.session" {
                let session = stripe.checkout(&account, &event.object_id).await?;
                tx = deps.tenant_db.begin(tenant).await?;
                card::apply_checkout(&mut tx, &ctx, &session, now).await?;
            } else {
                let intent = stripe.payment_intent(&account, &event.object_id).await?;
                tx = deps.tenant_db.begin(tenant).await?;
                card::apply_payment_intent(&mut tx, &ctx, &intent, now).await?;
            }
            events::mark_applied(&mut tx, event_id, now).await?;
            tx.commit().await?;
        }
        "refund" => {
            let Some(account) = account else {
                return Err(JobError::Permanent(
                    "refund event before any account".into(),
                ));
            };
            let state = stripe.refund_state(&account, &event.object_id).await?;
            let mut tx = deps.tenant_db.begin(tenant).await?;
            if let Some(ours) = refunds::by_stripe_id(&mut tx, &state.id).await? {
                refunds::finish(&mut tx, &ctx, ours, &state, now).await?;
            }
            events::mark_applied(&mut tx, event_id, now).await?;
            tx.commit().await?;
        }
        // Kept for the record; disputes and payouts are applied by their own flows.
        _ => {
            let mut tx = deps.tenant_db.begin(tenant).await?;
            events::mark_applied(&mut tx, event_id, now).await?;
            tx.commit().await?;
        }
    }
    Ok(())
}

/// Sends a refund that could not reach Stripe again, with the same key (so a refund Stripe did
/// make, whose answer was lost, is not made twice).
pub(crate) async fn send_refund(
    deps: &Deps,
    tenant: &Tenant,
    refund: RefundId,
) -> Result<(), JobError> {
    let Some(stripe) = &deps.stripe else {
        return Err(JobError::Permanent("no Stripe configuration".into()));
    };
    let mut tx = deps.tenant_db.begin(tenant).await?;
    let pending = refunds::pending(&mut tx, refund).await?;
    let account = setup::read(&mut tx).await?.account;
    tx.commit().await?;
    let (Some(p), Some(account)) = (pending, account) else {
        return Ok(());
    };
    let key = format!("refund-{}", p.refund);
    let state = match stripe
        .refund(&account, &key, &p.payment_intent, p.amount.minor)
        .await
    {
        Ok(s) => s,
        Err(e) if !e.is_temporary() => {
            let mut tx = deps.tenant_db.begin(tenant).await?;
            refunds::fail(&mut tx, refund).await?;
            tx.commit().await?;
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    let mut tx = deps.tenant_db.begin(tenant).await?;
    refunds::finish(
        &mut tx,
        &AuditContext::default(),
        refund,
        &state,
        deps.clock.now(),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
