//! Stripe beyond its events (those are `stripe_inbox`): refunds sent again, the hourly
//! comparison of the clinic's card payments with Stripe's list, and the sweep that queues it.
//! Settling is idempotent (`billing::card`), so a job run twice is harmless.

use portal_domain::audit::AuditContext;
use portal_domain::billing::{BillingError, card, reconcile, refunds, setup};
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
            // The variant's name only: its fields may hold words for a person, or amounts.
            other => {
                let debug = format!("{other:?}");
                let name = debug.split(['(', '{', ' ']).next().unwrap_or_default();
                JobError::Permanent(format!("billing: {name}"))
            }
        }
    }
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
    let meta = std::collections::HashMap::from([("refund".to_owned(), p.refund.to_string())]);
    let state = match stripe
        .refund(&account, &key, &p.payment_intent, p.amount.minor, meta)
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

/// How far back the reconciliation job lists Stripe's payments.
const RECONCILE_DAYS: i64 = 30;

/// Compares the clinic's card payments with Stripe's list of the last 30 days: every
/// PaymentIntent naming one of ours settles it if a webhook was lost (the same idempotent
/// settling), and all are kept beside ours for the reconciliation view.
pub(crate) async fn reconcile_clinic(deps: &Deps, tenant: &Tenant) -> Result<(), JobError> {
    let Some(stripe) = &deps.stripe else {
        return Err(JobError::Permanent("no Stripe configuration".into()));
    };
    let mut tx = deps.tenant_db.begin(tenant).await?;
    let account = setup::read(&mut tx).await?.account;
    tx.commit().await?;
    let Some(account) = account else {
        return Ok(());
    };
    let now = deps.clock.now();
    let since = (now - chrono::Duration::days(RECONCILE_DAYS)).timestamp();
    let ctx = AuditContext::default();
    let mut after: Option<String> = None;
    // At most 100 pages (10,000 payments) a run; a clinic with more is checked in slices by
    // its newest payments, which are the ones a lost webhook leaves behind.
    for _ in 0..100 {
        let page = stripe
            .payment_intents_since(&account, since, after.as_deref())
            .await?;
        let mut tx = deps.tenant_db.begin(tenant).await?;
        for intent in &page.items {
            card::apply_payment_intent(&mut tx, &ctx, intent, now).await?;
        }
        reconcile::mirror(&mut tx, &page.items, now).await?;
        tx.commit().await?;
        after = page.items.last().map(|i| i.id.clone());
        if !page.has_more || after.is_none() {
            break;
        }
    }
    let mut tx = deps.tenant_db.begin(tenant).await?;
    reconcile::mark_checked(&mut tx, now).await?;
    tx.commit().await?;
    Ok(())
}

/// Every hour (the first a minute after start), queues a comparison with Stripe for every
/// clinic with a Stripe account, so a lost webhook is recovered within the hour even if nobody
/// presses "Check with Stripe now". Several worker processes may each queue one; the job is
/// idempotent.
pub(crate) async fn sweep(
    deps: std::sync::Arc<Deps>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut wait = std::time::Duration::from_secs(60);
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            () = tokio::time::sleep(wait) => {}
        }
        if *stop.borrow() {
            return;
        }
        wait = std::time::Duration::from_secs(3600);
        if deps.stripe.is_none() {
            continue;
        }
        if let Err(e) = queue_all(&deps).await {
            tracing::warn!(error = %e, "could not queue the Stripe reconciliation");
        }
    }
}

async fn queue_all(deps: &Deps) -> Result<(), JobError> {
    let clinics: Vec<uuid::Uuid> =
        sqlx::query_scalar!("SELECT tenant_id FROM control.stripe_accounts")
            .fetch_all(&deps.pool)
            .await?;
    for id in clinics {
        let tenant = deps
            .clinics
            .get(portal_tenants::TenantId::from_uuid(id))
            .await
            .map_err(|_| JobError::Retry("registry".into()))?;
        let Some(tenant) = tenant.filter(|t| t.is_active()) else {
            continue;
        };
        let mut tx = deps.tenant_db.begin(&tenant).await?;
        // A drain too: an event whose webhook died between keeping it and queueing its drain
        // is applied within the hour.
        for job in [
            portal_domain::jobs::Job::StripeInbox {},
            portal_domain::jobs::Job::StripeReconcile {},
            portal_domain::jobs::Job::Autopay {},
        ] {
            portal_domain::jobs::enqueue(&mut tx, &job)
                .await
                .map_err(|_| JobError::Retry("queue".into()))?;
        }
        tx.commit().await?;
    }
    Ok(())
}
